package main

import (
	"context"
	"encoding/pem"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/config"

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
