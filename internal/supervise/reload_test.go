package supervise

import (
	"errors"
	"sync"
	"testing"
	"time"
)

// fileWrites is a WriteFiles that records when it was called.
type fileWrites struct {
	mu      sync.Mutex
	clock   Clock
	at      []time.Time
	changed bool
}

func (f *fileWrites) write() (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.at = append(f.at, f.clock.Now())
	return f.changed, nil
}

func (f *fileWrites) calls() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.at...)
}

func (h *harness) updateFiles(env []string, reason string, files WriteFiles) {
	h.t.Helper()
	select {
	case h.updates <- Update{Env: env, Reason: reason, Files: files}:
	case <-time.After(deadline):
		h.t.Fatal("Run did not take the update")
	}
}

// TestReloadSignal: a change of files only is written after the debounce,
// never before, then the child gets the reload signal and is not
// restarted.
func TestReloadSignal(t *testing.T) {
	env := childEnv("record", "GEN=0", "RECORD_TERM_EXITS=1")
	h := startHarness(t, Config{OnChange: OnChangeReload, Debounce: 5 * time.Second}, env)
	h.out.until("ready")
	fw := &fileWrites{clock: h.clock, changed: true}
	start := h.clock.Now()
	h.updateFiles(env, "sm://app/tls rotated", fw.write)
	h.clock.waitTimer(t, start.Add(5*time.Second))
	if n := len(fw.calls()); n != 0 {
		t.Fatalf("files written %d times before the debounce", n)
	}
	h.clock.Advance(5 * time.Second)
	if got := h.out.until("sig"); got != "sig SIGHUP" {
		t.Fatalf("child got %q, want sig SIGHUP", got)
	}
	rec := h.log.wait("child reloaded", 1)
	if rec.attrs["reason"] != "sm://app/tls rotated" {
		t.Errorf("reload logged with %v", rec.attrs)
	}
	if calls := fw.calls(); len(calls) != 1 || !calls[0].Equal(start.Add(5*time.Second)) {
		t.Errorf("files written at %v, want once at %v", calls, start.Add(5*time.Second))
	}
	h.cancel(errors.New("done"))
	if r := h.wait(); r.res.Restarts != 0 || h.log.count("stopping child") != 1 {
		t.Errorf("%d restarts, %d stops; want none before the end", r.res.Restarts, h.log.count("stopping child"))
	}
}

// TestReloadUnchangedFiles: an update whose files are what the child has
// reloads nothing.
func TestReloadUnchangedFiles(t *testing.T) {
	env := childEnv("record", "GEN=0")
	h := startHarness(t, Config{OnChange: OnChangeReload}, env)
	h.out.until("ready")
	fw := &fileWrites{clock: h.clock}
	h.updateFiles(env, "nothing", fw.write)
	h.log.wait("environment changed back; nothing to restart", 1)
	if h.log.count("child reloaded") != 0 || len(fw.calls()) != 1 {
		t.Errorf("reloaded %d times, files written %d times", h.log.count("child reloaded"), len(fw.calls()))
	}
}

// TestReloadEnvChangeRestarts: a change of the environment restarts under
// reload, says why, and writes the files before the new child starts.
func TestReloadEnvChangeRestarts(t *testing.T) {
	h := startHarness(t, Config{OnChange: OnChangeReload}, childEnv("hang", "GEN=0"))
	first := h.out.until("ready")
	fw := &fileWrites{clock: h.clock, changed: true}
	h.updateFiles(childEnv("hang", "GEN=1"), "sm://app/db rotated", fw.write)
	h.log.wait("environment variables changed; restarting (a reload cannot change a running process's environment)", 1)
	second := h.out.until("ready")
	h.log.wait("child restarted", 1)
	if field(second, "gen") != "1" || field(second, "pid") == field(first, "pid") {
		t.Errorf("after the change: %q; want a new child with gen=1", second)
	}
	if len(fw.calls()) != 1 {
		t.Errorf("files written %d times, want once, before the new child", len(fw.calls()))
	}
	if h.log.count("child reloaded") != 0 {
		t.Error("reloaded instead of restarting")
	}
}

// TestReloadCommand: the reload command runs instead of a signal; its
// failure is logged with its status, and the child runs on.
func TestReloadCommand(t *testing.T) {
	for _, tt := range []struct {
		argv []string
		msg  string
	}{
		{[]string{"true"}, "child reloaded"},
		{[]string{"false"}, "reload failed; the command runs on with what it had read"},
	} {
		t.Run(tt.argv[0], func(t *testing.T) {
			env := childEnv("record", "GEN=0")
			h := startHarness(t, Config{OnChange: OnChangeReload, ReloadCommand: tt.argv}, env)
			h.out.until("ready")
			fw := &fileWrites{clock: h.clock, changed: true}
			h.updateFiles(env, "rotated", fw.write)
			rec := h.log.wait(tt.msg, 1)
			if tt.argv[0] == "false" && rec.attrs["status"] != "1" {
				t.Errorf("status logged as %q, want 1", rec.attrs["status"])
			}
			h.cancel(errors.New("done"))
			if got := h.out.until("sig"); got != "sig SIGTERM" {
				t.Errorf("child got %q before its stop: the reload command must not signal it", got)
			}
		})
	}
}

func TestParseOnChangeReload(t *testing.T) {
	if o, err := ParseOnChange("reload"); err != nil || o != OnChangeReload || o.String() != "reload" {
		t.Fatalf("ParseOnChange(reload) = %v, %v", o, err)
	}
}
