package pkcs11key_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/rolesenv/rolesenv/internal/devpki"
	"github.com/rolesenv/rolesenv/internal/pkcs11key"
	"github.com/rolesenv/rolesenv/internal/pkcs11key/softhsmtest"
)

const pin = "1234"

// hsm makes an HSM with one token "t1" holding an EC and an RSA key, and
// points this process's SoftHSM at it (tests that use it do not run in
// parallel: the module reads SOFTHSM2_CONF when it is initialised).
func hsm(t *testing.T) *softhsmtest.HSM {
	t.Helper()
	h := softhsmtest.Start(t)
	t.Setenv("SOFTHSM2_CONF", h.Conf)
	h.NewToken(t, "t1", pin)
	h.NewKey(t, "t1", pin, "EC:prime256v1", "ec key", "01")
	h.NewKey(t, "t1", pin, "rsa:2048", "rsa key", "02")
	return h
}

func opts() pkcs11key.Options {
	return pkcs11key.Options{Module: softhsmtest.Module, PIN: []byte(pin)}
}

func TestSign(t *testing.T) {
	hsm(t)
	digest := sha256.Sum256([]byte("string to sign"))
	for _, c := range []struct {
		uri  string
		opts crypto.SignerOpts
	}{
		{"pkcs11:token=t1;object=ec%20key", crypto.SHA256},
		{"pkcs11:token=t1;id=%02;type=private", crypto.SHA256},
		{"pkcs11:model=SoftHSM%20v2;object=rsa%20key", &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256}},
	} {
		k, err := pkcs11key.Open(c.uri, opts())
		if err != nil {
			t.Fatalf("%s: %v", c.uri, err)
		}
		sig, err := k.Sign(rand.Reader, digest[:], c.opts)
		if err != nil {
			t.Fatalf("%s: sign: %v", c.uri, err)
		}
		switch pub := k.Public().(type) {
		case *ecdsa.PublicKey:
			if !ecdsa.VerifyASN1(pub, digest[:], sig) {
				t.Errorf("%s: the ECDSA signature does not verify", c.uri)
			}
		case *rsa.PublicKey:
			if pss, ok := c.opts.(*rsa.PSSOptions); ok {
				err = rsa.VerifyPSS(pub, crypto.SHA256, digest[:], sig, pss)
			} else {
				err = rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig)
			}
			if err != nil {
				t.Errorf("%s: the RSA signature does not verify: %v", c.uri, err)
			}
		}
		if s := fmt.Sprintf("%v %+v %#v %s", k, k, k, k); strings.Contains(s, pin) || !strings.Contains(s, "t1") {
			t.Errorf("the key prints as %q", s)
		}
		k.Close()
	}
}

func TestOpenErrors(t *testing.T) {
	h := hsm(t)
	h.NewKey(t, "t1", pin, "EC:prime256v1", "twin", "03")
	h.NewKey(t, "t1", pin, "EC:prime256v1", "twin", "04")
	other, err := devpki.NewCA(devpki.Options{CommonName: "unrelated"})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		uri  string
		o    func(*pkcs11key.Options)
		want error
		text string
	}{
		{"pkcs11:token=t1;object=nothing", nil, pkcs11key.ErrNoObject, ""},
		{"pkcs11:token=t1;object=twin", nil, pkcs11key.ErrAmbiguous, "id=%03"},
		{"pkcs11:token=t1;object=ec%20key", func(o *pkcs11key.Options) { o.PIN = nil }, pkcs11key.ErrPINRequired, ""},
		{"pkcs11:token=t1;object=ec%20key", func(o *pkcs11key.Options) { o.PIN = []byte{} }, pkcs11key.ErrPINRequired, ""},
		{"pkcs11:token=t1;object=ec%20key", func(o *pkcs11key.Options) { o.Public = other.Key.Public() }, pkcs11key.ErrMismatch, ""},
		{"pkcs11:token=t1;object=ec%20key", func(o *pkcs11key.Options) { o.Module = "/nonexistent/module.so" }, pkcs11key.ErrNoModule, ""},
		{"pkcs11:token=t1;bogus=1", nil, pkcs11key.ErrBadURI, ""},
		// A PIN in the path (refused) or the query (not used) is never
		// quoted.
		{"pkcs11:token=t1;object=ec%20key;pin-value=SENTINEL", nil, pkcs11key.ErrBadURI, "object=ec%20key"},
		{"pkcs11:token=t1;SENTINEL", nil, pkcs11key.ErrBadURI, ""},
		{"pkcs11:token=t1;object=nothing?pin-value=SENTINEL", nil, pkcs11key.ErrNoObject, "object=nothing"},
		{"pkcs11:token=t1;object=ec%20key", func(o *pkcs11key.Options) { o.PIN = []byte("SENTINEL") }, pkcs11key.ErrWrongPIN, ""},
	}
	for _, c := range cases {
		o := opts()
		if c.o != nil {
			c.o(&o)
		}
		k, err := pkcs11key.Open(c.uri, o)
		if err == nil {
			k.Close()
			t.Errorf("%s: opened", c.uri)
			continue
		}
		var pe *pkcs11key.Error
		if !errors.Is(err, c.want) || !errors.As(err, &pe) || !pe.Config() {
			t.Errorf("%s: %v; want %v, a configuration error", c.uri, err, c.want)
		}
		if !strings.Contains(err.Error(), c.text) || strings.Contains(err.Error(), "SENTINEL") {
			t.Errorf("%s: message %q", c.uri, err)
		}
	}
}

