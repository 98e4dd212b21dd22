package inject

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Defaults of Source.Watch.
const (
	// DefaultInterval is how often a watch checks for rotation.
	DefaultInterval = 5 * time.Minute
	// DefaultFileInterval is how often it looks at the env files (a stat
	// each; a file is read only when its size, time or identity changed).
	DefaultFileInterval = time.Second
)

const (
	// backoffBase is the longest first wait after a failed check; the
	// waits double from there, up to the interval.
	backoffBase = time.Second
	// A check gets its interval to finish, at least minCheckTimeout (a
	// slow round trip with a TLS handshake fits) and at most
	// maxCheckTimeout.
	minCheckTimeout = 5 * time.Second
	maxCheckTimeout = 30 * time.Second
)

// watcher is one run of Source.Watch: the state that a check changes.
type watcher struct {
	WatchOptions
	src *Source // what Load resolved: the start-up state

	log      *slog.Logger
	clock    Clock
	randN    func(n int64) int64
	idle     func() // tests: called whenever Run waits
	resolver *Resolver
	tm       *Template
	vals     *Values
	env      *Env
	next     *pending // a changed env file's template, until it resolves
	files    []*watchedFile

	failing   bool      // in a failure episode
	failSince time.Time // its first failed check
	failed    int       // failed checks in the episode
	lastOK    time.Time
	lastErr   string
	causes    []string // the AWS error codes warned about in the episode
	renewed   bool     // the credentials were dropped in the episode
	rotated   int      // rotations the current check detected, for Observe

	looked          chan fileLook                                // the looks at env files, as they finish
	lookFile        func(name string, prev os.FileInfo) fileLook // tests: lookAt
	filesChanged    []string                                     // env files changed since the last parse
	checkAfterLooks bool                                         // a refresh waits for its looks
	waiting         func(busy int)                               // tests: called whenever Run waits
}

// Change is what a watch reports: the child's new environment and why,
// or (Err) the end of watching.
type Change struct {
	Env *Env
	// Reason names what changed: references with short version ids,
	// env files, variables. Never a value.
	Reason string
	// Err, when set, is fatal: Run returns it after sending it.
	Err error
}

// StaleError ends a watch whose checks kept failing for longer than
// MaxStale. It classifies itself as AWS being unavailable, whatever the
// last failure was.
type StaleError struct {
	MaxStale time.Duration
	Since    time.Duration // since the last good check
	Last     string        // the last failure, for the message
}

func (e *StaleError) Error() string {
	return fmt.Sprintf("no successful check for rotation for %v (at most %v allowed); last failure: %s",
		e.Since.Round(time.Second), e.MaxStale, e.Last)
}

// Unavailable reports that AWS could not be reached for too long.
func (e *StaleError) Unavailable() bool { return true }

// Clock is the time source of a watch's schedule. Tests inject a fake
// one; I/O timeouts always use real time.
type Clock interface {
	Now() time.Time
	// NewTimer returns a timer that fires once, after d.
	NewTimer(d time.Duration) Timer
}

// Timer is the part of *time.Timer that a watch uses.
type Timer interface {
	C() <-chan time.Time
	// Stop prevents the timer from firing.
	Stop()
}

type realClock struct{}

func (realClock) Now() time.Time                 { return time.Now() }
func (realClock) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time { return r.t.C }
func (r realTimer) Stop()               { r.t.Stop() }

// DefaultCheckTimeout is WatchOptions.CheckTimeout's default for a
// watch that checks every interval: the interval, at least 5 s and at
// most 30 s.
func DefaultCheckTimeout(interval time.Duration) time.Duration {
	return min(max(interval, minCheckTimeout), maxCheckTimeout)
}

// pending is the template of changed env files until its references
// resolve.
type pending struct {
	tm     *Template
	reason string
	warned bool
}

// watchedFile is one env file and what was last seen of it.
type watchedFile struct {
	File
	digest  [32]byte
	info    os.FileInfo // nil: read it at the next look
	problem string      // the read error last logged
	// A look runs off the watch loop, one at a time per file: inflight
	// since a time of the Watcher's clock; overdue once it has taken
	// longer than fileLookBound (the look failed; the file waits for it).
	inflight bool
	since    time.Time
	overdue  bool
}

