package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/rolesenv/rolesenv/inject"
	"github.com/rolesenv/rolesenv/internal/devpki"
	"github.com/rolesenv/rolesenv/signer"
)

// The fleet: many simulated instances in this process, each with its own
// certificate, Roles Anywhere client, credentials, SDK HTTP client and
// connections, resolving the same template as a rolesenv would (the inject
// Resolver) and then watching it (inject's Source.Watch), against the
// emulator with AWS's default quotas.

// sizeFleet is the fleet's template: ten secrets and two parameters, one
// GetParameters call.
var sizeFleet = size{"fleet 10+2", 10, 2}

// fleetStartTimeout is rolesenv's default --timeout.
const fleetStartTimeout = 30 * time.Second

// Quotas: AWS's documented defaults per account and region (requests a
// second). Roles Anywhere documents 10 CreateSession requests a second,
// adjustable; raisedSessionTPS is the assumption of the second start: an
// increase of the kind AWS grants on request (it documents no maximum),
// ten times the default.
const (
	documentedSessionTPS = 10
	raisedSessionTPS     = 100
)

var awsQuotas = map[string]float64{
	opGet:      10000,
	opBatch:    100,
	opDescribe: 40000,
	opParams:   40,
	opParam:    40,
}

// setQuotas sets AWS's documented quotas times scale, and CreateSession's
// at sessionTPS; 0 and 0 remove them all.
func (b *bench) setQuotas(scale, sessionTPS float64) error {
	for op, tps := range awsQuotas {
		if err := b.emu.setQuota(op, tps*scale); err != nil {
			return err
		}
	}
	return b.emu.setQuota(opSession, sessionTPS)
}

// checkSpread mirrors rolesenv run's checkSpread (cmd_run.go, package
// main of the module, which the harness cannot import): a scheduled check
// spaces its calls over a tenth of the interval, at most 10 s.
func checkSpread(interval time.Duration) time.Duration {
	return min(interval/10, 10*time.Second)
}

// recorder counts requests per simulated second of a scaled clock, as
// they are sent, and as the watches' timers schedule them.
type recorder struct {
	clock    atomic.Pointer[scaledClock]
	buckets  []atomic.Int64
	late     atomic.Int64 // requests past the last bucket
	schedule []atomic.Int64
}

func newRecorder(seconds int) *recorder {
	return &recorder{buckets: make([]atomic.Int64, seconds), schedule: make([]atomic.Int64, seconds)}
}

// scheduled records k calls due at due (simulated time since the start).
func (r *recorder) scheduled(due time.Duration, k int) {
	if i := int(due / time.Second); i >= 0 && i < len(r.schedule) {
		r.schedule[i].Add(int64(k))
	}
}

func (r *recorder) scheduleCounts() []int { return loadAll(r.schedule) }

func (r *recorder) record() {
	c := r.clock.Load()
	if c == nil {
		return
	}
	i := int(c.simSince(time.Now()) / time.Second)
	if i >= 0 && i < len(r.buckets) {
		r.buckets[i].Add(1)
	} else {
		r.late.Add(1)
	}
}

func (r *recorder) counts() []int { return loadAll(r.buckets) }

func loadAll(cs []atomic.Int64) []int {
	out := make([]int, len(cs))
	for i := range cs {
		out[i] = int(cs[i].Load())
	}
	return out
}

// countingClient records each request before sending it.
type countingClient struct {
	inner aws.HTTPClient
	rec   *recorder
}

func (c countingClient) Do(r *http.Request) (*http.Response, error) {
	c.rec.record()
	return c.inner.Do(r)
}

// instance is one simulated rolesenv.
type instance struct {
	id       *signer.Identity
	gen      *generation
	cfg      aws.Config
	hc       interface{ CloseIdleConnections() }
	files    []inject.File
	src      *inject.Source // once started
	attempts int
}

// generation is one process of an instance: its Roles Anywhere client,
// credentials and connections. A start that fails ends its process, and
// with it what the start left running: the signer's refresh goes on in
// the background (throttled CreateSession is tried again until the
// refresh's own deadline, longer than --timeout), which a process that
// exits would not do. end cuts it off; a restart gets a new generation.
type generation struct {
	ended atomic.Bool
	tr    *http.Transport
	creds *credsSeen
}

