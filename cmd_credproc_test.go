package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/rolesenv/rolesenv/internal/awsdev"
	"github.com/rolesenv/rolesenv/internal/testenv"
	"github.com/rolesenv/rolesenv/signer"

	"github.com/rolesenv/rolesenv/internal/exitcode"
)

const (
	signerFixtures    = "testdata/signer"
	fixturePassphrase = "correct horse battery staple"
	opCreateSession   = "rolesanywhere:CreateSession"
)

// raEmulator is internal/awsdev with a trust anchor for the signer
// fixtures' root CA, a role "reader" and a profile; the process
// environment trusts its CA (AWS_CA_BUNDLE) and nothing else of AWS.
type raEmulator struct {
	*awsdev.Server
	anchor, profile, role string
	caFile                string
	dir                   string
}

func startRAEmulator(t *testing.T) *raEmulator {
	t.Helper()
	testenv.IsolateAWS(t)
	e := newRAEmulator(t)
	t.Setenv("AWS_CA_BUNDLE", e.caFile)
	return e
}

// newRAEmulator is startRAEmulator without touching the process
// environment, for tests that run rolesenv as a subprocess with an
// environment of its own (testenv.SafeEnv) and so may run in parallel.
func newRAEmulator(t *testing.T) *raEmulator {
	t.Helper()
	srv, err := awsdev.Start(awsdev.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	rootPEM, err := os.ReadFile(filepath.Join(signerFixtures, "root.pem"))
	if err != nil {
		t.Fatal(err)
	}
	root, err := signer.ParseCertificate(rootPEM)
	if err != nil {
		t.Fatal(err)
	}
	e := &raEmulator{Server: srv, dir: t.TempDir()}
	e.role = srv.CreateRole("reader", awsdev.RoleOptions{Policy: awsdev.AllowAll})
	e.anchor = srv.CreateTrustAnchor(root, awsdev.TrustAnchorOptions{})
	e.profile = srv.CreateProfile(awsdev.ProfileOptions{RoleARNs: []string{e.role}})
	e.caFile = filepath.Join(e.dir, "ca.pem")
	if err := os.WriteFile(e.caFile, srv.CAPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	return e
}

// fixture copies a signer fixture into the emulator's directory with mode
// 0600 (git keeps no modes) and returns its absolute path.
func (e *raEmulator) fixture(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(signerFixtures, name))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(e.dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// args are the credential flags of a P-256 identity against the emulator.
func (e *raEmulator) args(t *testing.T, extra ...string) []string {
	return append([]string{
		"--certificate", e.fixture(t, "p256.pem"),
		"--private-key", e.fixture(t, "p256.key"),
		"--trust-anchor-arn", e.anchor,
		"--profile-arn", e.profile,
		"--role-arn", e.role,
		"--endpoint", e.URL(),
	}, extra...)
}

// callerIdentity asks the emulator's STS who the credentials are.
func (e *raEmulator) callerIdentity(t *testing.T, p aws.CredentialsProvider) (string, error) {
	t.Helper()
	client := sts.New(sts.Options{Region: "us-east-1", Credentials: p, BaseEndpoint: aws.String(e.URL()),
		HTTPClient: tlsClient(t, e.CAPEM())})
	out, err := client.GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	if err != nil {
		return "", err
	}
	return aws.ToString(out.Arn), nil
}

func TestCredentialProcess(t *testing.T) {
	e := startRAEmulator(t)
	// --with-proxy is the official helper's; it is accepted and changes nothing.
	code, stdout, stderr := runCLI(t, append([]string{"credential-process"}, e.args(t, "--with-proxy")...)...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if stderr != "" {
		t.Errorf("stderr %q: want nothing below warnings", stderr)
	}
	var out map[string]any
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatalf("output %q: %v", stdout, err)
	}
	for _, k := range []string{"Version", "AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration"} {
		if out[k] == nil || out[k] == "" {
			t.Errorf("output lacks %s", k)
		}
	}
	if out["Version"] != 1.0 || len(out) != 5 {
		t.Errorf("output %v", keys(out))
	}
	exp, err := time.Parse(time.RFC3339, out["Expiration"].(string))
	if err != nil || time.Until(exp) < 50*time.Minute {
		t.Errorf("expiration %v (%v)", out["Expiration"], err)
	}
	arn, err := e.callerIdentity(t, credentials.NewStaticCredentialsProvider(
		out["AccessKeyId"].(string), out["SecretAccessKey"].(string), out["SessionToken"].(string)))
	if err != nil || !strings.Contains(arn, ":assumed-role/reader/") {
		t.Fatalf("GetCallerIdentity: %q %v", arn, err)
	}
}

// TestCredentialProcessDebugLogsNoSecret runs with --debug: the log says
// what happened, and holds neither the secret key nor the session token.
func TestCredentialProcessDebugLogsNoSecret(t *testing.T) {
	e := startRAEmulator(t)
	e.FailNext(opCreateSession, 1, awsdev.FaultThrottle) // a retry is logged too
	code, stdout, stderr := runCLI(t, append([]string{"credential-process", "--debug"}, e.args(t)...)...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var out struct{ SecretAccessKey, SessionToken string }
	if err := json.Unmarshal([]byte(stdout), &out); err != nil || out.SecretAccessKey == "" || out.SessionToken == "" {
		t.Fatalf("output %q: %v", stdout, err)
	}
	if !strings.Contains(stderr, "credential source") || !strings.Contains(stderr, "will be retried") ||
		!strings.Contains(stderr, "identity=arn:aws:sts::") {
		t.Errorf("debug log lacks the source or the retry:\n%s", stderr)
	}
	if strings.Contains(stderr, out.SecretAccessKey) || strings.Contains(stderr, out.SessionToken) {
		t.Errorf("a secret reached the log:\n%s", stderr)
	}
}

func TestCredentialProcessHelp(t *testing.T) {
	code, stdout, _ := runCLI(t, "credential-process", "--help")
	if code != 0 || !strings.Contains(stdout, "Examples:") || !strings.Contains(stdout, "--cache-file") {
		t.Fatalf("exit %d, help:\n%s", code, stdout)
	}
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestCredentialProcessErrors runs every bad input through the CLI: each
// gives one error line naming the cause and the documented exit status,
// locally found ones send nothing, and no secret reaches the output.
func TestCredentialProcessErrors(t *testing.T) {
	e := startRAEmulator(t)
	const sentinel = "PASSPHRASE-SENTINEL"
	t.Setenv(passphraseEnv, sentinel)
	expired := e.fixture(t, "p256.key") // any key: the certificate is refused first
	tests := []struct {
		name  string
		args  []string
		setup func()
		code  int
		want  string
		local bool
	}{
		{"missing flags", []string{"--certificate", e.fixture(t, "p256.pem")}, nil, exitcode.Usage,
			"IAM Roles Anywhere needs --trust-anchor-arn, --profile-arn, --role-arn", true},
		{"arguments", e.args(t, "extra"), nil, exitcode.Usage, "takes no arguments", true},
		{"wrong passphrase", e.args(t, "--private-key", e.fixture(t, "rsa2048.pbkdf2-aes256.pem"), "--certificate", e.fixture(t, "rsa2048.pem")),
			nil, exitcode.Config, "rsa2048.pbkdf2-aes256.pem: wrong passphrase", true},
		{"mismatched key", e.args(t, "--private-key", e.fixture(t, "p384.key")), nil, exitcode.Config,
			"does not match the certificate", true},
		{"unsupported key", e.args(t, "--certificate", e.fixture(t, "ed25519.pem"), "--private-key", e.fixture(t, "ed25519.key")), nil,
			exitcode.Config, "unsupported key: Ed25519", true},
		{"malformed certificate", e.args(t, "--certificate", expired), nil, exitcode.Config, "no CERTIFICATE block", true},
		{"unreadable key", e.args(t, "--private-key", filepath.Join(e.dir, "missing.key")), nil, exitcode.Config,
			"missing.key: file does not exist", true},
		{"region mismatch", e.args(t, "--profile-arn", strings.Replace(e.profile, "us-east-1", "eu-west-1", 1)), nil,
			exitcode.Config, "names region eu-west-1", true},
		{"session too short", e.args(t, "--session-duration", "60"), nil, exitcode.Config, "out of bounds", true},
		{"refused flag", e.args(t, "--pkcs8-password", sentinel), nil, exitcode.Usage, "--pkcs8-password is refused", true},
		{"untrusted CA", e.args(t, "--certificate", e.fixture(t, "chained.pem"), "--private-key", e.fixture(t, "chained.key")),
			nil, exitcode.NoPerm, "AccessDeniedException", false},
		{"unavailable", e.args(t), func() { e.FailNext(opCreateSession, 5, awsdev.FaultUnavailable) }, exitcode.Unavailable,
			"after 5 attempts", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.ResetCalls()
			if tt.setup != nil {
				tt.setup()
			}
			code, stdout, stderr := runCLI(t, append([]string{"credential-process"}, tt.args...)...)
			if code != tt.code {
				t.Errorf("exit %d, want %d", code, tt.code)
			}
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			if !strings.HasPrefix(lines[0], "rolesenv: error: ") || !strings.Contains(lines[0], tt.want) {
				t.Errorf("stderr %q: want a first line with %q", stderr, tt.want)
			}
			for _, l := range lines[1:] {
				if !strings.HasPrefix(l, "rolesenv: hint: ") {
					t.Errorf("stray stderr line %q", l)
				}
			}
			if stdout != "" || strings.Contains(stderr, sentinel) {
				t.Errorf("stdout %q, stderr %q", stdout, stderr)
			}
			if n := e.Calls(opCreateSession); tt.local && n != 0 {
				t.Errorf("%d CreateSession calls for a local problem", n)
			}
		})
	}
}

func TestPassphraseSources(t *testing.T) {
	e := startRAEmulator(t)
	pass := filepath.Join(e.dir, "pass")
	if err := os.WriteFile(pass, []byte(fixturePassphrase+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	key := e.fixture(t, "p256.scrypt-aes256.pem")
	code, _, stderr := runCLI(t, append([]string{"credential-process"}, e.args(t, "--private-key", key, "--private-key-passphrase-file", pass)...)...)
	if code != 0 {
		t.Fatalf("passphrase file: exit %d: %s", code, stderr)
	}
	t.Setenv(passphraseEnv, fixturePassphrase)
	code, _, stderr = runCLI(t, append([]string{"credential-process"}, e.args(t, "--private-key", key)...)...)
	if code != 0 {
		t.Fatalf("passphrase variable: exit %d: %s", code, stderr)
	}
	code, _, stderr = runCLI(t, append([]string{"credential-process"}, e.args(t, "--private-key", key, "--private-key-passphrase-file", pass)...)...)
	if code != exitcode.Usage || !strings.Contains(stderr, "both") {
		t.Fatalf("both sources: exit %d: %s", code, stderr)
	}
	t.Setenv(passphraseEnv, "")
	code, _, stderr = runCLI(t, append([]string{"credential-process"}, e.args(t, "--private-key", key)...)...)
	if code != exitcode.Config || !strings.Contains(stderr, "no passphrase was given") || !strings.Contains(stderr, "hint: the passphrase comes from "+passphraseEnv) {
		t.Fatalf("no passphrase: exit %d: %s", code, stderr)
	}
}

// TestCredentialProcessCache: one CreateSession while the cached
// credentials have more than 5 minutes left; refused when others can read
// the file; a damaged cache is started anew.
func TestCredentialProcessCache(t *testing.T) {
	e := startRAEmulator(t)
	cache := filepath.Join(e.dir, "cache.json")
	args := append([]string{"credential-process"}, e.args(t, "--cache-file", cache)...)
	var first string
	for i := range 3 {
		code, stdout, stderr := runCLI(t, args...)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		if i == 0 {
			first = stdout
		} else if stdout != first {
			t.Errorf("call %d printed other credentials", i)
		}
	}
	if n := e.Calls(opCreateSession); n != 1 {
		t.Errorf("%d CreateSession calls for 3 cached calls", n)
	}
	if st, err := os.Stat(cache); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("cache file: %v %v", st.Mode(), err)
	}
	data, _ := os.ReadFile(cache)
	if !strings.Contains(string(data), `"entries"`) {
		t.Fatalf("cache content is not an entry list")
	}

	// Another role is another entry.
	e.ResetCalls()
	other := e.CreateRole("writer", awsdev.RoleOptions{Policy: awsdev.AllowAll})
	prof := e.CreateProfile(awsdev.ProfileOptions{RoleARNs: []string{e.role, other}})
	for range 2 {
		if code, _, stderr := runCLI(t, append(args, "--role-arn", other, "--profile-arn", prof)...); code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
	}
	if n := e.Calls(opCreateSession); n != 1 {
		t.Errorf("%d CreateSession calls for a second identity", n)
	}

	// Credentials with less than 5 minutes left are not reused.
	e.ResetCalls()
	e.SetCredentialLifetime(4 * time.Minute)
	short := append([]string{"credential-process"}, e.args(t, "--cache-file", filepath.Join(e.dir, "short.json"))...)
	for range 2 {
		if code, _, stderr := runCLI(t, short...); code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
	}
	if n := e.Calls(opCreateSession); n != 2 {
		t.Errorf("%d CreateSession calls for credentials near expiry, want 2", n)
	}
	e.SetCredentialLifetime(0)

	// A damaged file is started anew, with a warning.
	if err := os.WriteFile(cache, []byte(`{"rolesenv":"credential-cache","version":2,"entries":{"0a1b`), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCLI(t, args...)
	if code != 0 || !strings.Contains(stderr, "starting it anew") {
		t.Fatalf("damaged cache: exit %d: %s", code, stderr)
	}

	// A file others can read is refused.
	if err := os.Chmod(cache, 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = runCLI(t, args...)
	if code != exitcode.Config || !strings.Contains(stderr, "accessible by group or others") {
		t.Fatalf("readable cache: exit %d: %s", code, stderr)
	}
}

// TestCredentialProcessAWSCLI has the AWS CLI use rolesenv as its
// credential_process; with --cache-file, ten CLI calls (five at once)
// make one CreateSession.
func TestCredentialProcessAWSCLI(t *testing.T) {
	awsCLI := testenv.RequireTool(t, "aws")
	e := startRAEmulator(t)
	cache := filepath.Join(e.dir, "cache.json")
	process := rolesenvBin(t) + " credential-process " + strings.Join(e.args(t), " ")
	config := filepath.Join(e.dir, "aws-config")
	if err := os.WriteFile(config, []byte(fmt.Sprintf(
		"[profile ra]\nregion = us-east-1\ncredential_process = %s\n\n[profile cached]\nregion = us-east-1\ncredential_process = %s --cache-file %s\n",
		process, process, cache)), 0o600); err != nil {
		t.Fatal(err)
	}
	env := testenv.SafeEnv(t, "AWS_CONFIG_FILE="+config, "AWS_CA_BUNDLE="+e.caFile, "AWS_ENDPOINT_URL="+e.URL())
	callerARN := func(profile string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, awsCLI, "sts", "get-caller-identity", "--profile", profile, "--output", "json")
		cmd.Env = env
		out, err := cmd.Output()
		if err != nil {
			if ee, ok := err.(*exec.ExitError); ok {
				return "", fmt.Errorf("%v: %s", err, ee.Stderr)
			}
			return "", err
		}
		var id struct{ Arn string }
		if err := json.Unmarshal(out, &id); err != nil {
			return "", fmt.Errorf("output %q: %v", out, err)
		}
		return id.Arn, nil
	}

	arn, err := callerARN("ra")
	if err != nil || !strings.HasPrefix(arn, "arn:aws:sts::"+e.AccountID()+":assumed-role/reader/") {
		t.Fatalf("aws sts get-caller-identity: %q %v", arn, err)
	}
	if n := e.Calls(opCreateSession); n != 1 {
		t.Errorf("%d CreateSession calls for one CLI call", n)
	}

	e.ResetCalls()
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	run := func() {
		defer wg.Done()
		if a, err := callerARN("cached"); err != nil || a != arn {
			errs <- fmt.Errorf("%q %v", a, err)
		}
	}
	wg.Add(5)
	for range 5 { // at once: they wait on the cache file's lock
		go run()
	}
	wg.Wait()
	for range 5 {
		wg.Add(1)
		run()
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := e.Calls(opCreateSession); n != 1 {
		t.Errorf("%d CreateSession calls for ten cached CLI calls, want 1", n)
	}
	if n := e.Calls("sts:GetCallerIdentity"); n != 10 {
		t.Errorf("%d GetCallerIdentity calls, want 10", n)
	}
}
