package supervise

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rolesenv/rolesenv/internal/exitcode"
)

const (
	retryMsg   = "cannot start the command: the system refused a resource; retrying"
	retriedMsg = "command started after the system refused a resource"
)

// failStarts makes the Supervisor's starts number from..to (from 1; to 0:
// every one after from) fail as fork fails when the descriptor table is
// full.
func failStarts(from int, to ...int) func(*Supervisor) {
	return func(s *Supervisor) {
		var mu sync.Mutex
		n := 0
		s.startProcess = func(name string, argv []string, attr *os.ProcAttr) (*os.Process, error) {
			mu.Lock()
			n++
			fail := n >= from && (len(to) == 0 || n <= to[0])
			mu.Unlock()
			if fail {
				return nil, &os.PathError{Op: "fork/exec", Path: name, Err: syscall.EMFILE}
			}
			return os.StartProcess(name, argv, attr)
		}
	}
}

// TestStartRetried: a start refused for lack of a resource is retried with
// a growing delay, logged once, and succeeds once the resource is back:
// for the first start and for a restart.
func TestStartRetried(t *testing.T) {
	for _, tc := range []struct {
		name     string
		from, to int
	}{{"first start", 1, 3}, {"restart", 2, 4}} {
		t.Run(tc.name, func(t *testing.T) {
			h := startHarnessWith(t, Config{}, childEnv("hang", "GEN=0"), failStarts(tc.from, tc.to))
			if tc.from == 2 {
				h.out.until("ready")
				h.update(childEnv("hang", "GEN=1"), "change")
			}
			first := h.log.wait(retryMsg, 1)
			if first.attrs["err"] != "too many open files" {
				t.Errorf("retry logged with err=%q, want the cause", first.attrs["err"])
			}
			var delays []time.Duration
			for range 3 {
				at := h.clock.waitAnyTimer(t)
				delays = append(delays, at.Sub(h.clock.Now()))
				h.clock.Advance(at.Sub(h.clock.Now()))
			}
			ok := h.log.wait(retriedMsg, 1)
			if ok.attrs["attempts"] != "4" {
				t.Errorf("started after %s attempts, want 4", ok.attrs["attempts"])
			}
			for i, d := range delays {
				ceil := retryFirst << i
				if d < ceil/2 || d > ceil {
					t.Errorf("delay %d is %v, want within [%v, %v]", i+1, d, ceil/2, ceil)
				}
			}
			if n := h.log.count(retryMsg); n != 1 {
				t.Errorf("the refusal was logged %d times, want once per episode", n)
			}
			wantGen := "1"
			if tc.from == 1 {
				wantGen = "0"
			}
			if line := h.out.until("ready"); field(line, "gen") != wantGen {
				t.Errorf("child after retries: %q", line)
			}
			select {
			case r := <-h.done:
				h.done <- r
				t.Fatalf("Run ended: %+v, %v", r.res, r.err)
			default:
			}
		})
	}
}

// TestStartRetryGivesUp: a refusal that lasts past StartRetryLimit ends
// Run with a *StartError that classifies as a resource error (exit 71),
// never as a command that cannot be executed (126).
func TestStartRetryGivesUp(t *testing.T) {
	h := startHarnessWith(t, Config{}, childEnv("hang"), failStarts(1))
	h.log.wait(retryMsg, 1)
	start := h.clock.Now()
	r := h.runOutClock()
	if took := h.clock.Now().Sub(start); took != defaultRetryLimit {
		t.Errorf("gave up after %v, want %v", took, defaultRetryLimit)
	}
	var se *StartError
	if !errors.As(r.err, &se) || !se.Resource() {
		t.Fatalf("Run returned %v, want a resource *StartError", r.err)
	}
	if code := exitcode.Of(r.err); code != exitcode.OSError || r.res.ExitCode != exitcode.OSError {
		t.Errorf("exit code %d (Result %d), want %d", code, r.res.ExitCode, exitcode.OSError)
	}
	for _, want := range []string{"too many open files", "the system refused a resource", "gave up after retrying for 1m0s"} {
		if !strings.Contains(r.err.Error(), want) {
			t.Errorf("message %q does not say %q", r.err, want)
		}
	}
	if len(exitcode.Hints(r.err)) == 0 {
		t.Error("no hint")
	}
}

