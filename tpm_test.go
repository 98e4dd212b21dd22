package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/rolesenv/rolesenv/internal/awsdev"
	"github.com/rolesenv/rolesenv/internal/devpki"
	"github.com/rolesenv/rolesenv/internal/exitcode"
	"github.com/rolesenv/rolesenv/internal/testenv"
	"github.com/rolesenv/rolesenv/internal/tpmkey"
	"github.com/rolesenv/rolesenv/internal/tpmkey/swtpmtest"
)

// tpmIdentity issues a certificate for a TPM key as an operator would: a
// CSR signed by the key on the TPM (RSA-PSS for RSA keys, which the CSR's
// own signature check verifies), then a CA of the test's own, which it
// makes a trust anchor of the emulator. It returns the certificate's path
// and the anchor's ARN.
func tpmIdentity(t testing.TB, e *raEmulator, ref string, opts tpmkey.Options) (string, string) {
	t.Helper()
	key, err := tpmkey.Open(ref, opts)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.CertificateRequest{Subject: pkix.Name{CommonName: "tpm workload"}}
	if _, ok := key.Public().(*rsa.PublicKey); ok {
		tmpl.SignatureAlgorithm = x509.SHA256WithRSAPSS
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatalf("CSR: %v", err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatal(err)
	}
	if err := csr.CheckSignature(); err != nil {
		t.Fatalf("the CSR's signature, made by the TPM: %v", err)
	}
	ca, err := devpki.NewCA(devpki.Options{CommonName: "tpm test CA"})
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Leaf(devpki.Options{CommonName: csr.Subject.CommonName, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(e.dir, strings.NewReplacer(":", "_", "/", "_").Replace(filepath.Base(ref))+".crt")
	if err := os.WriteFile(path, leaf.CertPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, e.CreateTrustAnchor(ca.Cert, awsdev.TrustAnchorOptions{})
}

// tpmArgs are the credential flags for a TPM key.
func (e *raEmulator) tpmArgs(cert, anchor, ref, device string, extra ...string) []string {
	return append([]string{
		"--certificate", cert, "--private-key", ref, "--tpm-device", device,
		"--trust-anchor-arn", anchor, "--profile-arn", e.profile, "--role-arn", e.role,
		"--endpoint", e.URL(),
	}, extra...)
}

func writeSecretFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestTPMCredentialProcess: keys of each kind, in key files (with the
// owner hierarchy or a persistent key as parent) and at a persistent
// handle, get credentials through credential-process: the emulator
// verified each CreateSession signature made by the TPM.
func TestTPMCredentialProcess(t *testing.T) {
	e := startRAEmulator(t)
	tpm := swtpmtest.Start(t)
	const password = "tpm pass phrase"
	pwFile := writeSecretFile(t, e.dir, "tpm-password", password)
	tpm.NewPersistentKey(t, "0x81000100", swtpmtest.KeyOptions{Kind: swtpmtest.ECC256, Password: password})
	cases := []struct {
		name  string
		ref   string
		flags []string
	}{
		{"rsa2048 file, owner parent", tpm.NewKeyFile(t, "rsa", swtpmtest.KeyOptions{Kind: swtpmtest.RSA2048}), []string{"--no-tpm-key-password"}},
		{"p256 file, persistent parent, password", tpm.NewKeyFile(t, "p256", swtpmtest.KeyOptions{Kind: swtpmtest.ECC256, Password: password, Parent: "0x81000001"}),
			[]string{"--tpm-key-password-file", pwFile}},
		{"p384 file, owner parent", tpm.NewKeyFile(t, "p384", swtpmtest.KeyOptions{Kind: swtpmtest.ECC384}), []string{"--no-tpm-key-password"}},
		{"p256 persistent handle, password", "handle:0x81000100", []string{"--tpm-key-password-file", pwFile}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			opts := tpmkey.Options{Device: tpm.Socket, NoPassword: c.flags[0] == "--no-tpm-key-password"}
			if !opts.NoPassword {
				opts.Password = []byte(password)
			}
			cert, anchor := tpmIdentity(t, e, c.ref, opts)
			before := e.Calls(opCreateSession)
			code, stdout, stderr := runCLI(t, append([]string{"credential-process"}, e.tpmArgs(cert, anchor, c.ref, tpm.Socket, c.flags...)...)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			if strings.Contains(stdout+stderr, password) {
				t.Error("the TPM key's password was printed")
			}
			var out map[string]any
			if err := json.Unmarshal([]byte(stdout), &out); err != nil {
				t.Fatalf("output %q: %v", stdout, err)
			}
			arn, err := e.callerIdentity(t, credentials.NewStaticCredentialsProvider(
				out["AccessKeyId"].(string), out["SecretAccessKey"].(string), out["SessionToken"].(string)))
			if err != nil || !strings.Contains(arn, ":assumed-role/reader/") {
				t.Fatalf("GetCallerIdentity: %q %v", arn, err)
			}
			if n := e.Calls(opCreateSession) - before; n != 1 {
				t.Errorf("%d CreateSession calls, want 1", n)
			}
		})
	}
}

// TestTPMCheckAndRender: check and render take the same TPM flags.
func TestTPMCheckAndRender(t *testing.T) {
	e := startRAEmulator(t)
	tpm := swtpmtest.Start(t)
	ref := tpm.NewKeyFile(t, "k", swtpmtest.KeyOptions{Kind: swtpmtest.ECC256, Parent: "0x81000001"})
	cert, anchor := tpmIdentity(t, e, ref, tpmkey.Options{Device: tpm.Socket, NoPassword: true})
	mustDo[string](t)(e.CreateSecret("tpm/api", "api-1"))
	file := writeEnvFile(t, "API=sm://tpm/api\n")
	t.Setenv("AWS_ENDPOINT_URL", e.URL())
	args := e.tpmArgs(cert, anchor, ref, tpm.Socket, "--no-tpm-key-password")
	code, stdout, stderr := runCLI(t, append([]string{"render", "--reveal", "--env-file", file}, args...)...)
	if code != 0 || !strings.Contains(stdout, "API=api-1") {
		t.Fatalf("render: exit %d, stdout %q, stderr %s", code, stdout, stderr)
	}
	code, stdout, stderr = runCLI(t, append([]string{"check", "--env-file", file}, args...)...)
	if code != 0 {
		t.Fatalf("check: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "key matches certificate") {
		t.Errorf("check's report lacks the key check:\n%s", stdout)
	}
}

// TestTPMErrors: each way a TPM key cannot be used exits with its code
// and says why, before any request, and never prints the password.
func TestTPMErrors(t *testing.T) {
	e := startRAEmulator(t)
	tpm := swtpmtest.Start(t)
	const password = "the right one"
	const wrong = "SENTINEL-wrong-password"
	ref := tpm.NewKeyFile(t, "k", swtpmtest.KeyOptions{Kind: swtpmtest.ECC256, Password: password})
	other := tpm.NewKeyFile(t, "other", swtpmtest.KeyOptions{Kind: swtpmtest.ECC256})
	cert, anchor := tpmIdentity(t, e, ref, tpmkey.Options{Device: tpm.Socket, Password: []byte(password)})
	wrongFile := writeSecretFile(t, e.dir, "wrong", wrong)
	rightFile := writeSecretFile(t, e.dir, "right", password)
	// The TPM counts wrong passwords and locks DA-protected keys out
	// after a few: the cases that send one come last, one command each.
	cases := []struct {
		name string
		ref  string
		args []string
		code int
		want string
		stop bool
		cmds []string
	}{
		{"missing handle", "handle:0x81000042", nil, exitcode.Config, "no key at that handle", false, nil},
		{"key of another certificate", other, []string{"--no-tpm-key-password"}, exitcode.Config, "does not match the certificate", false, nil},
		{"password on argv", ref, []string{"--tpm-key-password", wrong}, exitcode.Usage, "--tpm-key-password is refused", false, nil},
		{"no such device", ref, []string{"--tpm-key-password-file", rightFile, "--tpm-device", filepath.Join(e.dir, "none")}, exitcode.Config, "no TPM there", false, nil},
		{"wrong password", ref, []string{"--tpm-key-password-file", wrongFile}, exitcode.Config, "refused the key's password", false, []string{"credential-process"}},
		// tpm2-tools 5.4 records emptyAuth reversed: the key file says it
		// has no password, so the empty one is tried and refused.
		{"no password given", ref, nil, exitcode.Config, "password", false, []string{"render"}},
		{"TPM gone", ref, []string{"--tpm-key-password-file", rightFile}, exitcode.Unavailable, "cannot be reached", true, nil},
	}
	for _, c := range cases {
		if c.stop {
			tpm.Stop()
		}
		cmds := c.cmds
		if cmds == nil {
			cmds = []string{"credential-process", "render"}
		}
		for _, cmd := range cmds {
			args := append([]string{cmd}, e.tpmArgs(cert, anchor, c.ref, tpm.Socket, c.args...)...)
			if cmd == "render" {
				args = append(args, "--env-file", writeEnvFile(t, "A=sm://x\n"))
			}
			before := e.Calls(opCreateSession)
			code, stdout, stderr := runCLI(t, args...)
			if code != c.code || !strings.Contains(stderr, c.want) {
				t.Errorf("%s, %s: exit %d, stderr %q; want %d and %q", c.name, cmd, code, stderr, c.code, c.want)
			}
			if strings.Contains(stdout+stderr, wrong) && c.code != exitcode.Usage {
				t.Errorf("%s, %s: the password reached the output", c.name, cmd)
			}
			if c.code == exitcode.Usage && strings.Contains(stderr, wrong) {
				t.Errorf("%s: the refused flag's value was printed", c.name)
			}
			if n := e.Calls(opCreateSession) - before; n != 0 {
				t.Errorf("%s, %s: %d CreateSession calls, want none", c.name, cmd, n)
			}
		}
	}
}

// TestTPMRunRefresh: run keeps its command across credential refreshes
// signed by the TPM, keeps it while the TPM is away (the refresh fails,
// reported as the TPM's failure and not the network's, and is retried),
// and refreshes again once the TPM is back: a key file is loaded again
// under its parent, a persistent key is found at its handle.
func TestTPMRunRefresh(t *testing.T) {
	t.Parallel() // rolesenv runs as a subprocess with its own environment
	for _, c := range []struct {
		name string
		key  func(tpm *swtpmtest.TPM) string
	}{
		{"key file", func(tpm *swtpmtest.TPM) string {
			return tpm.NewKeyFile(t, "k", swtpmtest.KeyOptions{Kind: swtpmtest.ECC384, Parent: "0x81000001"})
		}},
		{"persistent handle", func(tpm *swtpmtest.TPM) string {
			tpm.NewPersistentKey(t, "0x81000110", swtpmtest.KeyOptions{Kind: swtpmtest.RSA2048})
			return "handle:0x81000110"
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newRAEmulator(t)
			tpm := swtpmtest.Start(t)
			ref := c.key(tpm)
			testTPMRunRefresh(t, e, tpm, ref)
		})
	}
}

func testTPMRunRefresh(t *testing.T, e *raEmulator, tpm *swtpmtest.TPM, ref string) {
	cert, anchor := tpmIdentity(t, e, ref, tpmkey.Options{Device: tpm.Socket, NoPassword: true})
	e.SetCredentialLifetime(3 * time.Second)
	mustDo[string](t)(e.CreateSecret("tpm/api", "api-1"))
	file := writeEnvFile(t, "API=sm://tpm/api\n")
	p := startRun(t, e.runEnv(), append(append([]string{"run", "--env-file", file, "--interval", "1s", "--log-level", "debug"},
		e.tpmArgs(cert, anchor, ref, tpm.Socket, "--no-tpm-key-password")...),
		"--", "rolesenv-testchild", "printvars", "API")...)
	p.waitOut("start API=api-1")
	sessions := e.Calls(opCreateSession)
	p.waitFor("two refreshes signed by the TPM", &p.log, func([]string) bool { return e.Calls(opCreateSession) >= sessions+2 })

	tpm.Stop()
	const failed = "failed to refresh Roles Anywhere credentials"
	p.waitFor("a refresh that fails for the TPM", &p.log, func(l []string) bool { return count(l, failed) > 0 })
	warn := lastWith(p.lines(&p.log), failed)
	t.Logf("while the TPM is away: %s", warn)
	for _, want := range []string{"level=WARN", "the private key failed to sign", "TPM key " + ref, "the TPM cannot be reached"} {
		if !strings.Contains(warn, want) {
			t.Errorf("the refresh failure lacks %q: %s", want, warn)
		}
	}
	if strings.Contains(warn, "CreateSession failed") {
		t.Errorf("the TPM's failure reads as a failed call: %s", warn)
	}
	stalled := e.Calls(opCreateSession)
	tpm.Restart(t)
	p.waitFor("a refresh after the TPM is back", &p.log, func([]string) bool { return e.Calls(opCreateSession) > stalled })
	if code := p.stop(); code != 0 {
		t.Errorf("exit %d", code)
	}
	if n := len(p.starts()); n != 1 {
		t.Errorf("the command started %d times, want once", n)
	}
}

// BenchmarkTimeToCredentials: credential-process from start to the
// credentials, in process, against the emulator: a P-256 key file, and a
// P-256 key in swtpm (a key file under a persistent parent), whose
// start-up adds opening the key and one probe signature to the
// CreateSession signature.
func BenchmarkTimeToCredentials(b *testing.B) {
	testenv.IsolateAWS(b)
	srv, err := awsdev.Start(awsdev.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Close() })
	e := &raEmulator{Server: srv, dir: b.TempDir()}
	e.role = srv.CreateRole("reader", awsdev.RoleOptions{Policy: awsdev.AllowAll})
	e.profile = srv.CreateProfile(awsdev.ProfileOptions{RoleARNs: []string{e.role}})
	e.caFile = filepath.Join(e.dir, "ca.pem")
	if err := os.WriteFile(e.caFile, srv.CAPEM(), 0o644); err != nil {
		b.Fatal(err)
	}
	b.Setenv("AWS_CA_BUNDLE", e.caFile)
	tpm := swtpmtest.Start(b)
	ref := tpm.NewKeyFile(b, "k", swtpmtest.KeyOptions{Kind: swtpmtest.ECC256, Parent: "0x81000001"})
	cert, anchor := tpmIdentity(b, e, ref, tpmkey.Options{Device: tpm.Socket, NoPassword: true})

	ca, err := devpki.NewCA(devpki.Options{CommonName: "file CA"})
	if err != nil {
		b.Fatal(err)
	}
	leaf, err := ca.Leaf(devpki.Options{CommonName: "file workload"})
	if err != nil {
		b.Fatal(err)
	}
	fileCert, fileKey := writeSecretFile(b, e.dir, "file.crt", string(leaf.CertPEM())), writeSecretFile(b, e.dir, "file.key", string(leaf.KeyPEM()))
	fileAnchor := e.CreateTrustAnchor(ca.Cert, awsdev.TrustAnchorOptions{})

	for _, c := range []struct {
		name string
		args []string
	}{
		{"file-p256", []string{"--certificate", fileCert, "--private-key", fileKey, "--trust-anchor-arn", fileAnchor,
			"--profile-arn", e.profile, "--role-arn", e.role, "--endpoint", e.URL()}},
		{"swtpm-p256", e.tpmArgs(cert, anchor, ref, tpm.Socket, "--no-tpm-key-password")},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if code, _, stderr := runCLI(b, append([]string{"credential-process"}, c.args...)...); code != 0 {
					b.Fatalf("exit %d: %s", code, stderr)
				}
			}
		})
	}
}

// TestTPMTwoProcesses: rolesenv processes that sign with one key on one
// TPM at the same time all get credentials (swtpm has no resource
// manager: a process that finds the TPM's object slots taken waits).
func TestTPMTwoProcesses(t *testing.T) {
	t.Parallel() // rolesenv runs as subprocesses with their own environment
	e := newRAEmulator(t)
	tpm := swtpmtest.Start(t)
	ref := tpm.NewKeyFile(t, "k", swtpmtest.KeyOptions{Kind: swtpmtest.ECC256})
	cert, anchor := tpmIdentity(t, e, ref, tpmkey.Options{Device: tpm.Socket, NoPassword: true})
	args := append([]string{"credential-process"}, e.tpmArgs(cert, anchor, ref, tpm.Socket, "--no-tpm-key-password")...)
	const procs, rounds = 3, 3
	errs := make(chan string, procs*rounds)
	done := make(chan struct{})
	for range procs {
		go func() {
			defer func() { done <- struct{}{} }()
			for range rounds {
				cmd := rolesenvCmd(t, e.runEnv(), args...)
				if out, err := cmd.CombinedOutput(); err != nil {
					errs <- fmt.Sprintf("%v: %s", err, out)
				}
			}
		}()
	}
	for range procs {
		<-done
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := e.Calls(opCreateSession); n != procs*rounds {
		t.Errorf("%d CreateSession calls, want %d", n, procs*rounds)
	}
}
