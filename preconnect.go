package main

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/rolesenv/rolesenv/inject"
	"github.com/rolesenv/rolesenv/internal/sysroots"
)

// Start-up latency: work that can overlap the waits of start-up
// resolution (BENCHMARKS.md has the numbers).
//
// The AWS SDK signs a request before it connects, and signing needs the
// credentials. With Roles Anywhere, the connections to Secrets Manager and
// Parameter Store would therefore be opened only after CreateSession has
// answered: CreateSession's handshakes and round trip, then the services'
// handshakes, then the fetch. preconnect opens the services' connections
// while CreateSession is in flight and hands them to the SDK's transport,
// so that Roles Anywhere costs one round trip more than static
// credentials, not two or three.
//
// The first TLS handshake also verifies a certificate against the
// system's roots. crypto/x509 would load and parse all of them on first
// use, about 20 ms of CPU in a fresh process, more than anything else
// rolesenv does at start-up; internal/sysroots indexes them by subject
// instead (about a quarter of that) and parses only the roots a server's
// chain names. warmRoots starts that index in the background as soon as
// rolesenv knows that a connection will need it, so that it overlaps
// connection set-up instead of following the server's first answer:
// before the AWS configuration is loaded when Roles Anywhere is called
// over HTTPS, else here, when the plan's endpoints are known. A start
// whose endpoints are all plain HTTP, or whose TLS trusts a CA bundle
// alone (AWS_CA_BUNDLE, ca_bundle), never reads them.
//
// Neither changes what is trusted or sent. Connections are made with the
// transport's own dialer, TLS configuration and handshake timeout, and
// verified as crypto/tls would; one that no request takes is closed when
// start-up resolution ends; a pre-connection that fails only means that
// the request dials as it would have. Behind a proxy, or with an HTTP
// client that is not the SDK's own, preconnect dials nothing, and
// crypto/tls verifies the proxied connections itself.

// warmRoots starts indexing the system's root certificates in the
// background, once per process. The caller knows that a TLS connection to
// what (a service) will verify a certificate against them.
func (a *app) warmRoots(what string) {
	a.log.Debug("loading the system's root certificates ahead", "for", what)
	sysroots.Warm()
}

// rolesAnywhereTLS reports whether CreateSession will verify a server
// certificate against the system's roots: its endpoint is HTTPS (the
// default) and AWS_CA_BUNDLE does not replace them.
func (a *app) rolesAnywhereTLS(cf *credFlags) bool {
	if a.getenv("AWS_CA_BUNDLE") != "" {
		return false
	}
	ep := a.rolesAnywhereEndpoint(cf)
	return ep == "" || !strings.HasPrefix(strings.ToLower(ep), "http://")
}

// maxWarm bounds the connections opened ahead, whatever the plan.
const maxWarm = 2 * inject.DefaultParallel

// preconnect starts opening the connections that the resolver's first
// round will use, as its plan says. It returns cfg with an HTTP client that
// takes them, and a function that closes those left unused (call it when
// start-up resolution is over). Its signature is inject.LoadOptions'
// Prepare.
func (a *app) preconnect(ctx context.Context, cfg aws.Config, p inject.Plan) (aws.Config, func()) {
	if cfg.HTTPClient == nil {
		// What each service client would make for itself. One shared
		// transport still keeps a pool of connections per host.
		cfg.HTTPClient = awshttp.NewBuildableClient()
	}
	bc, ok := cfg.HTTPClient.(*awshttp.BuildableClient)
	if !ok || bc == nil {
		return cfg, func() {}
	}
	w := &warmConns{pending: map[string][]*warmDial{}}
	var proxy func(*http.Request) (*url.URL, error)
	systemRoots := true
	cfg.HTTPClient = bc.WithTransportOptions(func(tr *http.Transport) {
		proxy = tr.Proxy
		systemRoots = tr.TLSClientConfig == nil || tr.TLSClientConfig.RootCAs == nil
		w.install(tr)
	})
	conns := connsPerAddr(ctx, cfg, p)
	if len(conns) > 0 && systemRoots {
		a.warmRoots("services")
	}
	addrs := make([]string, 0, len(conns))
	for addr := range conns {
		addrs = append(addrs, addr)
	}
	sort.Strings(addrs)
	left := maxWarm
	for _, addr := range addrs {
		if proxy != nil {
			// A proxied request tunnels through the proxy; the transport
			// does not call DialTLSContext for it.
			if u, _ := proxy(&http.Request{URL: &url.URL{Scheme: "https", Host: addr}}); u != nil {
				continue
			}
		}
		n := min(conns[addr], left)
		w.warm(ctx, addr, n)
		left -= n
	}
	if n := w.count(); n > 0 {
		a.log.Debug("connecting to the services while the credentials are obtained", "connections", n)
	}
	return cfg, w.release
}

// connsPerAddr is how many connections the plan's requests need at each
// endpoint address (host:port): one per request, at most as many as the
// plan has in flight at once.
func connsPerAddr(ctx context.Context, cfg aws.Config, p inject.Plan) map[string]int {
	out := map[string]int{}
	for _, c := range p.Calls {
		if addr := endpointAddr(ctx, cfg, c.Service, c.Region); addr != "" && c.Requests > 0 {
			out[addr] = min(out[addr]+c.Requests, p.InFlight)
		}
	}
	return out
}