// TestStopDuringStartRetry: TERM while a start is retried ends Run at once
// (128+15) and starts nothing; so does the end of the context.
func TestStopDuringStartRetry(t *testing.T) {
	for _, tc := range []struct {
		name    string
		restart bool
		stop    func(*harness)
		check   func(*testing.T, runResult)
	}{
		{"TERM during the first start", false, func(h *harness) { h.s.inject(syscall.SIGTERM) }, wantSignalError(duringStartUp)},
		{"TERM during a restart", true, func(h *harness) { h.s.inject(syscall.SIGTERM) }, wantSignalError(duringRestart)},
		{"INT during a restart", true, func(h *harness) { h.s.inject(syscall.SIGINT) }, wantSignalError(duringRestart)},
		{"context ends", true, func(h *harness) { h.cancel(errors.New("shutting down")) }, func(t *testing.T, r runResult) {
			if r.err == nil || r.err.Error() != "shutting down" {
				t.Errorf("Run returned %v, want the context's cause", r.err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			from := 1
			if tc.restart {
				from = 2
			}
			h := startHarnessWith(t, Config{}, childEnv("hang", "GEN=0"), failStarts(from))
			if tc.restart {
				h.out.until("ready")
				h.update(childEnv("hang", "GEN=1"), "change")
			}
			h.log.wait(retryMsg, 1)
			tc.stop(h)
			tc.check(t, h.wait())
			if n, want := h.log.count("child started"), from-1; n != want {
				t.Errorf("%d children started, want %d", n, want)
			}
		})
	}
}

func wantSignalError(during string) func(*testing.T, runResult) {
	return func(t *testing.T, r runResult) {
		t.Helper()
		var se *SignalError
		if !errors.As(r.err, &se) || se.During != during || r.res.ExitCode != 128+int(se.Signal) {
			t.Errorf("Run returned %+v, %v; want a *SignalError during %s", r.res, r.err, during)
		}
	}
}

// runOutClock fires every timer the loop sets, as soon as it is set,
// until Run returns.
func (h *harness) runOutClock() runResult {
	h.t.Helper()
	timeout := time.After(deadline)
	for {
		c := h.clock
		c.mu.Lock()
		changed := c.changed
		var next *fakeTimer
		for _, tm := range c.timers {
			if !tm.dead && !tm.fired {
				next = tm
			}
		}
		c.mu.Unlock()
		if next != nil {
			c.Advance(next.at.Sub(c.Now()))
			continue
		}
		select {
		case r := <-h.done:
			h.done <- r
			return r
		case <-changed:
		case <-timeout:
			h.t.Fatal("Run did not return")
		}
	}
}

// TestStartRetriedEMFILE: with rolesenv's descriptor table really full,
// starting the command fails with "too many open files"; the supervisor
// retries instead of exiting, and the command starts once descriptors are
// freed (when the supervisor reports the failure).
func TestStartRetriedEMFILE(t *testing.T) {
	p := startSupervisor(t, supervisorSpec{
		Command:     testBinary(t),
		Env:         childEnv("hang", "GEN=0"),
		FillFDs:     true,
		FreeOnRetry: true,
	})
	p.errs.until("filled")
	retry := p.errs.containing("level=WARN msg=\"" + retryMsg)
	if !strings.Contains(retry, `err="too many open files"`) {
		t.Errorf("retry line does not name the cause: %s", retry)
	}
	learned := p.errs.containing("reaper: learned how os/exec tracks children")
	if osUsesPidfds(t) && !strings.Contains(learned, "pidfds=true") {
		t.Errorf("the os package gave up pidfds while the table was full: %s", learned)
	}
	p.errs.containing("level=INFO msg=\"" + retriedMsg)
	p.out.until("ready")
	select {
	case <-p.exited:
		t.Fatal("the supervisor exited")
	default:
	}
	p.signal(t, syscall.SIGTERM)
	if code := p.wait(t); code != 143 {
		t.Errorf("exit %d after TERM, want the child's 143", code)
	}
}

// TestStartRetryGivesUpEMFILE: a descriptor table that stays full ends the
// supervisor with 71 and a message that says why, never 126.
func TestStartRetryGivesUpEMFILE(t *testing.T) {
	p := startSupervisor(t, supervisorSpec{
		Command:    testBinary(t),
		Env:        childEnv("hang"),
		FillFDs:    true,
		RetryLimit: 300 * time.Millisecond,
	})
	p.errs.containing("level=WARN msg=\"" + retryMsg)
	msg := p.errs.until("supervisor:")
	if code := p.wait(t); code != exitcode.OSError {
		t.Errorf("exit %d, want %d", code, exitcode.OSError)
	}
	for _, want := range []string{"cannot start: too many open files", "the system refused a resource", "gave up after retrying"} {
		if !strings.Contains(msg, want) {
			t.Errorf("%q does not say %q", msg, want)
		}
	}
}

// osUsesPidfds reports whether the os package holds a pidfd for the
// children of this test process.
func osUsesPidfds(t *testing.T) bool {
	cmd := exec.Command("/bin/sh", "-c", "read x")
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		in.Close()
		_ = cmd.Wait()
	}()
	return pidfdOpenFor(cmd.Process.Pid)
}
