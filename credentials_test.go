package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/endpointcreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/rolesenv/rolesenv/internal/credserver"
	"github.com/rolesenv/rolesenv/internal/exitcode"
	"github.com/rolesenv/rolesenv/internal/testenv"
)

func tlsClient(t testing.TB, caPEM []byte) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("no CA certificate")
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

// testApp is an app with this process's environment and a log in a buffer.
func testApp(level slog.Level) (*app, *bytes.Buffer) {
	var logs bytes.Buffer
	a := &app{stdout: &bytes.Buffer{}, stderr: &logs, environ: os.Environ()}
	a.log = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: level}))
	return a, &logs
}

// TestAWSConfigRolesAnywhere builds the SDK configuration from credential
// flags and uses it: the log names the source at start and the identity
// once credentials are obtained, and never a secret.
func TestAWSConfigRolesAnywhere(t *testing.T) {
	e := startRAEmulator(t)
	t.Setenv("AWS_ENDPOINT_URL", e.URL())
	a, logs := testApp(slog.LevelInfo)
	fs := newFlagSet("test", "")
	var cf credFlags
	cf.register(fs)
	if err := fs.parse(a, e.args(t)[:10]); err != nil { // without --endpoint: AWS_ENDPOINT_URL
		t.Fatal(err)
	}
	cfg, err := a.awsConfig(context.Background(), &cf)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "credential source") || strings.Contains(logs.String(), "credentials obtained") {
		t.Fatalf("log before any request:\n%s", logs)
	}
	if e.Calls(opCreateSession) != 0 {
		t.Fatal("credentials were fetched before a request needed them")
	}
	for range 3 {
		out, err := sts.NewFromConfig(cfg).GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(aws.ToString(out.Arn), ":assumed-role/reader/") {
			t.Fatalf("identity %q", aws.ToString(out.Arn))
		}
	}
	if n := e.Calls(opCreateSession); n != 1 {
		t.Errorf("%d CreateSession calls for 3 requests", n)
	}
	log := logs.String()
	if strings.Count(log, "credentials obtained") != 1 || !strings.Contains(log, "identity=arn:aws:sts::"+e.AccountID()+":assumed-role/reader/") {
		t.Errorf("log:\n%s", log)
	}
	creds, _ := cfg.Credentials.Retrieve(context.Background())
	for _, secret := range []string{creds.SecretAccessKey, creds.SessionToken} {
		if secret == "" || strings.Contains(log, secret) {
			t.Errorf("log holds a secret or none was issued:\n%s", log)
		}
	}
}

func TestAWSConfigRolesAnywhereLocalErrors(t *testing.T) {
	e := startRAEmulator(t)
	a, _ := testApp(slog.LevelInfo)
	fs := newFlagSet("test", "")
	var cf credFlags
	cf.register(fs)
	if err := fs.parse(a, e.args(t, "--private-key", e.fixture(t, "p384.key"))); err != nil {
		t.Fatal(err)
	}
	_, err := a.awsConfig(context.Background(), &cf)
	if exitcode.Of(err) != exitcode.Config || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("err = %v (exit %d)", err, exitcode.Of(err))
	}
	if e.Calls(opCreateSession) != 0 {
		t.Fatal("a request was sent")
	}
}

func TestRolesAnywhereEndpointPrecedence(t *testing.T) {
	a := &app{environ: []string{"AWS_ENDPOINT_URL=https://all", "AWS_ENDPOINT_URL_ROLESANYWHERE=https://ra"}}
	if got := a.rolesAnywhereEndpoint(&credFlags{endpoint: "https://flag"}); got != "https://flag" {
		t.Errorf("flag: %s", got)
	}
	if got := a.rolesAnywhereEndpoint(&credFlags{}); got != "https://ra" {
		t.Errorf("service variable: %s", got)
	}
	a.environ = a.environ[:1]
	if got := a.rolesAnywhereEndpoint(&credFlags{}); got != "https://all" {
		t.Errorf("global variable: %s", got)
	}
	a.environ = append(a.environ, "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true")
	if got := a.rolesAnywhereEndpoint(&credFlags{}); got != "" {
		t.Errorf("ignored: %s", got)
	}
}

func TestEndpointVariants(t *testing.T) {
	a := &app{environ: []string{"AWS_USE_FIPS_ENDPOINT=true"}}
	if fips, dual := a.endpointVariants(context.Background(), nil); !fips || dual {
		t.Errorf("fips %v dual %v", fips, dual)
	}
}

