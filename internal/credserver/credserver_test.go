package credserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/endpointcreds"
	"github.com/aws/aws-sdk-go-v2/credentials/processcreds"

	"github.com/rolesenv/rolesenv/internal/testenv"
)

// countingProvider hands out a new set of credentials at every call.
type countingProvider struct{ n atomic.Int64 }

func (p *countingProvider) Retrieve(context.Context) (aws.Credentials, error) {
	n := p.n.Add(1)
	return aws.Credentials{
		AccessKeyID:     fmt.Sprintf("ASIATEST%04d", n),
		SecretAccessKey: "secret",
		SessionToken:    "token",
		CanExpire:       true,
		Expires:         time.Now().Add(time.Hour),
	}, nil
}

func envValue(env []string, name string) string {
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == name {
			return v
		}
	}
	return ""
}

func TestServesCredentialsToTheSDK(t *testing.T) {
	p := &countingProvider{}
	s, err := Start(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !strings.HasPrefix(s.URL(), "http://127.0.0.1:") {
		t.Fatalf("URL %q is not on 127.0.0.1", s.URL())
	}
	token := envValue(s.Env(), TokenVar)
	if len(token) != 64 {
		t.Fatalf("token has %d characters, want 64", len(token))
	}
	ep := endpointcreds.New(envValue(s.Env(), FullURIVar), func(o *endpointcreds.Options) { o.AuthorizationToken = token })
	for want := 1; want <= 2; want++ {
		creds, err := ep.Retrieve(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprintf("ASIATEST%04d", want); creds.AccessKeyID != got || !creds.CanExpire {
			t.Errorf("call %d: got %s (expires %v), want %s, expiring", want, creds.AccessKeyID, creds.CanExpire, got)
		}
	}
}

// The SDK's default chain finds the endpoint through the two variables.
func TestDefaultChainUsesEndpoint(t *testing.T) {
	testenv.IsolateAWS(t)
	s, err := Start(&countingProvider{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, kv := range s.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	creds, err := cfg.Credentials.Retrieve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if creds.AccessKeyID != "ASIATEST0001" {
		t.Errorf("default chain got %q, want the endpoint's ASIATEST0001", creds.AccessKeyID)
	}
}

func TestRefusesWithoutToken(t *testing.T) {
	p := &countingProvider{}
	s, err := Start(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, auth := range []string{"", "wrong", envValue(s.Env(), TokenVar) + "x"} {
		req, _ := http.NewRequest("GET", s.URL(), nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("Authorization %q: status %d, want 401", auth, resp.StatusCode)
		}
	}
	if p.n.Load() != 0 {
		t.Errorf("provider called %d times for refused requests, want 0", p.n.Load())
	}
}

// leakyProvider fails with an error that quotes credentials, as the SDK's
// credential_process provider does with output it cannot parse.
type leakyProvider struct{}

func (leakyProvider) Retrieve(context.Context) (aws.Credentials, error) {
	return aws.Credentials{}, &processcreds.ProviderError{Err: errors.New(`parse failed of process output: {"SecretAccessKey":"SNTLSECRET"`)}
}

// A provider's failure is a 503; neither the answer nor the log shows
// what the provider's error quotes.
func TestProviderFailureIs503(t *testing.T) {
	var logs bytes.Buffer
	s, err := Start(leakyProvider{}, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	req, _ := http.NewRequest("GET", s.URL(), nil)
	req.Header.Set("Authorization", envValue(s.Env(), TokenVar))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("status %d, want 503", resp.StatusCode)
	}
	if strings.Contains(logs.String()+string(body), "SNTL") || !strings.Contains(logs.String(), "could not get credentials") {
		t.Errorf("log:\n%s\nbody: %s", logs.String(), body)
	}
}

// Any local user can reach the endpoint: refusals are warned about once a
// minute, with their count, so that nobody can flood the log.
func TestRefusalsDoNotFloodTheLog(t *testing.T) {
	var logs bytes.Buffer
	var mu sync.Mutex
	s, err := Start(&countingProvider{}, slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &mu}, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for range 50 {
		resp, err := http.Get(s.URL())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401", resp.StatusCode)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if n := strings.Count(logs.String(), "level=WARN"); n != 1 {
		t.Errorf("%d log lines for 50 refusals, want 1:\n%s", n, logs.String())
	}
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestServerPrintsNoToken(t *testing.T) {
	s, err := Start(&countingProvider{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	token := envValue(s.Env(), TokenVar)
	var log strings.Builder
	slog.New(slog.NewTextHandler(&log, nil)).Info("x", "srv", s)
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%+v", s), fmt.Sprintf("%#v", s), fmt.Sprintf("%v", struct{ S *Server }{s}), fmt.Sprintf("%+v", []any{s}), log.String()} {
		if strings.Contains(out, token) {
			t.Errorf("the token shows: %s", out)
		}
	}
}
