package signer

import (
	"context"
	"crypto"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// failingKey is a key in hardware that fails its first signatures with
// err, then signs with the wrapped key.
type failingKey struct {
	crypto.Signer
	failures atomic.Int32 // how many more signatures fail
	err      error
}

func (k *failingKey) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if k.failures.Add(-1) >= 0 {
		return nil, k.err
	}
	return k.Signer.Sign(r, digest, opts)
}

// deviceError classifies itself as a TPM's or token's error does.
type deviceError struct{ config bool }

func (e deviceError) Error() string {
	if e.config {
		return "TPM key k.pem: sign: the TPM refused the key's password"
	}
	return "TPM key k.pem: sign: the TPM cannot be reached"
}
func (e deviceError) Config() bool      { return e.config }
func (e deviceError) Unavailable() bool { return !e.config }

// TestCreateSessionSignError: a key that fails to sign is reported as the
// key's failure, never as the network's: retried when the key says that
// trying again may help (and succeeding once the key signs again), and
// given up at once when the key says that it is a configuration problem.
// Nothing is sent for a request that was not signed.
func TestCreateSessionSignError(t *testing.T) {
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	srv := newFakeServer(t, func(r *requestSeen) (int, string, string) {
		if r.verified != nil {
			return 403, "AccessDeniedException", `{"message":"` + r.verified.Error() + `"}`
		}
		return 201, "", sessionJSON(1, exp)
	})
	cases := []struct {
		name      string
		failures  int32
		config    bool
		wantCalls int64
		attempts  int // of the SignError; 0 when CreateSession succeeds
	}{
		{"away, then back", 2, false, 1, 0},
		{"away for every attempt", 10, false, 0, 3},
		{"refused", 10, true, 0, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id := testIdentity(t)
			key := &failingKey{Signer: id.key, err: deviceError{config: c.config}}
			key.failures.Store(c.failures)
			id.key = key
			cfg := testConfig(srv.URL)
			cfg.MaxAttempts = 3
			var observed atomic.Int64
			cfg.Observe = func(error, time.Duration) { observed.Add(1) }
			client, err := NewClient(id, cfg)
			if err != nil {
				t.Fatal(err)
			}
			before := srv.calls.Load()
			creds, err := client.CreateSession(context.Background())
			if n := srv.calls.Load() - before; n != c.wantCalls {
				t.Errorf("%d requests sent, want %d", n, c.wantCalls)
			}
			if n := observed.Load(); n != c.wantCalls {
				t.Errorf("Observe told of %d requests, want the %d sent", n, c.wantCalls)
			}
			if c.attempts == 0 {
				if err != nil || creds == nil {
					t.Fatalf("CreateSession: %v", err)
				}
				return
			}
			var se *SignError
			if !errors.As(err, &se) || se.Attempts != c.attempts {
				t.Fatalf("err = %#v (%v), want a SignError after %d attempts", err, err, c.attempts)
			}
			var ne *NetworkError
			if errors.As(err, &ne) {
				t.Errorf("a key's failure is reported as a NetworkError: %v", err)
			}
			if se.Unavailable() == c.config {
				t.Errorf("Unavailable() = %v for a key error with Config() = %v", se.Unavailable(), c.config)
			}
			var de deviceError
			if !errors.As(err, &de) || !strings.Contains(err.Error(), de.Error()) {
				t.Errorf("error %q does not carry the key's own error", err)
			}
		})
	}
}
