package signer

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const (
	fixtures   = "../testdata/signer"
	passphrase = "correct horse battery staple"
)

func fixture(name string) string { return filepath.Join(fixtures, name) }

// private copies fixtures into a temporary directory with mode 0600 (git
// does not keep file modes) and returns the new paths.
func private(t testing.TB, names ...string) []string {
	t.Helper()
	dir := t.TempDir()
	var out []string
	for _, n := range names {
		data, err := os.ReadFile(fixture(n))
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, n)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

// fixtureTime is within every fixture's validity.
var fixtureTime = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// TestLoadFormats loads every supported encoding and algorithm, and checks
// that the key found is the certificate's.
func TestLoadFormats(t *testing.T) {
	tests := []struct {
		name          string
		opts          LoadOptions
		wantAlg       string
		wantBits      int // RSA size or curve size
		intermediates int
	}{
		{"rsa2048 PKCS#8 PEM", LoadOptions{Certificate: "rsa2048.pem", PrivateKey: "rsa2048.key"}, AlgorithmRSA, 2048, 0},
		{"rsa3072", LoadOptions{Certificate: "rsa3072.pem", PrivateKey: "rsa3072.key"}, AlgorithmRSA, 3072, 0},
		{"rsa4096", LoadOptions{Certificate: "rsa4096.pem", PrivateKey: "rsa4096.key"}, AlgorithmRSA, 4096, 0},
		{"p256", LoadOptions{Certificate: "p256.pem", PrivateKey: "p256.key"}, AlgorithmECDSA, 256, 0},
		{"p384", LoadOptions{Certificate: "p384.pem", PrivateKey: "p384.key"}, AlgorithmECDSA, 384, 0},
		{"p521", LoadOptions{Certificate: "p521.pem", PrivateKey: "p521.key"}, AlgorithmECDSA, 521, 0},
		{"DER certificate", LoadOptions{Certificate: "rsa2048.der", PrivateKey: "rsa2048.key"}, AlgorithmRSA, 2048, 0},
		{"PKCS#8 DER", LoadOptions{Certificate: "rsa2048.pem", PrivateKey: "rsa2048.pkcs8.der"}, AlgorithmRSA, 2048, 0},
		{"PKCS#1 PEM", LoadOptions{Certificate: "rsa2048.pem", PrivateKey: "rsa2048.pkcs1.pem"}, AlgorithmRSA, 2048, 0},
		{"PKCS#1 DER", LoadOptions{Certificate: "rsa2048.pem", PrivateKey: "rsa2048.pkcs1.der"}, AlgorithmRSA, 2048, 0},
		{"SEC1 PEM", LoadOptions{Certificate: "p256.pem", PrivateKey: "p256.sec1.pem"}, AlgorithmECDSA, 256, 0},
		{"SEC1 DER", LoadOptions{Certificate: "p256.pem", PrivateKey: "p256.sec1.der"}, AlgorithmECDSA, 256, 0},
		{"PBKDF2 SHA-256 AES-256", LoadOptions{Certificate: "rsa2048.pem", PrivateKey: "rsa2048.pbkdf2-aes256.pem", Passphrase: []byte(passphrase)}, AlgorithmRSA, 2048, 0},
		{"PBKDF2 SHA-1 AES-128 DER", LoadOptions{Certificate: "rsa3072.pem", PrivateKey: "rsa3072.pbkdf2-aes128-sha1.der", Passphrase: []byte(passphrase)}, AlgorithmRSA, 3072, 0},
		{"PBKDF2 SHA-512 AES-192", LoadOptions{Certificate: "p384.pem", PrivateKey: "p384.pbkdf2-aes192-sha512.pem", Passphrase: []byte(passphrase)}, AlgorithmECDSA, 384, 0},
		{"scrypt AES-256", LoadOptions{Certificate: "p256.pem", PrivateKey: "p256.scrypt-aes256.pem", Passphrase: []byte(passphrase)}, AlgorithmECDSA, 256, 0},
		{"PKCS#12 OpenSSL 3", LoadOptions{Certificate: "rsa2048.p12", Passphrase: []byte(passphrase)}, AlgorithmRSA, 2048, 0},
		{"PKCS#12 legacy 3DES", LoadOptions{Certificate: "p521.legacy.p12", Passphrase: []byte(passphrase)}, AlgorithmECDSA, 521, 0},
		{"PKCS#12 with chain", LoadOptions{Certificate: "chained.p12", Passphrase: []byte(passphrase)}, AlgorithmECDSA, 256, 1},
		{"combined PEM", LoadOptions{Certificate: "p384.combined.pem"}, AlgorithmECDSA, 384, 0},
		{"combined PEM named twice", LoadOptions{Certificate: "p384.combined.pem", PrivateKey: "p384.combined.pem"}, AlgorithmECDSA, 384, 0},
		{"intermediates", LoadOptions{Certificate: "chained.pem", PrivateKey: "chained.key", Intermediates: "intermediates.pem"}, AlgorithmECDSA, 256, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := tt.opts
			opts.Certificate = fixture(opts.Certificate)
			if opts.PrivateKey != "" {
				opts.PrivateKey = fixture(opts.PrivateKey)
			}
			if opts.Intermediates != "" {
				opts.Intermediates = fixture(opts.Intermediates)
			}
			id, err := LoadFiles(opts)
			if err != nil {
				t.Fatal(err)
			}
			if got := id.Algorithm(); got != tt.wantAlg {
				t.Errorf("algorithm %s, want %s", got, tt.wantAlg)
			}
			switch k := id.Signer().Public().(type) {
			case *rsa.PublicKey:
				if k.N.BitLen() != tt.wantBits {
					t.Errorf("RSA %d bits, want %d", k.N.BitLen(), tt.wantBits)
				}
			case *ecdsa.PublicKey:
				if k.Curve.Params().BitSize != tt.wantBits {
					t.Errorf("curve %s, want %d bits", k.Curve.Params().Name, tt.wantBits)
				}
			}
			if len(id.Intermediates) != tt.intermediates {
				t.Errorf("%d intermediates, want %d", len(id.Intermediates), tt.intermediates)
			}
			if _, err := id.Check(fixtureTime); err != nil {
				t.Errorf("Check: %v", err)
			}
		})
	}
}

