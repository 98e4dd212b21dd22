package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/rolesenv/rolesenv/inject"
	"github.com/rolesenv/rolesenv/internal/credserver"
	"github.com/rolesenv/rolesenv/internal/supervise"

	"github.com/rolesenv/rolesenv/internal/exitcode"
)

const runUsage = `Usage: rolesenv run [flags] [--] COMMAND [ARGS...]

Resolve the secrets that the env files reference, start COMMAND with them
in its environment, and keep watching: when a secret that COMMAND receives
is rotated, restart it gracefully. COMMAND runs directly (no shell), in a
process group of its own, looked up on the PATH of its environment.
rolesenv forwards signals to it, reaps orphaned processes (as PID 1 or as a
child subreaper) and exits with its status.

Environment:
  --env-file FILE        template env file; repeatable, later files win; - is stdin
                         (ROLESENV_ENV_FILE takes a :-separated list)
  --from-env             also resolve inherited variables whose whole value is a reference
  --clean-env            only the files' variables, and those --keep-env names
  --keep-env NAME,...    with --clean-env, also pass these inherited variables
  --timeout D            give up resolving at start-up after D (default 30s)

Files (a value written file:sm://... or file:{{ ... }} reaches COMMAND as the
path of a file that holds it):
  --template SRC:DEST[:MODE]
                         render SRC, a text file with {{ reference | filter }}
                         placeholders, to the file DEST (mode 0400 unless MODE);
                         repeatable (ROLESENV_TEMPLATE takes a ,-separated list);
                         COMMAND finds the directory in CREDENTIALS_DIRECTORY
  --secrets-dir DIR      write files in DIR (created 0700 if needed) instead of a
                         new directory under /dev/shm; files are removed at exit

Running:
  --once                 resolve, then exec COMMAND in place of rolesenv: the same
                         PID, nothing resident, no watching (in a container, use
                         'docker run --init' for reaping)
  --user USER[:GROUP]    run COMMAND as another account, name or number (rolesenv
                         must run as root: it reads a root-only key, COMMAND cannot)
  --parent-death-signal SIG
                         what COMMAND gets if rolesenv dies, even by SIGKILL
                         (default SIGTERM; Linux)
  --child-credentials MODE
                         none (default), or endpoint: serve rolesenv's own refreshing
                         credentials to COMMAND over the container credentials
                         protocol (127.0.0.1, a random token); AWS_ACCESS_KEY_ID,
                         AWS_PROFILE and the other variables that would outrank it
                         are removed from COMMAND's environment

Watching and restarting:
  --interval D           check for rotation every D, ±10% (the first check at a
                         random point of the first D); after a failure, retry after
                         1s, 2s, 4s... up to D (default 5m). Env files are looked
                         at every second and re-read when they change.
  --refresh-signal SIG   keep SIG for rolesenv: check at once instead of forwarding it
                         (HUP, USR1, USR2, WINCH, ALRM or RTMIN+n; default none)
  --debounce D           wait for more changes until D after the last one, and never
                         more than 4 x D after the first (default 5s)
  --on-change ACTION     restart (default); reload: when only files changed,
                         rewrite them and signal COMMAND (a change of a variable
                         still restarts); exit: stop COMMAND and exit 75, for a
                         service manager to restart everything; none: log only
  --reload-signal SIG    what reload sends COMMAND (default SIGHUP)
  --reload-command CMD   run CMD (split on spaces, no shell) instead of the signal
  --reload-timeout D     kill the reload command after D (default 30s)
  --stop-signal SIG      signal to COMMAND's process group to stop it for a restart
                         (default SIGTERM)
  --stop-timeout D       then SIGKILL to the group after D (default 10s)
  --max-restarts N       restart budget per --restart-window; a change past it is
                         deferred, not dropped (default 5; 0: no limit)
  --restart-window D     (default 10m)
  --max-stale D          stop COMMAND and exit 69 after D without a successful
                         check; more than --interval (default 0: never)
  --metrics-listen [HOST:]PORT
                         serve /metrics (Prometheus), /healthz and /readyz; a bare
                         port listens on 127.0.0.1 (default: off)

Credentials and logging:
` + credLogUsage + `
Without Roles Anywhere flags, credentials come from the standard AWS chain.

Signals: HUP, INT, QUIT, TERM, USR1, USR2, WINCH, ALRM and the realtime
signals are forwarded to COMMAND unchanged (INT, QUIT, HUP and WINCH to its
process group, as a terminal sends them; the others to COMMAND itself).
After TERM or INT, rolesenv waits for COMMAND. A signal that arrives before
COMMAND has started ends rolesenv with 128+N. SIG is a name or number:
TERM, SIGTERM, 15, RTMIN+2.

Exit status: COMMAND's, or 128+N if it died of signal N. rolesenv's own:
64 usage, 69 AWS unavailable or --max-stale, 70 internal, 75 --on-change
exit, 77 access denied, 78 configuration, 126 COMMAND not executable, 127
COMMAND not found; each comes with a 'rolesenv: error:' line.

Examples:
  rolesenv run --env-file /etc/app/app.env -- /usr/bin/app --port 8080
  rolesenv run --env-file app.env --once -- ./server
  rolesenv run --env-file app.env --on-change exit -- app      # let systemd restart it
  rolesenv run --env-file /etc/app/app.env --user app -- /usr/bin/app
  rolesenv run --env-file app.env --refresh-signal HUP --debounce 1s -- app
  rolesenv run --env-file app.env --template tls.tmpl:tls.key --on-change reload -- nginx
  ENTRYPOINT ["rolesenv", "run", "--env-file", "/app.env", "--"]   # Dockerfile

Every flag can also be set with ROLESENV_<NAME> (--on-change is
ROLESENV_ON_CHANGE); a flag on the command line wins. Watching flags given
with --once on the command line are an error; from ROLESENV_* they are
ignored.
`

