package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/rolesenv/rolesenv/inject"
	"github.com/rolesenv/rolesenv/internal/testenv"
)

// connServer is an HTTPS test server that counts the connections it
// accepts and closes.
type connServer struct {
	*httptest.Server
	opened, closed atomic.Int64
	closedC        chan struct{}
}

func newConnServer(t *testing.T, h http.HandlerFunc) *connServer {
	t.Helper()
	cs := &connServer{closedC: make(chan struct{}, 100)}
	cs.Server = httptest.NewUnstartedServer(h)
	cs.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			cs.opened.Add(1)
		case http.StateClosed:
			cs.closed.Add(1)
			cs.closedC <- struct{}{}
		}
	}
	cs.StartTLS()
	t.Cleanup(cs.Close)
	return cs
}

// transport is the SDK's default transport trusting the test server.
func (cs *connServer) transport() *http.Transport {
	roots := cs.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	return awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		tr.Proxy = nil
		tr.TLSClientConfig.RootCAs = roots
	}).GetTransport()
}

func (cs *connServer) addr() string { return cs.Listener.Addr().String() }

// waitDials waits until every dial ahead has ended.
func waitDials(t *testing.T, w *warmConns) {
	t.Helper()
	w.mu.Lock()
	var ds []*warmDial
	for _, l := range w.pending {
		ds = append(ds, l...)
	}
	w.mu.Unlock()
	for _, d := range ds {
		select {
		case <-d.done:
		case <-time.After(10 * time.Second):
			t.Fatal("a dial ahead did not end")
		}
	}
}

// TestWarmConnsTaken: requests made while connections dialled ahead exist
// take them: the server sees no other connection.
func TestWarmConnsTaken(t *testing.T) {
	const n = 3
	var arrived sync.WaitGroup
	arrived.Add(n)
	all := make(chan struct{})
	go func() { arrived.Wait(); close(all) }()
	cs := newConnServer(t, func(w http.ResponseWriter, r *http.Request) {
		// Hold every request until all have arrived, so that each needs
		// a connection of its own.
		arrived.Done()
		select {
		case <-all:
		case <-time.After(10 * time.Second):
		}
		io.WriteString(w, "ok")
	})
	tr := cs.transport()
	defer tr.CloseIdleConnections()
	w := &warmConns{pending: map[string][]*warmDial{}}
	w.install(tr)
	w.warm(context.Background(), cs.addr(), n)
	waitDials(t, w)
	if got := cs.opened.Load(); got != n {
		t.Fatalf("%d connections after dialling %d ahead", got, n)
	}
	client := &http.Client{Transport: tr}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			resp, err := client.Get(cs.URL)
			if err != nil {
				errs <- err
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := cs.opened.Load(); got != n {
		t.Errorf("%d connections for %d requests with %d dialled ahead; want no new one", got, n, n)
	}
	if got := w.count(); got != 0 {
		t.Errorf("%d connections dialled ahead left over", got)
	}
}

// TestWarmConnsReleased: what no request took is closed by release, and
// the connection a request used stays for the next.
func TestWarmConnsReleased(t *testing.T) {
	cs := newConnServer(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	tr := cs.transport()
	defer tr.CloseIdleConnections()
	w := &warmConns{pending: map[string][]*warmDial{}}
	w.install(tr)
	w.warm(context.Background(), cs.addr(), 2)
	waitDials(t, w)
	resp, err := (&http.Client{Transport: tr}).Get(cs.URL)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	w.release()
	select {
	case <-cs.closedC:
	case <-time.After(10 * time.Second):
		t.Fatal("the unused connection was not closed")
	}
	if got := cs.closed.Load(); got != 1 {
		t.Errorf("%d connections closed, want the unused one only", got)
	}
	// The used one is still there: a second request opens nothing.
	resp, err = (&http.Client{Transport: tr}).Get(cs.URL)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if got := cs.opened.Load(); got != 2 {
		t.Errorf("%d connections opened, want 2", got)
	}
}

// dropFirst closes the first connection it accepts at once.
type dropFirst struct {
	net.Listener
	once sync.Once
}

func (l *dropFirst) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		dropped := false
		l.once.Do(func() { c.Close(); dropped = true })
		if !dropped {
			return c, nil
		}
	}
}

