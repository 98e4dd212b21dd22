package tpmkey_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/rolesenv/rolesenv/internal/tpmkey"
	"github.com/rolesenv/rolesenv/internal/tpmkey/swtpmtest"
)

func digest(s string) []byte {
	d := sha256.Sum256([]byte(s))
	return d[:]
}

// verify checks a PKCS#1 v1.5 or ECDSA signature over digest("message").
func verify(t *testing.T, pub crypto.PublicKey, sig []byte) {
	t.Helper()
	switch pub := pub.(type) {
	case *rsa.PublicKey:
		if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest("message"), sig); err != nil {
			t.Fatalf("PKCS#1 v1.5 signature: %v", err)
		}
	case *ecdsa.PublicKey:
		if !ecdsa.VerifyASN1(pub, digest("message"), sig) {
			t.Fatal("ECDSA signature does not verify")
		}
	default:
		t.Fatalf("public key %T", pub)
	}
}

// TestSign: keys of every kind, under a hierarchy and under a persistent
// parent, with and without a password, sign what their public key
// verifies; RSA keys also sign with PSS.
func TestSign(t *testing.T) {
	tpm := swtpmtest.Start(t)
	for _, kind := range []swtpmtest.Kind{swtpmtest.RSA2048, swtpmtest.ECC256, swtpmtest.ECC384} {
		for _, parent := range []string{"", "0x81000001"} {
			for _, pw := range []string{"", "s3cret pass"} {
				name := fmt.Sprintf("%s-parent%s-pw%v", kind, parent, pw != "")
				t.Run(name, func(t *testing.T) {
					path := tpm.NewKeyFile(t, name, swtpmtest.KeyOptions{Kind: kind, Password: pw, Parent: parent})
					opts := tpmkey.Options{Device: tpm.Socket, NoPassword: pw == ""}
					if pw != "" {
						opts.Password = []byte(pw)
					}
					k, err := tpmkey.Open(path, opts)
					if err != nil {
						t.Fatal(err)
					}
					sig, err := k.Sign(rand.Reader, digest("message"), crypto.SHA256)
					if err != nil {
						t.Fatal(err)
					}
					verify(t, k.Public(), sig)
					if pub, ok := k.Public().(*rsa.PublicKey); ok {
						pss := &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256}
						sig, err := k.Sign(rand.Reader, digest("message"), pss)
						if err != nil {
							t.Fatal(err)
						}
						if err := rsa.VerifyPSS(pub, crypto.SHA256, digest("message"), sig, pss); err != nil {
							t.Fatalf("PSS signature: %v", err)
						}
					}
				})
			}
		}
	}
}

// TestPersistentHandle: a key made persistent is named handle:0x...
func TestPersistentHandle(t *testing.T) {
	tpm := swtpmtest.Start(t)
	tpm.NewPersistentKey(t, "0x81000010", swtpmtest.KeyOptions{Kind: swtpmtest.ECC256, Password: "pw"})
	k, err := tpmkey.Open("handle:0x81000010", tpmkey.Options{Device: tpm.Socket, Password: []byte("pw")})
	if err != nil {
		t.Fatal(err)
	}
	sig, err := k.Sign(nil, digest("message"), crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	verify(t, k.Public(), sig)
	for _, format := range []string{"%v", "%+v", "%#v", "%s", "%x", "%q"} {
		if out := fmt.Sprintf(format, k); contains(out, "pw") || contains(out, "0x70, 0x77") {
			t.Errorf("%s of the key prints the password: %s", format, out)
		}
	}
}

func wantErr(t *testing.T, err, cause error, config bool) {
	t.Helper()
	var e *tpmkey.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T), want a *tpmkey.Error", err, err)
	}
	if !errors.Is(err, cause) {
		t.Errorf("error %q, want cause %q", err, cause)
	}
	if e.Config() != config || e.Unavailable() == config {
		t.Errorf("error %q: Config %v, Unavailable %v; want Config %v", err, e.Config(), e.Unavailable(), config)
	}
	if e.Hint() == "" && cause != tpmkey.ErrUnreachable && cause != tpmkey.ErrUnsupported {
		t.Errorf("error %q has no hint", err)
	}
}