// checkSpread is how long a scheduled check spaces its calls over: a
// tenth of the interval, at most 10 s. The watch's jitter spreads a
// fleet's checks, and the spread keeps each check's calls from arriving
// at once (BENCHMARKS.md, Fleet).
func checkSpread(interval time.Duration) time.Duration {
	return min(interval/10, 10*time.Second)
}

// watchGCPercent is the garbage collector's target (GOGC) while rolesenv
// watches. A watching rolesenv keeps little live (a few MB, mostly what
// package initialisation leaves) and a check allocates a few MB that die
// at once; at Go's default of 100 the heap grows to twice the live heap
// between collections, at 25 within a quarter more, for about a
// millisecond of collection more per check.
const watchGCPercent = 25

// trimForWatching is called once, when rolesenv stays to supervise and
// watch, never with --once (whose exec replaces the process): it lowers
// the garbage collector's target, unless GOGC is set in the environment,
// and returns the memory that start-up used and no longer needs (TLS,
// configuration, the first fetch) to the system at once, rather than over
// minutes, and unmaps the binary's pages that start-up mapped
// (footprint.go).
func trimForWatching(log *slog.Logger) {
	gogc := os.Getenv("GOGC")
	if gogc == "" {
		debug.SetGCPercent(watchGCPercent)
		gogc = strconv.Itoa(watchGCPercent)
	}
	resumeGC(watchGCPercent) // after pauseGC
	debug.FreeOSMemory()
	dropPages(log)
	log.Debug("memory trimmed for watching", "gogc", gogc)
}

func cmdRun(ctx context.Context, a *app, args []string) error {
	ra, err := a.parseRun(args)
	if ra == nil {
		return err // help, or a usage error
	}
	pauseGC() // until the exec, or trimForWatching
	cfg, err := a.superviseConfig(ra.fs, &ra.rf, ra.argv)
	if err != nil {
		return err
	}
	msrv, err := a.startObserving(&ra.rf, ra.ef.timeout, &cfg)
	if err != nil {
		return err
	}
	if msrv != nil {
		defer msrv.Close()
	}
	var refresh chan struct{}
	if cfg.RefreshSignal != 0 {
		refresh = make(chan struct{}, 1)
		cfg.Refresh = refresh
	}
	// Catch signals before anything slow happens: one that arrives while
	// the environment is resolved ends rolesenv with 128+N.
	sup, err := supervise.New(cfg)
	if err != nil {
		return &usageError{msg: err.Error()}
	}
	defer sup.Close()
	startCtx, cancel := sup.Context(ctx)
	defer cancel()
	st, err := a.prepareRun(startCtx, &ra.rf, &ra.ef, &lazyConfig{a: a, cf: &ra.cf}, cfg.User)
	if st.creds != nil {
		defer st.creds.Close()
	}
	defer st.files.close() // after a successful --once exec, the command owns the files
	if err != nil {
		var sigErr *supervise.SignalError
		if cause := context.Cause(startCtx); errors.As(cause, &sigErr) {
			return cause
		}
		return err
	}
	env := st.src.Env().Environ()
	if err := inject.CheckSize(ra.argv, env); err != nil {
		return err
	}
	if _, err := st.files.write(st.src.Env()); err != nil {
		return err
	}
	st.files.warnNoFiles(cfg.OnChange, st.src.Env())
	if ra.rf.once {
		if err := st.files.keepForExec(); err != nil {
			return err
		}
		return sup.Exec(env)
	}
	res, err := a.superviseWatching(ctx, sup, &ra.rf, ra.argv, st, limitRefresh(ctx, refresh, a.log))
	if err != nil {
		return err
	}
	if res.ExitCode != 0 {
		return exitStatus(res.ExitCode)
	}
	return nil
}

