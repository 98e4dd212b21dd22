package supervise

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/rolesenv/rolesenv/internal/procsec"
)

// OnChange says what a new environment does to the running child.
type OnChange int

const (
	// OnChangeRestart stops the child and starts it again with the new
	// environment (after the debounce, within the restart budget).
	OnChangeRestart OnChange = iota
	// OnChangeExit stops the child and ends Run with a *ChangeError, so
	// that a service manager restarts the whole unit.
	OnChangeExit
	// OnChangeNone logs the change and keeps the child running.
	OnChangeNone
	// OnChangeReload writes the files of a change that leaves the
	// environment as it is, then sends the child ReloadSignal or runs
	// ReloadCommand; a change of the environment restarts, as
	// OnChangeRestart does.
	OnChangeReload
)

// ParseOnChange parses "restart", "exit", "none" or "reload".
func ParseOnChange(s string) (OnChange, error) {
	switch s {
	case "restart":
		return OnChangeRestart, nil
	case "exit":
		return OnChangeExit, nil
	case "none":
		return OnChangeNone, nil
	case "reload":
		return OnChangeReload, nil
	}
	return 0, fmt.Errorf("invalid on-change %q (want restart, reload, exit or none)", s)
}

func (o OnChange) String() string {
	switch o {
	case OnChangeRestart:
		return "restart"
	case OnChangeExit:
		return "exit"
	case OnChangeNone:
		return "none"
	case OnChangeReload:
		return "reload"
	}
	return fmt.Sprintf("OnChange(%d)", int(o))
}

// Config describes the child and how to supervise it. The zero value of
// each field is documented; New fills the defaults.
type Config struct {
	// Command is the program: a path (with a slash), or a name looked up
	// on the PATH of the child's environment (rolesenv's own PATH when the
	// environment has none). No shell is involved.
	Command string
	// Args are the arguments after Command; argv[0] is Command as given.
	Args []string
	// Stdin, Stdout and Stderr are the child's standard streams; nil means
	// rolesenv's own.
	Stdin, Stdout, Stderr *os.File
	// User, when set, runs the child under that account (see LookupUser).
	User *User

	// StopSignal is sent to the child's process group to stop it for a
	// restart or an exit (default SIGTERM). StopTimeout is how long to
	// wait before SIGKILL to the group (default 10s).
	StopSignal  syscall.Signal
	StopTimeout time.Duration
	// Debounce is the trailing debounce of environment changes (zero: none);
	// a change is never delayed by more than four times the debounce.
	Debounce time.Duration
	// MaxRestarts per RestartWindow is the restart budget; a change past
	// it is deferred until the window allows. Zero MaxRestarts: no budget.
	MaxRestarts   int
	RestartWindow time.Duration
	// OnChange says what a new environment does (default restart).
	OnChange OnChange
	// ReloadSignal is what OnChangeReload sends the child (default
	// SIGHUP), unless ReloadCommand is set: that command (argv, no
	// shell) runs instead, with the child's environment and account, and
	// is killed, with its process group, after ReloadTimeout (default
	// DefaultReloadTimeout) or when the child stops.
	ReloadSignal  syscall.Signal
	ReloadCommand []string
	ReloadTimeout time.Duration

	// ParentDeathSignal is what the child receives if rolesenv dies, even
	// by SIGKILL (Linux only; zero: nothing).
	ParentDeathSignal syscall.Signal
	// RefreshSignal, when set, is kept by rolesenv instead of being
	// forwarded: each one sends a value on Refresh (without blocking;
	// give it a buffer of one).
	RefreshSignal syscall.Signal
	Refresh       chan<- struct{}

	// NotifySocket is systemd's NOTIFY_SOCKET, if any: rolesenv sends
	// RELOADING=1, STATUS= and READY=1 around restarts. The child gets
	// NOTIFY_SOCKET through its environment and sends its own READY=1.
	NotifySocket string

	// Watchdog is systemd's watchdog timeout (WATCHDOG_USEC), when
	// rolesenv is the process systemd watches: while the supervisor's
	// loop turns (and, before Run, while start-up's signal watcher
	// does, for at most StartUpLimit), WATCHDOG=1 goes to NotifySocket
	// every half of it. A loop that stops turning stops the pings, and
	// systemd restarts the unit.
	Watchdog time.Duration
	// StartUpLimit is how long start-up (from New to Run or Exec) may
	// take, its own deadline and some grace: past it, start-up is stuck,
	// and its watchdog pings stop (default DefaultStartUpLimit).
	StartUpLimit time.Duration
	// Alive, when set, is asked at every turn of the loop whether the
	// rest of the caller (a watcher on another goroutine) still works;
	// while it answers false, no watchdog ping goes out.
	Alive func() bool
	// Heartbeat, when set, makes the loop turn at least that often
	// (reported as EventBeat), so that an observer can tell a loop that
	// turns from one that is stuck.
	Heartbeat time.Duration
	// Observe, when set, is told what happens to the child (see Event).
	// It is called on the loop and must not block.
	Observe func(Event)

	// StartRetryLimit is how long a start that the system refuses for
	// lack of a resource (EMFILE, ENFILE, ENOMEM, EAGAIN) is retried
	// before Run gives up with a *StartError (default one minute).
	StartRetryLimit time.Duration

	// InPlace says that the command will replace rolesenv (Exec) rather
	// than run under it (Run): New then sets up only what Exec needs
	// (no SIGCHLD, no job control, and WINCH left alone), and Run
	// refuses to start. The command then inherits the dispositions of
	// CONT, TTIN and TTOU that rolesenv was started with.
	InPlace bool

	// Logger receives what happens (never an environment value); nil
	// means quiet.
	Logger *slog.Logger
	// Clock drives the debounce, the budget, the stop timeout and the
	// retries of a start; nil means the real clock.
	Clock Clock
}