func TestWithCredentialLog(t *testing.T) {
	a, logs := testApp(slog.LevelInfo)
	p := a.withCredentialLog(aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider("AKIDSENTINEL", "SECRETSENTINEL", "")))
	for range 3 {
		if _, err := p.Retrieve(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	log := logs.String()
	if strings.Count(log, "credentials obtained") != 1 || !strings.Contains(log, "source=default-chain") ||
		!strings.Contains(log, "provider=StaticCredentials") || strings.Contains(log, "SENTINEL") {
		t.Errorf("log:\n%s", log)
	}
	if !aws.IsCredentialsProvider(p, credentials.StaticCredentialsProvider{}) {
		t.Error("the wrapper hides the provider's type")
	}
}

// invalidator is what the watcher calls on aws.Config.Credentials when
// AWS refuses the credentials themselves.
type invalidator interface{ Invalidate() }

// TestAWSConfigInvalidateRolesAnywhere: what awsConfig puts in
// aws.Config.Credentials for Roles Anywhere can be invalidated, the next
// request gets a new session, and the credentials endpoint, which serves
// the same provider, serves it too.
func TestAWSConfigInvalidateRolesAnywhere(t *testing.T) {
	e := startRAEmulator(t)
	a, _ := testApp(slog.LevelInfo)
	fs := newFlagSet("test", "")
	var cf credFlags
	cf.register(fs)
	if err := fs.parse(a, e.args(t)); err != nil {
		t.Fatal(err)
	}
	cfg, err := a.awsConfig(context.Background(), &cf)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := credserver.Start(cfg.Credentials, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	served := endpointcreds.New(srv.URL(), func(o *endpointcreds.Options) {
		o.AuthorizationToken = strings.TrimPrefix(srv.Env()[1], credserver.TokenVar+"=")
	})
	old := retrieveKey(t, served)
	if _, err := e.callerIdentity(t, cfg.Credentials); err != nil {
		t.Fatal(err)
	}

	e.ExpireCredentials()
	if _, err := e.callerIdentity(t, cfg.Credentials); err == nil || !strings.Contains(err.Error(), "ExpiredToken") {
		t.Fatalf("with expired credentials: %v, want ExpiredToken", err)
	}
	inv, ok := cfg.Credentials.(invalidator)
	if !ok {
		t.Fatalf("%T has no Invalidate", cfg.Credentials)
	}
	e.ResetCalls()
	inv.Invalidate()
	if k := retrieveKey(t, served); k == old {
		t.Fatalf("the endpoint serves the invalidated %s", old)
	}
	if _, err := e.callerIdentity(t, cfg.Credentials); err != nil {
		t.Fatalf("after Invalidate: %v", err)
	}
	if n := e.Calls(opCreateSession); n != 1 {
		t.Errorf("%d CreateSession calls after Invalidate, want 1", n)
	}
}

// TestAWSConfigInvalidateDefaultChain: the default chain's provider, wrapped
// for its log line, passes Invalidate on to the SDK's cache, and the next
// Retrieve asks the source again (here a credential_process that prints a
// new key each time).
func TestAWSConfigInvalidateDefaultChain(t *testing.T) {
	testenv.IsolateAWS(t)
	dir := t.TempDir()
	script := filepath.Join(dir, "creds.sh")
	counter := filepath.Join(dir, "n")
	body := "#!/bin/sh\nn=$(($(cat " + counter + " 2>/dev/null || echo 0) + 1))\necho $n > " + counter + "\n" +
		`printf '{"Version":1,"AccessKeyId":"AKIAPROC%d","SecretAccessKey":"s"}\n' $n` + "\n"
	if err := os.WriteFile(script, []byte(body), 0o700); err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(dir, "config")
	if err := os.WriteFile(config, []byte("[default]\nregion = us-east-1\ncredential_process = "+script+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_CONFIG_FILE", config)
	a, _ := testApp(slog.LevelInfo)
	cfg, err := a.awsConfig(context.Background(), &credFlags{})
	if err != nil {
		t.Fatal(err)
	}
	if k := retrieveKey(t, cfg.Credentials); k != "AKIAPROC1" {
		t.Fatalf("first key %s", k)
	}
	if k := retrieveKey(t, cfg.Credentials); k != "AKIAPROC1" {
		t.Fatalf("cached key %s, want AKIAPROC1 again", k)
	}
	inv, ok := cfg.Credentials.(invalidator)
	if !ok {
		t.Fatalf("%T has no Invalidate", cfg.Credentials)
	}
	inv.Invalidate()
	if k := retrieveKey(t, cfg.Credentials); k != "AKIAPROC2" {
		t.Fatalf("after Invalidate: %s, want AKIAPROC2", k)
	}
}

func retrieveKey(t *testing.T, p aws.CredentialsProvider) string {
	t.Helper()
	c, err := p.Retrieve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return c.AccessKeyID
}

// The signer speaks of settings and files; rolesenv's error names the flag
// to change, and keeps the signer's class and hint.
func TestSignerErrorsNameTheFlag(t *testing.T) {
	e := startRAEmulator(t)
	tests := []struct {
		name  string
		extra []string
		want  string
		hint  bool
	}{
		{"duration", []string{"--session-duration", "60"}, "--session-duration: 60 seconds is out of bounds (900 to 43200 whole seconds)", false},
		{"role", []string{"--role-arn", "arn:aws:iam::123456789012:user/x"}, "--role-arn: ", false},
		{"session name", []string{"--role-session-name", "x"}, "--role-session-name: must be", false},
		{"key mismatch", []string{"--private-key", e.fixture(t, "p384.key")}, "--private-key: private key ", true},
		{"missing certificate", []string{"--certificate", filepath.Join(e.dir, "nope.pem")}, "--certificate: certificate ", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, _ := testApp(slog.LevelInfo)
			fs := newFlagSet("test", "")
			var cf credFlags
			cf.register(fs)
			if err := fs.parse(a, e.args(t, tt.extra...)); err != nil {
				t.Fatal(err)
			}
			_, err := a.awsConfig(context.Background(), &cf)
			if err == nil || !strings.Contains(err.Error(), tt.want) || exitcode.Of(err) != exitcode.Config {
				t.Fatalf("err = %v (exit %d), want %q, exit 78", err, exitcode.Of(err), tt.want)
			}
			if tt.hint && len(exitcode.Hints(err)) == 0 {
				t.Errorf("the signer's hint is lost: %v", err)
			}
		})
	}
	if e.Calls(opCreateSession) != 0 {
		t.Fatal("a request was sent")
	}
}
