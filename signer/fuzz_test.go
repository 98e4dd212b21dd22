package signer

import (
	"os"
	"path/filepath"
	"testing"
)

// maxFuzzInput bounds fuzz inputs: real files are a few KiB.
const maxFuzzInput = 16 << 10

func seedFuzz(f *testing.F, patterns ...string) {
	for _, p := range patterns {
		files, _ := filepath.Glob(filepath.Join(fixtures, p))
		for _, name := range files {
			if data, err := os.ReadFile(name); err == nil {
				f.Add(data)
			}
		}
	}
}

func FuzzParseCertificate(f *testing.F) {
	seedFuzz(f, "*.pem", "*.der")
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > maxFuzzInput {
			return
		}
		c, err := ParseCertificate(data)
		if (c == nil) == (err == nil) {
			t.Fatalf("certificate %v with error %v", c != nil, err)
		}
	})
}

func FuzzParseCertificates(f *testing.F) {
	seedFuzz(f, "*.pem", "*.der")
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > maxFuzzInput {
			return
		}
		certs, err := ParseCertificates(data)
		if err == nil && len(certs) == 0 {
			t.Fatal("no certificates and no error")
		}
	})
}

func FuzzParsePrivateKey(f *testing.F) {
	// Keep the key derivation cheap: the fuzzer would otherwise spend its
	// time in PBKDF2 and scrypt with costs it made up.
	maxPBKDF2Iterations = 4096
	maxScryptMemory = 16 << 20
	seedFuzz(f, "*.key", "*.pem", "*.der")
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > maxFuzzInput {
			return
		}
		k, err := ParsePrivateKey(data, []byte(passphrase))
		if (k == nil) == (err == nil) {
			t.Fatalf("key %v with error %v", k != nil, err)
		}
		if err == nil {
			if checkPublicKey(k.Public()) != nil {
				t.Fatal("an unsupported key was returned")
			}
		}
	})
}