// TestWarmConnsFallback: a dial ahead that failed makes the request dial
// as it would have.
func TestWarmConnsFallback(t *testing.T) {
	cs := &connServer{closedC: make(chan struct{}, 100)}
	cs.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	cs.Listener = &dropFirst{Listener: cs.Listener}
	cs.StartTLS()
	t.Cleanup(cs.Close)
	tr := cs.transport()
	defer tr.CloseIdleConnections()
	w := &warmConns{pending: map[string][]*warmDial{}}
	w.install(tr)
	w.warm(context.Background(), cs.addr(), 1)
	waitDials(t, w)
	if d := w.pending[cs.addr()][0]; d.err == nil {
		t.Fatal("the dial ahead to a listener that drops it succeeded")
	}
	resp, err := (&http.Client{Transport: tr}).Get(cs.URL)
	if err != nil {
		t.Fatalf("request after a failed dial ahead: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "ok" {
		t.Errorf("body %q", body)
	}
}

func fetches(svc inject.Service, region, stage string, n int) []inject.Fetch {
	var out []inject.Fetch
	for i := range n {
		f := inject.Fetch{Service: svc, Region: region, ID: string(rune('a'+i%26)) + string(rune('a'+i/26))}
		if svc == inject.SecretsManager {
			f.Stage = stage
		}
		out = append(out, f)
	}
	return out
}

// plan is a plan of one call of Secrets Manager in us-east-1.
func plan(op string, n int) inject.Plan {
	return inject.Plan{Calls: []inject.Call{{Service: inject.SecretsManager, Region: "us-east-1", Operation: op, Requests: n}},
		InFlight: inject.DefaultParallel}
}

// TestPreconnectFollowsPlan: the connections opened ahead are the plan's
// requests, counted per endpoint as the SDK resolves it, never more than
// the plan has in flight at once.
func TestPreconnectFollowsPlan(t *testing.T) {
	testenv.IsolateAWS(t)
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", "https://sm.example.test:8443")
	t.Setenv("AWS_ENDPOINT_URL_SSM", "https://ssm.example.test")
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	const sm, ps = "sm.example.test:8443", "ssm.example.test:443"
	mixed := inject.Plan{InFlight: inject.DefaultParallel, Calls: []inject.Call{
		{Service: inject.SecretsManager, Region: "us-east-1", Operation: "GetSecretValue", Requests: 2},
		{Service: inject.SecretsManager, Region: "us-east-1", Operation: "BatchGetSecretValue", Requests: 3},
		{Service: inject.ParameterStore, Region: "us-east-1", Operation: "GetParameters", Requests: 2},
	}}
	narrow := plan("GetSecretValue", 6)
	narrow.InFlight = 4
	cat := func(ls ...[]inject.Fetch) []inject.Fetch {
		var out []inject.Fetch
		for _, l := range ls {
			out = append(out, l...)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		plan inject.Plan
		want map[string]int
	}{
		{"no calls", inject.Plan{InFlight: inject.DefaultParallel}, map[string]int{}},
		{"5 requests", plan("GetSecretValue", 5), map[string]int{sm: 5}},
		{"3 batches", plan("BatchGetSecretValue", 3), map[string]int{sm: 3}},
		{"calls to one endpoint add up", mixed, map[string]int{sm: 5, ps: 2}},
		{"200 requests: at most 10 at once", plan("GetSecretValue", 200), map[string]int{sm: 10}},
		{"the plan's bound in flight", narrow, map[string]int{sm: 4}},
		// The resolver's own plan of 50 AWSCURRENT secrets, 2 pinned and
		// 12 parameters: 3 batches and 2 GetSecretValue, 2 GetParameters.
		{"a resolver's plan", (&inject.Resolver{Config: cfg}).Plan(cat(
			fetches(inject.SecretsManager, "", "AWSCURRENT", 50),
			fetches(inject.SecretsManager, "", "AWSPREVIOUS", 2),
			fetches(inject.ParameterStore, "", "", 12))), map[string]int{sm: 5, ps: 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := connsPerAddr(context.Background(), cfg, tc.plan)
			if len(got) != len(tc.want) {
				t.Fatalf("connections %v, want %v", got, tc.want)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("connections %v, want %v", got, tc.want)
				}
			}
		})
	}

	// Without endpoint settings: the regional endpoints, by the SDK's
	// rules, for each region of the plan.
	t.Setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", "")
	t.Setenv("AWS_ENDPOINT_URL_SSM", "")
	cfg, err = config.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	two := plan("GetSecretValue", 2)
	two.Calls = append(two.Calls, inject.Call{Service: inject.SecretsManager, Region: "eu-west-1", Operation: "GetSecretValue", Requests: 1})
	got := connsPerAddr(context.Background(), cfg, two)
	want := map[string]int{"secretsmanager.us-east-1.amazonaws.com:443": 2, "secretsmanager.eu-west-1.amazonaws.com:443": 1}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("connections %v, want %v", got, want)
		}
	}

	// FIPS, as the client resolves it from the environment.
	t.Setenv("AWS_USE_FIPS_ENDPOINT", "true")
	cfg, err = config.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got = connsPerAddr(context.Background(), cfg, plan("GetSecretValue", 1))
	if want := "secretsmanager-fips.us-east-1.amazonaws.com:443"; got[want] != 1 {
		t.Errorf("with AWS_USE_FIPS_ENDPOINT: connections %v, want %s", got, want)
	}
}

