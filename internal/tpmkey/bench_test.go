package tpmkey_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"testing"

	"github.com/rolesenv/rolesenv/internal/tpmkey"
	"github.com/rolesenv/rolesenv/internal/tpmkey/swtpmtest"
)

// BenchmarkSign: one signature of a SHA-256 digest, as CreateSession
// makes it, with a key in memory and with keys in swtpm (each signature
// opens the socket, loads the key under its parent, signs, flushes).
// The numbers are swtpm's, on this machine's CPU: a hardware TPM is
// slower, tens to hundreds of milliseconds for RSA and for making a
// storage key under a hierarchy.
func BenchmarkSign(b *testing.B) {
	d := digest("message")
	b.Run("memory-p256", func(b *testing.B) {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := k.Sign(rand.Reader, d, crypto.SHA256); err != nil {
				b.Fatal(err)
			}
		}
	})
	tpm := swtpmtest.Start(b)
	tpm.NewPersistentKey(b, "0x81000010", swtpmtest.KeyOptions{Kind: swtpmtest.ECC256})
	for _, c := range []struct {
		name string
		ref  func() string
	}{
		{"swtpm-p256-file-persistent-parent", func() string {
			return tpm.NewKeyFile(b, "p256p", swtpmtest.KeyOptions{Kind: swtpmtest.ECC256, Parent: "0x81000001"})
		}},
		{"swtpm-p256-file-owner-parent", func() string {
			return tpm.NewKeyFile(b, "p256o", swtpmtest.KeyOptions{Kind: swtpmtest.ECC256})
		}},
		{"swtpm-rsa2048-file-persistent-parent", func() string {
			return tpm.NewKeyFile(b, "rsap", swtpmtest.KeyOptions{Kind: swtpmtest.RSA2048, Parent: "0x81000001"})
		}},
		{"swtpm-p256-handle", func() string { return "handle:0x81000010" }},
	} {
		ref := c.ref()
		b.Run(c.name, func(b *testing.B) {
			k, err := tpmkey.Open(ref, tpmkey.Options{Device: tpm.Socket, NoPassword: true})
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := k.Sign(nil, d, crypto.SHA256); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
