package supervise

import (
	"errors"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// reloadScript starts a grandchild in the reload command's group, says
// both pids, and waits for it.
var reloadScript = []string{"/bin/sh", "-c", `sleep 300 & echo "reloadcmd pid=$$ sleep=$!"; wait`}

// waitGone waits, on a pidfd, for pid to exit (a zombie counts).
func waitGone(t *testing.T, pid int, what string) {
	t.Helper()
	fd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, int(deadline/time.Millisecond))
	for errors.Is(err, unix.EINTR) {
		n, err = unix.Poll(fds, int(deadline/time.Millisecond))
	}
	if err != nil || n == 0 {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		t.Fatalf("%s (pid %d) still runs: %v", what, pid, err)
	}
}

func reloadPids(t *testing.T, h *harness) (sh, sleep int) {
	t.Helper()
	line := h.out.containing("reloadcmd")
	sh, err1 := strconv.Atoi(field(line, "pid"))
	sleep, err2 := strconv.Atoi(field(line, "sleep"))
	if err1 != nil || err2 != nil {
		t.Fatalf("reload command said %q", line)
	}
	return sh, sleep
}

// TestReloadCommandTimeoutKillsGroup: a reload command that outlives
// --reload-timeout is killed with what it started.
func TestReloadCommandTimeoutKillsGroup(t *testing.T) {
	env := childEnv("record", "GEN=0")
	h := startHarness(t, Config{OnChange: OnChangeReload, ReloadCommand: reloadScript, ReloadTimeout: 200 * time.Millisecond}, env)
	h.out.until("ready")
	h.updateFiles(env, "rotated", (&fileWrites{clock: h.clock, changed: true}).write)
	sh, sleep := reloadPids(t, h)
	rec := h.log.wait("reload failed; the command runs on with what it had read", 1)
	if !strings.Contains(rec.attrs["err"], "timed out") {
		t.Errorf("reload failed with %v, want a timeout", rec.attrs)
	}
	waitGone(t, sh, "the reload command")
	waitGone(t, sleep, "the reload command's own child")
}

// TestReloadCommandEndsWithStop: SIGTERM while a reload command runs
// stops the command and kills the reload command's group at once, long
// before its timeout; Run returns only once it is gone.
func TestReloadCommandEndsWithStop(t *testing.T) {
	env := childEnv("record", "GEN=0", "RECORD_TERM_EXITS=1")
	h := startHarness(t, Config{OnChange: OnChangeReload, ReloadCommand: reloadScript, ReloadTimeout: time.Hour}, env)
	h.out.until("ready")
	h.updateFiles(env, "rotated", (&fileWrites{clock: h.clock, changed: true}).write)
	sh, sleep := reloadPids(t, h)
	h.s.inject(syscall.SIGTERM)
	h.wait()
	if alive(sh) {
		t.Error("Run returned while the reload command runs")
	}
	waitGone(t, sleep, "the reload command's own child")
	if n := h.log.count("child reloaded"); n != 0 {
		t.Errorf("a reload killed by the stop was logged as done")
	}
}

// TestReloadKilledNoReady: a stop kills the reload command at once; it
// ends while the stop goes on (the command ignores SIGTERM), and does not
// tell systemd READY=1.
func TestReloadKilledNoReady(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	env := childEnv("stubborn", "GEN=0")
	h := startHarness(t, Config{OnChange: OnChangeReload, ReloadCommand: reloadScript, ReloadTimeout: time.Hour, NotifySocket: sock}, env)
	h.out.until("ready")
	h.updateFiles(env, "rotated", (&fileWrites{clock: h.clock, changed: true}).write)
	reloadPids(t, h)
	h.cancel(errors.New("shutting down")) // a stop, which the command ignores
	rec := h.log.wait("reload failed; the command runs on with what it had read", 1)
	if !strings.Contains(rec.attrs["err"], "stopping") {
		t.Errorf("reload ended with %v, want killed by the stop", rec.attrs)
	}
	h.clock.Advance(time.Hour) // past the stop timeout: SIGKILL
	h.wait()
	// Run has returned: every notification is in the socket's queue.
	// (Go fails a read at once on a deadline already past, queued data or
	// not: the deadline only ends the read of an empty queue.)
	_ = conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	buf := make([]byte, 4096)
	reloading := false
	for {
		n, err := conn.Read(buf)
		if err != nil {
			break
		}
		msg := string(buf[:n])
		reloading = reloading || strings.HasPrefix(msg, "RELOADING=1")
		if reloading && strings.HasPrefix(msg, "READY=1") {
			t.Errorf("READY=1 after the reload began, while stopping: %q", msg)
		}
	}
	if !reloading {
		t.Error("no RELOADING=1")
	}
}