// fileLookBound is how long a look at an env file may take before it
// counts as failed. A local file answers in microseconds; a file on a
// network file system that stopped answering may never answer, and must
// not hold up checks, signals or MaxStale.
const fileLookBound = 5 * time.Second

// failure is one reference (or the whole check) that could not be polled,
// fetched or rendered.
type failure struct {
	ref  string // the reference, or "" for the whole check
	code string // the AWS error code, if AWS answered
	err  error
}

func (f failure) attrs() []any {
	a := []any{}
	if f.ref != "" {
		a = append(a, "ref", f.ref)
	}
	if f.code != "" {
		a = append(a, "code", f.code)
	}
	return append(a, "error", oneLine(f.err.Error()))
}

// Run watches until ctx ends (it returns nil then) or, with MaxStale, until
// checks have failed for too long (it sends the *StaleError as a Change,
// then returns it). Changes go to out; Run waits for out to take each.
func (w *watcher) Run(ctx context.Context, out chan<- Change) error {
	if err := w.setup(); err != nil {
		return err
	}
	var checkT, fileT, staleT, beatT Timer
	stop := func(t *Timer) {
		if *t != nil {
			(*t).Stop()
			*t = nil
		}
	}
	defer func() {
		stop(&checkT)
		stop(&fileT)
		stop(&staleT)
		stop(&beatT)
	}()
	if w.pollable() {
		checkT = w.clock.NewTimer(w.firstWait())
	}
	if w.watchesFiles() {
		fileT = w.clock.NewTimer(w.FileInterval)
	}
	refresh := w.Refresh
	for {
		var beatC <-chan time.Time
		if w.Beat != nil {
			w.Beat()
			stop(&beatT)
			beatT = w.clock.NewTimer(w.Heartbeat)
			beatC = beatT.C()
		}
		var checkC, fileC, staleC <-chan time.Time
		if checkT != nil {
			checkC = checkT.C()
		}
		if fileT != nil {
			fileC = fileT.C()
		}
		if staleT != nil {
			staleC = staleT.C()
		}
		busy := w.busyLooks()
		if w.waiting != nil {
			w.waiting(busy)
		}
		if w.idle != nil && busy == 0 {
			w.idle()
		}
		now, spread := false, false
		select {
		case <-ctx.Done():
			return nil
		case <-beatC:
			continue
		case <-checkC:
			checkT = nil
			now, spread = true, true
		case _, ok := <-refresh:
			if !ok {
				refresh = nil
				continue
			}
			w.log.Info("refresh requested: checking now")
			w.lookAtFiles(true)
			w.checkAfterLooks = true
		case <-fileC:
			fileT = w.clock.NewTimer(w.FileInterval)
			w.lookAtFiles(false)
		case l := <-w.looked:
			w.took(l)
		case <-staleC:
			staleT = nil
			err := &StaleError{MaxStale: w.MaxStale, Since: w.clock.Now().Sub(w.lastOK), Last: w.lastErr}
			w.log.Error("checks for rotation failed for longer than allowed; stopping",
				"max_stale", w.MaxStale, "failed_checks", w.failed, "since", err.Since.Round(time.Millisecond))
			send(ctx, out, Change{Err: err, Reason: "no successful check for too long"})
			return err
		}
		if w.looksDone() {
			now = true
		}
		if !now {
			continue
		}
		stop(&checkT)
		res := w.check(ctx, out, spread)
		if ctx.Err() != nil {
			return nil
		}
		wait := w.settle(res)
		w.observe(len(res) == 0)
		switch {
		case !w.failing:
			stop(&staleT)
		case w.MaxStale > 0 && staleT == nil:
			staleT = w.clock.NewTimer(max(0, w.lastOK.Add(w.MaxStale).Sub(w.clock.Now())))
		}
		if w.pollable() || w.next != nil {
			checkT = w.clock.NewTimer(wait)
		}
	}
}