// countingHandler records how many connections preconnect said it
// dialled ahead.
type countingHandler struct{ n *atomic.Int64 }

func (h countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h countingHandler) Handle(_ context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "connections" {
			h.n.Add(a.Value.Int64())
		}
		return true
	})
	return nil
}
func (h countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h countingHandler) WithGroup(string) slog.Handler      { return h }

// TestPreconnectBehindProxy: an endpoint reached through a proxy is not
// dialled ahead (the transport tunnels through the proxy and never calls
// DialTLSContext); without the proxy it is.
func TestPreconnectBehindProxy(t *testing.T) {
	proxyURL, _ := url.Parse("http://127.0.0.1:9")
	for _, tc := range []struct {
		name  string
		proxy func(*http.Request) (*url.URL, error)
		want  int64
	}{
		{"direct", nil, 3},
		{"proxied", http.ProxyURL(proxyURL), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var n atomic.Int64
			a := &app{log: slog.New(countingHandler{&n})}
			cfg := aws.Config{
				Region: "us-east-1",
				// A closed loopback port: the dials ahead fail at once.
				BaseEndpoint: aws.String("https://127.0.0.1:1"),
				HTTPClient:   awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) { tr.Proxy = tc.proxy }),
			}
			_, release := a.preconnect(context.Background(), cfg, plan("GetSecretValue", 3))
			release()
			if got := n.Load(); got != tc.want {
				t.Errorf("%d connections dialled ahead, want %d", got, tc.want)
			}
		})
	}
}

// TestPreconnectOtherClient: an HTTP client that is not the SDK's is left
// alone.
func TestPreconnectOtherClient(t *testing.T) {
	a := &app{log: slog.New(slog.DiscardHandler)}
	hc := &http.Client{}
	cfg, release := a.preconnect(context.Background(), aws.Config{HTTPClient: hc}, plan("GetSecretValue", 3))
	defer release()
	if cfg.HTTPClient != hc {
		t.Error("a client that is not the SDK's was replaced")
	}
}