// TestOpenErrors: each way a key cannot be used has its cause, and is a
// configuration problem or an unreachable TPM.
func TestOpenErrors(t *testing.T) {
	tpm := swtpmtest.Start(t)
	withPW := tpm.NewKeyFile(t, "pw", swtpmtest.KeyOptions{Kind: swtpmtest.ECC256, Password: "right"})
	noPW := tpm.NewKeyFile(t, "nopw", swtpmtest.KeyOptions{Kind: swtpmtest.RSA2048})
	dev := tpm.Socket

	_, err := tpmkey.Open(withPW, tpmkey.Options{Device: dev, Password: []byte("wrong")})
	wantErr(t, err, tpmkey.ErrWrongPassword, true)
	if errors.Is(err, tpmkey.ErrWrongPassword) && contains(err.Error(), "wrong") {
		t.Errorf("the error %q quotes the password", err)
	}
	_, err = tpmkey.Open("handle:0x81000099", tpmkey.Options{Device: dev})
	wantErr(t, err, tpmkey.ErrNoKey, true)
	// tpm2_encodeobject without -p records emptyAuth FALSE (tpm2-tools
	// 5.4): the password must be given, or its absence said.
	if _, err := tpmkey.Open(noPW, tpmkey.Options{Device: dev}); !errors.Is(err, tpmkey.ErrPasswordRequired) {
		if err == nil || !errors.Is(err, tpmkey.ErrWrongPassword) {
			t.Errorf("key without emptyAuth, no password given: %v", err)
		}
	}
	_, err = tpmkey.Open(noPW, tpmkey.Options{Device: tpm.Path("nothing"), NoPassword: true})
	wantErr(t, err, tpmkey.ErrNoDevice, true)
	_, err = tpmkey.Open("handle:0x80000001", tpmkey.Options{Device: dev})
	wantErr(t, err, tpmkey.ErrUnsupported, true)

	tpm.Stop()
	_, err = tpmkey.Open("handle:0x81000001", tpmkey.Options{Device: dev})
	wantErr(t, err, tpmkey.ErrUnreachable, false)
}

func contains(s, sub string) bool { return len(sub) > 0 && len(s) >= len(sub) && indexOf(s, sub) >= 0 }

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

// TestTPMGoesAway: a key opened while the TPM ran fails to sign, as
// unreachable, while the TPM is down, and signs again once it is back,
// with no new Open.
func TestTPMGoesAway(t *testing.T) {
	tpm := swtpmtest.Start(t)
	path := tpm.NewKeyFile(t, "k", swtpmtest.KeyOptions{Kind: swtpmtest.ECC256, Parent: "0x81000001"})
	tpm.NewPersistentKey(t, "0x81000020", swtpmtest.KeyOptions{Kind: swtpmtest.RSA2048})
	var keys []*tpmkey.Key
	for _, ref := range []string{path, "handle:0x81000020"} {
		k, err := tpmkey.Open(ref, tpmkey.Options{Device: tpm.Socket, NoPassword: true})
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	tpm.Stop()
	for _, k := range keys {
		_, err := k.Sign(nil, digest("message"), crypto.SHA256)
		wantErr(t, err, tpmkey.ErrUnreachable, false)
	}
	tpm.Restart(t)
	for _, k := range keys {
		sig, err := k.Sign(nil, digest("message"), crypto.SHA256)
		if err != nil {
			t.Fatalf("after the restart: %v", err)
		}
		verify(t, k.Public(), sig)
	}
}

// TestConcurrentSigners: keys used at once from several goroutines, each
// opening the TPM per signature, all sign: on a TPM without a resource
// manager (swtpm's socket), the uses of one process take turns, so they
// cannot keep each other out of its few object slots.
func TestConcurrentSigners(t *testing.T) {
	tpm := swtpmtest.Start(t)
	path := tpm.NewKeyFile(t, "k", swtpmtest.KeyOptions{Kind: swtpmtest.ECC256})
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for range 4 {
		k, err := tpmkey.Open(path, tpmkey.Options{Device: tpm.Socket, NoPassword: true})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				sig, err := k.Sign(nil, digest("message"), crypto.SHA256)
				if err == nil && !ecdsa.VerifyASN1(k.Public().(*ecdsa.PublicKey), digest("message"), sig) {
					err = errors.New("bad signature")
				}
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestLockoutIsTemporary: a dictionary-attack lockout ends by itself, so
// it classifies as unavailable (tried again later), not as configuration.
func TestLockoutIsTemporary(t *testing.T) {
	e := &tpmkey.Error{Key: "k.pem", Device: "/dev/tpmrm0", Op: "sign", Err: tpmkey.ErrLockout}
	if !e.Unavailable() || e.Config() {
		t.Errorf("lockout: unavailable %v, config %v; want true, false", e.Unavailable(), e.Config())
	}
	w := &tpmkey.Error{Key: "k.pem", Device: "/dev/tpmrm0", Op: "sign", Err: tpmkey.ErrWrongPassword}
	if w.Unavailable() || !w.Config() {
		t.Errorf("wrong password: unavailable %v, config %v; want false, true", w.Unavailable(), w.Config())
	}
}
