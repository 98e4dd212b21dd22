package signer

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// sessionServer issues credentials that live for lifetime by clock, and
// fails while fail is set.
type sessionServer struct {
	*fakeServer
	fail     atomic.Bool
	lifetime time.Duration
}

func newSessionServer(t *testing.T, clock *fakeClock, lifetime time.Duration) *sessionServer {
	s := &sessionServer{lifetime: lifetime}
	s.fakeServer = newFakeServer(t, func(r *requestSeen) (int, string, string) {
		if s.fail.Load() {
			return 500, "InternalServerException", `{"message":"injected"}`
		}
		return 201, "", sessionJSON(s.calls.Load(), clock.Now().Add(s.lifetime))
	})
	return s
}

func newTestProvider(t *testing.T, srv *sessionServer, clock *fakeClock, log *slog.Logger) *Provider {
	t.Helper()
	cfg := testConfig(srv.URL)
	cfg.Now = clock.Now
	cfg.MaxAttempts = 2
	c, err := NewClient(testIdentity(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return NewProvider(c, ProviderOptions{Logger: log})
}

// settle waits for a refresh in flight, if any, to finish.
func settle(p *Provider) {
	p.mu.Lock()
	call := p.call
	p.mu.Unlock()
	if call != nil {
		<-call.done
	}
}

func TestProviderRefreshesBeforeExpiry(t *testing.T) {
	clock := &fakeClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	srv := newSessionServer(t, clock, time.Hour)
	p := newTestProvider(t, srv, clock, nil)
	ctx := context.Background()

	first, err := p.Retrieve(ctx)
	if err != nil || first.AccessKeyID != "ASIAFAKE1" {
		t.Fatalf("first Retrieve: %v %v", first.AccessKeyID, err)
	}
	clock.Advance(52 * time.Minute) // before the earliest refresh point (60-5-2.5)
	if c, _ := p.Retrieve(ctx); c.AccessKeyID != "ASIAFAKE1" || srv.calls.Load() != 1 {
		t.Fatalf("at 52m: %s after %d calls, want the cached credentials", c.AccessKeyID, srv.calls.Load())
	}
	clock.Advance(3*time.Minute + time.Second) // past the latest refresh point
	c, _ := p.Retrieve(ctx)
	if c.AccessKeyID != "ASIAFAKE1" {
		t.Fatalf("at 55m: %s, want the current credentials while the refresh runs", c.AccessKeyID)
	}
	settle(p)
	if c, _ := p.Retrieve(ctx); c.AccessKeyID != "ASIAFAKE2" || srv.calls.Load() != 2 {
		t.Fatalf("after the refresh: %s after %d calls, want new credentials from one call", c.AccessKeyID, srv.calls.Load())
	}
}

func TestProviderNeverReturnsExpired(t *testing.T) {
	clock := &fakeClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	srv := newSessionServer(t, clock, time.Hour)
	var logs bytes.Buffer
	p := newTestProvider(t, srv, clock, slog.New(slog.NewTextHandler(&logs, nil)))
	ctx := context.Background()
	first, err := p.Retrieve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	srv.fail.Store(true)
	// Refreshes fail from here on; the current credentials are handed out
	// while they are good, never after.
	for elapsed := time.Duration(0); elapsed < 2*time.Hour; elapsed += 30 * time.Second {
		clock.Advance(30 * time.Second)
		c, err := p.Retrieve(ctx)
		settle(p)
		now := clock.Now()
		good := now.Before(first.Expires.Add(-expiryMargin))
		if err == nil && !good {
			t.Fatalf("at %s: credentials expiring at %s handed out", now, c.Expires)
		}
		if err != nil && good {
			t.Fatalf("at %s: error %v while the credentials were good", now, err)
		}
	}
	// A failing episode warns once, not on every attempt.
	if n := strings.Count(logs.String(), "level=WARN"); n != 1 {
		t.Errorf("%d warnings, want 1:\n%s", n, logs.String())
	}
	// Once the service is back, credentials come back.
	srv.fail.Store(false)
	if c, err := p.Retrieve(ctx); err != nil || !c.Expires.After(clock.Now()) {
		t.Fatalf("after recovery: %v", err)
	}
}

func TestProviderOneCallForConcurrentCallers(t *testing.T) {
	clock := &fakeClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	release := make(chan struct{})
	var calls atomic.Int64
	srv := &sessionServer{lifetime: time.Hour}
	srv.fakeServer = newFakeServer(t, func(*requestSeen) (int, string, string) {
		calls.Add(1)
		<-release
		return 201, "", sessionJSON(1, clock.Now().Add(time.Hour))
	})
	p := newTestProvider(t, srv, clock, nil)

	const callers = 100
	var started, done sync.WaitGroup
	keys := make(chan string, callers)
	for range callers {
		started.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			started.Done()
			c, err := p.Retrieve(context.Background())
			if err != nil {
				t.Error(err)
			}
			keys <- c.AccessKeyID
		}()
	}
	started.Wait()
	close(release)
	done.Wait()
	close(keys)
	for k := range keys {
		if k != "ASIAFAKE1" {
			t.Fatalf("a caller got %q", k)
		}
	}
	if calls.Load() != 1 {
		t.Fatalf("%d CreateSession calls for %d callers, want 1", calls.Load(), callers)
	}
}

func TestProviderCallerContext(t *testing.T) {
	clock := &fakeClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	release := make(chan struct{})
	srv := &sessionServer{lifetime: time.Hour}
	srv.fakeServer = newFakeServer(t, func(*requestSeen) (int, string, string) {
		<-release
		return 201, "", sessionJSON(1, clock.Now().Add(time.Hour))
	})
	p := newTestProvider(t, srv, clock, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.Retrieve(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want the caller's cancellation", err)
	}
	// The refresh it started goes on for the other callers.
	close(release)
	if c, err := p.Retrieve(context.Background()); err != nil || c.AccessKeyID != "ASIAFAKE1" {
		t.Fatalf("%v %v", c.AccessKeyID, err)
	}
}

// TestProviderForWeeks runs three weeks of one-hour sessions on the fake
// clock, a Retrieve a minute: credentials are always valid and refreshed
// once per session.
func TestProviderForWeeks(t *testing.T) {
	clock := &fakeClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	srv := newSessionServer(t, clock, time.Hour)
	var logs bytes.Buffer
	p := newTestProvider(t, srv, clock, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo})))
	const span = 21 * 24 * time.Hour
	for elapsed := time.Duration(0); elapsed < span; elapsed += time.Minute {
		c, err := p.Retrieve(context.Background())
		if err != nil {
			t.Fatalf("at %s: %v", elapsed, err)
		}
		if left := c.Expires.Sub(clock.Now()); left < RefreshWindow-time.Minute {
			t.Fatalf("at %s: credentials expire in %s", elapsed, left)
		}
		settle(p)
		clock.Advance(time.Minute)
	}
	// Refreshes happen 52.5 to 55 minutes into each hour-long session.
	sessions := int64(span / (52*time.Minute + 30*time.Second))
	if n := srv.calls.Load(); n < int64(span/(55*time.Minute)) || n > sessions+1 {
		t.Errorf("%d CreateSession calls in %s", n, span)
	}
	// The identity is logged once at Info; refreshes only at Debug.
	if n := strings.Count(logs.String(), "credentials obtained"); n != 1 ||
		!strings.Contains(logs.String(), "identity=arn:aws:sts::123456789012:assumed-role/reader/web-01") {
		t.Errorf("log:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), "SENTINEL") {
		t.Errorf("a secret reached the log:\n%s", logs.String())
	}
}

func TestRefreshTime(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		lifetime     time.Duration
		earliest     time.Duration // before expiry
		latest       time.Duration // before expiry
		wantDistinct bool
	}{
		{time.Hour, 7*time.Minute + 30*time.Second, 5 * time.Minute, true},
		{15 * time.Minute, 7*time.Minute + 30*time.Second, 5 * time.Minute, true},
		{20 * time.Second, 15 * time.Second, 10 * time.Second, true},
	}
	for _, tt := range tests {
		exp := now.Add(tt.lifetime)
		seen := map[time.Time]bool{}
		for range 200 {
			r := refreshTime(now, exp)
			seen[r] = true
			if r.Before(exp.Add(-tt.earliest)) || r.After(exp.Add(-tt.latest)) {
				t.Fatalf("lifetime %s: refresh %s before expiry, want %s to %s", tt.lifetime, exp.Sub(r), tt.latest, tt.earliest)
			}
		}
		if len(seen) < 100 {
			t.Errorf("lifetime %s: %d distinct refresh times in 200: no jitter", tt.lifetime, len(seen))
		}
	}
}
