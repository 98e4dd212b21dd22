// Package metrics holds what a watching rolesenv knows about itself, for
// an operator: its credentials' expiry, its checks for rotation, the
// staleness of the command's environment, restarts, AWS API calls and the
// health of its loop. [State] is updated by the supervisor, the watcher
// and the AWS clients; [Serve] exposes it in the Prometheus text format
// on /metrics, with /healthz and /readyz.
//
// Guarantees:
//   - Updating a State never blocks: every update is an atomic operation
//     on a series found in a sync.Map (a new label combination is one
//     insert, once). The HTTP server reads the same atomics and ranges
//     over the map, which takes no lock an update could wait on.
//   - No label holds a secret value, a reference or anything a user
//     types: labels are rolesenv's own words (reasons, outcomes, credential
//     sources and providers) or the AWS SDK's service and operation names.
//     A family holds at most [MaxSeries] label combinations, and the API
//     call metrics at most [MaxOperations] service and operation pairs;
//     more fold into series labelled "other", so cardinality is bounded
//     whatever happens.
//   - Nothing here runs at package initialisation, and nothing is
//     allocated until [New] is called: a rolesenv without
//     --metrics-listen pays nothing.
package metrics

import (
	"sync"
	"sync/atomic"
	"time"
)

// MaxSeries bounds the label combinations of one family.
const MaxSeries = 64

// MaxOperations bounds the (service, operation) pairs of the API call
// metrics; more are counted as service and operation "other", in both
// the counter and the histogram, so that the two always agree. With the
// four outcomes, the counter stays within MaxSeries.
const MaxOperations = MaxSeries/4 - 1

// Outcomes of an AWS API call, as the rolesenv_aws_api_calls_total label
// says them.
const (
	OutcomeOK        = "ok"
	OutcomeThrottled = "throttled"
	OutcomeDenied    = "denied"
	OutcomeError     = "error"
)

// State is the metrics of one rolesenv. The zero value is not usable:
// call New. All methods are safe for concurrent use and never block.
type State struct {
	version string
	start   time.Time
	now     func() time.Time

	credExpiry   atomic.Int64 // unix nanoseconds; 0: none known
	credSource   atomic.Pointer[credSource]
	lastCheck    atomic.Int64 // unix nanoseconds of the last check, ok or not
	lastCheckOK  atomic.Int64 // of the last successful one
	failedChecks atomic.Int64 // consecutive
	confirmed    atomic.Int64 // when the command's values were last confirmed current
	static       atomic.Bool  // nothing is polled: no check will come, none is needed
	staleSince   atomic.Int64 // when a new environment was sent that the command lacks; 0: none
	changes      atomic.Int64 // new environments sent to the command
	rotations    atomic.Int64
	checks       *family // outcome

	commandUp    atomic.Bool
	commandStart atomic.Int64
	commandExits *family // how: exited, signaled
	restarts     *family // reason, outcome
	reloads      *family // reason, outcome

	apiOps     *family // service, operation: the pairs the two below may hold
	apiCalls   *family // service, operation, outcome
	apiLatency *family // service, operation (histograms)

	loopStarted atomic.Bool
	loopBeat    atomic.Int64 // unix nanoseconds of the supervisor loop's last turn
	beatEvery   atomic.Int64 // nanoseconds between beats
	startUpMax  atomic.Int64 // how long start-up may take, nanoseconds; 0: no limit

	watchStarted atomic.Bool
	watchBeat    atomic.Int64 // unix nanoseconds of the watcher's last turn
	watchBound   atomic.Int64 // nanoseconds the watcher may go without a turn

	readyAfter atomic.Int64 // staleness threshold of /readyz, nanoseconds
}

type credSource struct{ source, provider string }

// New returns an empty State for rolesenv version.
func New(version string) *State {
	return newAt(version, time.Now)
}

func newAt(version string, now func() time.Time) *State {
	s := &State{
		version:      version,
		start:        now(),
		now:          now,
		checks:       newFamily(1),
		commandExits: newFamily(1),
		restarts:     newFamily(2),
		reloads:      newFamily(2),
		apiOps:       newFamilyOf(2, MaxOperations),
		apiCalls:     newFamily(3),
		apiLatency:   newFamily(2),
	}
	s.confirmed.Store(s.start.UnixNano())
	return s
}

// SetReadyThreshold sets how stale the environment may be for /readyz
// to answer ready.
func (s *State) SetReadyThreshold(d time.Duration) { s.readyAfter.Store(int64(d)) }

// Credentials records credentials obtained: when they expire (zero: they
// do not) and where they came from (source as check prints it:
// rolesanywhere, default-chain; provider the SDK's name of the chain's
// source, or "").
func (s *State) Credentials(expires time.Time, source, provider string) {
	var ns int64
	if !expires.IsZero() {
		ns = expires.UnixNano()
	}
	s.credExpiry.Store(ns)
	if cur := s.credSource.Load(); cur == nil || cur.source != source || cur.provider != provider {
		s.credSource.Store(&credSource{source: source, provider: provider})
	}
}

// Loaded records the environment the command starts with, resolved at t.
func (s *State) Loaded(t time.Time) { s.confirmed.Store(t.UnixNano()) }

// Polled records whether anything is polled for rotation. When nothing
// is (no references, or only references pinned to a version), no check
// comes and none is needed: the environment stays current, of age zero,
// until a change is sent (Changed).
func (s *State) Polled(yes bool) { s.static.Store(!yes) }

