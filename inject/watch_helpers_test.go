package inject

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/rolesenv/rolesenv/internal/awsdev"
)

// watchDeadline bounds every wait of the watcher tests: generous, never a
// synchronisation.
const watchDeadline = 60 * time.Second

// fakeClock is a Clock that moves only when a test fires its earliest
// timer.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
	armed  []time.Duration
}

type fakeTimer struct {
	clk *fakeClock
	at  time.Time
	c   chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{clk: c, at: c.now.Add(d), c: make(chan time.Time, 1)}
	c.timers = append(c.timers, t)
	c.armed = append(c.armed, d)
	return t
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }

func (t *fakeTimer) Stop() {
	t.clk.mu.Lock()
	defer t.clk.mu.Unlock()
	t.clk.timers = slices.DeleteFunc(t.clk.timers, func(x *fakeTimer) bool { return x == t })
}

// fireNext moves the clock to the earliest timer and fires it; it
// returns how far the clock moved, and false when no timer is set.
func (c *fakeClock) fireNext() (time.Duration, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.timers) == 0 {
		return 0, false
	}
	i := 0
	for j, t := range c.timers {
		if t.at.Before(c.timers[i].at) {
			i = j
		}
	}
	t := c.timers[i]
	c.timers = slices.Delete(c.timers, i, i+1)
	d := max(0, t.at.Sub(c.now))
	c.now = c.now.Add(d)
	t.c <- c.now
	return d, true
}

// lastArmed is the duration of the newest timer.
func (c *fakeClock) lastArmed() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.armed[len(c.armed)-1]
}

// armedSince is the durations of the newest n timers.
func (c *fakeClock) armedSince(n int) []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.armed[len(c.armed)-n:])
}

func (c *fakeClock) pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// logBuffer collects a logger's lines for assertions.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// count is the number of lines with msg.
func (b *logBuffer) count(msg string) int {
	return strings.Count(b.String(), `msg="`+msg+`"`)
}

// watchTest runs a watcher against the emulator on a fake clock. The
// random source is fixed (the middle of every range), so waits are known.
type watchTest struct {
	t      *testing.T
	s      *awsdev.Server
	clk    *fakeClock
	src    *Source
	w      *watcher
	out    chan Change
	idle   chan struct{}
	logs   *logBuffer
	done   chan error
	cancel context.CancelFunc
	// configs counts the calls for an AWS configuration.
	configs int
}

// newWatchTest loads files against the emulator (cfg) and prepares the
// watcher of a Watch on them; set its options, then call start. The files
// live in memory and are not watched; a test that writes them to disk
// sets wt.src.files.
func newWatchTest(t *testing.T, s *awsdev.Server, cfg aws.Config, files ...File) *watchTest {
	t.Helper()
	logs := &logBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	wt := &watchTest{t: t, s: s, clk: newFakeClock(), logs: logs, out: make(chan Change, 16), idle: make(chan struct{}, 1)}
	src, err := Load(context.Background(), files, LoadOptions{Options: Options{CleanEnv: true}, Logger: log,
		Config: func(context.Context) (aws.Config, error) {
			wt.configs++
			return cfg, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	wt.src = src
	src.files = nil
	wt.w = src.watcher(WatchOptions{Interval: time.Minute, Logger: log, Clock: wt.clk})
	wt.w.randN = func(n int64) int64 { return n / 2 }
	wt.w.idle = func() {
		select {
		case wt.idle <- struct{}{}:
		default:
		}
	}
	t.Cleanup(func() {
		if strings.Contains(logs.String(), "SNTL") {
			t.Errorf("a value reached the log:\n%s", logs)
		}
		if t.Failed() {
			t.Logf("watcher log:\n%s", logs)
		}
	})
	return wt
}

func (wt *watchTest) start() {
	wt.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	wt.cancel = cancel
	wt.done = make(chan error, 1)
	go func() { wt.done <- wt.w.Run(ctx, wt.out) }()
	wt.t.Cleanup(func() {
		cancel()
		select {
		case <-wt.done:
		case <-time.After(watchDeadline):
			wt.t.Error("Run did not return after its context ended")
		}
	})
	wt.waitIdle()
}

func (wt *watchTest) waitIdle() {
	wt.t.Helper()
	select {
	case <-wt.idle:
	case err := <-wt.done:
		wt.t.Fatalf("Run returned %v", err)
	case <-time.After(watchDeadline):
		wt.t.Fatal("the watcher did not come back to waiting")
	}
}

// step fires the earliest timer, waits until the watcher waits again, and
// returns the wait it asks for next (the newest timer).
func (wt *watchTest) step() time.Duration {
	wt.t.Helper()
	if _, ok := wt.clk.fireNext(); !ok {
		wt.t.Fatal("no timer set: the watcher would never check")
	}
	wt.waitIdle()
	return wt.clk.lastArmed()
}

func (wt *watchTest) noChange() {
	wt.t.Helper()
	select {
	case c := <-wt.out:
		wt.t.Fatalf("unexpected change: %s (err %v)", c.Reason, c.Err)
	default:
	}
}

func (wt *watchTest) change() Change {
	wt.t.Helper()
	select {
	case c := <-wt.out:
		return c
	default:
		wt.t.Fatal("no change reported")
		return Change{}
	}
}

func envVal(t *testing.T, env *Env, name string) string {
	t.Helper()
	v, ok := env.Lookup(name)
	if !ok {
		t.Fatalf("%s is not in the environment", name)
	}
	return v.Reveal()
}

// calls is the emulator's call count per operation since the last reset.
func calls(s *awsdev.Server) map[string]int64 {
	m := s.CallCounts()
	for k, v := range m {
		if v == 0 {
			delete(m, k)
		}
	}
	return m
}