// runArgs is run's command line, parsed.
type runArgs struct {
	fs   *flagSet
	rf   runFlags
	ef   envFlags
	cf   credFlags
	argv []string // the command
}

// parseRun parses run's command line and sets up logging. It returns nil
// after --help (with a nil error) and on a usage error.
func (a *app) parseRun(args []string) (*runArgs, error) {
	ra := &runArgs{fs: newFlagSet("run", runUsage)}
	// The first argument that is not a flag starts the command: its own
	// flags are not rolesenv's.
	ra.fs.SetInterspersed(false)
	var lf logFlags
	ra.rf.register(ra.fs)
	ra.ef.register(ra.fs)
	ra.cf.register(ra.fs)
	lf.register(ra.fs)
	if err := ra.fs.parse(a, args); err != nil {
		if err == errHelp {
			return nil, nil
		}
		return nil, err
	}
	ra.argv = ra.fs.Args()
	if len(ra.argv) == 0 {
		return nil, &usageError{msg: "no command given", hint: "rolesenv run [flags] -- COMMAND [ARGS...]"}
	}
	if err := ra.cf.validate(ra.fs); err != nil {
		return nil, err
	}
	log, err := lf.logger(a.stderr)
	if err != nil {
		return nil, err
	}
	a.log = log
	return ra, nil
}

// lazyConfig builds the AWS configuration the first time something needs
// it (a reference, the credentials endpoint, an env file that gains a
// reference), and the same one after that: one credential provider, one
// credentials cache, one log line about the source.
type lazyConfig struct {
	a   *app
	cf  *credFlags
	mu  sync.Mutex
	cfg *aws.Config
}

func (l *lazyConfig) get(ctx context.Context) (aws.Config, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cfg != nil {
		return *l.cfg, nil
	}
	cfg, err := l.a.awsConfig(ctx, l.cf)
	if err != nil {
		return aws.Config{}, err
	}
	l.cfg = &cfg
	return cfg, nil
}

// runState is what start-up prepared: the env files' Source and the
// credentials endpoint, if any.
type runState struct {
	src   *inject.Source
	creds *credserver.Server
	files *fileSink
}

// prepareRun starts the credentials endpoint (with --child-credentials
// endpoint) and resolves the child's environment.
func (a *app) prepareRun(ctx context.Context, rf *runFlags, ef *envFlags, lc *lazyConfig, user *supervise.User) (*runState, error) {
	st := &runState{files: a.newFileSink(&rf.files, user)}
	var opts inject.Options
	if err := st.files.fileOptions(&rf.files, &opts); err != nil {
		return st, err
	}
	if rf.childCredentials == "endpoint" {
		srv, err := a.startCredentialsEndpoint(ctx, ef.timeout, lc)
		if err != nil {
			return st, err
		}
		st.creds = srv
		// Through inject, so that render and run agree on the result.
		opts.Remove = credserver.Outranking
		for _, kv := range srv.Env() {
			k, v, _ := strings.Cut(kv, "=")
			opts.Set = append(opts.Set, inject.NewSetting(k, v, k == credserver.TokenVar))
		}
	}
	if !rf.once {
		opts.Remove = slices.Concat(opts.Remove, watchdogVars) // a copy: Outranking stays as it is
	}
	start := time.Now()
	src, err := a.loadEnv(ctx, ef, opts, lc.get)
	if err != nil {
		return st, err
	}
	st.src = src
	if tm := src.Template(); tm.References() > 0 {
		n, ms, calls := tm.References(), time.Since(start).Milliseconds(), src.Calls()
		a.log.Info(fmt.Sprintf("%d references resolved in %d ms with %d API calls", n, ms, calls),
			"references", n, "fetches", len(tm.Fetches()), "duration_ms", ms, "api_calls", calls)
	} else {
		a.log.Debug("no references to resolve: no AWS configuration, no credentials, nothing to poll")
	}
	return st, nil
}