// TestLoadErrors runs every bad input: each fails with one line that names
// the file and the cause, and never quotes the file.
func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	garbage := write("garbage.pem", "-----BEGIN CERTIFICATE-----\nSECRETSENTINEL!!\n-----END CERTIFICATE-----\n", 0o600)
	garbageDER := write("garbage.der", "SECRETSENTINEL not DER at all", 0o600)
	empty := write("empty.pem", "\n", 0o600)
	unreadable := write("unreadable.key", "x", 0o000)
	keyOnly := fixture("p256.key")
	certOnly := fixture("p256.pem")

	tests := []struct {
		name  string
		opts  LoadOptions
		cause error
		file  string // named in the message
		want  string // also in the message
	}{
		{"missing certificate", LoadOptions{Certificate: filepath.Join(dir, "nope.pem"), PrivateKey: keyOnly}, ErrNotFound, "nope.pem", "does not exist"},
		{"missing key", LoadOptions{Certificate: certOnly, PrivateKey: filepath.Join(dir, "nope.key")}, ErrNotFound, "nope.key", "private key"},
		{"directory", LoadOptions{Certificate: dir, PrivateKey: keyOnly}, nil, dir, "is a directory"},
		{"malformed PEM certificate", LoadOptions{Certificate: garbage, PrivateKey: keyOnly}, ErrMalformed, "garbage.pem", "malformed"},
		{"malformed DER certificate", LoadOptions{Certificate: garbageDER, PrivateKey: keyOnly}, ErrMalformed, "garbage.der", "neither"},
		{"empty certificate", LoadOptions{Certificate: empty, PrivateKey: keyOnly}, ErrMalformed, "empty.pem", "empty"},
		{"malformed key", LoadOptions{Certificate: certOnly, PrivateKey: garbageDER}, ErrMalformed, "garbage.der", "private key"},
		{"certificate given as key", LoadOptions{Certificate: certOnly, PrivateKey: certOnly}, nil, "p256.pem", "no private key"},
		{"key given as certificate", LoadOptions{Certificate: keyOnly, PrivateKey: keyOnly}, ErrMalformed, "p256.key", "no CERTIFICATE"},
		{"malformed intermediates", LoadOptions{Certificate: certOnly, PrivateKey: keyOnly, Intermediates: garbage}, ErrMalformed, "garbage.pem", "intermediates"},
		{"no passphrase", LoadOptions{Certificate: fixture("rsa2048.pem"), PrivateKey: fixture("rsa2048.pbkdf2-aes256.pem")}, ErrPassphraseRequired, "rsa2048.pbkdf2-aes256.pem", "encrypted"},
		{"wrong passphrase", LoadOptions{Certificate: fixture("rsa2048.pem"), PrivateKey: fixture("rsa2048.pbkdf2-aes256.pem"), Passphrase: []byte("wrong")}, ErrWrongPassphrase, "rsa2048.pbkdf2-aes256.pem", "wrong passphrase"},
		{"wrong passphrase scrypt", LoadOptions{Certificate: fixture("p256.pem"), PrivateKey: fixture("p256.scrypt-aes256.pem"), Passphrase: []byte("wrong")}, ErrWrongPassphrase, "p256.scrypt-aes256.pem", "wrong passphrase"},
		{"wrong PKCS#12 passphrase", LoadOptions{Certificate: fixture("rsa2048.p12"), Passphrase: []byte("wrong")}, ErrWrongPassphrase, "rsa2048.p12", "wrong passphrase"},
		{"no PKCS#12 passphrase", LoadOptions{Certificate: fixture("rsa2048.p12")}, ErrPassphraseRequired, "rsa2048.p12", "no passphrase"},
		{"legacy PEM encryption", LoadOptions{Certificate: fixture("rsa2048.pem"), PrivateKey: fixture("rsa2048.legacy-encrypted.pem"), Passphrase: []byte(passphrase)}, ErrLegacyPEMEncryption, "rsa2048.legacy-encrypted.pem", "legacy"},
		{"RSA 1024", LoadOptions{Certificate: fixture("rsa1024.pem"), PrivateKey: fixture("rsa1024.key")}, ErrUnsupportedKey, "rsa1024.key", "RSA 1024 bits"},
		{"Ed25519", LoadOptions{Certificate: fixture("ed25519.pem"), PrivateKey: fixture("ed25519.key")}, ErrUnsupportedKey, "ed25519.key", "Ed25519"},
		{"key missing", LoadOptions{Certificate: certOnly}, nil, "p256.pem", "holds none"},
	}
	if os.Geteuid() != 0 { // root reads anything
		tests = append(tests, struct {
			name  string
			opts  LoadOptions
			cause error
			file  string
			want  string
		}{"unreadable key", LoadOptions{Certificate: certOnly, PrivateKey: unreadable}, ErrPermission, "unreadable.key", "permission denied"})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadFiles(tt.opts)
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			t.Log(msg)
			if tt.cause != nil && !errors.Is(err, tt.cause) {
				t.Errorf("error %q is not %v", msg, tt.cause)
			}
			if !strings.Contains(msg, tt.file) || !strings.Contains(msg, tt.want) {
				t.Errorf("error %q does not name %q and %q", msg, tt.file, tt.want)
			}
			if strings.Contains(msg, "\n") || strings.Contains(msg, "SECRETSENTINEL") || strings.Contains(msg, passphrase) {
				t.Errorf("error %q is not one clean line", msg)
			}
			if c, ok := err.(interface{ Config() bool }); !ok || !c.Config() {
				t.Errorf("error %T is not a configuration error", err)
			}
		})
	}
}

