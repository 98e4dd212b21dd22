package inject

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Source is env files resolved into the child's environment, with what it
// takes to keep that environment current: the template, the fetched
// values and the resolver. Load returns one; Env gives the environment and
// Watch keeps it current. Env and Template do not change after Load, so
// Watch may run while they are read.
type Source struct {
	tm       *Template
	vals     *Values
	env      *Env
	resolver *Resolver // nil when nothing needed AWS
	files    []File
	o        LoadOptions
}

// LoadOptions say how Load parses the files and reaches AWS.
type LoadOptions struct {
	// Options are what Parse is given, at start-up and whenever a file
	// changes.
	Options
	// Config returns the AWS configuration. It is called only when a
	// reference needs it: never for a template without references (no
	// configuration, no credentials, no request), and for one that gains
	// a reference while watched, at that moment.
	Config func(context.Context) (aws.Config, error)
	// Prepare, when set, is called once before start-up's first request,
	// with the configuration and the Plan of the first round. It returns
	// the configuration to fetch with and a function that Load calls when
	// start-up resolution is over. A caller can open connections ahead
	// with it.
	Prepare func(ctx context.Context, cfg aws.Config, p Plan) (aws.Config, func())
	// Logger receives the template's warnings and the resolver's debug
	// lines; never a value. Nil is quiet.
	Logger *slog.Logger
}

// Load parses files (as ReadFiles returns them) and resolves every
// reference in them. It returns a Source only when every reference
// resolved; otherwise the error lists every broken one (see Resolve).
func Load(ctx context.Context, files []File, o LoadOptions) (*Source, error) {
	tm, err := Parse(files, o.Options)
	if err != nil {
		return nil, err
	}
	s := &Source{tm: tm, files: files, o: o}
	for _, w := range tm.Warnings() {
		s.log().Warn(w)
	}
	if len(tm.fetches) == 0 {
		s.vals = NewValues()
		if s.env, err = tm.Render(s.vals); err != nil {
			return nil, err
		}
		return s, nil
	}
	if err := s.resolve(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// resolve makes the resolver, prepared for the first round, and resolves
// the template with it.
func (s *Source) resolve(ctx context.Context) error {
	r, err := s.newResolver(ctx)
	if err != nil {
		return err
	}
	if s.o.Prepare != nil {
		// Before the resolver's first request: it makes its clients then.
		var done func()
		r.Config, done = s.o.Prepare(ctx, r.Config, r.Plan(s.tm.fetches))
		defer done()
	}
	s.env, s.vals, err = r.Resolve(ctx, s.tm)
	if err != nil {
		return err
	}
	s.resolver = r
	return nil
}

// newResolver makes a resolver from the configuration Config returns.
func (s *Source) newResolver(ctx context.Context) (*Resolver, error) {
	if s.o.Config == nil {
		return nil, errors.New("no AWS configuration to resolve references with")
	}
	cfg, err := s.o.Config(ctx)
	if err != nil {
		return nil, err
	}
	return &Resolver{Config: cfg, Logger: s.o.Logger}, nil
}

func (s *Source) log() *slog.Logger {
	if s.o.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.o.Logger
}

// Env is the environment Load resolved. Watch reports later ones as
// Changes.
func (s *Source) Env() *Env { return s.env }

// Template is the parsed env files, for their counts and uses.
func (s *Source) Template() *Template { return s.tm }

// Calls is the number of AWS requests that Load's resolver has made so
// far, Watch's polls included; 0 when nothing needed AWS at Load.
func (s *Source) Calls() int64 {
	if s.resolver == nil {
		return 0
	}
	return s.resolver.Calls()
}

// WatchOptions configure Watch. The zero value polls every
// DefaultInterval and looks at the files every DefaultFileInterval.
type WatchOptions struct {
	// Interval between checks (default DefaultInterval), FileInterval
	// between looks at the env files (default DefaultFileInterval).
	Interval     time.Duration
	FileInterval time.Duration
	// CheckTimeout bounds one check; zero means the interval, between 5 s
	// and 30 s.
	CheckTimeout time.Duration
	// Spread, when set, spaces the calls of a scheduled check evenly over
	// that long instead of sending them at once, so that the calls of a
	// fleet do not bunch; the check's results are still applied together.
	// It is kept under half the check timeout. A check asked for with
	// Refresh is not spread.
	Spread time.Duration
	// MaxStale, when set, ends Watch with a *StaleError once checks have
	// failed for that long since the last good one.
	MaxStale time.Duration
	// Refresh triggers an immediate check (and a look at the files).
	Refresh <-chan struct{}
	// Accept, when set, vets a new environment before it is reported (a
	// caller checks that exec can take it: CheckSize). One it refuses is
	// a failed check: the child keeps its environment, the failure is
	// warned about once per episode and counts toward MaxStale, and every
	// later check tries again, so the environment is never taken as
	// applied while the child does not have it.
	Accept func(*Env) error
	// Logger gets what happens, never a value; nil is quiet.
	Logger *slog.Logger
	// Clock drives the schedule; nil means the real clock.
	Clock Clock
	// Observe, when set, is told of every check (see CheckEvent), on the
	// watch's goroutine: it must not block.
	Observe func(CheckEvent)
	// Beat, when set, is called at every turn of the watch's loop, on its
	// goroutine (it must not block), and the loop then turns at least
	// every Heartbeat (default DefaultFileInterval): a caller can tell a
	// watch that turns from one that is stuck. A check holds the loop
	// for up to CheckTimeout.
	Beat      func()
	Heartbeat time.Duration
}

// Watch keeps the environment current until ctx ends (it returns nil then)
// or, with MaxStale, until checks have failed for too long (it sends the
// *StaleError as a Change, then returns it). It polls the references for
// rotation and re-reads the env files when they change on disk, and sends
// a Change to out only when the rendered environment differs from the
// last one it sent; it waits for out to take each.
//
// Each check asks DescribeSecret once per distinct secret and
// GetParameters, without decryption, once per 10 parameters, and fetches
// only what moved; references pinned to a version are never polled. The
// first check comes at a random point of the first interval, later ones
// after the interval ±10%, and after a failure after a back-off of 1 s,
// 2 s, 4 s... up to the interval. Failures never reach the child: it
// keeps its last good environment, with one warning per episode. A
// changed file is parsed again with the same Options and its new
// references are fetched (Config is called then if nothing needed AWS
// before); standard input ("-") is never read again.
func (s *Source) Watch(ctx context.Context, o WatchOptions, out chan<- Change) error {
	return s.watcher(o).Run(ctx, out)
}

// watcher makes the watcher of one Watch call.
func (s *Source) watcher(o WatchOptions) *watcher {
	return &watcher{WatchOptions: o, src: s}
}