// startCredentialsEndpoint serves rolesenv's own refreshing credentials to
// the child. They are fetched once first, within the start-up deadline: a
// child must not start with an endpoint that cannot answer.
func (a *app) startCredentialsEndpoint(ctx context.Context, timeout time.Duration, lc *lazyConfig) (*credserver.Server, error) {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	cfg, err := lc.get(ctx)
	if err != nil {
		return nil, err
	}
	if cfg.Credentials == nil {
		return nil, &configError{msg: "--child-credentials endpoint: no AWS credentials to serve",
			hint: "give the Roles Anywhere flags, or credentials the AWS SDK finds (environment, profile, ...)"}
	}
	if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
		err = fmt.Errorf("--child-credentials endpoint: failed to obtain AWS credentials: %w", err)
		if exitcode.Of(err) == exitcode.Internal {
			err = &configError{msg: err.Error()}
		}
		return nil, err
	}
	srv, err := credserver.Start(cfg.Credentials, a.log)
	if err != nil {
		return nil, err
	}
	a.log.Info("serving credentials to the command", "endpoint", srv.URL())
	return srv, nil
}

// superviseWatching runs the child under the supervisor and feeds it what
// the watch reports: new environments, or the --max-stale error.
func (a *app) superviseWatching(ctx context.Context, sup *supervise.Supervisor, rf *runFlags, argv []string, st *runState, refresh <-chan struct{}) (supervise.Result, error) {
	o := inject.WatchOptions{
		Interval: rf.interval,
		Spread:   checkSpread(rf.interval),
		MaxStale: rf.maxStale,
		Refresh:  refresh,
		Logger:   a.log,
		Observe:  dropPagesAfterCheck(a.log, a.checkObserver(st.src.Template())),
		// An environment too large to exec the command with is not
		// reported: the check counts as failed (warned once, tried again
		// at every check, and counted by --max-stale), and the command
		// keeps what it has.
		Accept: func(e *inject.Env) error { return inject.CheckSize(argv, e.Environ()) },
	}
	o.Beat, o.Heartbeat = a.watcherBeat(rf.interval), heartbeat
	wctx, stop := context.WithCancel(ctx)
	changes := make(chan inject.Change)
	updates := make(chan supervise.Update)
	var wg sync.WaitGroup
	wg.Go(func() {
		// While the supervisor starts the child, not before it.
		trimForWatching(a.log)
		// A fatal error comes as a Change too.
		_ = st.src.Watch(wctx, o, changes)
	})
	wg.Go(func() { forwardChanges(wctx, changes, updates, st.files, a.changeSent()) })
	res, err := sup.Run(ctx, st.src.Env().Environ(), updates)
	stop()
	wg.Wait()
	return res, err
}

// forwardChanges turns the watch's Changes into the supervisor's Updates
// until ctx ends; sent, when set, is told of each new environment before
// the supervisor can have it.
func forwardChanges(ctx context.Context, changes <-chan inject.Change, updates chan<- supervise.Update, files *fileSink, sent func()) {
	for {
		var c inject.Change
		select {
		case c = <-changes:
		case <-ctx.Done():
			return
		}
		u := supervise.Update{Reason: c.Reason, Err: withFlagNames(c.Err)}
		if c.Env != nil {
			u.Env = c.Env.Environ()
			u.Files = files.updateFiles(c.Env)
			if sent != nil {
				sent()
			}
		}
		select {
		case updates <- u:
		case <-ctx.Done():
			return
		}
	}
}

// superviseConfig checks the run flags and turns them into the
// supervisor's configuration: how the child runs, then (unless --once)
// how it is restarted.
func (a *app) superviseConfig(fs *flagSet, rf *runFlags, argv []string) (supervise.Config, error) {
	cfg := supervise.Config{
		Command:      argv[0],
		Args:         argv[1:],
		NotifySocket: a.getenv("NOTIFY_SOCKET"),
		InPlace:      rf.once,
		Logger:       a.log,
	}
	if err := childConfig(fs, rf, &cfg); err != nil {
		return cfg, err
	}
	if rf.once {
		return cfg, a.checkOnce(fs)
	}
	if err := restartConfig(fs, rf, &cfg); err != nil {
		return cfg, err
	}
	if err := reloadConfig(fs, &rf.files, &cfg); err != nil {
		return cfg, err
	}
	if err := checkDurations(rf); err != nil {
		return cfg, err
	}
	cfg.Debounce = rf.debounce
	cfg.StopTimeout = rf.stopTimeout
	cfg.MaxRestarts = rf.maxRestarts
	cfg.RestartWindow = rf.restartWindow
	return cfg, nil
}

