package supervise

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// notifyListener is a fake NOTIFY_SOCKET: it hands over every datagram.
func notifyListener(t *testing.T) (string, *net.UnixConn) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return sock, conn
}

// readNotify returns the next datagram within d, or "" when none came.
func readNotify(t *testing.T, conn *net.UnixConn, d time.Duration) string {
	t.Helper()
	buf := make([]byte, 4096)
	_ = conn.SetReadDeadline(time.Now().Add(d))
	n, err := conn.Read(buf)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return ""
		}
		t.Fatal(err)
	}
	return string(buf[:n])
}

// waitPings waits for n WATCHDOG=1 datagrams.
func waitPings(t *testing.T, conn *net.UnixConn, n int) {
	t.Helper()
	end := time.Now().Add(deadline)
	for got := 0; got < n; {
		if time.Now().After(end) {
			t.Fatalf("%d watchdog pings within %v, want %d", got, deadline, n)
		}
		if strings.Contains(readNotify(t, conn, time.Until(end)), "WATCHDOG=1") {
			got++
		}
	}
}

// TestWatchdogStopsWhenTheLoopIsStuck: with a watchdog, the loop sends
// WATCHDOG=1 every half of its timeout; while the loop is held (by an
// observer that blocks, which a stuck system call would do as well) no
// ping goes out, and they resume once it turns again.
func TestWatchdogStopsWhenTheLoopIsStuck(t *testing.T) {
	sock, conn := notifyListener(t)
	const timeout = 100 * time.Millisecond
	var hold atomic.Pointer[chan struct{}]
	held := make(chan struct{}, 1)
	observe := func(e Event) {
		if e.Kind != EventBeat {
			return
		}
		if h := hold.Load(); h != nil {
			held <- struct{}{}
			<-*h
		}
	}
	h := startHarness(t, Config{NotifySocket: sock, Watchdog: timeout, Observe: observe}, childEnv("hang", "GEN=0"))
	h.out.until("ready")
	waitPings(t, conn, 3)

	release := make(chan struct{})
	hold.Store(&release)
	select {
	case <-held:
	case <-time.After(deadline):
		t.Fatal("the loop did not turn")
	}
	// What was sent before the loop stopped is read first; after that,
	// ten ping periods pass without one.
	for readNotify(t, conn, time.Millisecond) != "" {
	}
	if m := readNotify(t, conn, 10*timeout/2); m != "" {
		t.Fatalf("a stuck loop sent %q", m)
	}
	hold.Store(nil)
	close(release)
	waitPings(t, conn, 2)
}

// TestWatchdogPingsDuringStartUp: before Run, while the environment is
// prepared, start-up's signal watcher pings the watchdog.
func TestWatchdogPingsDuringStartUp(t *testing.T) {
	sock, conn := notifyListener(t)
	newInProcess(t, Config{Command: "true", NotifySocket: sock, Watchdog: 100 * time.Millisecond})
	waitPings(t, conn, 2)
}

// TestWatchdogStartUpPingsStop: a start-up that takes longer than its
// limit is stuck: its pings stop, so that systemd restarts the unit.
func TestWatchdogStartUpPingsStop(t *testing.T) {
	sock, conn := notifyListener(t)
	const timeout, limit = 100 * time.Millisecond, 300 * time.Millisecond
	began := time.Now()
	newInProcess(t, Config{Command: "true", NotifySocket: sock, Watchdog: timeout, StartUpLimit: limit})
	waitPings(t, conn, 1)
	// The pings end: a silence of ten ping periods comes, within the
	// deadline, and only once the limit has passed.
	end := time.Now().Add(deadline)
	for readNotify(t, conn, 10*timeout/2) != "" {
		if time.Now().After(end) {
			t.Fatalf("start-up still pings %v after its limit of %v", deadline, limit)
		}
	}
	if took := time.Since(began); took < limit {
		t.Errorf("the pings stopped after %v, before the limit of %v", took, limit)
	}
}

// TestWatchdogHeldWhileNotAlive: while Config.Alive answers false (the
// watcher is stuck), the loop turns but sends no ping.
func TestWatchdogHeldWhileNotAlive(t *testing.T) {
	sock, conn := notifyListener(t)
	const timeout = 100 * time.Millisecond
	var dead atomic.Bool
	h := startHarness(t, Config{NotifySocket: sock, Watchdog: timeout, Alive: func() bool { return !dead.Load() }}, childEnv("hang", "GEN=0"))
	h.out.until("ready")
	waitPings(t, conn, 2)
	dead.Store(true)
	for readNotify(t, conn, timeout) != "" { // sent before, or by the turn under way
	}
	if m := readNotify(t, conn, 10*timeout/2); m != "" {
		t.Fatalf("pinged while not alive: %q", m)
	}
	dead.Store(false)
	waitPings(t, conn, 2)
}

