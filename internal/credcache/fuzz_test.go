package credcache

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecode: decode never panics; what it accepts survives a rewrite;
// and it starts anew (damagedError) only a file that carries the marker.
func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob("testdata/*")
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
		f.Add(data[:len(data)/2])
	}
	for _, s := range []string{"", "null", "[]", `{"version":1}`, `{"rolesenv":"credential-cache","version":2}`,
		`{"ROLESENV":"credential\u002dcache","version":2,"entries":null}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := decode(data)
		var damaged *damagedError
		switch {
		case err == nil:
			out, err := encode(entries)
			if err != nil {
				t.Fatal(err)
			}
			again, err := decode(out)
			if err != nil || !maps.Equal(entries, again) {
				t.Fatalf("a rewrite does not read back: %v", err)
			}
		case errors.As(err, &damaged):
			var f file
			if !bytes.HasPrefix(data, markerPrefix) && !(json.Unmarshal(data, &f) == nil && f.Marker == markerValue) {
				t.Fatalf("a file without the marker would be started anew: %q", data)
			}
		case !errors.Is(err, ErrNotCache):
			t.Fatalf("unexpected error %v", err)
		}
	})
}
