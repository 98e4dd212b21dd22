package pkcs11key_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/rolesenv/rolesenv/internal/pkcs11key"
)

func TestParseURI(t *testing.T) {
	// The first three are the official Roles Anywhere helper's examples,
	// as its README writes them.
	for _, c := range []struct {
		in   string
		want pkcs11key.URI
	}{
		{"pkcs11:manufacturer=piv_II;id=%01", pkcs11key.URI{Manufacturer: "piv_II", ID: []byte{1}}},
		{"pkcs11:object=My%20RA%20key", pkcs11key.URI{Object: "My RA key"}},
		{"pkcs11:model=SoftHSM%20v2;object=My%20RA%20key", pkcs11key.URI{Model: "SoftHSM v2", Object: "My RA key"}},
		{"PKCS11:token=a;serial=42;type=cert?module-path=/usr/lib/x.so&pin-source=file:/run/pin",
			pkcs11key.URI{Token: "a", Serial: "42", Type: "cert", ModulePath: "/usr/lib/x.so", PINSource: "file:/run/pin"}},
		{"pkcs11:", pkcs11key.URI{}},
		{"pkcs11:x-vendor=1;object=k", pkcs11key.URI{Object: "k"}},
	} {
		got, err := pkcs11key.ParseURI(c.in)
		if err != nil {
			t.Errorf("%s: %v", c.in, err)
			continue
		}
		if got.Manufacturer != c.want.Manufacturer || got.Object != c.want.Object || got.Model != c.want.Model ||
			!bytes.Equal(got.ID, c.want.ID) || got.Token != c.want.Token || got.Serial != c.want.Serial ||
			got.Type != c.want.Type || got.ModulePath != c.want.ModulePath || got.PINSource != c.want.PINSource {
			t.Errorf("%s: parsed as %+v", c.in, got)
		}
	}
	for _, bad := range []string{"pkcs11", "file:x", "pkcs11:object=a;object=b", "pkcs11:objekt=a",
		"pkcs11:id=%zz", "pkcs11:type=key", "pkcs11:slot-id=x", "pkcs11:object"} {
		if _, err := pkcs11key.ParseURI(bad); !errors.Is(err, pkcs11key.ErrBadURI) {
			t.Errorf("%s: %v, want ErrBadURI", bad, err)
		}
	}
}

// FuzzParseURI: any input parses or fails with ErrBadURI, and what
// parses formats to a URI that, within MaxURI, parses to the same object.
func FuzzParseURI(f *testing.F) {
	for _, s := range []string{"pkcs11:manufacturer=piv_II;id=%01", "pkcs11:object=My%20RA%20key",
		"pkcs11:model=SoftHSM%20v2;object=My%20RA%20key", "pkcs11:token=a;slot-id=3?pin-source=file:/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := pkcs11key.ParseURI(s)
		if err != nil {
			if !errors.Is(err, pkcs11key.ErrBadURI) {
				t.Fatalf("%q: %v", s, err)
			}
			return
		}
		if len(u.String()) > pkcs11key.MaxURI {
			// Percent-encoding can take a URI just under the limit over
			// it: such a URI is refused as too long, as any would be.
			return
		}
		again, err := pkcs11key.ParseURI(u.String())
		if err != nil {
			t.Fatalf("%q formats as %q, which does not parse: %v", s, u.String(), err)
		}
		if again.Object != u.Object || !bytes.Equal(again.ID, u.ID) || again.Token != u.Token || again.Serial != u.Serial {
			t.Fatalf("%q: %+v formats and parses as %+v", s, u, again)
		}
	})
}