// TestNoToken: a URI that names no token present is unavailable (the
// token may be plugged in later), not a configuration error.
func TestNoToken(t *testing.T) {
	hsm(t)
	_, err := pkcs11key.Open("pkcs11:token=t2", opts())
	var pe *pkcs11key.Error
	if !errors.Is(err, pkcs11key.ErrNoToken) || !errors.As(err, &pe) || !pe.Unavailable() || pe.Config() {
		t.Fatalf("%v; want ErrNoToken, unavailable", err)
	}
}

// TestTwoTokens: with two tokens of different PINs and a URI that names
// neither, the PIN goes to the token that holds the key only; when both
// hold a key the URI names, no PIN is sent and the error lists the
// tokens.
func TestTwoTokens(t *testing.T) {
	h := hsm(t)
	h.NewToken(t, "t2", "9999")
	h.NewKey(t, "t2", "9999", "EC:prime256v1", "t2 key", "01")
	logins, restore := pkcs11key.CountLogins()
	defer restore()
	k, err := pkcs11key.Open("pkcs11:object=ec%20key", opts())
	if err != nil {
		t.Fatalf("the key on t1: %v", err)
	}
	if tok := k.Object().Token.Label; tok != "t1" {
		t.Errorf("the key is on %s", tok)
	}
	k.Close()
	before := logins()
	_, err = pkcs11key.Open("pkcs11:id=%01", opts()) // "ec key" on t1, "t2 key" on t2
	var pe *pkcs11key.Error
	if !errors.Is(err, pkcs11key.ErrAmbiguous) || !errors.As(err, &pe) || !pe.Config() ||
		!strings.Contains(err.Error(), "token=t1") || !strings.Contains(err.Error(), "token=t2") {
		t.Fatalf("a key on each token: %v", err)
	}
	if n := logins() - before; n != 0 {
		t.Errorf("%d logins, want none", n)
	}
	k, err = pkcs11key.Open("pkcs11:token=t1;id=%01", opts())
	if err != nil {
		t.Fatalf("the key on t1, by token: %v", err)
	}
	k.Close()
}

// TestRestartStaleHandles: after the module starts again, each key opens
// a session and finds its object again, even when the module hands out
// the old handle numbers to another key: every signature verifies with
// its own key.
func TestRestartStaleHandles(t *testing.T) {
	hsm(t)
	var keys []*pkcs11key.Key
	for _, uri := range []string{"pkcs11:token=t1;object=ec%20key", "pkcs11:token=t1;object=rsa%20key"} {
		k, err := pkcs11key.Open(uri, opts())
		if err != nil {
			t.Fatal(err)
		}
		defer k.Close()
		keys = append(keys, k)
	}
	d := sha256.Sum256([]byte("after a restart"))
	sessions, restore := pkcs11key.CountSessions()
	defer restore()
	for round := range 2 {
		pkcs11key.Restart(keys[0])
		before := sessions()
		for i := range 2 * len(keys) {
			k := keys[(i+round)%2] // each key first once
			sig, err := k.Sign(nil, d[:], crypto.SHA256)
			if err != nil {
				t.Fatalf("round %d, %v: %v", round, k, err)
			}
			switch pub := k.Public().(type) {
			case *ecdsa.PublicKey:
				err = nil
				if !ecdsa.VerifyASN1(pub, d[:], sig) {
					err = errors.New("does not verify")
				}
			case *rsa.PublicKey:
				err = rsa.VerifyPKCS1v15(pub, crypto.SHA256, d[:], sig)
			}
			if err != nil {
				t.Errorf("round %d, %v: the signature %v", round, k, err)
			}
		}
		// One new session per key: none closed another key's session.
		if n := sessions() - before; n != len(keys) {
			t.Errorf("round %d: %d sessions opened, want %d", round, n, len(keys))
		}
	}
}

