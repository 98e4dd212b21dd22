package main

import (
	"context"
	"errors"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/smithy-go/middleware"

	"github.com/rolesenv/rolesenv/inject"
	"github.com/rolesenv/rolesenv/internal/metrics"
	"github.com/rolesenv/rolesenv/internal/supervise"
	"github.com/rolesenv/rolesenv/signer"
)

// heartbeat is how often the supervisor's loop turns on its own while
// metrics are served; /healthz fails after three missed turns.
const heartbeat = time.Second

// metricsHandler, when set, answers /metrics instead of the State's own
// text (the benchmark's builds with a metrics library set it).
var metricsHandler func(*metrics.State) http.Handler

// startObserving sets up what watches rolesenv from outside: systemd's
// watchdog (from WATCHDOG_USEC, when WATCHDOG_PID is unset or rolesenv's)
// and, with --metrics-listen, the metrics endpoint, fed by the supervisor's
// events. It returns the endpoint, or nil.
func (a *app) startObserving(rf *runFlags, cfg *supervise.Config) (*metrics.Server, error) {
	cfg.Watchdog = a.watchdog()
	if cfg.Watchdog > 0 {
		a.log.Debug("systemd watchdog enabled", "timeout", cfg.Watchdog)
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
	var h http.Handler
	if metricsHandler != nil {
		h = metricsHandler(st)
	}
	srv, err := metrics.Serve(addr, st, metrics.ServerOptions{Metrics: h, Logger: a.log})
	if err != nil {
		return nil, &configError{msg: "--metrics-listen: " + err.Error(), hint: "choose another port, or stop what listens there"}
	}
	a.metrics = st
	cfg.Heartbeat = heartbeat
	cfg.Observe = observeSupervisor(st)
	a.log.Info("serving metrics", "url", "http://"+srv.Addr()+"/metrics")
	return srv, nil
}

// readyThreshold is how old the environment may be for /readyz: three
// intervals (a check and two retries missed), or --max-stale when it is
// shorter.
func readyThreshold(rf *runFlags) time.Duration {
	d := 3 * rf.interval
	if rf.maxStale > 0 && rf.maxStale < d {
		d = rf.maxStale
	}
	return d
}

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
		case supervise.EventExited:
			st.CommandExited(e.Signal != 0)
		case supervise.EventRestart:
			st.Restart(e.Reason, e.Outcome)
		case supervise.EventReload:
			st.Reload(e.Reason, e.Outcome)
		case supervise.EventBeat:
			st.Beat(heartbeat)
		}
	}
}

// checkObserver feeds the watch's checks to the metrics, from the
// environment just resolved on; nil without metrics.
func (a *app) checkObserver() func(inject.CheckEvent) {
	st := a.metrics
	if st == nil {
		return nil
	}
	st.Loaded(time.Now())
	return func(e inject.CheckEvent) {
		st.Check(e.Time, e.OK, e.Failed)
		if e.Rotated > 0 {
			st.Rotated(e.Rotated)
		}
	}
}

// instrumentAWS counts the AWS API requests of every client made from cfg,
// and records the credentials cfg obtains; nothing without metrics.
func (a *app) instrumentAWS(cfg *aws.Config, rolesAnywhere bool) {
	st := a.metrics
	if st == nil {
		return
	}
	cfg.APIOptions = append(cfg.APIOptions, func(s *middleware.Stack) error {
		// At the end of Finalize, inside the retry loop: each attempt.
		return s.Finalize.Add(apiCallCounter{st}, middleware.After)
	})
	if cfg.Credentials == nil {
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
		provider = c.Source // the SDK's provider name: a few fixed words
	}
	o.st.Credentials(expires, o.source, provider)
	return c, nil
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
