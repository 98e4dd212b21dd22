package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/rolesenv/rolesenv/internal/awsdev"
	"github.com/rolesenv/rolesenv/internal/exitcode"
	"github.com/rolesenv/rolesenv/signer"
)

// TestRunIntervalFloor: an interval below a second (5ms typed for 5m) is
// refused as a usage error with a hint, from the flag and from its twin
// (without quoting the twin's value); a second is accepted.
func TestRunIntervalFloor(t *testing.T) {
	for _, c := range []struct {
		args []string
		env  []string
		want string
	}{
		{[]string{"run", "--interval", "5ms", "--", "true"}, nil, `invalid argument "5ms" for "--interval" flag: want 1s or more`},
		{[]string{"run", "--interval", "999ms", "--", "true"}, nil, "want 1s or more"},
		{[]string{"run", "--interval", "1ns", "--", "true"}, nil, "want 1s or more"},
		{[]string{"run", "--interval", "0", "--", "true"}, nil, "want 1s or more"},
		{[]string{"run", "--interval", "-5m", "--", "true"}, nil, "want 1s or more"},
		{[]string{"run", "--", "true"}, []string{"ROLESENV_INTERVAL=5ms"}, "invalid ROLESENV_INTERVAL: want 1s or more"},
	} {
		cmd := rolesenvCmd(t, c.env, c.args...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if code := exitCode(t, cmd); code != exitcode.Usage {
			t.Errorf("%v %v: exit %d, want %d", c.env, c.args, code, exitcode.Usage)
		}
		if !strings.Contains(stderr.String(), c.want) || !strings.Contains(stderr.String(), "--refresh-signal") {
			t.Errorf("%v %v: %q, want %q and the hint", c.env, c.args, stderr.String(), c.want)
		}
		if len(c.env) > 0 && strings.Contains(stderr.String(), "5ms") {
			t.Errorf("the twin's value was quoted: %s", stderr.String())
		}
	}
	cmd := rolesenvCmd(t, nil, "run", "--interval", "1s", "--env-file", "-", "--", "true")
	cmd.Stdin = strings.NewReader("A=1\n")
	if code := exitCode(t, cmd); code != 0 {
		t.Errorf("--interval 1s: exit %d", code)
	}
}

// fakeAfter is a clock and a time.After whose channels the test fires.
// The limiter calls it from its own goroutine: asked tells the test each
// wait the limiter asked for, which is how the test knows it happened.
type fakeAfter struct {
	mu    sync.Mutex
	now   time.Time
	waits []chan time.Time
	asked chan time.Duration
}

func newFakeAfter() *fakeAfter {
	return &fakeAfter{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), asked: make(chan time.Duration, 16)}
}

func (f *fakeAfter) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeAfter) advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
}

func (f *fakeAfter) after(d time.Duration) <-chan time.Time {
	c := make(chan time.Time, 1)
	f.mu.Lock()
	f.waits = append(f.waits, c)
	f.mu.Unlock()
	f.asked <- d
	return c
}

// fire ends the i-th wait.
func (f *fakeAfter) fire(i int) {
	f.mu.Lock()
	c, now := f.waits[i], f.now
	f.mu.Unlock()
	c <- now
}

func (f *fakeAfter) held() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.waits)
}