// Update is what the watcher sends to Run: a complete new environment for
// the child, or a fatal error. It prints as its reason only.
type Update struct {
	// Env is the child's complete new environment ("KEY=value").
	Env []string
	// Reason says what changed, for logs: names and references, never
	// values.
	Reason string
	// Err, when set, is fatal: Run stops the child and returns Err (for
	// example, --max-stale exceeded, which classifies itself as
	// unavailable).
	Err error
	// Files, when set, writes the files that this environment delivers.
	// Run calls it when it applies the update: before a reload, before
	// the new child of a restart starts, and to learn whether a change
	// that leaves Env as it is changed a file.
	Files WriteFiles
}

// String describes an Update by its reason: Env holds resolved secrets,
// so String, GoString, Format, MarshalText and LogValue never print it.
func (u Update) String() string {
	s := "environment update"
	if u.Err != nil {
		s = "fatal update: " + u.Err.Error()
	}
	if u.Reason != "" {
		s += " (" + u.Reason + ")"
	}
	return s
}

func (u Update) GoString() string             { return u.String() }
func (u Update) Format(f fmt.State, _ rune)   { _, _ = f.Write([]byte(u.String())) }
func (u Update) MarshalText() ([]byte, error) { return []byte(u.String()), nil }
func (u Update) LogValue() slog.Value         { return slog.StringValue(u.String()) }

// Result is how the child ended. Run returns as soon as the child has
// exited; processes it left behind are not waited for.
type Result struct {
	// ExitCode is the child's exit status, or 128+N when it died of
	// signal N.
	ExitCode int
	// Signal is the signal the child died of, or zero.
	Signal syscall.Signal
	// Restarts counts the restarts Run performed.
	Restarts int
}

// Supervisor runs one command: Run supervises it, Exec replaces rolesenv
// with it. It catches signals from New on, so that a signal arriving while
// the caller still prepares the environment is not lost (see Context).
type Supervisor struct {
	cfg   Config
	log   *slog.Logger
	clock Clock

	sigs   chan os.Signal // forwarded signals, SIGCONT, SIGTTIN, SIGTTOU, the refresh signal
	chld   chan os.Signal // SIGCHLD
	caught []os.Signal

	mu          sync.Mutex
	interrupted *SignalError
	cancels     []context.CancelCauseFunc
	handoff     chan struct{} // closed when Run or Exec takes over the signals
	early       chan struct{} // closed when the start-up watcher has returned
	handedOff   bool
	used        bool
	began       time.Time // New, for StartUpLimit

	noTerminal   bool // tests that run in-process leave the terminal alone
	startProcess func(string, []string, *os.ProcAttr) (*os.Process, error)
}

