package supervise

import (
	"errors"
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
