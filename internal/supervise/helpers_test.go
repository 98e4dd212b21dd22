package supervise

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// deadline bounds every wait in these tests; it is generous because the
// machine may be slow, and it is never a synchronisation.
const deadline = 60 * time.Second

// fakeClock is a Clock that moves only when told to.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	timers  []*fakeTimer
	changed chan struct{} // closed and replaced whenever a timer is set
}

type fakeTimer struct {
	c     *fakeClock
	at    time.Time
	ch    chan time.Time
	fired bool
	dead  bool
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), changed: make(chan struct{})}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, at: c.now.Add(d), ch: make(chan time.Time, 1)}
	c.timers = append(c.timers, t)
	close(c.changed)
	c.changed = make(chan struct{})
	return t
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

func (t *fakeTimer) Stop() {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	t.dead = true
	select { // as time.Timer since Go 1.23: no stale value after Stop
	case <-t.ch:
	default:
	}
}

// Advance moves the clock by d and fires the timers that are due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	for _, t := range c.timers {
		if !t.dead && !t.fired && !t.at.After(c.now) {
			t.fired = true
			t.ch <- t.at
		}
	}
}

// waitTimer waits until a live timer is set to fire at, and returns.
func (c *fakeClock) waitTimer(t testing.TB, at time.Time) {
	t.Helper()
	timeout := time.After(deadline)
	for {
		c.mu.Lock()
		ch := c.changed
		for _, tm := range c.timers {
			if !tm.dead && !tm.fired && tm.at.Equal(at) {
				c.mu.Unlock()
				return
			}
		}
		c.mu.Unlock()
		select {
		case <-ch:
		case <-timeout:
			t.Fatalf("no timer set for %v (now %v)", at, c.Now())
		}
	}
}

// logRecord is a log line as a test sees it: the message, its attributes,
// and the fake time when it was logged.
type logRecord struct {
	msg   string
	attrs map[string]string
	at    time.Time
}

// recorder is a slog.Handler that keeps every record and lets a test wait
// for one.
type recorder struct {
	clock Clock
	mu    sync.Mutex
	recs  []logRecord
	more  chan struct{}
	t     testing.TB
}

func newRecorder(t testing.TB, clock Clock) *recorder {
	return &recorder{clock: clock, more: make(chan struct{}), t: t}
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *recorder) WithGroup(string) slog.Handler            { return r }

func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	lr := logRecord{msg: rec.Message, attrs: map[string]string{}}
	if r.clock != nil {
		lr.at = r.clock.Now()
	}
	rec.Attrs(func(a slog.Attr) bool {
		lr.attrs[a.Key] = a.Value.String()
		return true
	})
	r.mu.Lock()
	r.recs = append(r.recs, lr)
	close(r.more)
	r.more = make(chan struct{})
	r.mu.Unlock()
	r.t.Logf("log: %s %v", lr.msg, lr.attrs)
	return nil
}

// wait returns the n-th (from 1) record with message msg, waiting for it.
func (r *recorder) wait(msg string, n int) logRecord {
	r.t.Helper()
	timeout := time.After(deadline)
	for {
		r.mu.Lock()
		ch := r.more
		seen := 0
		for _, rec := range r.recs {
			if rec.msg == msg {
				seen++
				if seen == n {
					r.mu.Unlock()
					return rec
				}
			}
		}
		r.mu.Unlock()
		select {
		case <-ch:
		case <-timeout:
			r.t.Fatalf("no log record %q (#%d) within %v", msg, n, deadline)
		}
	}
}

func (r *recorder) count(msg string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, rec := range r.recs {
		if rec.msg == msg {
			n++
		}
	}
	return n
}

// lines reads a child's output line by line.
type lines struct {
	ch chan string
	t  testing.TB
}

func readLines(t testing.TB, r io.Reader) *lines {
	l := &lines{ch: make(chan string, 1024), t: t}
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			l.ch <- sc.Text()
		}
		close(l.ch)
	}()
	return l
}

// next returns the next line, failing the test at the deadline or EOF.
func (l *lines) next() string {
	l.t.Helper()
	select {
	case s, ok := <-l.ch:
		if !ok {
			l.t.Fatal("unexpected end of output")
		}
		l.t.Logf("child: %s", s)
		return s
	case <-time.After(deadline):
		l.t.Fatal("no output within the deadline")
	}
	return ""
}

// until returns the next line that starts with prefix, skipping others.
func (l *lines) until(prefix string) string {
	l.t.Helper()
	for {
		if s := l.next(); strings.HasPrefix(s, prefix) {
			return s
		}
	}
}

// rest returns every remaining line until EOF.
func (l *lines) rest() []string {
	var out []string
	timeout := time.After(deadline)
	for {
		select {
		case s, ok := <-l.ch:
			if !ok {
				return out
			}
			l.t.Logf("child: %s", s)
			out = append(out, s)
		case <-timeout:
			l.t.Fatal("output did not end within the deadline")
		}
	}
}

// field returns the value of key=value in a line.
func field(line, key string) string {
	for _, f := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			return v
		}
	}
	return ""
}

// childEnv is the environment of a test child in role.
func childEnv(role string, extra ...string) []string {
	env := []string{roleVar + "=" + role, "GODEBUG=asyncpreemptoff=1", "PATH=" + os.Getenv("PATH")}
	return append(env, extra...)
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(f) > 0 && f[0] != "Z" && f[0] != "X"
}

// waitFunc returns the first record for which match is true, waiting for
// it.
func (r *recorder) waitFunc(what string, match func(logRecord) bool) logRecord {
	r.t.Helper()
	timeout := time.After(deadline)
	for {
		r.mu.Lock()
		ch := r.more
		for _, rec := range r.recs {
			if match(rec) {
				r.mu.Unlock()
				return rec
			}
		}
		r.mu.Unlock()
		select {
		case <-ch:
		case <-timeout:
			r.t.Fatalf("no log record for %s within %v", what, deadline)
		}
	}
}

// nextOrEOF returns the next line, or false when the output ended.
func (l *lines) nextOrEOF() (string, bool) {
	l.t.Helper()
	select {
	case s, ok := <-l.ch:
		if ok {
			l.t.Logf("child: %s", s)
		}
		return s, ok
	case <-time.After(deadline):
		l.t.Fatal("no output within the deadline")
	}
	return "", false
}

// waitAnyTimer waits until a live timer is set, and returns when it fires.
func (c *fakeClock) waitAnyTimer(t testing.TB) time.Time {
	t.Helper()
	timeout := time.After(deadline)
	for {
		c.mu.Lock()
		ch := c.changed
		for _, tm := range c.timers {
			if !tm.dead && !tm.fired {
				c.mu.Unlock()
				return tm.at
			}
		}
		c.mu.Unlock()
		select {
		case <-ch:
		case <-timeout:
			t.Fatalf("no timer set (now %v)", c.Now())
		}
	}
}

// containing returns the next line that contains s, skipping others.
func (l *lines) containing(s string) string {
	l.t.Helper()
	for {
		if line := l.next(); strings.Contains(line, s) {
			return line
		}
	}
}