// TestNotifyDoesNotBlock: a receiver that reads nothing fills its queue;
// then a notification gives up after its timeout instead of blocking the
// loop that sends it.
func TestNotifyDoesNotBlock(t *testing.T) {
	sock, _ := notifyListener(t)
	n := newNotifier(sock, nil)
	done := make(chan error, 1)
	go func() {
		for range 100_000 {
			if err := n.write("WATCHDOG=1\n"); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("a full receiver: %v, want a timeout", err)
		}
	case <-time.After(deadline):
		t.Fatal("a notification blocked on a full receiver")
	}
}

// TestEventsOfAChild: the observer hears of the child's start, of a
// restart (its exit, the new start, the outcome), of a restart the budget
// defers, and of the child's death by a signal.
func TestEventsOfAChild(t *testing.T) {
	events := make(chan Event, 64)
	observe := func(e Event) {
		if e.Kind != EventBeat {
			events <- e
		}
	}
	h := startHarness(t, Config{Observe: observe, MaxRestarts: 1, RestartWindow: time.Hour}, childEnv("hang", "GEN=0"))
	h.out.until("ready")
	next := func(want EventKind) Event {
		t.Helper()
		select {
		case e := <-events:
			if e.Kind != want {
				t.Fatalf("event %+v, want kind %d", e, want)
			}
			return e
		case <-time.After(deadline):
			t.Fatalf("no event of kind %d", want)
		}
		return Event{}
	}
	if e := next(EventStarted); e.PID == 0 || e.Updates != 0 {
		t.Errorf("start %+v", e)
	}
	h.update(childEnv("hang", "GEN=1"), "sm://app/db rotated")
	if e := next(EventExited); e.Signal != syscall.SIGTERM {
		t.Errorf("exit for the restart %+v", e)
	}
	started := next(EventStarted)
	if started.Updates != 1 {
		t.Errorf("the restarted child has %d updates, want 1", started.Updates)
	}
	if e := next(EventRestart); e.Reason != ReasonChange || e.Outcome != OutcomeOK || e.PID != started.PID {
		t.Errorf("restart %+v", e)
	}
	h.out.until("ready")
	h.update(childEnv("hang", "GEN=2"), "sm://app/db rotated again")
	if e := next(EventRestart); e.Outcome != OutcomeDeferred {
		t.Errorf("restart past the budget %+v", e)
	}
	p, err := os.FindProcess(started.PID)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if e := next(EventExited); e.Signal != syscall.SIGKILL || e.ExitCode != 128+9 {
		t.Errorf("crash %+v", e)
	}
	if r := h.wait(); r.res.Signal != syscall.SIGKILL {
		t.Errorf("Run %+v", r)
	}
}

// TestEventsOfAFailedRestart: a new command that cannot be started is a
// restart with outcome failed, and Run ends with the start error.
func TestEventsOfAFailedRestart(t *testing.T) {
	events := make(chan Event, 64)
	observe := func(e Event) {
		if e.Kind == EventRestart {
			events <- e
		}
	}
	starts := 0
	failSecond := func(s *Supervisor) {
		start := s.startProcess
		s.startProcess = func(path string, argv []string, attr *os.ProcAttr) (*os.Process, error) {
			if starts++; starts > 1 {
				return nil, &os.PathError{Op: "fork/exec", Path: path, Err: syscall.EACCES}
			}
			return start(path, argv, attr)
		}
	}
	h := startHarnessWith(t, Config{Observe: observe}, childEnv("hang", "GEN=0"), failSecond)
	h.out.until("ready")
	h.update(childEnv("hang", "GEN=1"), "sm://app/db rotated")
	select {
	case e := <-events:
		if e.Reason != ReasonChange || e.Outcome != OutcomeFailed {
			t.Errorf("restart %+v", e)
		}
	case <-time.After(deadline):
		t.Fatal("no restart event")
	}
	var se *StartError
	if r := h.wait(); !errors.As(r.err, &se) {
		t.Errorf("Run: %v, want a *StartError", r.err)
	}
}
