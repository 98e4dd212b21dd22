package pkcs11key

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// MaxURI bounds a pkcs11: URI: real ones are a few hundred bytes.
const MaxURI = 4096

// ErrBadURI is the cause of a pkcs11: URI that does not parse.
var ErrBadURI = errors.New("not a valid pkcs11: URI")

// URI is a parsed RFC 7512 PKCS#11 URI. The zero value of a field means
// the URI does not restrict it; ID is nil unless the URI has an id.
type URI struct {
	// Token and slot.
	Token, Manufacturer, Serial, Model          string
	SlotDescription, SlotManufacturer           string
	SlotID                                      *uint64
	LibraryManufacturer, LibraryDescription     string
	LibraryVersion                              string
	Object, Type                                string // Type: cert, private, public, secret-key, data
	ID                                          []byte
	PINSource, PINValue, ModuleName, ModulePath string
}

// pathAttrs are the path attributes of RFC 7512, section 2.3.
var pathAttrs = []string{"token", "manufacturer", "serial", "model", "library-manufacturer",
	"library-description", "library-version", "object", "type", "id", "slot-description",
	"slot-manufacturer", "slot-id"}

// queryAttrs are its query attributes.
var queryAttrs = []string{"pin-source", "pin-value", "module-name", "module-path"}

// IsURI reports whether s is meant as a PKCS#11 URI (its scheme is
// pkcs11:, in any case).
func IsURI(s string) bool {
	return len(s) >= 7 && strings.EqualFold(s[:7], "pkcs11:")
}

// ParseURI parses a pkcs11: URI. Attributes are percent-decoded; an
// attribute given twice, an unknown attribute (other than a vendor's
// x-name) or a malformed value is an error, so that a typing mistake never
// widens a search.
func ParseURI(s string) (*URI, error) {
	if len(s) > MaxURI {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrBadURI, MaxURI)
	}
	if !IsURI(s) {
		return nil, fmt.Errorf("%w: it does not start with \"pkcs11:\"", ErrBadURI)
	}
	path, query, _ := strings.Cut(s[7:], "?")
	u := &URI{}
	seen := map[string]bool{}
	if err := u.parseAttrs(path, ";", pathAttrs, seen); err != nil {
		return nil, err
	}
	if err := u.parseAttrs(query, "&", queryAttrs, seen); err != nil {
		return nil, err
	}
	return u, nil
}

func (u *URI) parseAttrs(s, sep string, known []string, seen map[string]bool) error {
	if s == "" {
		return nil
	}
	for _, a := range strings.Split(s, sep) {
		name, raw, ok := strings.Cut(a, "=")
		if !ok || name == "" {
			// Not quoted: it may be a PIN typed without its name.
			return fmt.Errorf("%w: an attribute is not name=value", ErrBadURI)
		}
		name = strings.ToLower(name)
		if seen[name] {
			return fmt.Errorf("%w: %s is given twice", ErrBadURI, name)
		}
		seen[name] = true
		value, err := url.PathUnescape(raw)
		if err != nil {
			return fmt.Errorf("%w: %s: bad percent-encoding", ErrBadURI, name)
		}
		if strings.HasPrefix(name, "x-") {
			continue // vendor attributes: nothing rolesenv knows of
		}
		if !slices.Contains(known, name) {
			return fmt.Errorf("%w: unknown attribute %q", ErrBadURI, name)
		}
		if err := u.set(name, value); err != nil {
			return err
		}
	}
	return nil
}

func (u *URI) set(name, v string) error {
	switch name {
	case "slot-id":
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return fmt.Errorf("%w: slot-id %q is not a decimal number", ErrBadURI, v)
		}
		u.SlotID = &n
	case "id":
		u.ID = []byte(v)
	case "type":
		switch v {
		case "cert", "private", "public", "secret-key", "data":
		default:
			return fmt.Errorf("%w: type %q (cert, private, public, secret-key or data)", ErrBadURI, v)
		}
		u.Type = v
	default:
		*u.field(name) = v
	}
	return nil
}

func (u *URI) field(name string) *string {
	return map[string]*string{
		"token": &u.Token, "manufacturer": &u.Manufacturer, "serial": &u.Serial, "model": &u.Model,
		"library-manufacturer": &u.LibraryManufacturer, "library-description": &u.LibraryDescription,
		"library-version": &u.LibraryVersion, "object": &u.Object, "slot-description": &u.SlotDescription,
		"slot-manufacturer": &u.SlotManufacturer, "pin-source": &u.PINSource, "pin-value": &u.PINValue,
		"module-name": &u.ModuleName, "module-path": &u.ModulePath,
	}[name]
}

// String formats the URI's path attributes and its module query
// attributes, never a PIN.
func (u *URI) String() string {
	var parts []string
	add := func(name, v string) {
		if v != "" {
			parts = append(parts, name+"="+escape(v))
		}
	}
	add("model", u.Model)
	add("manufacturer", u.Manufacturer)
	add("serial", u.Serial)
	add("token", u.Token)
	if u.SlotID != nil {
		add("slot-id", strconv.FormatUint(*u.SlotID, 10))
	}
	add("object", u.Object)
	if u.ID != nil {
		parts = append(parts, "id="+escapeAll(u.ID))
	}
	add("type", u.Type)
	s := "pkcs11:" + strings.Join(parts, ";")
	if u.ModulePath != "" {
		s += "?module-path=" + escape(u.ModulePath)
	}
	return s
}

// Redact returns s without what may hold a PIN, for messages: the query
// (pin-value, pin-source) and any path attribute whose name starts with
// "pin" are dropped; the other path attributes are kept as given.
func Redact(s string) string {
	if !IsURI(s) {
		return "(not a pkcs11: URI)"
	}
	path, _, _ := strings.Cut(s[7:], "?")
	var kept []string
	for _, a := range strings.Split(path, ";") {
		name, _, ok := strings.Cut(a, "=")
		if d, err := url.PathUnescape(name); err == nil {
			name = d
		}
		if !ok || strings.HasPrefix(strings.ToLower(strings.TrimSpace(name)), "pin") {
			continue
		}
		kept = append(kept, a)
	}
	return "pkcs11:" + strings.Join(kept, ";")
}

// escape percent-encodes what RFC 7512 does not allow as is in a value.
func escape(v string) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~:[]@!$'()*+,=&/", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// escapeAll percent-encodes every byte, as ids are usually written.
func escapeAll(v []byte) string {
	var b strings.Builder
	for _, c := range v {
		fmt.Fprintf(&b, "%%%02x", c)
	}
	return b.String()
}
