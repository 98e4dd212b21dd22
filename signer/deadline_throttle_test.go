package signer

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// expiringContext has a deadline that passes when the test says so, not
// when a clock does.
type expiringContext struct {
	context.Context
	once sync.Once
	done chan struct{}
}

func newExpiringContext() *expiringContext {
	return &expiringContext{Context: context.Background(), done: make(chan struct{})}
}

func (c *expiringContext) Deadline() (time.Time, bool) { return time.Now().Add(time.Hour), true }
func (c *expiringContext) Done() <-chan struct{}       { return c.done }
func (c *expiringContext) expire()                     { c.once.Do(func() { close(c.done) }) }

func (c *expiringContext) Err() error {
	select {
	case <-c.done:
		return context.DeadlineExceeded
	default:
		return nil
	}
}

// throttleThenHang answers the first call with throttling and holds every
// later one until release is closed, then answers it with a session. It
// signals each held call on held.
func throttleThenHang(t *testing.T, release <-chan struct{}) (*sessionServer, <-chan struct{}) {
	held := make(chan struct{}, 8)
	var n atomic.Int64
	srv := &sessionServer{lifetime: time.Hour}
	srv.fakeServer = newFakeServer(t, func(*requestSeen) (int, string, string) {
		if n.Add(1) == 1 {
			return 429, "ThrottlingException", `{"message":"Rate exceeded"}`
		}
		held <- struct{}{}
		<-release
		return 201, "", sessionJSON(1, time.Now().Add(time.Hour))
	})
	return srv, held
}

// checkThrottledAtDeadline: the error of a deadline that passed after a
// throttled call is the throttling, with the deadline said and kept.
func checkThrottledAtDeadline(t *testing.T, err error) {
	t.Helper()
	var apiErr *APIError
	if !errors.As(err, &apiErr) || !apiErr.Throttled() {
		t.Fatalf("err = %v, want the throttling answer", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want it to be DeadlineExceeded too", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "ThrottlingException: Rate exceeded") ||
		!strings.HasSuffix(msg, "; the deadline passed while trying again") {
		t.Errorf("message %q, want the throttling and the deadline", msg)
	}
	if !unavailable(err) {
		t.Errorf("err = %v, want Unavailable (exit 69)", err)
	}
}

// TestCreateSessionDeadlineAfterThrottling: the deadline passes while a
// call that follows a throttled one waits for its answer. The caller
// learns of the throttling, not only of the deadline.
func TestCreateSessionDeadlineAfterThrottling(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	srv, held := throttleThenHang(t, release)
	checkThrottledAtDeadline(t, createSessionUntilHeld(t, srv.URL, held))
}

// createSessionUntilHeld calls CreateSession on the server at url with a
// deadline that passes once the server holds a call, and returns the
// error.
func createSessionUntilHeld(t *testing.T, url string, held <-chan struct{}) error {
	t.Helper()
	c, err := NewClient(testIdentity(t), testConfig(url))
	if err != nil {
		t.Fatal(err)
	}
	ctx := newExpiringContext()
	done := make(chan error, 1)
	go func() { _, err := c.CreateSession(ctx); done <- err }()
	<-held
	ctx.expire()
	return <-done
}

// TestCreateSessionDeadlineFirstCall: a deadline that passes during the
// first call has nothing else to tell.
func TestCreateSessionDeadlineFirstCall(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	held := make(chan struct{}, 1)
	srv := newFakeServer(t, func(*requestSeen) (int, string, string) {
		held <- struct{}{}
		<-release
		return 500, "", ""
	})
	err := createSessionUntilHeld(t, srv.URL, held)
	var apiErr *APIError
	if !errors.Is(err, context.DeadlineExceeded) || errors.As(err, &apiErr) ||
		!strings.HasSuffix(err.Error(), "(no answer before the deadline)") {
		t.Fatalf("err = %v, want only the deadline", err)
	}
}

// TestProviderDeadlineAfterThrottling: a caller whose deadline passes
// while the refresh it waits for is being throttled hears of the
// throttling; the refresh goes on for later callers.
func TestProviderDeadlineAfterThrottling(t *testing.T) {
	release := make(chan struct{})
	var releaseOnce sync.Once
	free := func() { releaseOnce.Do(func() { close(release) }) }
	defer free() // a held call would keep the server from closing
	srv, held := throttleThenHang(t, release)
	p := newTestProvider(t, srv, &fakeClock{t: time.Now()}, nil)
	ctx := newExpiringContext()
	done := make(chan error, 1)
	go func() { _, err := p.Retrieve(ctx); done <- err }()
	<-held
	ctx.expire()
	checkThrottledAtDeadline(t, <-done)
	free()
	if c, err := p.Retrieve(context.Background()); err != nil || c.AccessKeyID != "ASIAFAKE1" {
		t.Fatalf("after the throttling: %q, %v", c.AccessKeyID, err)
	}
}