func (w *watcher) setup() error {
	if w.Interval <= 0 {
		w.Interval = DefaultInterval
	}
	if w.FileInterval <= 0 {
		w.FileInterval = DefaultFileInterval
	}
	if w.Heartbeat <= 0 {
		w.Heartbeat = DefaultFileInterval
	}
	if w.CheckTimeout <= 0 {
		w.CheckTimeout = DefaultCheckTimeout(w.Interval)
	}
	if w.Spread > w.CheckTimeout/2 {
		w.Spread = w.CheckTimeout / 2
	}
	w.log = w.Logger
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	w.clock = w.Clock
	if w.clock == nil {
		w.clock = realClock{}
	}
	if w.randN == nil {
		w.randN = rand.Int64N
	}
	w.resolver, w.tm, w.vals, w.env = w.src.resolver, w.src.tm, w.src.vals.Clone(), w.src.env
	w.files = nil
	for _, f := range w.src.files {
		w.files = append(w.files, &watchedFile{File: f, digest: sha256.Sum256(f.Data)})
	}
	w.lastOK = w.clock.Now()
	return nil
}

// pollable reports whether the current template has anything to poll.
func (w *watcher) pollable() bool { return w.tm.Polled() }

func (w *watcher) watchesFiles() bool {
	return slices.ContainsFunc(w.files, func(f *watchedFile) bool { return f.Name != "-" })
}

// rnd returns a random duration in [0, d).
func (w *watcher) rnd(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(w.randN(int64(d)))
}

// firstWait is a random point of the first interval: a fleet started at
// once spreads its checks over a whole interval.
func (w *watcher) firstWait() time.Duration { return w.rnd(w.Interval) }

// nextWait is the interval with ±10% jitter: spread checks stay spread.
func (w *watcher) nextWait() time.Duration {
	return w.Interval - w.Interval/10 + w.rnd(w.Interval/5+1)
}

// backoff is the wait after the n-th failed check in a row: a random
// point of [d/2, d], d = 1s·2^(n-1) capped at the interval.
func (w *watcher) backoff(n int) time.Duration {
	d := w.Interval
	if n <= 30 {
		d = min(d, backoffBase<<(n-1))
	}
	return d/2 + w.rnd(d/2+1)
}

// settle records a check's outcome, logs the episode's start, a new
// cause within it, or its end, and returns the wait before the next check.
func (w *watcher) settle(res []failure) time.Duration {
	now := w.clock.Now()
	if len(res) == 0 {
		if w.failing {
			w.log.Info("watch recovered", "after", now.Sub(w.failSince).Round(time.Millisecond), "failed_checks", w.failed)
		}
		w.failing, w.failed, w.lastOK = false, 0, now
		w.causes, w.renewed = nil, false
		return w.nextWait()
	}
	w.failed++
	first := res[0]
	w.lastErr = first.err.Error()
	attrs := append(first.attrs(), "failing", len(res))
	switch {
	case !w.failing:
		w.failing, w.failSince = true, now
		w.causes = []string{first.code}
		w.log.Warn("watch failed; the command keeps its environment", attrs...)
	case !slices.Contains(w.causes, first.code):
		// The warning names the cause: a new one is warned about too,
		// once per episode (causes that alternate warn once each).
		w.causes = append(w.causes, first.code)
		w.log.Warn("watch failing for another reason; the command keeps its environment", append(attrs, "failed_checks", w.failed)...)
	default:
		w.log.Debug("watch still failing", append(attrs, "failed_checks", w.failed)...)
	}
	if w.renewCredentials(res) {
		return 0
	}
	return w.backoff(w.failed)
}

// renewCredentials drops the resolver's credentials when AWS rejected
// the credentials themselves (expired early, revoked, a key it no longer
// knows), once per episode, so that the next check, at once, signs with
// new ones. The credentials cache would otherwise hand out the same
// rejected credentials until they reach their expiry time. It reports
// whether it dropped them.
func (w *watcher) renewCredentials(res []failure) bool {
	if w.renewed || w.resolver == nil {
		return false
	}
	i := slices.IndexFunc(res, func(f failure) bool { return credentialsRejected(f.code) })
	if i < 0 || !invalidateCredentials(w.resolver.Config.Credentials) {
		return false
	}
	w.renewed = true
	w.log.Info("AWS rejected the credentials; dropping them to obtain new ones", "code", res[i].code)
	return true
}

func send(ctx context.Context, out chan<- Change, c Change) {
	select {
	case out <- c:
	case <-ctx.Done():
	}
}

