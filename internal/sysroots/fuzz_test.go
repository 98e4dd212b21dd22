package sysroots

import (
	"bytes"
	"os"
	"slices"
	"testing"
)

// FuzzPlainBlocks: whatever the input, the index takes the same
// certificates as through encoding/pem.
func FuzzPlainBlocks(f *testing.F) {
	f.Add(pemOf(rootBundle, rootDir))
	f.Add([]byte("text\n" + string(pemOf(rootBundle)) + "more text\r\n"))
	crlf := []byte{}
	for _, b := range pemOf(rootDir) {
		if b == '\n' {
			crlf = append(crlf, '\r')
		}
		crlf = append(crlf, b)
	}
	f.Add(crlf)
	f.Add([]byte("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"))
	// A CR that no LF follows ends the data: encoding/pem refuses the
	// END line then.
	f.Add(append(bytes.TrimSuffix(pemOf(rootBundle), []byte("\n")), '\r'))
	if data, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt"); err == nil && len(data) > 4000 {
		f.Add(data[:4000])
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fast := &index{bySubject: map[string][]*root{}}
		fast.appendPEM(data, newSeenSet())
		ref := &index{bySubject: map[string][]*root{}}
		ref.appendDecoded(data, newSeenSet())
		if got, want := ders(fast), ders(ref); !slices.Equal(got, want) {
			t.Errorf("indexed %d certificates, encoding/pem %d", len(got), len(want))
		}
	})
}

// FuzzPlainBlocksFiles: files read one after the other, through one set
// of texts already seen, give the certificates that encoding/pem gives.
func FuzzPlainBlocksFiles(f *testing.F) {
	f.Add(pemOf(rootBundle, rootDir), pemOf(rootDir))
	f.Add(pemOf(rootBundle), append(bytes.TrimSuffix(pemOf(rootBundle), []byte("\n")), '\r'))
	f.Add(pemOf(rootBundle), bytes.ReplaceAll(pemOf(rootBundle), []byte("\n"), []byte("\r\n")))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		fast := &index{bySubject: map[string][]*root{}}
		seen := newSeenSet()
		fast.appendPEM(a, seen)
		fast.appendPEM(b, seen)
		ref := &index{bySubject: map[string][]*root{}}
		refSeen := newSeenSet()
		ref.appendDecoded(a, refSeen)
		ref.appendDecoded(b, refSeen)
		if got, want := ders(fast), ders(ref); !slices.Equal(got, want) {
			t.Errorf("indexed %d certificates, encoding/pem %d", len(got), len(want))
		}
	})
}

func ders(x *index) []string {
	var out []string
	for _, rs := range x.bySubject {
		for _, r := range rs {
			out = append(out, string(r.der))
		}
	}
	slices.Sort(out)
	return out
}