// TestRefreshLimiter: the first request passes at once, requests within
// the gap are merged into one that passes when the gap has passed, a
// request the watcher has not taken yet absorbs the next, and a request
// after the gap passes at once.
func TestRefreshLimiter(t *testing.T) {
	in, out := make(chan struct{}), make(chan struct{}, 1)
	clk := newFakeAfter()
	// in is unbuffered: each send returns once the limiter has handled
	// every earlier request and taken this one.
	l := refreshLimiter{gap: 5 * time.Second, now: clk.Now, after: clk.after, log: slog.New(slog.DiscardHandler)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { l.run(ctx, in, out); close(done) }()
	defer func() { cancel(); <-done }()
	passed := 0
	take := func() {
		select {
		case <-out:
			passed++
		default:
		}
	}
	for range 200 {
		in <- struct{}{}
		take()
	}
	in <- struct{}{} // taken only after the previous ones were handled
	take()
	if d := <-clk.asked; passed != 1 || clk.held() != 1 || d != 5*time.Second {
		t.Fatalf("200 requests at once: %d passed, %d held (for %v), want 1 and 1 for 5s", passed, clk.held(), d)
	}
	clk.advance(5 * time.Second)
	clk.fire(0)
	<-out // the held request passes when the gap has passed
	passed++
	in <- struct{}{} // after it was passed on: held for the next gap
	if d := <-clk.asked; passed != 2 || clk.held() != 2 || d != 5*time.Second {
		t.Fatalf("after the gap: %d passed, %d held (for %v), want 2 and 2 for 5s", passed, clk.held(), d)
	}
	clk.advance(time.Hour)
	clk.fire(1)
	// Not taken: the watcher is busy with the request that passed.
	deadline := time.After(time.Minute)
	for len(out) == 0 {
		select {
		case <-deadline:
			t.Fatal("the held request did not pass when its wait ended")
		default:
			runtime.Gosched()
		}
	}
	in <- struct{}{} // within the gap again: held
	in <- struct{}{} // merged into the held one
	<-clk.asked
	if passed != 2 || len(out) != 1 || clk.held() != 3 {
		t.Fatalf("%d passed, %d waiting, %d held, want 2, 1 and 3", passed, len(out), clk.held())
	}
	clk.advance(time.Hour)
	in <- struct{}{}
	in <- struct{}{}
	if len(out) != 1 || clk.held() != 3 {
		t.Errorf("%d waiting, %d held: requests while one is held are not merged", len(out), clk.held())
	}
}

// TestRunRefreshSignalStorm: 200 refresh signals, each delivered, make a
// bounded number of checks (one at once, the rest merged into one per gap), counted at the
// emulator, and the command is neither restarted nor signalled.
func TestRunRefreshSignalStorm(t *testing.T) {
	t.Parallel() // rolesenv runs as a subprocess with its own environment
	s, env := devBackend(t)
	mustDo[string](t)(s.CreateSecret("storm/api", "api-1"))
	file := writeEnvFile(t, "API=sm://storm/api\n")
	p := startRun(t, env, "run", "--env-file", file, "--interval", "1h", "--refresh-signal", "USR1", "--log-level", "debug",
		"--", "rolesenv-testchild", "printvars", "API")
	p.waitOut("start API=api-1")
	s.ResetCalls()
	start := time.Now()
	// Each signal is sent once the one before has arrived: signals sent
	// at once merge in the kernel, and the storm would be one signal.
	const arrived = "refresh signal: checking for changes now"
	for i := range 200 {
		if err := p.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
			t.Fatal(err)
		}
		p.waitLog(arrived, i+1)
	}
	sending := time.Since(start)
	// One check at once, then the merged one after the gap.
	p.waitLog(logChecked, 2)
	checks := int64(p.countLog(logChecked))
	limit := 2 + int64(sending/refreshGap) + 1
	calls := s.Calls("secretsmanager:DescribeSecret")
	t.Logf("200 signals sent in %v: %d checks, %d DescribeSecret calls", sending, checks, calls)
	if checks > limit || calls > limit {
		t.Errorf("200 signals in %v made %d checks and %d DescribeSecret calls, want at most %d", sending, checks, calls, limit)
	}
	if n := len(p.starts()); n != 1 {
		t.Errorf("the command started %d times", n)
	}
	if code := p.stop(); code != 0 {
		t.Errorf("exit %d", code)
	}
}

