//go:build pkcs11

package main

import (
	"crypto"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rolesenv/rolesenv/internal/awsdev"
	"github.com/rolesenv/rolesenv/internal/devpki"
	"github.com/rolesenv/rolesenv/internal/exitcode"
	"github.com/rolesenv/rolesenv/internal/pkcs11key/softhsmtest"
	"github.com/rolesenv/rolesenv/internal/testenv"
)

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

const tokenPIN = "SNTL-pin-4321" // distinctive: a short one can turn up in a port number or a path

// publicOnly is a key of which a test knows only the public half: the
// CA needs no more to issue a certificate for a key on a token.
type publicOnly struct{ pub crypto.PublicKey }

func (p publicOnly) Public() crypto.PublicKey { return p.pub }
func (p publicOnly) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	panic("the key is on the token")
}

// p11 is a SoftHSM token with keys, and the emulator that trusts the
// CA of their certificates.
type p11 struct {
	e      *raEmulator
	h      *softhsmtest.HSM
	ca     *devpki.Cert
	anchor string
}

func newP11(t *testing.T) *p11 {
	t.Helper()
	h := softhsmtest.Start(t)
	h.NewToken(t, "rolesenv", tokenPIN)
	e := newRAEmulator(t)
	ca, err := devpki.NewCA(devpki.Options{CommonName: "token CA"})
	if err != nil {
		t.Fatal(err)
	}
	return &p11{e: e, h: h, ca: ca, anchor: e.CreateTrustAnchor(ca.Cert, awsdev.TrustAnchorOptions{})}
}

// key makes a key pair on the token (keygen: more pkcs11-tool flags)
// and a certificate for it, issued by
// the test CA from the public key pkcs11-tool reads back; with onToken,
// the certificate is written to the token too. It returns the
// certificate file.
func (p *p11) key(t *testing.T, kind, label, id string, onToken bool, keygen ...string) string {
	t.Helper()
	return p.keyFrom(t, p.ca, kind, label, id, onToken, keygen...)
}

