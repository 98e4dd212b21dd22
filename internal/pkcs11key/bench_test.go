package pkcs11key_test

import (
	"crypto"
	"crypto/sha256"
	"testing"

	"github.com/rolesenv/rolesenv/internal/pkcs11key"
	"github.com/rolesenv/rolesenv/internal/pkcs11key/softhsmtest"
)

// BenchmarkSign: one signature of a SHA-256 digest, as CreateSession
// makes it, with keys in SoftHSM through purego (the key's session stays
// open between signatures). The numbers are SoftHSM's, on this
// machine's CPU: a smart card or a YubiKey takes tens to hundreds of
// milliseconds.
func BenchmarkSign(b *testing.B) {
	h := softhsmtest.Start(b)
	b.Setenv("SOFTHSM2_CONF", h.Conf)
	h.NewToken(b, "bench", pin)
	h.NewKey(b, "bench", pin, "EC:prime256v1", "p256", "01")
	h.NewKey(b, "bench", pin, "rsa:2048", "rsa2048", "02")
	d := sha256.Sum256([]byte("string to sign"))
	for _, name := range []string{"p256", "rsa2048"} {
		b.Run("softhsm-"+name, func(b *testing.B) {
			k, err := pkcs11key.Open("pkcs11:token=bench;object="+name, pkcs11key.Options{Module: softhsmtest.Module, PIN: []byte(pin)})
			if err != nil {
				b.Fatal(err)
			}
			defer k.Close()
			for b.Loop() {
				if _, err := k.Sign(nil, d[:], crypto.SHA256); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("softhsm-p256-open", func(b *testing.B) {
		for b.Loop() {
			k, err := pkcs11key.Open("pkcs11:token=bench;object=p256", pkcs11key.Options{Module: softhsmtest.Module, PIN: []byte(pin)})
			if err != nil {
				b.Fatal(err)
			}
			k.Close()
		}
	})
}