// Changed records that a new environment (a rotation, a changed env
// file) was sent to the command at t, and returns how many have been
// sent so far. Until the command runs with it (Applied), the
// environment's age counts from t at the latest, whatever later checks
// confirm: the command still has the values they replaced.
func (s *State) Changed(t time.Time) int64 {
	s.staleSince.CompareAndSwap(0, t.UnixNano())
	return s.changes.Add(1)
}

// Applied records that the command (re)started with the n-th environment
// Changed recorded (0: the one it started with). Once it has the last
// one sent, the environment is no longer behind.
func (s *State) Applied(n int64) {
	if n >= s.changes.Load() {
		s.staleSince.Store(0)
	}
}

// Check records a check for rotation that ended at t: ok, or failed
// (consecutive is the episode's count of failed checks).
func (s *State) Check(t time.Time, ok bool, consecutive int) {
	s.lastCheck.Store(t.UnixNano())
	if ok {
		s.lastCheckOK.Store(t.UnixNano())
		s.confirmed.Store(t.UnixNano())
		s.failedChecks.Store(0)
		s.checks.get(OutcomeOK).add(1)
		return
	}
	s.failedChecks.Store(int64(consecutive))
	s.checks.get("failed").add(1)
}

// Rotated records n references found rotated by a check.
func (s *State) Rotated(n int) { s.rotations.Add(int64(n)) }

// CommandStarted records that the command runs, since t.
func (s *State) CommandStarted(t time.Time) {
	s.commandStart.Store(t.UnixNano())
	s.commandUp.Store(true)
}

// CommandExited records that the command is gone; signaled when a signal
// ended it.
func (s *State) CommandExited(signaled bool) {
	s.commandUp.Store(false)
	how := "exited"
	if signaled {
		how = "signaled"
	}
	s.commandExits.get(how).add(1)
}

// Restart records a restart of the command for reason (a word of
// rolesenv's: change) and its outcome (ok, failed, deferred).
func (s *State) Restart(reason, outcome string) { s.restarts.get(reason, outcome).add(1) }

// Reload records a reload of the command (a signal instead of a restart)
// for reason, and its outcome.
func (s *State) Reload(reason, outcome string) { s.reloads.get(reason, outcome).add(1) }

// APICall records one AWS API request (one attempt: retries count
// apart) of service (the IAM prefix: secretsmanager, ssm, sts,
// rolesanywhere) and operation, its outcome and how long it took.
func (s *State) APICall(service, operation, outcome string, took time.Duration) {
	op := s.apiOps.get(service, operation).values // folded past MaxOperations
	s.apiCalls.get(op[0], op[1], outcome).add(1)
	s.apiLatency.get(op[0], op[1]).observe(took)
}

// Beat records a turn of the supervisor's loop, which turns at least
// every d while it is healthy.
func (s *State) Beat(d time.Duration) {
	s.beatEvery.Store(int64(d))
	s.loopBeat.Store(s.now().UnixNano())
	s.loopStarted.Store(true)
}

// Watched records a turn of the watcher's loop, which turns again within
// bound while it is healthy (a check that runs to its timeout included).
func (s *State) Watched(bound time.Duration) {
	s.watchBound.Store(int64(bound))
	s.watchBeat.Store(s.now().UnixNano())
	s.watchStarted.Store(true)
}

// SetStartUpLimit sets how long start-up (resolving the environment
// before the command starts) may take; past it, /healthz answers
// unhealthy until the supervisor's loop runs. Zero: no limit.
func (s *State) SetStartUpLimit(d time.Duration) { s.startUpMax.Store(int64(d)) }

// family is one metric's series, by label values. At most max
// combinations exist (a few more if inserts race at the limit); the rest
// are counted under "other".
type family struct {
	labels int
	max    int64
	m      sync.Map // key (values joined by \xff) -> *series
	n      atomic.Int64
}

func newFamily(labels int) *family { return newFamilyOf(labels, MaxSeries) }

func newFamilyOf(labels, max int) *family { return &family{labels: labels, max: int64(max)} }

// series is one label combination: a counter, or a histogram.
type series struct {
	values []string
	count  atomic.Int64
	sum    atomic.Int64 // nanoseconds, for histograms
	bucket [len(latencyBuckets)]atomic.Int64
}

// latencyBuckets are the upper bounds of the API latency histogram: from
// a call on the same host to one that waits out the SDK's timeouts.
var latencyBuckets = [...]time.Duration{
	5 * time.Millisecond, 10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 2500 * time.Millisecond, 5 * time.Second, 10 * time.Second, 30 * time.Second,
}

func (f *family) get(values ...string) *series {
	key := joinKey(values)
	if v, ok := f.m.Load(key); ok {
		return v.(*series)
	}
	if f.n.Load() >= f.max {
		other := make([]string, len(values))
		for i := range other {
			other[i] = "other"
		}
		values, key = other, joinKey(other)
	}
	v, loaded := f.m.LoadOrStore(key, &series{values: values})
	if !loaded {
		f.n.Add(1)
	}
	return v.(*series)
}

func joinKey(values []string) string {
	n := 0
	for _, v := range values {
		n += len(v) + 1
	}
	b := make([]byte, 0, n)
	for _, v := range values {
		b = append(b, v...)
		b = append(b, 0xff)
	}
	return string(b)
}

func (s *series) add(n int64) { s.count.Add(n) }

func (s *series) observe(d time.Duration) {
	s.count.Add(1)
	s.sum.Add(int64(d))
	for i, le := range latencyBuckets {
		if d <= le {
			s.bucket[i].Add(1)
			return
		}
	}
}
