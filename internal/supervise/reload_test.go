package supervise

import (
	"errors"
	"net"
	"path/filepath"
	"strings"
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
	var evMu sync.Mutex
	var reloads []Event
	observe := func(e Event) {
		if e.Kind == EventReload {
			evMu.Lock()
			reloads = append(reloads, e)
			evMu.Unlock()
		}
	}
	h := startHarness(t, Config{OnChange: OnChangeReload, Debounce: 5 * time.Second, Observe: observe}, env)
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
	evMu.Lock()
	if len(reloads) != 1 || reloads[0].Outcome != OutcomeOK || reloads[0].Updates != 1 {
		t.Errorf("reload events %+v, want one ok, with the one update", reloads)
	}
	evMu.Unlock()
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

// TestReloadBudget: a reload counts against the restart budget; past it,
// the next one is deferred, not dropped.
func TestReloadBudget(t *testing.T) {
	env := childEnv("record", "GEN=0")
	h := startHarness(t, Config{OnChange: OnChangeReload, MaxRestarts: 1, RestartWindow: 10 * time.Minute}, env)
	h.out.until("ready")
	start := h.clock.Now()
	fw := &fileWrites{clock: h.clock, changed: true}
	h.updateFiles(env, "first", fw.write)
	h.log.wait("child reloaded", 1)
	h.updateFiles(env, "second", fw.write)
	h.log.wait("restart deferred: restart budget spent", 1)
	if n := len(fw.calls()); n != 1 {
		t.Fatalf("files written %d times before the budget allows, want 1", n)
	}
	h.clock.waitTimer(t, start.Add(10*time.Minute))
	h.clock.Advance(10 * time.Minute)
	rec := h.log.wait("child reloaded", 2)
	if !rec.at.Equal(start.Add(10*time.Minute)) || len(fw.calls()) != 2 {
		t.Errorf("second reload at %v with %d writes; want at %v, after the second write", rec.at, len(fw.calls()), start.Add(10*time.Minute))
	}
}

// TestReloadNotify: a reload is bracketed by RELOADING=1 and READY=1.
func TestReloadNotify(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	env := childEnv("record", "GEN=0")
	h := startHarness(t, Config{OnChange: OnChangeReload, NotifySocket: sock}, env)
	h.out.until("ready")
	h.updateFiles(env, "rotated", (&fileWrites{clock: h.clock, changed: true}).write)
	buf := make([]byte, 4096)
	var msgs []string
	for len(msgs) < 2 {
		_ = conn.SetReadDeadline(time.Now().Add(deadline))
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, string(buf[:n]))
	}
	if !strings.HasPrefix(msgs[0], "RELOADING=1\nMONOTONIC_USEC=") || !strings.Contains(msgs[0], "STATUS=secret files changed; reloading") {
		t.Errorf("first notification %q", msgs[0])
	}
	if !strings.HasPrefix(msgs[1], "READY=1\nSTATUS=running ") || !strings.Contains(msgs[1], "reloaded 1 times") {
		t.Errorf("second notification %q", msgs[1])
	}
}