// TestLockedPIN: a PIN the token refuses is sent once, whatever asks
// for it later (the key after a lost session, another Open); a PIN the
// token reports locked gives ErrPINLocked with its hint (SoftHSM has no
// retry counter: C_Login's answers are the test's).
func TestLockedPIN(t *testing.T) {
	hsm(t)
	k, err := pkcs11key.Open("pkcs11:token=t1;object=ec%20key", opts())
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	tries, restore := pkcs11key.LockAfter(1)
	defer restore()
	pkcs11key.Restart(k) // the session is lost: the next signature logs in again
	d := sha256.Sum256([]byte("x"))
	for i := range 2 {
		if _, err := k.Sign(nil, d[:], crypto.SHA256); !errors.Is(err, pkcs11key.ErrWrongPIN) {
			t.Fatalf("signature %d: %v", i, err)
		}
	}
	if _, err := pkcs11key.Open("pkcs11:token=t1;object=rsa%20key", opts()); !errors.Is(err, pkcs11key.ErrWrongPIN) {
		t.Fatalf("open with the refused PIN: %v", err)
	}
	if n := tries(); n != 1 {
		t.Errorf("%d logins with the refused PIN, want 1", n)
	}
	o := opts()
	o.PIN = []byte("another")
	_, err = pkcs11key.Open("pkcs11:token=t1;object=rsa%20key", o)
	var pe *pkcs11key.Error
	if !errors.Is(err, pkcs11key.ErrPINLocked) || !errors.As(err, &pe) || !pe.Config() || !strings.Contains(pe.Hint(), "unblock") {
		t.Fatalf("locked: %v", err)
	}
	if n := tries(); n != 2 {
		t.Errorf("%d logins, want 2", n)
	}
}

func TestCertificatesAndList(t *testing.T) {
	h := hsm(t)
	k, err := pkcs11key.Open("pkcs11:token=t1;object=ec%20key", opts())
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	ca, err := devpki.NewCA(devpki.Options{CommonName: "token CA"})
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Leaf(devpki.Options{CommonName: "token leaf", Key: k})
	if err != nil {
		t.Fatal(err)
	}
	h.WriteCertificate(t, "t1", pin, leaf.Cert.Raw, "ec key", "01")
	c, err := pkcs11key.Certificate("pkcs11:token=t1;id=%01", pkcs11key.Options{Module: softhsmtest.Module})
	if err != nil {
		t.Fatal(err)
	}
	if string(c.Certificate) != string(leaf.Cert.Raw) || c.Label != "ec key" {
		t.Errorf("the certificate read back differs: %q", c.Label)
	}
	ls, err := pkcs11key.List("pkcs11:", opts())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range ls {
		for _, o := range l.Objects {
			got = append(got, o.Class+" "+o.Label)
		}
	}
	want := "cert ec key|private ec key|private rsa key|public ec key|public rsa key"
	if g := strings.Join(sortStrings(got), "|"); g != want {
		t.Errorf("listed %s, want %s", g, want)
	}
}