// TestCheck covers the local checks on made-up certificates.
func TestCheck(t *testing.T) {
	root := newCA(t)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), randReader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), randReader)
	now := time.Now().Truncate(time.Second)
	tests := []struct {
		name  string
		tmpl  func(*x509.Certificate)
		key   *ecdsa.PrivateKey
		cause error
		warn  string
	}{
		{"valid", nil, key, nil, ""},
		{"mismatched key", nil, other, ErrKeyMismatch, ""},
		{"expired", func(c *x509.Certificate) { c.NotBefore, c.NotAfter = now.Add(-48*time.Hour), now.Add(-time.Hour) }, key, ErrExpired, ""},
		{"not yet valid", func(c *x509.Certificate) { c.NotBefore, c.NotAfter = now.Add(time.Hour), now.Add(48*time.Hour) }, key, ErrNotYetValid, ""},
		{"expires soon", func(c *x509.Certificate) { c.NotAfter = now.Add(3 * 24 * time.Hour) }, key, nil, "expires in 72h0m0s"},
		{"no digitalSignature", func(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageKeyEncipherment }, key, ErrCannotSign, ""},
		{"CA certificate", func(c *x509.Certificate) { c.IsCA = true; c.KeyUsage |= x509.KeyUsageCertSign }, key, ErrCannotSign, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cert := root.issue(t, &key.PublicKey, tt.tmpl)
			id := &Identity{Certificate: cert, key: tt.key, certPath: "leaf.pem", keyPath: "leaf.key"}
			warns, err := id.Check(now)
			if !errors.Is(err, tt.cause) || (tt.cause == nil) != (err == nil) {
				t.Fatalf("Check: %v, want %v", err, tt.cause)
			}
			if err != nil && !strings.Contains(err.Error(), "leaf.") {
				t.Errorf("error %q names no file", err)
			}
			var got []string
			for _, w := range warns {
				got = append(got, w.String())
			}
			if tt.warn != "" && !strings.Contains(strings.Join(got, "|"), tt.warn) {
				t.Errorf("warnings %q, want one with %q", got, tt.warn)
			}
			if tt.warn == "" && len(got) > 0 {
				t.Errorf("unexpected warnings %q", got)
			}
		})
	}
}

