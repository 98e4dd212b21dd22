package credcache

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// The file is one JSON object whose first member is the marker:
//
//	{"rolesenv":"credential-cache","version":2,"entries":{KEY:ENTRY,...}}
//
// json.Marshal writes it first, so a file cut short by a crash still
// starts with markerPrefix. A user's file does not carry that member by
// accident: "version" alone (the first format's only header) did, which is
// why the marker replaced it.
const (
	markerName    = "rolesenv"
	markerValue   = "credential-cache"
	formatVersion = 2
)

var markerPrefix = []byte(`{"` + markerName + `":"` + markerValue + `",`)

// file is the cache file's content.
type file struct {
	Marker  string           `json:"rolesenv"`
	Version int              `json:"version"`
	Entries map[string]entry `json:"entries"`
}

// entry is one identity's credentials, with the names and the expiry
// format of credential_process output.
type entry struct {
	AccessKeyID     string `json:"AccessKeyId"`
	SecretAccessKey string `json:"SecretAccessKey"`
	SessionToken    string `json:"SessionToken"`
	Expiration      string `json:"Expiration"`
}

// String keeps an entry out of logs and test failures.
func (entry) String() string { return "[redacted]" }

// GoString is String for %#v.
func (entry) GoString() string { return "[redacted]" }

func (e entry) valid() bool {
	_, err := time.Parse(time.RFC3339, e.Expiration)
	return err == nil && e.AccessKeyID != "" && e.SecretAccessKey != ""
}

// damagedError is a file of the cache's own that cannot be used: it may be
// started anew.
type damagedError struct{ reason string }

func (e *damagedError) Error() string { return "damaged cache: " + e.reason }

// decode reads a cache file's content: nothing, the current format, or
// the first format (see decodeV1). A file with the marker that cannot be
// used is a *damagedError; anything else is [ErrNotCache].
func decode(data []byte) (map[string]entry, error) {
	if len(data) == 0 {
		return map[string]entry{}, nil
	}
	if len(data) > maxFile {
		if bytes.HasPrefix(data, markerPrefix) {
			return nil, &damagedError{fmt.Sprintf("larger than %d bytes", maxFile)}
		}
		return nil, ErrNotCache
	}
	var f file
	if err := json.Unmarshal(data, &f); err == nil && f.Marker == markerValue {
		if f.Version != formatVersion {
			return nil, &damagedError{fmt.Sprintf("format version %d, not %d", f.Version, formatVersion)}
		}
		for k, e := range f.Entries {
			if !isKey(k) || !e.valid() {
				return nil, &damagedError{"an entry is malformed"}
			}
		}
		if f.Entries == nil {
			f.Entries = map[string]entry{}
		}
		return f.Entries, nil
	}
	if bytes.HasPrefix(data, markerPrefix) {
		return nil, &damagedError{"cut short or not JSON"}
	}
	if entries, ok := decodeV1(data); ok {
		return entries, nil
	}
	return nil, ErrNotCache
}

// v1 is the first format, {"version":1,"entries":{KEY:ENTRY}}, whose
// entries also had "Version":1.
type v1 struct {
	Version int `json:"version"`
	Entries map[string]struct {
		Version int `json:"Version"`
		entry
	} `json:"entries"`
}

// decodeV1 reads a whole cache of the first format, so that an upgrade
// keeps its credentials. Its header alone does not prove the file is a
// cache, so it is taken only when nothing else is in it: exactly the two
// members, at least one entry (it never wrote none), keys that are
// SHA-256 hex digests and entries of credential_process output. A file of
// the first format that is damaged is refused like any other.
func decodeV1(data []byte) (map[string]entry, bool) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f v1
	if dec.Decode(&f) != nil || dec.Decode(&struct{}{}) != io.EOF {
		return nil, false
	}
	if f.Version != 1 || len(f.Entries) == 0 {
		return nil, false
	}
	entries := make(map[string]entry, len(f.Entries))
	for k, e := range f.Entries {
		if !isKey(k) || e.Version != 1 || !e.valid() {
			return nil, false
		}
		entries[k] = e.entry
	}
	return entries, true
}

// encode writes the current format.
func encode(entries map[string]entry) ([]byte, error) {
	return json.Marshal(file{Marker: markerValue, Version: formatVersion, Entries: entries})
}

// isKey reports whether k is a [Key]: 64 lower-case hex digits.
func isKey(k string) bool {
	if len(k) != 64 {
		return false
	}
	for _, c := range []byte(k) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