// endpointAddr is the host:port that the SDK's client of svc in region
// sends to, as that client's endpoint resolver says, with the parameters
// the client binds from its own options (service-specific endpoint
// variables, FIPS and dual-stack settings from the environment and the
// profile); "" when it cannot tell or the endpoint is not HTTPS.
func endpointAddr(ctx context.Context, cfg aws.Config, svc inject.Service, region string) string {
	var u url.URL
	switch svc {
	case inject.SecretsManager:
		o := secretsmanager.NewFromConfig(cfg, func(o *secretsmanager.Options) { o.Region = region }).Options()
		ep, err := o.EndpointResolverV2.ResolveEndpoint(ctx, secretsmanager.EndpointParameters{
			Region: aws.String(region), Endpoint: o.BaseEndpoint,
			UseFIPS:      aws.Bool(o.EndpointOptions.UseFIPSEndpoint == aws.FIPSEndpointStateEnabled),
			UseDualStack: aws.Bool(o.EndpointOptions.UseDualStackEndpoint == aws.DualStackEndpointStateEnabled)})
		if err != nil {
			return ""
		}
		u = ep.URI
	case inject.ParameterStore:
		o := ssm.NewFromConfig(cfg, func(o *ssm.Options) { o.Region = region }).Options()
		ep, err := o.EndpointResolverV2.ResolveEndpoint(ctx, ssm.EndpointParameters{
			Region: aws.String(region), Endpoint: o.BaseEndpoint,
			UseFIPS:      aws.Bool(o.EndpointOptions.UseFIPSEndpoint == aws.FIPSEndpointStateEnabled),
			UseDualStack: aws.Bool(o.EndpointOptions.UseDualStackEndpoint == aws.DualStackEndpointStateEnabled)})
		if err != nil {
			return ""
		}
		u = ep.URI
	default:
		return ""
	}
	if u.Scheme != "https" || u.Hostname() == "" {
		return ""
	}
	port := u.Port()
	if port == "" {
		port = "443"
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// warmConns hands connections dialled ahead to an http.Transport, through
// its DialTLSContext.
type warmConns struct {
	mu      sync.Mutex
	pending map[string][]*warmDial // by address, oldest first
	dial    func(ctx context.Context, network, addr string) (net.Conn, error)
}

// warmDial is one connection dialled ahead; done closes when the dial
// ended, with conn or err.
type warmDial struct {
	done chan struct{}
	conn net.Conn
	err  error
}

// warmTimeout bounds a dial ahead, as the SDK's dialer bounds its own.
const warmTimeout = 30 * time.Second

// install makes tr dial TLS through w: with tr's own dialer, a copy of
// its TLS configuration (with the protocols it would offer) and its
// handshake timeout, as sysroots.ForTransport does: as they are when this
// option runs, after those of the configuration (AWS_CA_BUNDLE's roots
// are in the copy) but before a service client's own (the timeouts of a
// defaults mode are not).
func (w *warmConns) install(tr *http.Transport) {
	w.dial = sysroots.ForTransport(tr).DialTLSContext
	tr.DialTLSContext = w.dialTLS
}

// warm starts n dials to addr. They outlive ctx's cancellation (release
// closes what is not taken) but not its values.
func (w *warmConns) warm(ctx context.Context, addr string, n int) {
	ctx = context.WithoutCancel(ctx)
	for range n {
		d := &warmDial{done: make(chan struct{})}
		w.mu.Lock()
		w.pending[addr] = append(w.pending[addr], d)
		w.mu.Unlock()
		go func() {
			dctx, cancel := context.WithTimeout(ctx, warmTimeout)
			defer cancel()
			d.conn, d.err = w.dial(dctx, "tcp", addr)
			close(d.done)
		}()
	}
}

func (w *warmConns) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, l := range w.pending {
		n += len(l)
	}
	return n
}

// dialTLS takes a connection dialled ahead to addr if there is one
// (waiting for it if its handshake is under way), else dials.
func (w *warmConns) dialTLS(ctx context.Context, network, addr string) (net.Conn, error) {
	w.mu.Lock()
	var d *warmDial
	if l := w.pending[addr]; len(l) > 0 && network == "tcp" {
		d, w.pending[addr] = l[0], l[1:]
	}
	w.mu.Unlock()
	if d != nil {
		select {
		case <-d.done:
			if d.err == nil {
				return d.conn, nil
			}
		case <-ctx.Done():
			closeWhenDone(d)
			return nil, ctx.Err()
		}
	}
	return w.dial(ctx, network, addr)
}

// release closes the connections dialled ahead that no request took.
// Later dials go straight to the network.
func (w *warmConns) release() {
	w.mu.Lock()
	left := w.pending
	w.pending = map[string][]*warmDial{}
	w.mu.Unlock()
	for _, l := range left {
		for _, d := range l {
			closeWhenDone(d)
		}
	}
}

func closeWhenDone(d *warmDial) {
	go func() {
		<-d.done
		if d.conn != nil {
			d.conn.Close()
		}
	}()
}