// lookAtFiles starts a look at every env file that has none in flight
// (with force, each is read whatever its state), and marks the looks that
// have taken too long as failed. Looks run off the watch loop and come
// back on w.looked: a file that blocks (a hung network file system) holds
// up one goroutine, never the loop.
func (w *watcher) lookAtFiles(force bool) {
	now := w.clock.Now()
	look := w.lookFile
	if look == nil {
		look = lookAt
	}
	for _, wf := range w.files {
		if wf.Name == "-" {
			continue
		}
		if wf.inflight {
			if !wf.overdue && now.Sub(wf.since) >= fileLookBound {
				wf.overdue = true
				wf.info = nil
				w.fileProblem(wf, "reading it did not finish within "+fileLookBound.String())
			}
			continue
		}
		if w.looked == nil {
			// Room for one look per file: a look never waits to report.
			w.looked = make(chan fileLook, len(w.files))
		}
		wf.inflight, wf.since, wf.overdue = true, now, false
		name, prev := wf.Name, wf.info
		if force {
			prev = nil
		}
		go func() {
			l := look(name, prev)
			l.wf = wf
			w.looked <- l
		}()
	}
}

// busyLooks is the number of looks in flight that are not overdue.
func (w *watcher) busyLooks() int {
	n := 0
	for _, wf := range w.files {
		if wf.inflight && !wf.overdue {
			n++
		}
	}
	return n
}

// took records a finished look.
func (w *watcher) took(l fileLook) {
	wf := l.wf
	wf.inflight, wf.overdue = false, false
	if l.err != nil {
		wf.info = nil
		w.fileProblem(wf, l.err.Error())
		return
	}
	if wf.problem != "" {
		wf.problem = ""
		w.log.Info("env file readable again", "file", wf.Name)
	}
	wf.info = l.info
	if l.unchanged {
		return
	}
	if d := sha256.Sum256(l.data); d != wf.digest {
		wf.digest, wf.Data = d, l.data
		if !slices.Contains(w.filesChanged, wf.Name) {
			w.filesChanged = append(w.filesChanged, wf.Name)
		}
	}
}

// fileProblem warns about a file that cannot be read, once per problem.
func (w *watcher) fileProblem(wf *watchedFile, msg string) {
	if msg == wf.problem {
		return
	}
	wf.problem = msg
	w.log.Warn("env file cannot be read; the command keeps its environment", "file", wf.Name, "error", msg)
}

// looksDone, once no look is in flight (an overdue one aside), parses the
// files again if one changed, and reports whether a check is due: a new
// template to resolve, or a refresh that waited for its looks.
func (w *watcher) looksDone() bool {
	if w.busyLooks() > 0 {
		return false
	}
	due := w.reparse()
	if w.checkAfterLooks {
		w.checkAfterLooks, due = false, true
	}
	return due
}

// reparse parses the env files again when one changed, and makes the new
// template pending. It reports whether there is one.
func (w *watcher) reparse() bool {
	changed := w.filesChanged
	if len(changed) == 0 {
		return false
	}
	w.filesChanged = nil
	files := make([]File, len(w.files))
	for i, wf := range w.files {
		files[i] = wf.File
	}
	tm, err := Parse(files, w.src.o.Options)
	if err != nil {
		w.log.Warn("env file changed but cannot be used; the command keeps its environment",
			"files", changed, "error", oneLine(strings.ReplaceAll(err.Error(), "\n", "; ")))
		return false
	}
	for _, warn := range tm.Warnings() {
		w.log.Warn(warn)
	}
	w.log.Info("env file changed", "files", changed)
	w.next = &pending{tm: tm, reason: "env file changed: " + strings.Join(changed, ", ")}
	return true
}

// resolverFor returns the resolver, making one if a changed file needs AWS
// for the first time.
func (w *watcher) resolverFor(ctx context.Context) (*Resolver, error) {
	if w.resolver != nil {
		return w.resolver, nil
	}
	r, err := w.src.newResolver(ctx)
	if err != nil {
		return nil, err
	}
	w.resolver = r
	return r, nil
}

// rotation is one fetch whose answer moved.
type rotation struct {
	f        Fetch
	from, to string // short version ids, or parameter versions
	ask      Fetch  // what to fetch: the new version id, or f itself
}

