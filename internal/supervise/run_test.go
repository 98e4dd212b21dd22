package supervise

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

type runResult struct {
	res Result
	err error
}

// harness runs Run in the test process on a fake clock, with the test
// binary as the child and its output on a pipe.
type harness struct {
	t       *testing.T
	clock   *fakeClock
	log     *recorder
	s       *Supervisor
	out     *lines
	updates chan Update
	done    chan runResult
	cancel  context.CancelCauseFunc
}

func testBinary(t testing.TB) string {
	t.Helper()
	p, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func startHarness(t *testing.T, cfg Config, env []string) *harness {
	t.Helper()
	return startHarnessWith(t, cfg, env)
}

// startHarnessWith is startHarness with options applied to the Supervisor
// before Run.
func startHarnessWith(t *testing.T, cfg Config, env []string, opts ...func(*Supervisor)) *harness {
	t.Helper()
	clock := newFakeClock()
	rec := newRecorder(t, clock)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	if cfg.Command == "" {
		cfg.Command = testBinary(t)
	}
	cfg.Stdout = w
	cfg.Logger = slog.New(rec)
	cfg.Clock = clock
	h := &harness{
		t: t, clock: clock, log: rec, out: readLines(t, r),
		s:       newInProcess(t, cfg),
		updates: make(chan Update),
		done:    make(chan runResult, 1),
	}
	for _, opt := range opts {
		opt(h.s)
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	h.cancel = cancel
	go func() {
		res, err := h.s.Run(ctx, env, h.updates)
		w.Close()
		h.done <- runResult{res, err}
	}()
	t.Cleanup(func() {
		cancel(errors.New("test over"))
		// Let every stop timeout expire, however many the stop sets.
		timeout := time.After(deadline)
		for {
			clock.mu.Lock()
			changed := clock.changed
			clock.mu.Unlock()
			clock.Advance(time.Hour)
			select {
			case <-h.done:
				return
			case <-changed:
			case <-timeout:
				t.Error("Run did not return after the test")
				return
			}
		}
	})
	return h
}

func (h *harness) update(env []string, reason string) {
	h.t.Helper()
	select {
	case h.updates <- Update{Env: env, Reason: reason}:
	case <-time.After(deadline):
		h.t.Fatal("Run did not take the update")
	}
}

func (h *harness) wait() runResult {
	h.t.Helper()
	select {
	case r := <-h.done:
		h.done <- r // for the cleanup
		return r
	case <-time.After(deadline):
		h.t.Fatal("Run did not return")
	}
	return runResult{}
}

// TestExitStatusParity compares rolesenv's status with a shell's for the
// same command: exit codes across 0..255 and deaths by signal.
func TestExitStatusParity(t *testing.T) {
	var scripts []string
	for _, code := range []int{0, 1, 2, 3, 42, 64, 69, 70, 75, 77, 78, 125, 126, 127, 128, 129, 143, 200, 254, 255} {
		scripts = append(scripts, fmt.Sprintf("exit %d", code))
	}
	scripts = append(scripts, "kill -TERM $$", "kill -KILL $$", "kill -SEGV $$", "kill -INT $$")
	for _, script := range scripts {
		want := shellStatus(t, script)
		s := newInProcess(t, Config{Command: "/bin/sh", Args: []string{"-c", script}})
		res, err := s.Run(context.Background(), []string{"PATH=/usr/bin:/bin"}, nil)
		if err != nil {
			t.Fatalf("%s: %v", script, err)
		}
		if res.ExitCode != want {
			t.Errorf("%s: rolesenv's status %d, the shell's %d", script, res.ExitCode, want)
		}
	}
}

// shellStatus is what sh reports for a command run directly ($?).
func shellStatus(t *testing.T, script string) int {
	t.Helper()
	out, err := exec.Command("/bin/sh", "-c", "/bin/sh -c '"+script+"'; echo $?").Output()
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(string(out[:len(out)-1]))
	if err != nil {
		t.Fatalf("%q: %v", out, err)
	}
	return n
}

func TestStartErrors(t *testing.T) {
	dir := t.TempDir()
	notExec := filepath.Join(dir, "notexec")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	badInterp := filepath.Join(dir, "badinterp")
	if err := os.WriteFile(badInterp, []byte("#!/nonexistent/interpreter\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "onpath"), []byte("#!/bin/sh\nexit 7\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		command string
		env     []string
		want    int
	}{
		{"/nonexistent/command", nil, 127},
		{"no-such-command-anywhere", []string{"PATH=/usr/bin:/bin"}, 127},
		{notExec, nil, 126},
		{dir, nil, 126},
		{badInterp, nil, 126},
		{"notexec", []string{"PATH=" + dir}, 126},
		{"onpath", []string{"PATH=/nonexistent:" + dir}, 7},
		{"onpath", []string{"PATH=relative:" + dir}, 7},
	}
	for _, c := range cases {
		s := newInProcess(t, Config{Command: c.command})
		res, err := s.Run(context.Background(), c.env, nil)
		got := res.ExitCode
		if err != nil {
			var se *StartError
			if !errors.As(err, &se) {
				t.Fatalf("%s: %v is not a *StartError", c.command, err)
			}
			if se.ExitCode() != got {
				t.Errorf("%s: Result says %d, the error %d", c.command, got, se.ExitCode())
			}
		}
		if got != c.want {
			t.Errorf("%s with %v: status %d, want %d (err %v)", c.command, c.env, got, c.want, err)
		}
	}
	// The same through a shell, for parity.
	for cmd, want := range map[string]int{"/nonexistent/command": 127, notExec: 126} {
		if got := shellStatus(t, cmd); got != want {
			t.Errorf("sh reports %d for %s; the table says %d", got, cmd, want)
		}
	}
}

func TestDebounceCoalesces(t *testing.T) {
	h := startHarness(t, Config{Debounce: 5 * time.Second}, childEnv("hang", "GEN=0"))
	first := h.out.until("ready")
	start := h.clock.Now()
	// Five changes, one second apart, inside the debounce.
	for i := 1; i <= 5; i++ {
		h.update(childEnv("hang", fmt.Sprintf("GEN=%d", i)), fmt.Sprintf("change %d", i))
		h.clock.waitTimer(t, h.clock.Now().Add(5*time.Second))
		if i < 5 {
			h.clock.Advance(time.Second)
		}
	}
	h.clock.Advance(5 * time.Second)
	stop := h.log.wait("stopping child", 1)
	if want := start.Add(9 * time.Second); !stop.at.Equal(want) {
		t.Errorf("restart began at %v, want %v (trailing debounce after the last change)", stop.at, want)
	}
	second := h.out.until("ready")
	if field(second, "gen") != "5" || field(second, "pid") == field(first, "pid") {
		t.Errorf("after the restart: %q (before: %q); want a new child with gen=5", second, first)
	}
	h.cancel(errors.New("done"))
	h.wait()
	if n := h.log.count("child restarted"); n != 1 {
		t.Errorf("%d restarts, want 1", n)
	}
}

func TestDebounceCap(t *testing.T) {
	h := startHarness(t, Config{Debounce: 5 * time.Second}, childEnv("hang", "GEN=0"))
	h.out.until("ready")
	start := h.clock.Now()
	// A change every 3s would postpone a plain trailing debounce forever;
	// the cap applies it 4 debounces after the first change.
	for i := 1; i <= 7; i++ {
		h.update(childEnv("hang", fmt.Sprintf("GEN=%d", i)), "change")
		want := h.clock.Now().Add(5 * time.Second)
		if cap := start.Add(20 * time.Second); cap.Before(want) {
			want = cap
		}
		h.clock.waitTimer(t, want)
		if i < 7 {
			h.clock.Advance(3 * time.Second)
		}
	}
	h.clock.Advance(2 * time.Second) // now start+20s
	stop := h.log.wait("stopping child", 1)
	if want := start.Add(20 * time.Second); !stop.at.Equal(want) {
		t.Errorf("restart began at %v, want %v (four debounces after the first change)", stop.at, want)
	}
	if got := field(h.out.until("ready"), "gen"); got != "7" {
		t.Errorf("new child has gen=%s, want the newest, 7", got)
	}
}

func TestRestartBudgetDefers(t *testing.T) {
	h := startHarness(t, Config{MaxRestarts: 2, RestartWindow: 10 * time.Minute}, childEnv("hang", "GEN=0"))
	h.out.until("ready")
	start := h.clock.Now()
	for i := 1; i <= 2; i++ {
		h.update(childEnv("hang", fmt.Sprintf("GEN=%d", i)), "change")
		h.log.wait("child restarted", i)
		h.out.until("ready")
		h.clock.Advance(time.Minute)
	}
	h.update(childEnv("hang", "GEN=3"), "third change")
	deferred := h.log.wait("restart deferred: restart budget spent", 1)
	if want := start.Add(10 * time.Minute).Format(time.RFC3339); deferred.attrs["until"] != want {
		t.Errorf("deferred until %s, want %s (when the first restart leaves the window)", deferred.attrs["until"], want)
	}
	// A fourth change while deferred replaces the third and is not logged
	// again.
	h.update(childEnv("hang", "GEN=4"), "fourth change")
	h.clock.waitTimer(t, start.Add(10*time.Minute))
	h.clock.Advance(start.Add(10 * time.Minute).Sub(h.clock.Now()))
	stop := h.log.wait("stopping child", 3)
	if want := start.Add(10 * time.Minute); !stop.at.Equal(want) {
		t.Errorf("deferred restart at %v, want %v", stop.at, want)
	}
	if got := field(h.out.until("ready"), "gen"); got != "4" {
		t.Errorf("new child has gen=%s, want 4", got)
	}
	if n := h.log.count("restart deferred: restart budget spent"); n != 1 {
		t.Errorf("deferral logged %d times, want once", n)
	}
}

func TestStopTimeoutKillsGroup(t *testing.T) {
	h := startHarness(t, Config{StopTimeout: 10 * time.Second}, childEnv("stubborn", "GEN=0"))
	ready := h.out.until("ready")
	pid, _ := strconv.Atoi(field(ready, "pid"))
	grandchild, _ := strconv.Atoi(field(ready, "grandchild"))
	h.update(childEnv("stubborn", "GEN=1"), "change")
	stop := h.log.wait("stopping child", 1)
	h.clock.waitTimer(t, stop.at.Add(10*time.Second))
	h.clock.Advance(10 * time.Second)
	h.log.wait("child did not stop in time; killing its process group", 1)
	next := h.out.until("ready")
	if field(next, "gen") != "1" {
		t.Errorf("new child: %q", next)
	}
	// The whole group went, grandchild included, before the new child.
	for _, p := range []int{pid, grandchild} {
		if alive(p) {
			t.Errorf("pid %d of the old group is still alive", p)
		}
	}
}

func TestOnChangeExit(t *testing.T) {
	h := startHarness(t, Config{OnChange: OnChangeExit}, childEnv("hang", "GEN=0"))
	h.out.until("ready")
	h.update(childEnv("hang", "GEN=1"), "sm://prod/db rotated")
	r := h.wait()
	var ce *ChangeError
	if !errors.As(r.err, &ce) || !ce.TempFail() {
		t.Fatalf("Run returned %v, want a *ChangeError", r.err)
	}
	if r.res.Signal != syscall.SIGTERM {
		t.Errorf("child ended with %+v, want death by the stop signal", r.res)
	}
}

func TestOnChangeNone(t *testing.T) {
	h := startHarness(t, Config{OnChange: OnChangeNone}, childEnv("hang", "GEN=0"))
	h.out.until("ready")
	h.update(childEnv("hang", "GEN=1"), "change")
	h.log.wait("environment changed; not restarting (on-change none)", 1)
	h.cancel(errors.New("stop now"))
	r := h.wait()
	if r.err == nil || r.err.Error() != "stop now" || r.res.Restarts != 0 {
		t.Errorf("Run returned %+v, %v; want the context's cause and no restart", r.res, r.err)
	}
}

func TestChangeBackRestartsNothing(t *testing.T) {
	h := startHarness(t, Config{Debounce: time.Second}, childEnv("hang", "GEN=0"))
	h.out.until("ready")
	h.update(childEnv("hang", "GEN=1"), "change")
	h.update(childEnv("hang", "GEN=0"), "change back")
	// Once the loop has planned the second update, the debounce timer at
	// now+1s is the one that update set (the first one is stopped).
	h.log.wait("environment update planned", 2)
	h.clock.waitTimer(t, h.clock.Now().Add(time.Second))
	h.clock.Advance(time.Second)
	h.log.wait("environment changed back; nothing to restart", 1)
	if n := h.log.count("stopping child"); n != 0 {
		t.Errorf("%d stops, want none", n)
	}
}

func TestFatalUpdate(t *testing.T) {
	h := startHarness(t, Config{}, childEnv("hang", "GEN=0"))
	h.out.until("ready")
	fatal := errors.New("no successful check for 10m (max-stale)")
	select {
	case h.updates <- Update{Err: fatal}:
	case <-time.After(deadline):
		t.Fatal("update not taken")
	}
	r := h.wait()
	if !errors.Is(r.err, fatal) || r.res.Signal != syscall.SIGTERM {
		t.Errorf("Run returned %+v, %v; want the update's error after stopping the child", r.res, r.err)
	}
}

// TestTermDuringRestartEnds: TERM while the old child is stopping ends Run
// with 128+15 and starts no new child.
func TestTermDuringRestartEnds(t *testing.T) {
	h := startHarness(t, Config{StopTimeout: 10 * time.Second}, childEnv("record", "GEN=0"))
	h.out.until("ready")
	h.update(childEnv("record", "GEN=1"), "change")
	stop := h.log.wait("stopping child", 1)
	h.out.until("sig SIGTERM")
	h.s.inject(syscall.SIGTERM)
	h.log.wait("signal during a restart: not starting the command again", 1)
	h.clock.waitTimer(t, stop.at.Add(10*time.Second))
	h.clock.Advance(10 * time.Second)
	r := h.wait()
	var se *SignalError
	if !errors.As(r.err, &se) || se.ExitCode() != 143 {
		t.Fatalf("Run returned %v, want a *SignalError with code 143", r.err)
	}
	if n := h.log.count("child started"); n != 1 {
		t.Errorf("%d children started, want 1", n)
	}
}

func TestContextCancelStopsChild(t *testing.T) {
	h := startHarness(t, Config{}, childEnv("record", "GEN=0", "RECORD_TERM_EXITS=1"))
	h.out.until("ready")
	h.cancel(errors.New("shutting down"))
	r := h.wait()
	if r.err == nil || r.err.Error() != "shutting down" || r.res.ExitCode != 0 {
		t.Errorf("Run returned %+v, %v", r.res, r.err)
	}
	if got := h.out.until("sig"); got != "sig SIGTERM" {
		t.Errorf("child got %q, want the stop signal", got)
	}
}

func TestSignalBeforeStart(t *testing.T) {
	s := newInProcess(t, Config{Command: "/bin/true"})
	ctx, cancel := s.Context(context.Background())
	defer cancel()
	s.inject(syscall.SIGWINCH) // dropped: its default action is none
	s.inject(syscall.SIGHUP)
	<-ctx.Done()
	var se *SignalError
	if !errors.As(context.Cause(ctx), &se) || se.Signal != syscall.SIGHUP {
		t.Fatalf("context cause %v, want SIGHUP", context.Cause(ctx))
	}
	res, err := s.Run(context.Background(), nil, nil)
	if !errors.As(err, &se) || res.ExitCode != 129 {
		t.Errorf("Run returned %+v, %v; want 129 and the signal", res, err)
	}
	// A context made after the signal is cancelled at once.
	ctx2, cancel2 := s.Context(context.Background())
	defer cancel2()
	if !errors.As(context.Cause(ctx2), &se) {
		t.Errorf("late context: %v", context.Cause(ctx2))
	}
}

// TestInPlaceRefusesRun: a Supervisor made for Exec has not set up what
// Run needs (SIGCHLD, the job control signals), so Run refuses to start.
func TestInPlaceRefusesRun(t *testing.T) {
	s := newInProcess(t, Config{Command: "/bin/true", InPlace: true})
	res, err := s.Run(context.Background(), nil, nil)
	if err == nil || !strings.Contains(err.Error(), "InPlace") || res.ExitCode == 0 {
		t.Errorf("Run returned %+v, %v; want a failure naming InPlace", res, err)
	}
}

func TestRefreshSignal(t *testing.T) {
	refresh := make(chan struct{}, 1)
	h := startHarness(t, Config{RefreshSignal: syscall.SIGUSR2, Refresh: refresh}, childEnv("record", "GEN=0"))
	h.out.until("ready")
	h.s.inject(syscall.SIGUSR2)
	select {
	case <-refresh:
	case <-time.After(deadline):
		t.Fatal("no refresh")
	}
	h.s.inject(syscall.SIGUSR1)
	if got := h.out.until("sig"); got != "sig SIGUSR1" {
		t.Errorf("child got %q first; the refresh signal must not be forwarded", got)
	}
}

// TestLogsNeverShowValues: nothing the Supervisor logs contains a value
// of the child's environment, through starts, a restart and a stop.
func TestLogsNeverShowValues(t *testing.T) {
	const sentinel = "sentinel-secret-value-4f1c"
	h := startHarness(t, Config{}, childEnv("hang", "GEN=0", "DB_PASSWORD="+sentinel))
	h.out.until("ready")
	h.update(childEnv("hang", "GEN=1", "DB_PASSWORD="+sentinel+"-rotated"), "sm://prod/db rotated")
	h.log.wait("child restarted", 1)
	h.cancel(errors.New("done"))
	h.wait()
	h.log.mu.Lock()
	defer h.log.mu.Unlock()
	for _, rec := range h.log.recs {
		for k, v := range rec.attrs {
			if strings.Contains(v, sentinel) || strings.Contains(rec.msg, sentinel) {
				t.Errorf("log %q %s=%q shows a value", rec.msg, k, v)
			}
		}
	}
}
