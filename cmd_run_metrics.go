package main

import (
	"context"
	"errors"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/smithy-go/middleware"

	"github.com/rolesenv/rolesenv/inject"
	"github.com/rolesenv/rolesenv/internal/metrics"
	"github.com/rolesenv/rolesenv/internal/supervise"
	"github.com/rolesenv/rolesenv/signer"
)

// heartbeat is how often the supervisor's loop turns on its own while
// metrics are served (/healthz fails after three missed turns), and how
// often the watcher's loop turns.
const heartbeat = time.Second

// startUpGrace is how much longer than --timeout start-up may take before
// it counts as stuck: what follows the resolving (the credentials
// endpoint, the first start) and a slow machine.
const startUpGrace = 10 * time.Second

// watcherSlack is how much longer than a heartbeat and a check's timeout
// the watcher may go without a turn before it counts as stuck.
const watcherSlack = 10 * time.Second

// metricsHandler, when set, answers /metrics instead of the State's own
// text (the benchmark's builds with a metrics library set it).
var metricsHandler func(*metrics.State) http.Handler

// startObserving sets up what watches rolesenv from outside: systemd's
// watchdog (from WATCHDOG_USEC, when WATCHDOG_PID is unset or rolesenv's)
// and, with --metrics-listen, the metrics endpoint, fed by the supervisor's
// events. Start-up (resolving within timeout, --timeout) counts as stuck
// after startUpLimit. It returns the endpoint, or nil.
func (a *app) startObserving(rf *runFlags, timeout time.Duration, cfg *supervise.Config) (*metrics.Server, error) {
	cfg.Watchdog = a.watchdog()
	cfg.StartUpLimit = startUpLimit(timeout)
	if cfg.Watchdog > 0 {
		a.log.Debug("systemd watchdog enabled", "timeout", cfg.Watchdog, "start_up_limit", cfg.StartUpLimit)
		a.watcher.on = true
		cfg.Alive = a.watcher.alive
	}
	if rf.metricsListen == "" || rf.once {
		return nil, nil // with --once, nothing stays to serve them
	}
	addr, err := metrics.ListenAddr(rf.metricsListen)
	if err != nil {
		return nil, usageErrorf("invalid --metrics-listen: %v", err)
	}
	st := metrics.New(version)
	st.SetReadyThreshold(readyThreshold(rf))
	st.SetStartUpLimit(cfg.StartUpLimit)
	var h http.Handler
	if metricsHandler != nil {
		h = metricsHandler(st)
	}
	srv, err := metrics.Serve(addr, st, metrics.ServerOptions{Metrics: h, Logger: a.log})
	if err != nil {
		return nil, &configError{msg: "--metrics-listen: " + err.Error(), hint: "choose another port, or stop what listens there", err: err}
	}
	a.metrics = st
	cfg.Heartbeat = heartbeat
	cfg.Observe = observeSupervisor(st)
	a.log.Info("serving metrics", "url", "http://"+srv.Addr()+"/metrics")
	return srv, nil
}

// readyThreshold is how old the environment may be for /readyz: three
// intervals (a check and two retries missed), or --max-stale when it is
// shorter; but never less than two successful checks can be apart (the
// interval, its jitter of 10% and as much again for margin, and a check
// that takes its whole timeout), or /readyz would flap on a healthy
// rolesenv.
func readyThreshold(rf *runFlags) time.Duration {
	d := 3 * rf.interval
	if rf.maxStale > 0 && rf.maxStale < d {
		d = rf.maxStale
	}
	return max(d, rf.interval+rf.interval/5+inject.DefaultCheckTimeout(rf.interval))
}

// startUpLimit is how long start-up may take before it counts as stuck:
// --timeout and a grace; without a timeout, the supervisor's default.
func startUpLimit(timeout time.Duration) time.Duration {
	if timeout <= 0 {
		return supervise.DefaultStartUpLimit
	}
	return timeout + startUpGrace
}