// check polls everything the current template (and a pending one) uses,
// fetches what moved and what a pending template adds, renders, and sends
// a Change when the environment differs. It returns the failures that
// count against the current environment: a pending template's problems
// are logged once and retried, but do not make AWS look unavailable.
func (w *watcher) check(ctx context.Context, out chan<- Change, spread bool) (fails []failure) {
	start := w.clock.Now()
	next := w.next
	p := w.plan(next)
	res := checkResult{vals: w.vals.Clone()}
	defer func() {
		w.log.Debug("checked", "polled", len(p.secrets)+len(p.params), "api_calls", res.calls, "rotations", len(res.rotated),
			"failures", len(fails), "duration", w.clock.Now().Sub(start).Round(time.Millisecond))
	}()
	if len(p.missing)+len(p.secrets)+len(p.params) > 0 {
		r, err := w.resolverFor(ctx)
		if err != nil {
			f := failure{err: err}
			if len(p.secrets)+len(p.params) == 0 {
				w.warnPending(next, []failure{f})
				return nil
			}
			return []failure{f}
		}
		res = w.pollAndFetch(ctx, r, p, spread)
		if ctx.Err() != nil {
			return nil
		}
	}
	env, reasons, err := w.adopt(next, &res)
	if err != nil {
		// A rotated value that no longer fits (a JSON key gone): keep
		// everything as it was, and look again next time.
		return append(res.fails, renderFailures(err)...)
	}
	return append(res.fails, w.report(ctx, out, env, reasons)...)
}

// checkPlan is what a check asks AWS: the fetches that have no value yet
// (a pending template's), and the secrets and parameters to poll.
type checkPlan struct {
	missing, secrets, params []Fetch
}

// plan sorts the fetches of the current and the pending template, each
// once; pinned ones are not polled.
func (w *watcher) plan(next *pending) checkPlan {
	needed := slices.Clone(w.tm.fetches)
	if next != nil {
		needed = append(needed, next.tm.fetches...)
	}
	var p checkPlan
	seen := map[Fetch]bool{}
	for _, f := range needed {
		if seen[f] {
			continue
		}
		seen[f] = true
		switch _, ok := w.vals.Version(f); {
		case !ok:
			p.missing = append(p.missing, f)
		case f.Pinned():
		case f.Service == ParameterStore:
			p.params = append(p.params, f)
		default:
			p.secrets = append(p.secrets, f)
		}
	}
	return p
}

// checkResult is what a check's calls brought.
type checkResult struct {
	vals    *Values    // the values, with what moved and what was missing
	rotated []rotation // the fetches that moved and were fetched
	fails   []failure  // against the current environment
	pending []failure  // against a pending template only
	calls   int64      // API calls made
}

// pollAndFetch polls, then fetches what moved and what was missing, all
// within the check timeout.
func (w *watcher) pollAndFetch(ctx context.Context, r *Resolver, p checkPlan, spread bool) (res checkResult) {
	res.vals = w.vals.Clone()
	calls0 := r.calls.Load()
	defer func() { res.calls = r.calls.Load() - calls0 }()
	ctx, cancel := context.WithTimeout(ctx, w.CheckTimeout)
	defer cancel()
	var over time.Duration
	if spread {
		over = w.Spread
	}
	rotated, fails := w.poll(ctx, r, p.secrets, p.params, over)
	res.fails = fails
	ask := make([]Fetch, 0, len(rotated)+len(p.missing))
	for _, rt := range rotated {
		ask = append(ask, rt.ask)
	}
	ask = append(ask, p.missing...)
	if len(ask) == 0 {
		return res
	}
	got := r.Fetch(ctx, ask)
	for _, rt := range rotated {
		if err := got.Err(rt.ask); err != nil {
			res.fails = append(res.fails, w.fetchFailure(ctx, rt.f, err))
			continue
		}
		res.vals.set(rt.f, got.m[rt.ask])
		res.rotated = append(res.rotated, rt)
	}
	for _, f := range p.missing {
		if err := got.Err(f); err != nil {
			res.pending = append(res.pending, w.fetchFailure(ctx, f, err))
			continue
		}
		res.vals.set(f, got.m[f])
	}
	return res
}

