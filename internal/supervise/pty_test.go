package supervise

import (
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/rolesenv/rolesenv/internal/testenv"
)

// transcript collects everything written to a pseudo-terminal.
type transcript struct {
	mu   sync.Mutex
	buf  strings.Builder
	more chan struct{}
}

func (tr *transcript) Write(p []byte) (int, error) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.buf.Write(p)
	close(tr.more)
	tr.more = make(chan struct{})
	return len(p), nil
}

// waitFor waits until s appears after offset from, and returns the offset
// just past it.
func (tr *transcript) waitFor(t *testing.T, s string, from int) int {
	t.Helper()
	timeout := time.After(deadline)
	for {
		tr.mu.Lock()
		text, ch := tr.buf.String(), tr.more
		tr.mu.Unlock()
		if i := strings.Index(text[from:], s); i >= 0 {
			return from + i + len(s)
		}
		select {
		case <-ch:
		case <-timeout:
			t.Fatalf("%q did not appear on the terminal; it shows:\n%s", s, text)
		}
	}
}

func (tr *transcript) String() string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.buf.String()
}

// TestInteractiveJobControl drives an interactive bash through a
// pseudo-terminal: the child reads the terminal, Ctrl-Z stops the job and
// fg resumes it with the child in the foreground again, and Ctrl-C reaches
// the child once, from the terminal, not through rolesenv.
func TestInteractiveJobControl(t *testing.T) {
	tr, send, ended := terminalSession(t, interactiveBash(t))

	at := tr.waitFor(t, "$ ", 0)
	send(testBinary(t) + "; echo \"first:$?\"\n")
	at = tr.waitFor(t, "ttychild ready", at)
	send("hello\n")
	at = tr.waitFor(t, "got hello", at)

	send("\x1a") // Ctrl-Z
	at = tr.waitFor(t, "Stopped", at)
	at = tr.waitFor(t, "first:148", at) // bash's status for a job stopped by SIGTSTP
	at = tr.waitFor(t, "$ ", at)
	send("fg; echo \"fg:$?\"\n")
	send("again\n") // read by the child only if it has the terminal again
	at = tr.waitFor(t, "got again", at)

	send("\x03") // Ctrl-C
	at = tr.waitFor(t, "interrupted 1", at)
	at = tr.waitFor(t, "fg:41", at)
	tr.waitFor(t, "$ ", at)
	send("exit\n")
	select {
	case <-ended:
	case <-time.After(deadline):
		t.Fatal("bash did not exit")
	}
	if out := tr.String(); strings.Contains(out, `msg="forwarded signal" signal=SIGINT`) {
		t.Errorf("rolesenv forwarded SIGINT: the child would get Ctrl-C twice")
	}
}

// TestTerminalTakenBack: without a job-control shell (sh -c runs rolesenv
// in its own process group), rolesenv gives the terminal to the child and
// takes it back when the child is gone, so the shell can read it again.
func TestTerminalTakenBack(t *testing.T) {
	spec, err := json.Marshal(supervisorSpec{Command: testBinary(t), Env: childEnv("ttychild")})
	if err != nil {
		t.Fatal(err)
	}
	script := `"$0"; echo "rc:$?"; read x; echo "read:$x"`
	cmd := exec.Command("/bin/sh", "-c", script, testBinary(t))
	cmd.Env = append(os.Environ(), roleVar+"=supervisor", specVar+"="+string(spec))
	tr, send, _ := terminalSession(t, cmd)
	at := tr.waitFor(t, "ttychild ready", 0)
	send("hello\n")
	at = tr.waitFor(t, "got hello", at)
	send("\x03")
	at = tr.waitFor(t, "rc:41", at)
	send("back\n")
	tr.waitFor(t, "read:back", at)
}

// TestInteractiveBackgroundThenFg: started in the background, the child
// does not get the terminal; when it reads, it stops, rolesenv stops with
// it, and fg brings both back with the child in the foreground.
func TestInteractiveBackgroundThenFg(t *testing.T) {
	tr, send, _ := terminalSession(t, interactiveBash(t))
	at := tr.waitFor(t, "$ ", 0)
	send(testBinary(t) + " &\n")
	at = tr.waitFor(t, "foreground=false", at)
	at = tr.waitFor(t, "ttychild ready", at)
	send("fg; echo \"fg:$?\"\n")
	send("typed\n")
	at = tr.waitFor(t, "got typed", at)
	send("\x03")
	tr.waitFor(t, "fg:41", at)
}

// terminalSession runs cmd on a new pseudo-terminal and returns what the
// terminal shows and a way to type on it. The session ends with the test.
func terminalSession(t *testing.T, cmd *exec.Cmd) (tr *transcript, send func(string), ended <-chan struct{}) {
	t.Helper()
	tty, err := pty.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	tr = &transcript{more: make(chan struct{})}
	done := make(chan struct{})
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := tty.Read(buf)
			tr.Write(buf[:n])
			if err != nil {
				close(done)
				return
			}
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		tty.Close()
		t.Logf("terminal:\n%s", tr)
	})
	send = func(s string) {
		if _, err := tty.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	return tr, send, done
}

// interactiveBash is bash -i, with the supervisor role configured to
// supervise a ttychild.
func interactiveBash(t *testing.T) *exec.Cmd {
	t.Helper()
	bash := testenv.RequireTool(t, "bash")
	spec, err := json.Marshal(supervisorSpec{Command: testBinary(t), Env: childEnv("ttychild")})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bash, "--norc", "--noprofile", "--noediting", "-i")
	cmd.Env = append(os.Environ(), "PS1=$ ", "TERM=dumb", roleVar+"=supervisor", specVar+"="+string(spec))
	return cmd
}
