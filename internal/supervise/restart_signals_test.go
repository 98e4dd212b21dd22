package supervise

import (
	"errors"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestHUPDuringRestartSparesNewChild: a logrotate's HUP that arrives while
// the old child is stopping for a rotation reaches the old child, never
// the new one, which would die of it before its handler exists.
func TestHUPDuringRestartSparesNewChild(t *testing.T) {
	stdin, goAhead, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); goAhead.Close() })
	say := func(s string) {
		if _, err := goAhead.WriteString(s + "\n"); err != nil {
			t.Fatal(err)
		}
	}
	h := startHarness(t, Config{StopTimeout: 10 * time.Second, Stdin: stdin}, childEnv("late", "GEN=0"))
	old := field(h.out.until("waiting"), "pid")
	say("go")
	h.out.until("ready")
	h.update(childEnv("late", "GEN=1"), "sm://prod/db rotated")
	stop := h.log.wait("stopping child", 1)
	h.out.until("sig SIGTERM") // the old child takes a moment to stop
	h.s.inject(syscall.SIGHUP)
	got := h.log.waitFunc("the HUP", func(r logRecord) bool {
		return r.attrs["signal"] == "SIGHUP" && (r.msg == "forwarded signal" || strings.HasPrefix(r.msg, "signal during a restart"))
	})
	if got.msg != "forwarded signal" || got.attrs["pid"] != old {
		t.Errorf("HUP during the restart: %q %v; want it forwarded to the old child %s", got.msg, got.attrs, old)
	}
	h.clock.waitTimer(t, stop.at.Add(10*time.Second))
	h.clock.Advance(10 * time.Second)
	line, ok := h.out.nextOrEOF()
	for ok && !strings.HasPrefix(line, "waiting") {
		line, ok = h.out.nextOrEOF()
	}
	if !ok {
		r := h.wait()
		t.Fatalf("the new child died before its handler existed: Run returned status %d, signal %v, err %v", r.res.ExitCode, r.res.Signal, r.err)
	}
	if field(line, "gen") != "1" {
		t.Fatalf("new child: %q", line)
	}
	say("go")
	h.out.until("ready")
	say("report")
	if saw := h.out.until("saw"); saw != "saw none" {
		t.Errorf("the new child reports %q, want no signal", saw)
	}
	r := h.wait()
	if r.err != nil || r.res.ExitCode != 0 || r.res.Restarts != 1 {
		t.Errorf("Run returned %+v, %v; want the new child's own status 0 after one restart", r.res, r.err)
	}
}

// nonStopping are the signals that, during a restart, reach the old
// child or nobody: every forwarded one but TERM, INT and QUIT.
func nonStopping() []syscall.Signal {
	var out []syscall.Signal
	for _, sig := range Forwarded() {
		if !endsRestart(sig) {
			out = append(out, sig)
		}
	}
	return out
}

// TestSignalsDuringRestart sends every signal of nonStopping in each
// phase of a restart: while the old child stops (it gets them), once it
// is gone but its group is not, and while the new child's start waits to
// be retried (they are dropped). The new child never gets one.
func TestSignalsDuringRestart(t *testing.T) {
	t.Run("old child stopping", func(t *testing.T) {
		h := startHarness(t, Config{StopTimeout: 10 * time.Second}, childEnv("record", "GEN=0"))
		h.out.until("ready")
		h.update(childEnv("record", "GEN=1", "RECORD_TERM_EXITS=1"), "change")
		stop := h.log.wait("stopping child", 1)
		h.out.until("sig SIGTERM") // it ignores the stop signal
		want := map[string]bool{}
		for _, sig := range nonStopping() {
			h.s.inject(sig)
			want["sig "+SignalName(sig)] = true
		}
		for len(want) > 0 {
			line := h.out.next()
			if !want[line] {
				t.Fatalf("old child printed %q; still waiting for %v", line, want)
			}
			delete(want, line)
		}
		h.clock.waitTimer(t, stop.at.Add(10*time.Second))
		h.clock.Advance(10 * time.Second)
		checkNewChildSpared(t, h)
	})
	t.Run("old child gone", func(t *testing.T) {
		h := startHarness(t, Config{StopTimeout: 10 * time.Second}, childEnv("stubborn", "GEN=0", "STUBBORN_PARENT_EXITS=1"))
		old := field(h.out.until("ready"), "pid")
		h.update(childEnv("record", "GEN=1", "RECORD_TERM_EXITS=1"), "change")
		stop := h.log.wait("stopping child", 1)
		h.log.waitFunc("the old child's exit", func(r logRecord) bool { return r.msg == "child exited" && r.attrs["pid"] == old })
		sigs := nonStopping()
		for _, sig := range sigs {
			h.s.inject(sig)
		}
		h.log.wait(droppedMsg, len(sigs))
		h.clock.waitTimer(t, stop.at.Add(10*time.Second))
		h.clock.Advance(10 * time.Second) // SIGKILL to the grandchild left in the group
		checkNewChildSpared(t, h)
	})
	t.Run("start retried", func(t *testing.T) {
		h := startHarnessWith(t, Config{}, childEnv("hang", "GEN=0"), failStarts(2, 2))
		h.out.until("ready")
		h.update(childEnv("record", "GEN=1", "RECORD_TERM_EXITS=1"), "change")
		h.log.wait(retryMsg, 1)
		sigs := nonStopping()
		for _, sig := range sigs {
			h.s.inject(sig)
		}
		h.log.wait(droppedMsg, len(sigs))
		h.clock.Advance(h.clock.waitAnyTimer(t).Sub(h.clock.Now()))
		checkNewChildSpared(t, h)
	})
}

const droppedMsg = "signal during a restart: dropped; the new command starts with a fresh configuration"

// checkNewChildSpared waits for the new child of a restart (a recording
// child with RECORD_TERM_EXITS=1), stops Run, and checks that nothing was
// forwarded to it and that it received only the stop signal.
func checkNewChildSpared(t *testing.T, h *harness) {
	t.Helper()
	started := h.log.wait("child restarted", 1)
	if line := h.out.until("ready"); field(line, "gen") != "1" {
		t.Fatalf("new child: %q", line)
	}
	h.cancel(errors.New("test over"))
	if rest := h.out.rest(); !slices.Equal(rest, []string{"sig SIGTERM"}) {
		t.Errorf("the new child received %q, want only the stop signal", rest)
	}
	r := h.wait()
	if r.res.ExitCode != 0 {
		t.Errorf("the new child ended with %+v, want 0 (after the stop signal)", r.res)
	}
	h.log.mu.Lock()
	defer h.log.mu.Unlock()
	for _, rec := range h.log.recs {
		if rec.msg == "forwarded signal" && rec.attrs["pid"] == started.attrs["pid"] {
			t.Errorf("forwarded %s to the new child", rec.attrs["signal"])
		}
	}
}