func TestCheckKeyPermissions(t *testing.T) {
	paths := private(t, "p256.pem", "p256.key")
	if err := os.Chmod(paths[1], 0o640); err != nil {
		t.Fatal(err)
	}
	id, err := LoadFiles(LoadOptions{Certificate: paths[0], PrivateKey: paths[1]})
	if err != nil {
		t.Fatal(err)
	}
	warns, err := id.Check(fixtureTime)
	if err != nil || len(warns) != 1 || !strings.Contains(warns[0].Msg, "readable by group or others") || warns[0].Path != paths[1] {
		t.Fatalf("warnings %v, err %v: want one about the key's mode", warns, err)
	}
	if err := os.Chmod(paths[1], 0o600); err != nil {
		t.Fatal(err)
	}
	id, _ = LoadFiles(LoadOptions{Certificate: paths[0], PrivateKey: paths[1]})
	if warns, _ := id.Check(fixtureTime); len(warns) != 0 {
		t.Fatalf("warnings %v for a 0600 key", warns)
	}
}

func TestCheckChainOrder(t *testing.T) {
	id, err := LoadFiles(LoadOptions{Certificate: fixture("chained.pem"), PrivateKey: fixture("chained.key"), Intermediates: fixture("root.pem")})
	if err != nil {
		t.Fatal(err)
	}
	warns, err := id.Check(fixtureTime)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, w := range warns {
		found = found || strings.Contains(w.Msg, "did not issue")
	}
	if !found {
		t.Errorf("warnings %v: want one about a bundle that does not chain", warns)
	}
}

func TestFullChainFileDropsLeaf(t *testing.T) {
	// A "full chain" file: the leaf, then its intermediate; and the same
	// intermediate again in the bundle.
	dir := t.TempDir()
	leaf, _ := os.ReadFile(fixture("chained.pem"))
	inter, _ := os.ReadFile(fixture("intermediate.pem"))
	full := filepath.Join(dir, "fullchain.pem")
	if err := os.WriteFile(full, append(append(leaf, inter...), leaf...), 0o600); err != nil {
		t.Fatal(err)
	}
	id, err := LoadFiles(LoadOptions{Certificate: full, PrivateKey: fixture("chained.key"), Intermediates: fixture("intermediates.pem")})
	if err != nil {
		t.Fatal(err)
	}
	if len(id.Intermediates) != 1 || id.Intermediates[0].Subject.CommonName != "rolesenv test intermediate CA" {
		t.Fatalf("intermediates %d, want just the intermediate CA", len(id.Intermediates))
	}
}

func TestIdentityPrintsNoKey(t *testing.T) {
	id, err := LoadFiles(LoadOptions{Certificate: fixture("rsa2048.pem"), PrivateKey: fixture("rsa2048.key")})
	if err != nil {
		t.Fatal(err)
	}
	d := id.Signer().(*rsa.PrivateKey).D.String()
	for _, s := range []string{sprintf("%v", id), sprintf("%+v", *id), sprintf("%#v", id), sprintf("%s", id)} {
		if strings.Contains(s, d[:20]) || !strings.Contains(s, "rsa2048.test.invalid") {
			t.Errorf("printed identity %q", s)
		}
	}
}