// liveness is the watcher's heartbeat, as the watchdog sees it: a
// watcher that has not turned for longer than its bound is stuck.
type liveness struct {
	on    bool         // the watchdog is on: set before watching starts
	last  atomic.Int64 // unix nanoseconds of the last turn; 0: not watching yet
	bound atomic.Int64 // nanoseconds
}

func (l *liveness) beat(bound time.Duration) {
	l.bound.Store(int64(bound))
	l.last.Store(time.Now().UnixNano())
}

// alive reports whether the watcher turns (or has not started yet).
func (l *liveness) alive() bool {
	last := l.last.Load()
	return last == 0 || time.Since(time.Unix(0, last)) <= time.Duration(l.bound.Load())
}

// watcherBound is how long the watcher may go without a turn: a
// heartbeat, a check that runs to its timeout, and some slack.
func watcherBound(interval time.Duration) time.Duration {
	return heartbeat + inject.DefaultCheckTimeout(interval) + watcherSlack
}

// watcherBeat is the watch's Beat: it feeds the watchdog's liveness and
// /healthz. Nil when neither is on: the watcher then wakes only when it
// has work.
func (a *app) watcherBeat(interval time.Duration) func() {
	bound, st := watcherBound(interval), a.metrics
	if !a.watcher.on && st == nil {
		return nil
	}
	return func() {
		a.watcher.beat(bound)
		if st != nil {
			st.Watched(bound)
		}
	}
}

// changeSent tells the metrics of a new environment sent to the command;
// nil without metrics.
func (a *app) changeSent() func() {
	st := a.metrics
	if st == nil {
		return nil
	}
	return func() { st.Changed(time.Now()) }
}

// watchdogVars are systemd's watchdog variables. They are rolesenv's: a
// command that inherited them would ping the watchdog itself (as
// sd_watchdog_enabled(3) tells it to), and under NotifyAccess=all its
// pings would hide a stuck rolesenv. With --once, the command takes
// rolesenv's place, and keeps them.
var watchdogVars = []string{"WATCHDOG_USEC", "WATCHDOG_PID"}

// watchdog returns systemd's watchdog timeout when rolesenv is the process
// it watches (WATCHDOG_PID unset or rolesenv's own), else zero.
func (a *app) watchdog() time.Duration {
	usec, err := strconv.ParseInt(a.getenv("WATCHDOG_USEC"), 10, 64)
	if err != nil || usec <= 0 {
		return 0
	}
	if pid := a.getenv("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return 0
	}
	return time.Duration(usec) * time.Microsecond
}

func observeSupervisor(st *metrics.State) func(supervise.Event) {
	return func(e supervise.Event) {
		switch e.Kind {
		case supervise.EventStarted:
			st.CommandStarted(e.Time)
			st.Applied(e.Updates)
		case supervise.EventExited:
			st.CommandExited(e.Signal != 0)
		case supervise.EventRestart:
			st.Restart(e.Reason, e.Outcome)
		case supervise.EventReload:
			st.Reload(e.Reason, e.Outcome)
			if e.Outcome == supervise.OutcomeOK {
				st.Applied(e.Updates)
			}
		case supervise.EventBeat:
			st.Beat(heartbeat)
		}
	}
}

// checkObserver feeds the watch's checks to the metrics, from the
// environment just resolved on (tm); nil without metrics.
func (a *app) checkObserver(tm *inject.Template) func(inject.CheckEvent) {
	st := a.metrics
	if st == nil {
		return nil
	}
	st.Loaded(time.Now())
	st.Polled(tm.Polled())
	return func(e inject.CheckEvent) {
		st.Polled(e.Polled)
		st.Check(e.Time, e.OK, e.Failed)
		if e.Rotated > 0 {
			st.Rotated(e.Rotated)
		}
	}
}

// apiCallOptions returns the SDK option that counts every AWS API
// request of a client; nil without metrics. Given to LoadDefaultConfig,
// it reaches the clients the default chain makes for credentials too
// (STS AssumeRoleWithWebIdentity, SSO).
func (a *app) apiCallOptions() []func(*middleware.Stack) error {
	st := a.metrics
	if st == nil {
		return nil
	}
	return []func(*middleware.Stack) error{func(s *middleware.Stack) error {
		// At the end of Finalize, inside the retry loop: each attempt.
		return s.Finalize.Add(apiCallCounter{st}, middleware.After)
	}}
}