// replaceWithFIFO puts a named pipe where the env file was, as an
// attacker who can write the directory (or a mistake) would.
func replaceWithFIFO(t *testing.T, path string) {
	t.Helper()
	tmp := path + ".fifo"
	if err := syscall.Mkfifo(tmp, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestRunEnvFileFIFO: a watched env file replaced by a named pipe is
// refused with a warning; rotation still restarts the command with the
// new value, SIGTERM still ends rolesenv, and --max-stale still fires.
// At start-up a named pipe is refused as a configuration error.
func TestRunEnvFileFIFO(t *testing.T) {
	t.Parallel() // rolesenv runs as a subprocess with its own environment
	s, env := devBackend(t)
	mustDo[string](t)(s.CreateSecret("fifo/api", "api-1"))
	file := writeEnvFile(t, "API=sm://fifo/api\n")
	p := startRun(t, env, "run", "--env-file", file, "--interval", "1s", "--debounce", "0s", "--log-level", "debug",
		"--", "rolesenv-testchild", "printvars", "API")
	p.waitOut("start API=api-1")
	replaceWithFIFO(t, file)
	p.waitLog("not a regular file (a named pipe)", 1)
	mustDo[string](t)(s.PutSecretValue("fifo/api", "api-2"))
	p.waitOut("start API=api-2")
	if code := p.stop(); code != 0 {
		t.Errorf("exit %d after SIGTERM", code)
	}

	file = writeEnvFile(t, "API=sm://fifo/api\n")
	p = startRun(t, env, "run", "--env-file", file, "--interval", "1s", "--max-stale", "3s", "--log-level", "debug",
		"--", "rolesenv-testchild", "printvars", "API")
	p.waitOut("start API=api-2")
	replaceWithFIFO(t, file)
	p.waitLog("not a regular file (a named pipe)", 1)
	if err := s.SetUserPolicy("app", awsdev.Policy{}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(runDeadline):
		t.Fatal("--max-stale did not end rolesenv while the env file is a named pipe")
	}
	if code := p.cmd.ProcessState.ExitCode(); code != exitcode.Unavailable {
		t.Errorf("--max-stale: exit %d, want %d", code, exitcode.Unavailable)
	}
	p.waitLog("(--max-stale 3s)", 1)
	if err := s.SetUserPolicy("app", awsdev.AllowAll); err != nil {
		t.Fatal(err)
	}

	fifo := filepath.Join(t.TempDir(), "app.env")
	replaceWithFIFO(t, writeEnvFile(t, "")) // a pipe at another path, for the symlink
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := rolesenvCmd(t, env, "run", "--env-file", fifo, "--", "true")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if code := exitCode(t, cmd); code != exitcode.Config || !strings.Contains(stderr.String(), "not a regular file (a named pipe)") {
		t.Errorf("start-up with a named pipe: exit %d: %s", code, stderr.String())
	}
}

// TestRunRenewsExpiredCredentials: Roles Anywhere session credentials
// that AWS expired early are replaced by one new CreateSession; the
// checks recover and the command, under --max-stale, is neither restarted
// nor stopped. It needs rolesenv's Roles Anywhere provider to drop its
// session on Invalidate.
func TestRunRenewsExpiredCredentials(t *testing.T) {
	t.Parallel() // rolesenv runs as a subprocess with its own environment
	if _, ok := aws.CredentialsProvider((*signer.Provider)(nil)).(interface{ Invalidate() }); !ok {
		t.Skip("the Roles Anywhere provider cannot drop its session yet (Invalidate)")
	}
	e := newRAEmulator(t)
	mustDo[string](t)(e.CreateSecret("exp/api", "api-1"))
	file := writeEnvFile(t, "API=sm://exp/api\n")
	p := startRun(t, e.runEnv(), append(append([]string{"run", "--env-file", file, "--interval", "1s", "--max-stale", "4s", "--log-level", "debug"},
		e.args(t)...), "--", "rolesenv-testchild", "printvars", "API")...)
	p.waitOut("start API=api-1")
	e.ResetCalls()
	e.ExpireCredentials()
	p.waitLog(logWarn, 1)
	p.waitLog(logRecovered, 1)
	// Checks go on past --max-stale's 4 s with the new session.
	p.waitLog(logChecked, p.countLog(logChecked)+6)
	if n := e.Calls(opCreateSession); n != 1 {
		t.Errorf("%d CreateSession calls after the credentials expired, want 1", n)
	}
	if l := lastWith(p.lines(&p.log), logWarn); !strings.Contains(l, "code=ExpiredTokenException") {
		t.Errorf("the warning does not name the cause: %s", l)
	}
	if n := len(p.starts()); n != 1 {
		t.Errorf("the command started %d times", n)
	}
	if code := p.stop(); code != 0 {
		t.Errorf("exit %d", code)
	}
}