// adopt renders the environment: with a pending template once it
// renders (until then the current one takes the rotations), else with
// the current one. On success the template and values are kept, and the
// reasons name the changed files and the rotations.
func (w *watcher) adopt(next *pending, res *checkResult) (*Env, []string, error) {
	var env *Env
	tm, reasons := w.tm, []string{}
	if next != nil {
		e, err := next.tm.Render(res.vals)
		if err == nil {
			tm, env = next.tm, e
			reasons = append(reasons, next.reason)
			w.next = nil
		} else {
			w.warnPending(next, append(res.pending, renderFailures(err)...))
		}
	}
	if env == nil {
		e, err := tm.Render(res.vals)
		if err != nil {
			return nil, nil, err
		}
		env = e
	}
	w.tm = tm
	w.vals = keepOnly(res.vals, w.tm, w.next)
	for _, rt := range res.rotated {
		w.log.Info("rotation detected", "ref", rt.f.String(), "old", rt.from, "new", rt.to)
		w.rotated++
		reasons = append(reasons, fmt.Sprintf("%s rotated (%s -> %s)", rt.f.String(), rt.from, rt.to))
	}
	return env, reasons, nil
}

// report sends env as a Change when it differs from what the command has
// and Accept takes it; a refused environment is a failure.
func (w *watcher) report(ctx context.Context, out chan<- Change, env *Env, reasons []string) []failure {
	reason := strings.Join(reasons, "; ")
	if env.Equal(w.env) {
		if reason != "" {
			w.log.Info("nothing the command receives changed", "reason", reason)
		}
		return nil
	}
	changedVars := env.Changed(w.env)
	if w.Accept != nil {
		if err := w.Accept(env); err != nil {
			return []failure{{err: fmt.Errorf("the new environment cannot be used (variables %s): %w", strings.Join(changedVars, ", "), err)}}
		}
	}
	w.env = env
	w.log.Info("environment changed", "variables", changedVars, "reason", reason)
	send(ctx, out, Change{Env: env, Reason: reason + "; variables " + strings.Join(changedVars, ", ")})
	return nil
}

// warnPending logs, once per changed template, why it is not used yet.
func (w *watcher) warnPending(p *pending, fails []failure) {
	if p == nil || p.warned || len(fails) == 0 {
		return
	}
	p.warned = true
	attrs := append(fails[0].attrs(), "problems", len(fails), "reason", p.reason)
	w.log.Warn("env file changed but its references do not resolve yet; the command keeps its environment", attrs...)
}

// keepOnly drops the values that neither the template nor a pending one
// uses any more.
func keepOnly(v *Values, tm *Template, p *pending) *Values {
	keep := map[Fetch]bool{}
	for _, f := range tm.fetches {
		keep[f] = true
	}
	if p != nil {
		for _, f := range p.tm.fetches {
			keep[f] = true
		}
	}
	out := NewValues()
	for f, r := range v.m {
		if keep[f] && r.err == nil {
			out.m[f] = r
		}
	}
	return out
}

// renderFailures turns Render's errors into failures.
func renderFailures(err error) []failure {
	var out []failure
	for _, e := range flatten(nil, err) {
		f := failure{err: e}
		var re *ResolveError
		if errors.As(e, &re) {
			f.ref, f.code = re.Ref, re.Code
		}
		out = append(out, f)
	}
	return out
}

// fetchFailure describes a failed fetch of f; a check that ran out of time
// says so (the resolver's words are about start-up).
func (w *watcher) fetchFailure(ctx context.Context, f Fetch, err error) failure {
	var fe *fetchError
	if errors.As(err, &fe) {
		fe = w.timedOut(ctx, fe)
		return failure{ref: f.String(), code: fe.code, err: fe}
	}
	return failure{ref: f.String(), err: err}
}

// timedOut rewrites a failure caused by the check's deadline.
func (w *watcher) timedOut(ctx context.Context, fe *fetchError) *fetchError {
	if errors.Is(fe.cause, context.DeadlineExceeded) || (ctx.Err() != nil && fe.class == classUnavailable) {
		c := *fe
		c.class, c.code, c.msg = classUnavailable, "", "no answer within the check timeout ("+w.CheckTimeout.String()+")"
		return &c
	}
	return fe
}

func shortVersion(v Version, f Fetch) string {
	if f.Service == ParameterStore {
		return strconv.FormatInt(v.Version, 10)
	}
	return shortID(v.VersionID)
}