// keyFrom is key with the certificate issued by ca.
func (p *p11) keyFrom(t *testing.T, ca *devpki.Cert, kind, label, id string, onToken bool, keygen ...string) string {
	t.Helper()
	p.h.Run(t, append([]string{"--token-label", "rolesenv", "--login", "--pin", tokenPIN, "--keypairgen",
		"--key-type", kind, "--label", label, "--id", id}, keygen...)...)
	der := filepath.Join(p.e.dir, id+".pub")
	p.h.Run(t, "--token-label", "rolesenv", "--read-object", "--type", "pubkey", "--id", id, "--output-file", der)
	data, err := os.ReadFile(der)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.ParsePKIXPublicKey(data)
	if err != nil {
		t.Fatalf("the token's public key: %v", err)
	}
	leaf, err := ca.Leaf(devpki.Options{CommonName: label, Key: publicOnly{pub}})
	if err != nil {
		t.Fatal(err)
	}
	if onToken {
		p.h.WriteCertificate(t, "rolesenv", tokenPIN, leaf.Cert.Raw, label, id)
	}
	path := filepath.Join(p.e.dir, id+".crt")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Cert.Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// env is the environment of a rolesenv that uses the token.
func (p *p11) env(extra ...string) []string {
	return append(append(p.e.runEnv(), p.h.Env()...), extra...)
}

// args are the credential flags; cert and key may be files or URIs.
func (p *p11) args(cert, key string, extra ...string) []string {
	a := []string{"--certificate", cert, "--pkcs11-lib", softhsmtest.Module,
		"--trust-anchor-arn", p.anchor, "--profile-arn", p.e.profile, "--role-arn", p.e.role, "--endpoint", p.e.URL()}
	if key != "" {
		a = append(a, "--private-key", key)
	}
	return append(a, extra...)
}

// runP11 runs rolesenv as a process with env and returns its exit code
// and output.
func runP11(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := rolesenvCmd(t, env, args...)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	code := exitCode(t, cmd)
	return code, out.String(), errOut.String()
}

// TestPKCS11CredentialProcess: EC and RSA keys on a token sign
// CreateSession (verified by the emulator), with the certificate from a
// file or from the token, the PIN from the environment or a file, and
// the official helper's URI forms as its README writes them.
func TestPKCS11CredentialProcess(t *testing.T) {
	t.Parallel()
	p := newP11(t)
	ecCert := p.key(t, "EC:prime256v1", "My RA key", "01", true)
	rsaCert := p.key(t, "rsa:2048", "rsa key", "02", false)
	pivCert := p.key(t, "EC:prime256v1", "piv key", "03", false, "--always-auth")
	pinFile := writeSecretFile(t, p.e.dir, "pin", tokenPIN)
	pinEnv := pkcs11PINEnv + "=" + tokenPIN
	cases := []struct {
		name      string
		cert, key string
		env       []string
		extra     []string
	}{
		{"EC key, certificate file", ecCert, "pkcs11:token=rolesenv;object=My%20RA%20key", []string{pinEnv}, nil},
		{"EC, both on the token (helper's object= form)", "pkcs11:object=My%20RA%20key", "", []string{pinEnv}, nil},
		{"EC, helper's model= form, PIN file", ecCert, "pkcs11:model=SoftHSM%20v2;object=My%20RA%20key", nil, []string{"--pkcs11-pin-file", pinFile}},
		{"EC, pin-source in the URI", ecCert, "pkcs11:id=%01;type=private?pin-source=file:" + pinFile, nil, nil},
		{"RSA key, certificate file", rsaCert, "pkcs11:token=rolesenv;id=%02", []string{pinEnv}, nil},
		{"PIV-like key, --reuse-pin", pivCert, "pkcs11:object=piv%20key", []string{pinEnv}, []string{"--reuse-pin"}},
	}
	// A leaf issued by an intermediate CA that is on the token too.
	inter, err := p.ca.Intermediate(devpki.Options{CommonName: "token intermediate"})
	if err != nil {
		t.Fatal(err)
	}
	p.h.WriteCertificate(t, "rolesenv", tokenPIN, inter.Cert.Raw, "intermediate", "a1")
	p.keyFrom(t, inter, "EC:prime256v1", "chained", "04", true)
	cases = append(cases, struct {
		name      string
		cert, key string
		env       []string
		extra     []string
	}{"EC, leaf, key and intermediate on the token", "pkcs11:object=chained;type=cert", "", []string{pinEnv},
		[]string{"--intermediates", "pkcs11:object=intermediate;type=cert"}})
	for _, c := range cases {
		before := p.e.Calls(opCreateSession)
		code, stdout, stderr := runP11(t, p.env(c.env...), append([]string{"credential-process"}, p.args(c.cert, c.key, c.extra...)...)...)
		if code != 0 {
			t.Errorf("%s: exit %d: %s", c.name, code, stderr)
			continue
		}
		var out map[string]any
		if err := json.Unmarshal([]byte(stdout), &out); err != nil || out["AccessKeyId"] == "" {
			t.Errorf("%s: output %q: %v", c.name, stdout, err)
		}
		if strings.Contains(stdout+stderr, tokenPIN) {
			t.Errorf("%s: the PIN was printed", c.name)
		}
		if n := p.e.Calls(opCreateSession) - before; n != 1 {
			t.Errorf("%s: %d CreateSession calls, want 1", c.name, n)
		}
	}
	// Without the intermediate from the token, the chain does not verify.
	code, _, stderr := runP11(t, p.env(pinEnv), append([]string{"credential-process"}, p.args("pkcs11:object=chained;type=cert", "")...)...)
	if code == 0 {
		t.Errorf("the chained leaf without its intermediate got credentials: %s", stderr)
	}
}

// TestPKCS11Errors: each way a token key cannot be used exits with its
// code and says why, before any request, never printing the PIN.
func TestPKCS11Errors(t *testing.T) {
	t.Parallel()
	p := newP11(t)
	cert := p.key(t, "EC:prime256v1", "k", "01", false)
	p.key(t, "EC:prime256v1", "twin", "0a", true)
	p.key(t, "EC:prime256v1", "twin", "0b", true)
	other := p.key(t, "EC:prime256v1", "other", "0c", false)
	piv := p.key(t, "EC:prime256v1", "piv", "0d", false, "--always-auth")
	const wrong = "SENTINEL-9999"
	right, bad := pkcs11PINEnv+"="+tokenPIN, pkcs11PINEnv+"="+wrong
	cases := []struct {
		name      string
		cert, key string
		env       string
		extra     []string
		code      int
		want      []string
	}{
		{"missing object", cert, "pkcs11:object=nothing", right, nil, exitcode.Config, []string{"no object matches"}},
		{"several keys, none of the certificate", other, "pkcs11:object=twin", right, nil, exitcode.Config,
			[]string{"does not match the certificate"}},
		{"ambiguous, listed", "pkcs11:token=rolesenv;object=twin", "", right, nil, exitcode.Config,
			[]string{"more than one object", "id=%0a", "id=%0b", "object=twin", "rolesenv: hint: add the object's label"}},
		{"wrong PIN", cert, "pkcs11:object=k", bad, nil, exitcode.Config, []string{"refused the PIN", "ROLESENV_PKCS11_PIN"}},
		{"no PIN", cert, "pkcs11:object=k", "", nil, exitcode.Config, []string{"needs a PIN"}},
		{"key of another certificate", other, "pkcs11:object=k", right, nil, exitcode.Config, []string{"does not match the certificate"}},
		{"pin-value in the URI", cert, "pkcs11:object=k?pin-value=" + wrong, right, nil, exitcode.Usage, []string{"pin-value", "ROLESENV_PKCS11_PIN"}},
		{"pin-value in the path", cert, "pkcs11:object=k;pin-value=" + wrong, right, nil, exitcode.Usage, []string{"pin-value", "ROLESENV_PKCS11_PIN"}},
		{"pin-value in the certificate's path", "pkcs11:object=k;pin-value=" + wrong, "", right, nil, exitcode.Usage, []string{"--certificate: a pin-value"}},
		{"pin-value, its name encoded", cert, "pkcs11:object=k;pin%2Dvalue=" + wrong, right, nil, exitcode.Usage, []string{"pin-value"}},
		{"--pkcs11-pin", cert, "pkcs11:object=k", "", []string{"--pkcs11-pin", wrong}, exitcode.Usage, []string{"--pkcs11-pin is refused"}},
		{"no module", cert, "pkcs11:object=k", right, []string{"--pkcs11-lib", "/nonexistent/p11.so"}, exitcode.Config, []string{"cannot be loaded"}},
		{"PIV-like key without --reuse-pin", piv, "pkcs11:object=piv", right, nil, exitcode.Config,
			[]string{"asks for the PIN again", "rolesenv: hint: --reuse-pin"}},
		{"PIN in the environment and a file", cert, "pkcs11:object=k", right, []string{"--pkcs11-pin-file", writeSecretFile(t, p.e.dir, "pin", tokenPIN)},
			exitcode.Usage, []string{"set only one of them"}},
		{"pin-source and --pkcs11-pin-file", cert, "pkcs11:object=k?pin-source=file:/elsewhere", "", []string{"--pkcs11-pin-file", writeSecretFile(t, p.e.dir, "pin2", tokenPIN)},
			exitcode.Usage, []string{"two PIN files"}},
		{"pin-source not a file", cert, "pkcs11:object=k?pin-source=|/bin/echo%20x", "", nil, exitcode.Usage, []string{"must be a file"}},
		{"empty PIN file", cert, "pkcs11:object=k", "", []string{"--pkcs11-pin-file", writeSecretFile(t, p.e.dir, "empty", "")},
			exitcode.Config, []string{"is empty"}},
		{"helper's PIV form, no such token: unavailable", cert, "pkcs11:manufacturer=piv_II;id=%01", right, nil, exitcode.Unavailable, []string{"no token matches"}},
	}
	for _, c := range cases {
		for _, cmd := range []string{"credential-process", "check"} {
			before := p.e.Calls(opCreateSession)
			code, stdout, stderr := runP11(t, p.env(c.env), append([]string{cmd}, p.args(c.cert, c.key, c.extra...)...)...)
			out := stdout + stderr
			if cmd == "check" {
				// check reports the failure among its rows (refused flags
				// exit 64 before any).
				if code == 0 || !strings.Contains(out, c.want[0]) {
					t.Errorf("%s, check: exit %d\n%s", c.name, code, out)
				}
			} else if code != c.code || !containsAll(out, c.want) {
				t.Errorf("%s, %s: exit %d, want %d and %q:\n%s", c.name, cmd, code, c.code, c.want, out)
			}
			if n := strings.Count(out, "rolesenv: hint:"); cmd != "check" && n > 1 {
				t.Errorf("%s, %s: %d hints, want one at most:\n%s", c.name, cmd, n, out)
			}
			if strings.Contains(out, wrong) || strings.Contains(out, tokenPIN) {
				t.Errorf("%s, %s: a PIN reached the output", c.name, cmd)
			}
			if n := p.e.Calls(opCreateSession) - before; n != 0 {
				t.Errorf("%s, %s: %d CreateSession calls, want none", c.name, cmd, n)
			}
		}
	}
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// TestPKCS11CheckAndList: check names the key's token and object and
// passes; render takes the same flags; pkcs11-list shows each object with a URI, private keys only
// after a login.
func TestPKCS11CheckAndList(t *testing.T) {
	t.Parallel()
	p := newP11(t)
	p.key(t, "EC:prime256v1", "listed key", "07", true)
	env := p.env(pkcs11PINEnv + "=" + tokenPIN)
	code, stdout, stderr := runP11(t, env, append([]string{"check", "--debug"}, p.args("pkcs11:object=listed%20key;type=cert", "")...)...)
	if code != 0 || !containsAll(stdout, []string{"PKCS#11 key", `"listed key"`, "rolesenv", "key matches certificate"}) {
		t.Errorf("check: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if n := strings.Count(stdout+stderr, "PKCS#11 key opened"); n != 1 {
		t.Errorf("check opened the key %d times, want once:\n%s", n, stderr)
	}
	code, stdout, stderr = runP11(t, env, "pkcs11-list", "--pkcs11-lib", softhsmtest.Module)
	if code != 0 || !containsAll(stdout, []string{"cert ", "private ", "pkcs11:", "id=%07", "subject CN=listed key"}) {
		t.Errorf("pkcs11-list: exit %d\n%s\n%s", code, stdout, stderr)
	}
	mustDo[string](t)(p.e.CreateSecret("p11/api", "api-1"))
	code, stdout, stderr = runP11(t, append(env, "AWS_ENDPOINT_URL="+p.e.URL()), append([]string{"render", "--reveal",
		"--env-file", writeEnvFile(t, "API=sm://p11/api\n")}, p.args("pkcs11:object=listed%20key;type=cert", "")...)...)
	if code != 0 || !strings.Contains(stdout, "API=api-1") {
		t.Errorf("render: exit %d\n%s\n%s", code, stdout, stderr)
	}
	// Without --pkcs11-lib, p11-kit's proxy module, which loads SoftHSM
	// as Debian's softhsm2 package registers it.
	proxy := ""
	for _, c := range p11KitProxies {
		if fileExists(c) {
			proxy = c
			break
		}
	}
	if proxy != "" {
		code, stdout, stderr = runP11(t, env, "pkcs11-list", "pkcs11:token=rolesenv")
		if code != 0 || !containsAll(stdout, []string{"module " + proxy, "id=%07"}) {
			t.Errorf("pkcs11-list through p11-kit: exit %d\n%s\n%s", code, stdout, stderr)
		}
	} else if os.Getenv(testenv.RequireToolsVar) == "1" {
		t.Errorf("p11-kit's proxy module is required (%s=1) but not installed", testenv.RequireToolsVar)
	}
	code, stdout, _ = runP11(t, p.env(), "pkcs11-list", "--pkcs11-lib", softhsmtest.Module, "pkcs11:token=rolesenv")
	if code != 0 || strings.Contains(stdout, "  private ") || !strings.Contains(stdout, "after a login") {
		t.Errorf("pkcs11-list without a PIN: exit %d\n%s", code, stdout)
	}
	if strings.Contains(stdout, tokenPIN) {
		t.Error("the PIN was printed")
	}
}

// TestPKCS11RunRefresh: run keeps its command across credential
// refreshes signed on the token, keeps it while the token is away (the
// refresh fails with "cannot be reached" and is retried), and refreshes
// again once the token is back.
func TestPKCS11RunRefresh(t *testing.T) {
	t.Parallel()
	p := newP11(t)
	cert := p.key(t, "rsa:2048", "run key", "05", false)
	p.e.SetCredentialLifetime(3 * time.Second)
	mustDo[string](t)(p.e.CreateSecret("p11/api", "api-1"))
	file := writeEnvFile(t, "API=sm://p11/api\n")
	proc := startRun(t, p.env(pkcs11PINEnv+"="+tokenPIN), append(append([]string{"run", "--env-file", file, "--interval", "1s"},
		p.args(cert, "pkcs11:object=run%20key")...), "--", "rolesenv-testchild", "printvars", "API")...)
	proc.waitOut("start API=api-1")
	sessions := p.e.Calls(opCreateSession)
	proc.waitFor("two refreshes signed on the token", &proc.log, func([]string) bool { return p.e.Calls(opCreateSession) >= sessions+2 })

	ents, err := os.ReadDir(p.h.TokenDir())
	if err != nil || len(ents) != 1 {
		t.Fatalf("token directory: %v %v", ents, err)
	}
	src, away := filepath.Join(p.h.TokenDir(), ents[0].Name()), filepath.Join(p.e.dir, "token-away")
	if err := os.Rename(src, away); err != nil { // SoftHSM's way of pulling the token out
		t.Fatal(err)
	}
	proc.waitFor("a refresh that fails for the token", &proc.log, func(l []string) bool { return count(l, "cannot be reached") > 0 })
	stalled := p.e.Calls(opCreateSession)
	if err := os.Rename(away, src); err != nil {
		t.Fatal(err)
	}
	proc.waitFor("a refresh after the token is back", &proc.log, func([]string) bool { return p.e.Calls(opCreateSession) > stalled })
	if code := proc.stop(); code != 0 {
		t.Errorf("exit %d", code)
	}
	if n := len(proc.starts()); n != 1 {
		t.Errorf("the command started %d times, want once", n)
	}
}

// TestPKCS11TwoProcesses: rolesenv processes that sign with one key on
// one token at the same time all get credentials.
func TestPKCS11TwoProcesses(t *testing.T) {
	t.Parallel()
	p := newP11(t)
	cert := p.key(t, "EC:prime256v1", "shared", "06", false)
	args := append([]string{"credential-process"}, p.args(cert, "pkcs11:object=shared")...)
	const procs, rounds = 3, 3
	var wg sync.WaitGroup
	errs := make(chan string, procs*rounds)
	for range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rounds {
				cmd := rolesenvCmd(t, p.env(pkcs11PINEnv+"="+tokenPIN), args...)
				if out, err := cmd.CombinedOutput(); err != nil {
					errs <- fmt.Sprintf("%v: %s", err, out)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := p.e.Calls(opCreateSession); n != procs*rounds {
		t.Errorf("%d CreateSession calls, want %d", n, procs*rounds)
	}
}

// TestPKCS11CacheHit: credential-process with --cache-file opens the key
// on a cache miss only: an answer from the cache sends no PIN (a wrong
// one passes unnoticed) and no request; a miss with a wrong PIN fails as
// without a cache.
func TestPKCS11CacheHit(t *testing.T) {
	t.Parallel()
	p := newP11(t)
	cert := p.key(t, "EC:prime256v1", "cached", "08", false)
	cache := filepath.Join(p.e.dir, "creds.json")
	args := append([]string{"credential-process", "--cache-file", cache}, p.args(cert, "pkcs11:object=cached")...)
	code, first, stderr := runP11(t, p.env(pkcs11PINEnv+"="+tokenPIN), args...)
	if code != 0 {
		t.Fatalf("cache miss: exit %d: %s", code, stderr)
	}
	sessions := p.e.Calls(opCreateSession)
	const wrong = "SENTINEL-8888"
	code, second, stderr := runP11(t, p.env(pkcs11PINEnv+"="+wrong), args...)
	if code != 0 || second != first {
		t.Errorf("cache hit with a wrong PIN: exit %d, output differs: %v\n%s", code, second != first, stderr)
	}
	if n := p.e.Calls(opCreateSession); n != sessions {
		t.Errorf("%d CreateSession calls on a cache hit", n-sessions)
	}
	code, _, stderr = runP11(t, p.env(pkcs11PINEnv+"="+wrong), append(args, "--role-session-name", "other")...)
	if code != exitcode.Config || !strings.Contains(stderr, "refused the PIN") || strings.Contains(stderr, wrong) {
		t.Errorf("cache miss with a wrong PIN: exit %d: %s", code, stderr)
	}
}

// TestPKCS11TwoTokens: with a second token that has another PIN, the
// helper's own URI form (no token=) signs with the key on the first
// token; a URI that names keys on both stops (78), listing the tokens
// with a URI for each, before any login.
func TestPKCS11TwoTokens(t *testing.T) {
	t.Parallel()
	p := newP11(t)
	cert := p.key(t, "EC:prime256v1", "mine", "11", false)
	p.h.NewToken(t, "second", "8765")
	p.h.NewKey(t, "second", "8765", "EC:prime256v1", "theirs", "11")
	env := p.env(pkcs11PINEnv + "=" + tokenPIN)
	code, _, stderr := runP11(t, env, append([]string{"credential-process"}, p.args(cert, "pkcs11:object=mine")...)...)
	if code != 0 {
		t.Errorf("the key on the first token: exit %d: %s", code, stderr)
	}
	code, _, stderr = runP11(t, env, append([]string{"credential-process"}, p.args(cert, "pkcs11:id=%11")...)...)
	if code != exitcode.Config || !containsAll(stderr, []string{"the PIN is sent to one token only", "token=rolesenv", "token=second"}) {
		t.Errorf("a key on each token: exit %d: %s", code, stderr)
	}
}
