package signer

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"
)

// unavailable reports an error tree that says AWS could not be reached
// (rolesenv exits 69).
func unavailable(err error) bool {
	var u interface{ Unavailable() bool }
	return errors.As(err, &u) && u.Unavailable()
}

// A deadline that passes before Roles Anywhere answers means the service
// could not be reached in time, however the caller waited (CreateSession,
// or a Provider shared with other callers); a cancellation is not a
// failure of the service.
func TestDeadlineIsUnavailable(t *testing.T) {
	release := make(chan struct{})
	srv := newFakeServer(t, func(*requestSeen) (int, string, string) {
		<-release
		return http.StatusInternalServerError, "", ""
	})
	defer close(release)
	c, err := NewClient(testIdentity(t), testConfig(srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	p := NewProvider(c, ProviderOptions{})
	for name, call := range map[string]func(context.Context) error{
		"CreateSession":        func(ctx context.Context) error { _, err := c.CreateSession(ctx); return err },
		"Provider.Retrieve":    func(ctx context.Context) error { _, err := p.Retrieve(ctx); return err },
		"Provider.Credentials": func(ctx context.Context) error { _, err := p.Credentials(ctx); return err },
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		err := call(ctx)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) || !unavailable(err) {
			t.Errorf("%s: %v (unavailable %v), want a deadline that classifies as unavailable", name, err, unavailable(err))
		}
		ctx, cancel = context.WithCancel(context.Background())
		cancel()
		if err := call(ctx); !errors.Is(err, context.Canceled) || unavailable(err) {
			t.Errorf("%s cancelled: %v (unavailable %v)", name, err, unavailable(err))
		}
	}
}