// TestConcurrentSign: signatures from many goroutines take turns on the
// key's session and all verify.
func TestConcurrentSign(t *testing.T) {
	hsm(t)
	k, err := pkcs11key.Open("pkcs11:object=ec%20key", opts())
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := sha256.Sum256([]byte{byte(i)})
			sig, err := k.Sign(nil, d[:], crypto.SHA256)
			if err == nil && !ecdsa.VerifyASN1(k.Public().(*ecdsa.PublicKey), d[:], sig) {
				err = errors.New("a signature does not verify")
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

func sortStrings(s []string) []string {
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s
}

// TestTokenRemoved: a token that goes away (its SoftHSM files moved
// out) makes Sign fail with ErrTokenGone, which is Unavailable; once it
// is back, the next Sign opens a session again and signs.
func TestTokenRemoved(t *testing.T) {
	h := hsm(t)
	k, err := pkcs11key.Open("pkcs11:token=t1;object=ec%20key", opts())
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	d := sha256.Sum256([]byte("x"))
	ents, err := os.ReadDir(h.TokenDir())
	if err != nil || len(ents) != 1 {
		t.Fatalf("token directory: %v %v", ents, err)
	}
	src, away := filepath.Join(h.TokenDir(), ents[0].Name()), filepath.Join(t.TempDir(), "away")
	if err := os.Rename(src, away); err != nil {
		t.Fatal(err)
	}
	_, err = k.Sign(nil, d[:], crypto.SHA256)
	var pe *pkcs11key.Error
	if !errors.Is(err, pkcs11key.ErrTokenGone) || !errors.As(err, &pe) || !pe.Unavailable() || pe.Config() {
		t.Fatalf("sign without the token: %v", err)
	}
	if err := os.Rename(away, src); err != nil {
		t.Fatal(err)
	}
	sig, err := k.Sign(nil, d[:], crypto.SHA256)
	if err != nil || !ecdsa.VerifyASN1(k.Public().(*ecdsa.PublicKey), d[:], sig) {
		t.Fatalf("sign with the token back: %v", err)
	}
}

// TestAlwaysAuthenticate: a key that asks for the PIN before each
// signature (CKA_ALWAYS_AUTHENTICATE, as PIV's) signs with ReusePIN, and
// without it fails with ErrContextPIN, a configuration error.
func TestAlwaysAuthenticate(t *testing.T) {
	h := hsm(t)
	h.Run(t, "--token-label", "t1", "--login", "--pin", pin, "--keypairgen", "--key-type", "EC:prime256v1",
		"--label", "piv", "--id", "09", "--always-auth")
	_, err := pkcs11key.Open("pkcs11:object=piv", opts())
	var pe *pkcs11key.Error
	if !errors.Is(err, pkcs11key.ErrContextPIN) || !errors.As(err, &pe) || !pe.Config() {
		t.Fatalf("without ReusePIN: %v", err)
	}
	o := opts()
	o.ReusePIN = true
	k, err := pkcs11key.Open("pkcs11:object=piv", o)
	if err != nil {
		t.Fatalf("with ReusePIN: %v", err)
	}
	defer k.Close()
	for range 3 { // a login before each signature
		d := sha256.Sum256([]byte("x"))
		sig, err := k.Sign(nil, d[:], crypto.SHA256)
		if err != nil || !ecdsa.VerifyASN1(k.Public().(*ecdsa.PublicKey), d[:], sig) {
			t.Fatalf("sign: %v", err)
		}
	}
}

// TestFailedContextLogin: a context-specific login that fails between
// C_SignInit and C_Sign leaves no operation active: the next signature
// signs (not CKR_OPERATION_ACTIVE).
func TestFailedContextLogin(t *testing.T) {
	h := hsm(t)
	h.Run(t, "--token-label", "t1", "--login", "--pin", pin, "--keypairgen", "--key-type", "EC:prime256v1",
		"--label", "piv", "--id", "09", "--always-auth")
	o := opts()
	o.ReusePIN = true
	k, err := pkcs11key.Open("pkcs11:object=piv", o)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	restore := pkcs11key.FailContextLoginOnce()
	defer restore()
	d := sha256.Sum256([]byte("x"))
	if _, err := k.Sign(nil, d[:], crypto.SHA256); err == nil {
		t.Fatal("signed despite the failed login")
	}
	sig, err := k.Sign(nil, d[:], crypto.SHA256)
	if err != nil || !ecdsa.VerifyASN1(k.Public().(*ecdsa.PublicKey), d[:], sig) {
		t.Fatalf("the next signature: %v", err)
	}
}

// TestKeyTypeMismatch: an EC key whose public half the token does not
// show is refused for a certificate with an RSA key (ErrMismatch), and
// signs for one with its own EC key, by ECDSA.
func TestKeyTypeMismatch(t *testing.T) {
	h := hsm(t)
	h.NewKey(t, "t1", pin, "EC:prime256v1", "bare", "0e")
	k, err := pkcs11key.Open("pkcs11:token=t1;object=bare", opts())
	if err != nil {
		t.Fatal(err)
	}
	ecPub := k.Public()
	k.Close()
	h.Run(t, "--token-label", "t1", "--login", "--pin", pin, "--delete-object", "--type", "pubkey", "--id", "0e")
	rsaKey, err := pkcs11key.Open("pkcs11:token=t1;object=rsa%20key", opts())
	if err != nil {
		t.Fatal(err)
	}
	rsaPub := rsaKey.Public()
	rsaKey.Close()
	o := opts()
	o.Public = rsaPub
	if _, err := pkcs11key.Open("pkcs11:token=t1;object=bare", o); !errors.Is(err, pkcs11key.ErrMismatch) {
		t.Errorf("an RSA certificate for an EC key: %v", err)
	}
	o.Public = ecPub
	k, err = pkcs11key.Open("pkcs11:token=t1;object=bare", o)
	if err != nil {
		t.Fatalf("its own certificate: %v", err)
	}
	k.Close()
}

// TestFinalTry: a token that reports one PIN try left is not sent the
// PIN: ErrPINFinalTry, a configuration error, and no login.
func TestFinalTry(t *testing.T) {
	hsm(t)
	logins, restoreLogins := pkcs11key.CountLogins()
	defer restoreLogins()
	restore := pkcs11key.FinalTry()
	defer restore()
	_, err := pkcs11key.Open("pkcs11:token=t1;object=ec%20key", opts())
	var pe *pkcs11key.Error
	if !errors.Is(err, pkcs11key.ErrPINFinalTry) || !errors.As(err, &pe) || !pe.Config() || pe.Hint() == "" {
		t.Fatalf("%v; want ErrPINFinalTry with a hint", err)
	}
	if n := logins(); n != 0 {
		t.Errorf("%d logins, want none", n)
	}
}
