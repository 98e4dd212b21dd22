package main

import (
	"context"
	"encoding/pem"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/rolesenv/rolesenv/internal/devpki"
	"github.com/rolesenv/rolesenv/internal/testenv"
)

// rootsLog records for what warmRoots was asked to load the roots.
type rootsLog struct {
	mu   sync.Mutex
	what []string
}

func (h *rootsLog) Enabled(context.Context, slog.Level) bool { return true }
func (h *rootsLog) Handle(_ context.Context, r slog.Record) error {
	if !strings.Contains(r.Message, "root certificates") {
		return nil
	}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "for" {
			h.mu.Lock()
			h.what = append(h.what, a.Value.String())
			h.mu.Unlock()
		}
		return true
	})
	return nil
}
func (h *rootsLog) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *rootsLog) WithGroup(string) slog.Handler      { return h }

func (h *rootsLog) got() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return strings.Join(h.what, ",")
}

// TestPreconnectWarmsRootsForTLS: the system's roots are loaded ahead only
// when an endpoint of the plan is HTTPS and no CA bundle replaces them.
func TestPreconnectWarmsRootsForTLS(t *testing.T) {
	srv := httptest.NewTLSServer(nil)
	defer srv.Close()
	bundle := filepath.Join(t.TempDir(), "ca.pem")
	pemCert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(bundle, pemCert, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		endpoint string
		caBundle string
		want     string
	}{
		{"plain HTTP", "http://127.0.0.1:9", "", ""},
		{"HTTPS", "https://127.0.0.1:9", "", "services"},
		{"HTTPS with AWS_CA_BUNDLE", "https://127.0.0.1:9", bundle, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testenv.IsolateAWS(t)
			t.Setenv("AWS_REGION", "us-east-1")
			t.Setenv("AWS_ENDPOINT_URL", tc.endpoint)
			t.Setenv("AWS_CA_BUNDLE", tc.caBundle)
			cfg, err := config.LoadDefaultConfig(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			h := &rootsLog{}
			a := &app{log: slog.New(h)}
			_, release := a.preconnect(context.Background(), cfg, plan("BatchGetSecretValue", 3))
			release()
			if got := h.got(); got != tc.want {
				t.Errorf("roots loaded ahead for %q, want %q", got, tc.want)
			}
		})
	}
}

// TestRolesAnywhereTLS: CreateSession verifies against the system's roots
// unless its endpoint is plain HTTP or AWS_CA_BUNDLE replaces them.
func TestRolesAnywhereTLS(t *testing.T) {
	for _, tc := range []struct {
		flag string
		env  []string
		want bool
	}{
		{"", nil, true}, // the regional endpoint
		{"https://ra.example.test", nil, true},
		{"http://127.0.0.1:8080", nil, false},
		{"HTTP://127.0.0.1:8080", nil, false},
		{"", []string{"AWS_ENDPOINT_URL=http://127.0.0.1:8080"}, false},
		{"", []string{"AWS_ENDPOINT_URL_ROLESANYWHERE=https://ra.example.test"}, true},
		{"", []string{"AWS_CA_BUNDLE=/etc/ca.pem"}, false},
	} {
		a := &app{environ: tc.env}
		if got := a.rolesAnywhereTLS(&credFlags{endpoint: tc.flag}); got != tc.want {
			t.Errorf("endpoint %q, environment %q: %v, want %v", tc.flag, tc.env, got, tc.want)
		}
	}
}

// TestSystemRootsEndToEnd: with no CA bundle, the binary verifies the
// emulator's certificate against the system's roots, which SSL_CERT_FILE
// and SSL_CERT_DIR name here: the services' clients and the Roles
// Anywhere client accept a CA found in the bundle or in the directory,
// and refuse one found in neither.
func TestSystemRootsEndToEnd(t *testing.T) {
	f := newCheckFixture(t)
	other, err := devpki.NewCA(devpki.Options{CommonName: "another CA"})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	emulatorCA := filepath.Join(dir, "emulator.pem")
	otherCA := filepath.Join(dir, "other.pem")
	emptyDir := filepath.Join(dir, "empty")
	caDir := filepath.Join(dir, "certs")
	for _, d := range []string{emptyDir, caDir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeTestFile(t, emulatorCA, string(f.srv.CAPEM()), 0o644)
	writeTestFile(t, otherCA, string(other.CertPEM()), 0o644)
	writeTestFile(t, filepath.Join(caDir, "emulator.pem"), string(f.srv.CAPEM()), 0o644)
	writeTestFile(t, "app.env", "DB=sm://prod/api\n", 0o644)
	id, secret := f.srv.CreateUser("reader", appPolicy)
	cert, key := f.leaf(t, "app", devpki.Options{}, nil)
	wd, _ := os.Getwd()

	for _, tc := range []struct {
		name, file, dir string
		ok              bool
	}{
		{"the CA in the bundle", emulatorCA, emptyDir, true},
		{"the CA in the directory", otherCA, caDir, true},
		{"the CA in neither", otherCA, emptyDir, false},
	} {
		for _, creds := range []string{"static", "Roles Anywhere"} {
			t.Run(tc.name+", "+creds, func(t *testing.T) {
				env := testenv.SafeEnv(t, "AWS_ENDPOINT_URL="+f.srv.URL(),
					"SSL_CERT_FILE="+tc.file, "SSL_CERT_DIR="+tc.dir)
				args := []string{"render", "--env-file", "app.env"}
				if creds == "static" {
					env = append(env, "AWS_ACCESS_KEY_ID="+id, "AWS_SECRET_ACCESS_KEY="+secret)
				} else {
					args = append(args, "--certificate", cert, "--private-key", key,
						"--trust-anchor-arn", f.anchor, "--profile-arn", f.profile, "--role-arn", f.role)
				}
				cmd := exec.Command(rolesenvBin(t), args...)
				cmd.Env, cmd.Dir = env, wd
				out, err := cmd.CombinedOutput()
				if tc.ok && err != nil {
					t.Fatalf("%v: %s", err, out)
				}
				if !tc.ok && (err == nil || !strings.Contains(string(out), "certificate signed by unknown authority")) {
					t.Fatalf("want a refusal of the emulator's certificate; got %v: %s", err, out)

				}
				if strings.Contains(string(out), "SNTL") {
					t.Errorf("a secret value in the output: %s", out)
				}
			})
		}
	}
}
