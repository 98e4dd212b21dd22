package testenv

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"
)

// Toxi is a Toxiproxy server running in the test process, with one proxy
// in front of one upstream. Its toxics act on the answers (the downstream
// stream): what a client sees when the network to AWS misbehaves.
type Toxi struct {
	// Addr is where the proxy listens: 127.0.0.1:PORT.
	Addr string

	t testing.TB
	p *toxiproxy.Proxy
}

// StartToxiproxy starts a proxy on a free loopback port in front of
// upstream (host:port). It runs in the test process (no toxiproxy-server
// binary, no API port) and stops when the test ends.
func StartToxiproxy(t testing.TB, upstream string) *Toxi {
	t.Helper()
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	p := toxiproxy.NewProxy(srv, "aws", "127.0.0.1:0", upstream)
	if err := srv.Collection.Add(p, true); err != nil {
		t.Fatalf("failed to start the proxy in front of %s: %v", upstream, err)
	}
	t.Cleanup(func() { _ = srv.Collection.Clear() })
	return &Toxi{Addr: p.Listen, t: t, p: p}
}

// Add adds a toxic of type typ (Toxiproxy's names: "latency", "timeout",
// "reset_peer", "bandwidth", ...) to the answers, with its attributes.
// The test fails if Toxiproxy refuses it.
func (x *Toxi) Add(name, typ string, attrs map[string]int64) {
	x.t.Helper()
	js, err := json.Marshal(struct {
		Name       string           `json:"name"`
		Type       string           `json:"type"`
		Stream     string           `json:"stream"`
		Attributes map[string]int64 `json:"attributes"`
	}{name, typ, "downstream", attrs})
	if err != nil {
		x.t.Fatal(err)
	}
	if _, err := x.p.Toxics.AddToxicJson(strings.NewReader(string(js))); err != nil {
		x.t.Fatalf("failed to add the toxic %s: %v", name, err)
	}
}

// Remove removes the toxic called name; connections flow again.
func (x *Toxi) Remove(name string) {
	x.t.Helper()
	if err := x.p.Toxics.RemoveToxic(context.Background(), name); err != nil {
		x.t.Fatalf("failed to remove the toxic %s: %v", name, err)
	}
}

// Latency delays every answer by d (whole milliseconds).
func (x *Toxi) Latency(name string, d time.Duration) {
	x.t.Helper()
	x.Add(name, "latency", map[string]int64{"latency": d.Milliseconds()})
}

// Stall lets no answer through and keeps connections open: a client
// waits until its own deadline.
func (x *Toxi) Stall(name string) {
	x.t.Helper()
	x.Add(name, "timeout", map[string]int64{"timeout": 0})
}

// ResetPeer resets a connection (TCP RST) as soon as an answer comes.
func (x *Toxi) ResetPeer(name string) {
	x.t.Helper()
	x.Add(name, "reset_peer", map[string]int64{"timeout": 0})
}