// errEnded is what an ended generation's requests fail with.
var errEnded = errors.New("the process of this start has ended")

// endable sends requests until the generation ends.
type endable struct{ g *generation }

func (e endable) RoundTrip(r *http.Request) (*http.Response, error) {
	if e.g.ended.Load() {
		return nil, errEnded
	}
	return e.g.tr.RoundTrip(r)
}

func (g *generation) end() {
	g.ended.Store(true)
	g.tr.CloseIdleConnections()
}

// credsSeen remembers whether a start ever obtained credentials, to tell
// a start that timed out waiting for CreateSession from one that timed
// out later.
type credsSeen struct {
	p  aws.CredentialsProvider
	ok atomic.Bool
}

func (c *credsSeen) Retrieve(ctx context.Context) (aws.Credentials, error) {
	v, err := c.p.Retrieve(ctx)
	if err == nil {
		c.ok.Store(true)
	}
	return v, err
}

// newGeneration starts a process of inst: a Roles Anywhere client with a
// transport like the signer's own (trusting the emulator's CA), and a
// credential provider over it.
func (b *bench) newGeneration(inst *instance) error {
	g := &generation{tr: &http.Transport{
		TLSClientConfig:       &tls.Config{RootCAs: b.emu.pool, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          4,
		IdleConnTimeout:       90 * time.Second,
	}}
	client, err := signer.NewClient(inst.id, signer.Config{
		TrustAnchorARN: b.emu.TrustAnchorARN,
		ProfileARN:     b.emu.ProfileARN,
		RoleARN:        b.emu.RoleARN,
		Endpoint:       b.emu.URL,
		HTTPClient:     &http.Client{Transport: endable{g}},
	})
	if err != nil {
		return err
	}
	g.creds = &credsSeen{p: signer.NewProvider(client, signer.ProviderOptions{})}
	inst.gen, inst.cfg.Credentials = g, g.creds
	return nil
}

// fleetStart is one fleet start.
type fleetStart struct {
	name       string
	instances  int
	sessionTPS float64
	attempts   int // at most this many starts per instance

	failedFirst int            // instances whose first start failed
	failed      int            // instances that never started
	reasons     map[string]int // failure kinds of every failed start
	durations   sample         // successful starts, from their own start
	startedAt   sample         // successful starts, from the common start
	allStarted  time.Duration  // from the common start to the last success
	calls       counts
	cpuHarness  time.Duration
	cpuEmulator time.Duration
}

// fleetHour is the simulated hour of polling.
type fleetHour struct {
	instances     int
	scale         float64
	interval      time.Duration
	spread        time.Duration // a check's calls are spaced over this
	real          time.Duration
	calls         counts
	perSecond     []int // requests sent, per simulated second
	scheduled     []int // requests as the watches' timers place them
	late          int64
	warnings      int64 // failed checks (one warning per episode)
	changes       int64
	checksPerInst float64
	cpu           time.Duration // harness and emulator, over the hour
}

// newFleet makes n instances, each with its own leaf certificate signed by
// the trust anchor's CA.
func (b *bench) newFleet(n int, rec *recorder) ([]*instance, error) {
	caPEM, err := os.ReadFile(b.emu.CACertFile)
	if err != nil {
		return nil, err
	}
	caKey, err := os.ReadFile(b.emu.CAKeyFile)
	if err != nil {
		return nil, err
	}
	ca, err := devpki.Load(caPEM, caKey)
	if err != nil {
		return nil, err
	}
	fleet := make([]*instance, n)
	for i := range fleet {
		leaf, err := ca.Leaf(devpki.Options{CommonName: fmt.Sprintf("fleet-%04d", i), KeyType: devpki.P256})
		if err != nil {
			return nil, err
		}
		id, err := signer.NewIdentity(leaf.Cert, nil, leaf.Key)
		if err != nil {
			return nil, err
		}
		hc := b.sdkHTTPClient()
		inst := &instance{id: id, hc: hc.GetTransport(), cfg: aws.Config{
			Region:       "us-east-1",
			BaseEndpoint: aws.String(b.emu.URL),
			HTTPClient:   countingClient{inner: hc, rec: rec},
		}}
		if err := b.newGeneration(inst); err != nil {
			return nil, err
		}
		if inst.files, err = b.templateFiles(sizeFleet); err != nil {
			return nil, err
		}
		fleet[i] = inst
	}
	return fleet, nil
}

// failureKind names why a start failed: the call and the AWS error
// code, or the start-up deadline and whether credentials had come by
// then; never a value.
func failureKind(err error, gotCreds bool) string {
	deadline := errors.Is(err, context.DeadlineExceeded)
	if !gotCreds && deadline {
		// Even when the signer names the throttling that preceded it.
		return "deadline before credentials"
	}
	var api *signer.APIError
	if errors.As(err, &api) {
		return "CreateSession " + api.Code
	}
	if !gotCreds {
		return "no credentials"
	}
	var re *inject.ResolveError
	if errors.As(err, &re) {
		call := "GetSecretValue"
		if strings.HasPrefix(re.Ref, "ssm:") {
			call = "GetParameters"
		}
		switch {
		case re.Code != "":
			return call + " " + re.Code
		case deadline:
			return "deadline during " + call
		case re.Unavailable():
			return call + " unavailable"
		case re.AccessDenied():
			return call + " access denied"
		}
	}
	if deadline {
		return "start-up deadline"
	}
	return "other"
}

// startFleet starts every instance that has not started yet at once, and
// again (after restartDelay, as a service manager would) those that fail,
// up to attempts starts each.
func (b *bench) startFleet(ctx context.Context, fs *fleetStart, fleet []*instance, restartDelay time.Duration) error {
	fs.reasons = map[string]int{}
	if err := b.emu.resetCalls(); err != nil {
		return err
	}
	cpuH0, _ := readProc(os.Getpid())
	cpuE0, _ := readProc(b.emu.pid())
	var mu sync.Mutex
	var last time.Time
	var setupErr atomic.Pointer[error]
	gate := make(chan struct{})
	t0 := time.Now()
	var wg sync.WaitGroup
	for _, inst := range fleet {
		wg.Go(func() {
			<-gate
			for inst.src == nil && inst.attempts < fs.attempts {
				if inst.attempts > 0 {
					select {
					case <-ctx.Done():
						return
					case <-time.After(restartDelay):
					}
				}
				inst.attempts++
				sctx, cancel := context.WithTimeout(ctx, fleetStartTimeout)
				start := time.Now()
				src, err := load(sctx, inst.files, inst.cfg)
				cancel()
				took := time.Since(start)
				mu.Lock()
				if err != nil {
					fs.reasons[failureKind(err, inst.gen.creds.ok.Load())]++
					if inst.attempts == 1 {
						fs.failedFirst++
					}
				} else {
					inst.src = src
					fs.durations = append(fs.durations, took)
					last = time.Now()
					fs.startedAt = append(fs.startedAt, last.Sub(t0))
				}
				mu.Unlock()
				if err != nil {
					// The process ends; a restarted one has new
					// connections, a new Resolver and new credentials, and
					// the same certificate.
					inst.gen.end()
					inst.hc.CloseIdleConnections()
					if err := b.newGeneration(inst); err != nil {
						setupErr.CompareAndSwap(nil, &err)
						return
					}
				}
			}
		})
	}
	close(gate)
	wg.Wait()
	if e := setupErr.Load(); e != nil {
		return *e
	}
	if !last.IsZero() {
		fs.allStarted = last.Sub(t0)
	}
	for _, inst := range fleet {
		if inst.src == nil {
			fs.failed++
		}
	}
	cpuH1, _ := readProc(os.Getpid())
	cpuE1, _ := readProc(b.emu.pid())
	fs.cpuHarness, fs.cpuEmulator = cpuH1.cpu-cpuH0.cpu, cpuE1.cpu-cpuE0.cpu
	var err error
	fs.calls, err = b.emu.calls()
	return err
}

// warnCounter is a slog handler that counts warnings (a watch logs
// one per failed episode). It keeps no record's content.
type warnCounter struct{ n *atomic.Int64 }

func (h warnCounter) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (h warnCounter) Handle(context.Context, slog.Record) error {
	h.n.Add(1)
	return nil
}
func (h warnCounter) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h warnCounter) WithGroup(string) slog.Handler      { return h }