// instrumentAWS records the credentials cfg obtains, their expiry and
// source; nothing without metrics.
func (a *app) instrumentAWS(cfg *aws.Config, rolesAnywhere bool) {
	st := a.metrics
	if st == nil || cfg.Credentials == nil {
		return
	}
	source := "default-chain"
	if rolesAnywhere {
		source = "rolesanywhere"
	}
	cfg.Credentials = &observedProvider{CredentialsProvider: cfg.Credentials, st: st, source: source}
}

// apiCallCounter is the SDK middleware that counts requests.
type apiCallCounter struct{ st *metrics.State }

func (apiCallCounter) ID() string { return "rolesenvMetrics" }

func (c apiCallCounter) HandleFinalize(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
	began := time.Now()
	out, md, err := next.HandleFinalize(ctx, in)
	c.st.APICall(serviceName(middleware.GetServiceID(ctx)), middleware.GetOperationName(ctx), inject.CallOutcome(err), time.Since(began))
	return out, md, err
}

// serviceName turns the SDK's service id ("Secrets Manager") into the
// IAM prefix that check's actions use ("secretsmanager").
func serviceName(id string) string {
	return strings.ToLower(strings.ReplaceAll(id, " ", ""))
}

// observeCreateSession counts Roles Anywhere's CreateSession attempts;
// nil without metrics.
func (a *app) observeCreateSession() func(error, time.Duration) {
	st := a.metrics
	if st == nil {
		return nil
	}
	return func(err error, took time.Duration) {
		outcome := metrics.OutcomeOK
		var ae *signer.APIError
		switch {
		case err == nil:
		case errors.As(err, &ae) && ae.Throttled():
			outcome = metrics.OutcomeThrottled
		case errors.As(err, &ae) && ae.AccessDenied():
			outcome = metrics.OutcomeDenied
		default:
			outcome = metrics.OutcomeError
		}
		st.APICall("rolesanywhere", "CreateSession", outcome, took)
	}
}

// observedProvider records the expiry and source of the credentials it
// passes on.
type observedProvider struct {
	aws.CredentialsProvider
	st     *metrics.State
	source string
}

func (o *observedProvider) Retrieve(ctx context.Context) (aws.Credentials, error) {
	c, err := o.CredentialsProvider.Retrieve(ctx)
	if err != nil {
		return c, err
	}
	var expires time.Time
	if c.CanExpire {
		expires = c.Expires
	}
	provider := ""
	if o.source == "default-chain" {
		provider = providerName(c.Source)
	}
	o.st.Credentials(expires, o.source, provider)
	return c, nil
}

// sdkProviders are the names the AWS SDK gives its credential providers
// in aws.Credentials.Source.
var sdkProviders = []string{
	"EnvConfigCredentials", "SharedConfigCredentials", "StaticCredentials",
	"AssumeRoleProvider", "WebIdentityCredentials", "SSOProvider", "LoginProvider",
	"ProcessProvider", "EC2RoleProvider", "CredentialsEndpointProvider",
}

// providerName turns the SDK's Source of credentials into a label value:
// the provider's name, without what follows a colon (the SDK appends the
// shared credentials file's path), or "other" for a name not in
// sdkProviders, so that the label stays one of a few fixed words.
func providerName(source string) string {
	name, _, _ := strings.Cut(source, ":")
	if slices.Contains(sdkProviders, name) {
		return name
	}
	return "other"
}

// Invalidate passes on, so that credentials AWS refused are dropped.
func (o *observedProvider) Invalidate() {
	if i, ok := o.CredentialsProvider.(interface{ Invalidate() }); ok {
		i.Invalidate()
	}
}

// IsCredentialsProvider lets aws.IsCredentialsProvider see the wrapped
// provider's type.
func (o *observedProvider) IsCredentialsProvider(target aws.CredentialsProvider) bool {
	return aws.IsCredentialsProvider(o.CredentialsProvider, target)
}
