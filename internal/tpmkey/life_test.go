package tpmkey_test

import (
	"crypto"
	"strings"
	"testing"

	"github.com/rolesenv/rolesenv/internal/tpmkey"
	"github.com/rolesenv/rolesenv/internal/tpmkey/swtpmtest"
)

// TestNothingLeftLoaded: a process that signs for days leaves nothing in
// the TPM between signatures: swtpm has no resource manager, so an object or session left loaded would stay
// until the TPM's few slots are full and every signature fails.
func TestNothingLeftLoaded(t *testing.T) {
	tpm := swtpmtest.Start(t)
	tpm.NewPersistentKey(t, "0x81000030", swtpmtest.KeyOptions{Kind: swtpmtest.ECC256})
	refs := []string{
		tpm.NewKeyFile(t, "owner", swtpmtest.KeyOptions{Kind: swtpmtest.ECC256}),
		tpm.NewKeyFile(t, "persistent", swtpmtest.KeyOptions{Kind: swtpmtest.RSA2048, Parent: "0x81000001"}),
		"handle:0x81000030",
	}
	var keys []*tpmkey.Key
	for _, ref := range refs {
		k, err := tpmkey.Open(ref, tpmkey.Options{Device: tpm.Socket, NoPassword: true})
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	// Many more signatures than swtpm has object slots (3).
	for range 10 {
		for _, k := range keys {
			sig, err := k.Sign(nil, digest("message"), crypto.SHA256)
			if err != nil {
				t.Fatal(err)
			}
			verify(t, k.Public(), sig)
		}
	}
	for _, kind := range []string{"handles-transient", "handles-loaded-session", "handles-saved-session"} {
		if out := strings.TrimSpace(tpm.Tool(t, "tpm2_getcap", kind)); out != "" {
			t.Errorf("%s after the signatures: %s", kind, out)
		}
	}
}
