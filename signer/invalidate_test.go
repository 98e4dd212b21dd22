package signer

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// retrieveAll calls Retrieve from n goroutines at once and returns the
// access key ids they got.
func retrieveAll(t *testing.T, p aws.CredentialsProvider, n int) map[string]int {
	t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	keys := map[string]int{}
	for range n {
		wg.Go(func() {
			c, err := p.Retrieve(context.Background())
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			keys[c.AccessKeyID]++
			mu.Unlock()
		})
	}
	wg.Wait()
	return keys
}

// TestEmulatorInvalidate: credentials AWS no longer accepts are replaced
// after Invalidate, with one CreateSession for every concurrent caller,
// and are never handed out again.
func TestEmulatorInvalidate(t *testing.T) {
	e := startEmulator(t)
	c, err := NewClient(testIdentity(t), e.config())
	if err != nil {
		t.Fatal(err)
	}
	p := NewProvider(c, ProviderOptions{})
	old, err := p.Retrieve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	e.callerIdentity(t, p)

	// AWS refuses the session long before its expiry; the provider cannot
	// know and keeps handing it out.
	e.ExpireCredentials()
	client := sts.New(sts.Options{Region: "us-east-1", Credentials: p, BaseEndpoint: aws.String(e.URL()), HTTPClient: caClient(t, e.CAPEM())})
	if _, err := client.GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{}); err == nil || !strings.Contains(err.Error(), "ExpiredToken") {
		t.Fatalf("GetCallerIdentity with expired credentials: %v, want ExpiredToken", err)
	}
	if again, _ := p.Retrieve(context.Background()); again.AccessKeyID != old.AccessKeyID {
		t.Fatalf("credentials replaced without Invalidate")
	}

	e.ResetCalls()
	p.Invalidate()
	keys := retrieveAll(t, p, 50)
	if len(keys) != 1 || keys[old.AccessKeyID] != 0 {
		t.Fatalf("after Invalidate, callers got %v; want one new key, not %s", keys, old.AccessKeyID)
	}
	if n := e.Calls(opCreateSession); n != 1 {
		t.Errorf("%d CreateSession calls for 50 callers after Invalidate, want 1", n)
	}
	e.callerIdentity(t, p)
}

// A refresh under way when Invalidate is called is not cancelled: its
// caller gets its answer. But the provider does not keep it, and the next
// caller starts a CreateSession of its own.
func TestProviderInvalidateDuringRefresh(t *testing.T) {
	clock := &fakeClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	entered, release := make(chan struct{}), make(chan struct{})
	srv := &sessionServer{lifetime: time.Hour}
	srv.fakeServer = newFakeServer(t, func(*requestSeen) (int, string, string) {
		n := srv.calls.Load()
		if n == 1 {
			close(entered)
			<-release
		}
		return 201, "", sessionJSON(n, clock.Now().Add(time.Hour))
	})
	p := newTestProvider(t, srv, clock, nil)

	first := make(chan string)
	go func() {
		c, err := p.Retrieve(context.Background())
		if err != nil {
			t.Error(err)
		}
		first <- c.AccessKeyID
	}()
	<-entered
	p.Invalidate()
	if c, err := p.Retrieve(context.Background()); err != nil || c.AccessKeyID != "ASIAFAKE2" {
		t.Fatalf("after Invalidate: %q, %v; want a new CreateSession's ASIAFAKE2", c.AccessKeyID, err)
	}
	close(release)
	if k := <-first; k != "ASIAFAKE1" {
		t.Errorf("the caller of the refresh under way got %q, want its ASIAFAKE1", k)
	}
	if c, err := p.Retrieve(context.Background()); err != nil || c.AccessKeyID != "ASIAFAKE2" {
		t.Errorf("later: %q, %v; want ASIAFAKE2 kept, not the older refresh's answer", c.AccessKeyID, err)
	}
	if n := srv.calls.Load(); n != 2 {
		t.Errorf("%d CreateSession calls, want 2", n)
	}
}

// Invalidated credentials are not handed out again, even while nothing
// can replace them.
func TestProviderInvalidateWhileFailing(t *testing.T) {
	clock := &fakeClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	srv := newSessionServer(t, clock, time.Hour)
	p := newTestProvider(t, srv, clock, nil)
	if _, err := p.Retrieve(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv.fail.Store(true)
	p.Invalidate()
	for range 3 {
		var apiErr *APIError
		if c, err := p.Retrieve(context.Background()); !errors.As(err, &apiErr) {
			t.Fatalf("got %q, %v; want CreateSession's error", c.AccessKeyID, err)
		}
	}
	srv.fail.Store(false)
	if c, err := p.Retrieve(context.Background()); err != nil || c.AccessKeyID == "ASIAFAKE1" {
		t.Fatalf("after recovery: %q, %v", c.AccessKeyID, err)
	}
}
