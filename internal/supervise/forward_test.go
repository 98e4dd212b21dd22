package supervise

import (
	"encoding/json"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// supervisorProc is the test binary running as a small rolesenv (the
// supervisor role) in a session of its own, without a terminal.
type supervisorProc struct {
	cmd    *exec.Cmd
	out    *lines // the child's stdout, which it inherits
	errs   *lines // the supervisor's log
	exited chan struct{}
}

func startSupervisor(t *testing.T, spec supervisorSpec) *supervisorProc {
	t.Helper()
	b, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(testBinary(t))
	cmd.Env = append(os.Environ(), roleVar+"=supervisor", specVar+"="+string(b))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	// Plain pipes rather than StdoutPipe: Wait must not close the reading
	// ends while a test still reads what the child wrote.
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = outW, errW
	err = cmd.Start()
	outW.Close()
	errW.Close()
	if err != nil {
		t.Fatal(err)
	}
	p := &supervisorProc{cmd: cmd, out: readLines(t, outR), errs: readLines(t, errR), exited: make(chan struct{})}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.exited
		outR.Close()
		errR.Close()
	})
	go func() {
		_ = cmd.Wait()
		close(p.exited)
	}()
	return p
}

func (p *supervisorProc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %s: %v", SignalName(sig), err)
	}
}

// wait returns the supervisor's exit code.
func (p *supervisorProc) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(deadline):
		t.Fatal("the supervisor did not exit")
	}
	ws := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	code, _ := statusOf(ws)
	return code
}

// TestForwardedSignals sends every forwarded signal to the supervisor and
// checks that the child receives each, in turn, and never SIGURG or
// SIGCHLD.
func TestForwardedSignals(t *testing.T) {
	p := startSupervisor(t, supervisorSpec{
		Command: testBinary(t),
		Env:     childEnv("record", "RECORD_TERM_EXITS=1"),
	})
	p.out.until("ready")
	sigs := []syscall.Signal{syscall.SIGHUP, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGUSR1,
		syscall.SIGUSR2, syscall.SIGWINCH, syscall.SIGALRM}
	if runtime.GOOS == "linux" {
		sigs = append(sigs, 35, 36, 50, 63, 64)
	}
	for _, sig := range sigs {
		p.signal(t, sig)
		if got, want := p.out.next(), "sig "+SignalName(sig); got != want {
			t.Fatalf("child got %q, want %q", got, want)
		}
	}
	// Neither SIGURG (the Go runtime's) nor SIGCHLD reach the child. USR1
	// is a marker: the next thing the child reports. TERM is sent only
	// after the child has reported USR1, because two signals sent at once
	// to a multi-threaded process may be handled in either order, and TERM
	// ends the child. It has recorded everything it got by then.
	p.signal(t, syscall.SIGURG)
	p.signal(t, syscall.SIGCHLD)
	p.signal(t, syscall.SIGUSR1)
	if got := p.out.next(); got != "sig SIGUSR1" {
		t.Fatalf("after URG, CHLD, USR1 the child got %q first, want sig SIGUSR1", got)
	}
	p.signal(t, syscall.SIGTERM)
	rest := p.out.rest()
	if !slices.Equal(rest, []string{"sig SIGTERM"}) {
		t.Errorf("after URG, CHLD, USR1, TERM the child went on with %q, want only sig SIGTERM", rest)
	}
	if code := p.wait(t); code != 0 {
		t.Errorf("supervisor exited %d, want the child's 0", code)
	}
}

// TestSignalToGroup: INT goes to the child's whole process group, TERM to
// the child alone.
func TestSignalToGroup(t *testing.T) {
	// The shell (the child) ignores INT and starts a recording grandchild
	// in its process group; on TERM it says so and sends the grandchild
	// USR1 as a marker, then waits for it to end.
	script := `trap "" INT
trap 'echo shell-term; kill -USR1 $pid; wait $pid; exit 0' TERM
"$0" & pid=$!
wait $pid`
	p := startSupervisor(t, supervisorSpec{
		Command: "/bin/sh",
		Args:    []string{"-c", script, testBinary(t)},
		Env:     childEnv("record"),
	})
	grandchild, _ := strconv.Atoi(field(p.out.until("ready"), "pid"))
	p.signal(t, syscall.SIGINT)
	if got := p.out.next(); got != "sig SIGINT" {
		t.Fatalf("grandchild got %q, want SIGINT through the process group", got)
	}
	p.signal(t, syscall.SIGTERM)
	var got []string
	for len(got) == 0 || got[len(got)-1] != "sig SIGUSR1" {
		got = append(got, p.out.next())
	}
	syscall.Kill(grandchild, syscall.SIGKILL)
	got = append(got, p.out.rest()...)
	if !slices.Equal(got, []string{"shell-term", "sig SIGUSR1"}) {
		t.Errorf("after TERM: %q; the grandchild must not get TERM (it is for the child alone)", got)
	}
	if code := p.wait(t); code != 0 {
		t.Errorf("exit %d, want 0", code)
	}
}

// TestSignalBeforeStartExits: a TERM while the environment is prepared
// ends the supervisor with 143 and no child.
func TestSignalBeforeStartExits(t *testing.T) {
	p := startSupervisor(t, supervisorSpec{
		Command:    testBinary(t),
		Env:        childEnv("record"),
		BlockStart: true,
	})
	p.errs.until("preparing")
	p.signal(t, syscall.SIGTERM)
	if code := p.wait(t); code != 143 {
		t.Errorf("exit %d, want 143", code)
	}
	if out := p.out.rest(); len(out) != 0 {
		t.Errorf("a child ran: %q", out)
	}
}

// TestParentDeath: when the supervisor is killed with SIGKILL, the child
// gets the parent-death signal and goes.
func TestParentDeath(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the parent-death signal is Linux-only")
	}
	p := startSupervisor(t, supervisorSpec{Command: testBinary(t), Env: childEnv("hang")})
	pid, _ := strconv.Atoi(field(p.out.until("ready"), "pid"))
	p.signal(t, syscall.SIGKILL)
	p.wait(t)
	// A liveness check with a generous deadline, not a speed claim.
	end := time.Now().Add(deadline)
	for alive(pid) {
		if time.Now().After(end) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("child %d still alive %v after its supervisor died", pid, deadline)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestParentDeathThreadKept: goroutines that lock and exit their
// OS threads (which the runtime then terminates) do not trigger the
// child's parent-death signal; only the forking thread matters, and Run
// keeps it.
func TestParentDeathThreadKept(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("Linux-only")
	}
	h := startHarness(t, Config{ParentDeathSignal: syscall.SIGTERM}, childEnv("record", "RECORD_TERM_EXITS=1"))
	h.out.until("ready")
	for range 200 {
		done := make(chan struct{})
		go func() {
			runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
			close(done)
		}()
		<-done
	}
	h.s.inject(syscall.SIGUSR1)
	if got := h.out.next(); got != "sig SIGUSR1" {
		t.Fatalf("child got %q; a parent-death SIGTERM would come first", got)
	}
}

func TestNotExecutableThroughSupervisor(t *testing.T) {
	p := startSupervisor(t, supervisorSpec{Command: "/nonexistent/x"})
	if code := p.wait(t); code != 127 {
		t.Errorf("exit %d, want 127", code)
	}
}