// New checks cfg, fills its defaults and starts catching signals. Call
// Close when done.
func New(cfg Config) (*Supervisor, error) {
	return newSupervisor(cfg, true)
}

func newSupervisor(cfg Config, catch bool) (*Supervisor, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	if !cfg.InPlace {
		// The os package decides once whether it can use pidfds, at its
		// first need of one; decided while the descriptor table is full,
		// that would be "no" for good, and the reaper would lose its best
		// protection. Exec has no reaper.
		if p, err := os.FindProcess(os.Getpid()); err == nil {
			_ = p.Release()
		}
	}
	s := &Supervisor{
		cfg:          cfg,
		log:          cfg.Logger,
		clock:        cfg.Clock,
		sigs:         make(chan os.Signal, 128),
		chld:         make(chan os.Signal, 1),
		handoff:      make(chan struct{}),
		early:        make(chan struct{}),
		began:        time.Now(),
		startProcess: procsec.StartProcess,
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.clock == nil {
		s.clock = realClock{}
	}
	if catch {
		s.caught = caught(&cfg)
		signal.Notify(s.sigs, s.caught...)
	}
	if !cfg.InPlace {
		signal.Notify(s.chld, syscall.SIGCHLD)
	}
	go s.watchStartUp()
	return s, nil
}

// caught are the signals a Supervisor catches from New on. Run needs
// every forwarded signal, and CONT, TTIN and TTOU for job control. Before
// Exec only the refresh signal and those that end a start-up matter (see
// watchStartUp), and each signal caught costs a round trip to the
// runtime's signal thread.
func caught(cfg *Config) []os.Signal {
	if !cfg.InPlace {
		return append(osSignals(Forwarded()), syscall.SIGCONT, syscall.SIGTTIN, syscall.SIGTTOU)
	}
	var out []os.Signal
	for _, sig := range Forwarded() {
		if !ignoredByDefault(sig) || sig == cfg.RefreshSignal {
			out = append(out, sig)
		}
	}
	return out
}

// fill checks cfg and fills in its defaults.
func (cfg *Config) fill() error {
	if cfg.Command == "" {
		return errors.New("no command given")
	}
	if cfg.StopSignal == 0 {
		cfg.StopSignal = syscall.SIGTERM
	}
	if err := ValidateStopSignal(cfg.StopSignal); err != nil {
		return fmt.Errorf("invalid stop signal: %w", err)
	}
	if cfg.StopTimeout == 0 {
		cfg.StopTimeout = 10 * time.Second
	}
	if cfg.StartRetryLimit == 0 {
		cfg.StartRetryLimit = defaultRetryLimit
	}
	if cfg.ReloadSignal == 0 {
		cfg.ReloadSignal = syscall.SIGHUP
	}
	if cfg.ReloadTimeout == 0 {
		cfg.ReloadTimeout = DefaultReloadTimeout
	}
	if cfg.StartUpLimit == 0 {
		cfg.StartUpLimit = DefaultStartUpLimit
	}
	if cfg.StopTimeout < 0 || cfg.Debounce < 0 || cfg.RestartWindow < 0 || cfg.MaxRestarts < 0 || cfg.StartRetryLimit < 0 || cfg.ReloadTimeout < 0 || cfg.StartUpLimit < 0 {
		return errors.New("durations and the restart budget cannot be negative")
	}
	if cfg.MaxRestarts > 0 && cfg.RestartWindow == 0 {
		return errors.New("a restart budget needs a restart window")
	}
	if cfg.RefreshSignal != 0 {
		return ValidateRefreshSignal(cfg.RefreshSignal)
	}
	return nil
}

// watchStartUp handles the signals that arrive before Run or Exec takes
// over: the refresh signal is passed on, a signal whose default action
// would end a process ends rolesenv (see Context), the others are dropped.
func (s *Supervisor) watchStartUp() {
	defer close(s.early)
	ping, stop := s.startUpPings()
	defer stop()
	for {
		select {
		case <-s.handoff:
			return
		case <-ping:
			if !s.startUpPing() {
				stop()
				ping = nil
			}
		case sig := <-s.sigs:
			ss := sig.(syscall.Signal)
			switch {
			case ss == s.cfg.RefreshSignal:
				s.refresh()
			case isForwarded(ss) && !ignoredByDefault(ss):
				s.mu.Lock()
				if s.interrupted == nil {
					s.interrupted = &SignalError{Signal: ss, During: duringStartUp}
					s.log.Info("signal before the command started", "signal", SignalName(ss))
					for _, cancel := range s.cancels {
						cancel(s.interrupted)
					}
					s.cancels = nil
				}
				s.mu.Unlock()
			}
		}
	}
}

// Context returns a context that is cancelled, with a *SignalError as its
// cause, when a signal that ends rolesenv arrives before the child starts.
// Prepare the environment under it; Run and Exec return that same error.
func (s *Supervisor) Context(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(parent)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.interrupted != nil {
		cancel(s.interrupted)
	} else {
		s.cancels = append(s.cancels, cancel)
	}
	return ctx, func() { cancel(context.Canceled) }
}

// takeSignals stops the start-up watcher and returns the signal that
// arrived before, if any.
func (s *Supervisor) takeSignals() error {
	s.mu.Lock()
	if !s.handedOff {
		s.handedOff = true
		close(s.handoff)
	}
	s.mu.Unlock()
	<-s.early
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.interrupted != nil {
		return s.interrupted
	}
	return nil
}

// Close stops catching signals. A Supervisor cannot be used after Close.
func (s *Supervisor) Close() {
	s.takeSignals()
	signal.Stop(s.sigs)
	signal.Stop(s.chld)
}

func (s *Supervisor) refresh() {
	s.log.Debug("refresh signal: checking for changes now", "signal", SignalName(s.cfg.RefreshSignal))
	if s.cfg.Refresh == nil {
		return
	}
	select {
	case s.cfg.Refresh <- struct{}{}:
	default: // a refresh is already pending
	}
}

// Run starts the child with env and supervises it until it exits, which
// ends Run with its status in Result and a nil error. Updates bring new
// environments (or a fatal error); a nil channel means none will come.
//
// Run returns an error when the child could not be started (*StartError),
// when a signal arrived before it started or ended a restart
// (*SignalError), when an update was fatal (that update's error), with
// OnChangeExit (*ChangeError), or when ctx ends (its cause); in every case
// but the first the child has been stopped and its process group is gone.
//
// Run locks its goroutine to an OS thread until it returns: the child's
// parent-death signal fires when the thread that created it exits, so the
// thread must live as long as the child.
func (s *Supervisor) Run(ctx context.Context, env []string, updates <-chan Update) (Result, error) {
	if err := s.claim(true); err != nil {
		return Result{ExitCode: exitCodeOf(err)}, err
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	l := newLoop(s)
	defer l.close()
	return l.run(ctx, env, updates)
}

// claim takes the signals over from the start-up watcher for Run (run
// true) or Exec, which may be called once. It returns the signal that
// arrived before, if any.
func (s *Supervisor) claim(run bool) error {
	if err := s.takeSignals(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.used {
		return errors.New("supervise: Run or Exec called twice")
	}
	if run && s.cfg.InPlace {
		return errors.New("supervise: Run called on a Supervisor made for Exec (Config.InPlace)")
	}
	s.used = true
	return nil
}

// sortedEnv returns a sorted copy of env: the child's environment is
// always explicit and in a stable order.
func sortedEnv(env []string) []string {
	out := slices.Clone(env)
	slices.Sort(out)
	return out
}