// childConfig checks how the child runs: --child-credentials,
// --parent-death-signal and --user.
func childConfig(fs *flagSet, rf *runFlags, cfg *supervise.Config) error {
	switch rf.childCredentials {
	case "none":
	case "endpoint":
		if rf.once {
			return &usageError{msg: "--child-credentials endpoint cannot be used with --once: nothing stays to serve the credentials"}
		}
	default:
		return usageErrorf("invalid --child-credentials %q (want none or endpoint)", rf.childCredentials)
	}
	sig, err := parseSignalFlag(fs, "parent-death-signal", rf.parentDeathSignal)
	if err != nil {
		return err
	}
	cfg.ParentDeathSignal = sig
	if rf.user != "" {
		u, err := supervise.LookupUser(rf.user)
		if err != nil {
			return err
		}
		cfg.User = u
	}
	return nil
}

// checkOnce refuses watching flags given with --once on the command line;
// from ROLESENV_* they are ignored.
func (a *app) checkOnce(fs *flagSet) error {
	for _, name := range watchFlagNames {
		if fs.onCommandLine[name] {
			return &usageError{
				msg:  fmt.Sprintf("--%s cannot be used with --once: nothing is watched", name),
				hint: "drop --once to watch for rotation, or drop --" + name,
			}
		}
		if fs.Changed(name) {
			a.log.Debug("ignored with --once", "variable", envTwin(name))
		}
	}
	return nil
}

// restartConfig checks how a change reaches the child: --on-change,
// --stop-signal and --refresh-signal.
func restartConfig(fs *flagSet, rf *runFlags, cfg *supervise.Config) error {
	onChange, err := supervise.ParseOnChange(rf.onChange)
	if err != nil {
		return &usageError{msg: err.Error()}
	}
	cfg.OnChange = onChange
	if cfg.StopSignal, err = parseSignalFlag(fs, "stop-signal", rf.stopSignal); err != nil {
		return err
	}
	if err := supervise.ValidateStopSignal(cfg.StopSignal); err != nil {
		return usageErrorf("invalid --stop-signal: %v", err)
	}
	if rf.refreshSignal == "" {
		return nil
	}
	if cfg.RefreshSignal, err = parseSignalFlag(fs, "refresh-signal", rf.refreshSignal); err != nil {
		return err
	}
	if err := supervise.ValidateRefreshSignal(cfg.RefreshSignal); err != nil {
		return usageErrorf("invalid --refresh-signal: %v", err)
	}
	return nil
}

// checkDurations checks the watching durations and --max-restarts.
func checkDurations(rf *runFlags) error {
	for _, d := range []struct {
		name     string
		value    time.Duration
		positive bool
	}{
		{"interval", rf.interval, true},
		{"debounce", rf.debounce, false},
		{"stop-timeout", rf.stopTimeout, true},
		{"restart-window", rf.restartWindow, true},
		{"max-stale", rf.maxStale, false},
	} {
		if d.value < 0 || (d.positive && d.value == 0) {
			want := "zero or more"
			if d.positive {
				want = "more than zero"
			}
			return usageErrorf("invalid --%s %v: want %s", d.name, d.value, want)
		}
	}
	if rf.maxStale > 0 && rf.maxStale <= rf.interval {
		return &usageError{msg: fmt.Sprintf("invalid --max-stale %v: want more than --interval (%v), or 0", rf.maxStale, rf.interval),
			hint: "--max-stale counts from the last successful check, and checks come every --interval"}
	}
	if rf.maxRestarts < 0 {
		return usageErrorf("invalid --max-restarts %d: want 0 (no limit) or more", rf.maxRestarts)
	}
	return nil
}

// parseSignalFlag parses a signal flag's value. An error from a twin names
// the variable without quoting it, as every twin error does.
func parseSignalFlag(fs *flagSet, name, value string) (syscall.Signal, error) {
	sig, err := supervise.ParseSignal(value)
	if err == nil {
		return sig, nil
	}
	msg := fmt.Sprintf("invalid --%s: %v", name, err)
	if !fs.onCommandLine[name] {
		msg = fmt.Sprintf("invalid %s: not a signal", envTwin(name))
	}
	return 0, &usageError{msg: msg, hint: "a signal is a name or a number: TERM, SIGTERM, 15, RTMIN+2"}
}