// pollHour runs every started instance's watch through a simulated hour
// on a clock scale times faster than real time, with the quotas scaled
// alike (so that requests per simulated second meet the real quotas; the
// token buckets' bursts scale too, which is more lenient than AWS).
func (b *bench) pollHour(ctx context.Context, fleet []*instance, rec *recorder, scale float64) (*fleetHour, error) {
	h := &fleetHour{scale: scale, interval: inject.DefaultInterval}
	h.spread = checkSpread(h.interval)
	if err := b.setQuotas(scale, documentedSessionTPS*scale); err != nil {
		return nil, err
	}
	if err := b.emu.resetCalls(); err != nil {
		return nil, err
	}
	var warns, changes atomic.Int64
	logger := slog.New(warnCounter{&warns})
	clock := newScaledClock(scale)
	// Every timer of a watch places calls: a check's timer its first
	// call, and with a spread each further call has a timer of its own
	// (the poll spaces them so); without one, the check's timer places
	// all of its calls.
	perTimer := 1
	if h.spread <= 0 {
		perTimer = callsPerCheck()
	}
	clock.onTimer = func(due time.Duration) { rec.scheduled(due, perTimer) }
	hctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var running []*instance
	for _, inst := range fleet {
		if inst.src != nil {
			running = append(running, inst)
		}
	}
	h.instances = len(running)
	cpuH0, _ := readProc(os.Getpid())
	cpuE0, _ := readProc(b.emu.pid())
	rec.clock.Store(clock)
	start := time.Now()
	for _, inst := range running {
		o := inject.WatchOptions{Interval: h.interval, Spread: h.spread, Clock: clock, Logger: logger}
		out := make(chan inject.Change)
		wg.Go(func() { _ = inst.src.Watch(hctx, o, out) })
		wg.Go(func() {
			for {
				select {
				case <-hctx.Done():
					return
				case <-out:
					changes.Add(1)
				}
			}
		})
	}
	select {
	case <-ctx.Done():
	case <-time.After(time.Duration(float64(time.Hour) / scale)):
	}
	cancel()
	wg.Wait()
	rec.clock.Store(nil)
	h.real = time.Since(start)
	h.perSecond = rec.counts()
	h.scheduled = rec.scheduleCounts()
	cpuH1, _ := readProc(os.Getpid())
	cpuE1, _ := readProc(b.emu.pid())
	h.cpu = cpuH1.cpu - cpuH0.cpu + cpuE1.cpu - cpuE0.cpu
	h.late = rec.late.Load()
	h.warnings, h.changes = warns.Load(), changes.Load()
	var err error
	if h.calls, err = b.emu.calls(); err != nil {
		return nil, err
	}
	if h.instances > 0 {
		h.checksPerInst = float64(h.calls.Calls[opDescribe]) / float64(sizeFleet.secrets) / float64(h.instances)
	}
	// Back to the real quotas.
	return h, b.setQuotas(1, documentedSessionTPS)
}

// closeFleet drops every instance's connections.
func closeFleet(fleet []*instance) {
	for _, inst := range fleet {
		inst.hc.CloseIdleConnections()
	}
}

// reasonsLine prints failure kinds, most frequent first.
func reasonsLine(m map[string]int) string {
	type kv struct {
		k string
		v int
	}
	var l []kv
	for k, v := range m {
		l = append(l, kv{k, v})
	}
	sort.Slice(l, func(i, j int) bool { return l[i].v > l[j].v || (l[i].v == l[j].v && l[i].k < l[j].k) })
	s := ""
	for i, e := range l {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%d %s", e.v, e.k)
	}
	if s == "" {
		return "none"
	}
	return s
}
