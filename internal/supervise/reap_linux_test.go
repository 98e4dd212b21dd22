package supervise

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/credentials/processcreds"
	"github.com/rolesenv/rolesenv/internal/testenv"
)

// TestReaperSparesOSExec runs, in the test process, a supervised child
// that leaves 500 orphans behind for the reaper while the test runs
// processes through os/exec and the AWS SDK's credential_process
// provider: every one of those must get its own exit status, and no
// zombie may be left.
func TestReaperSparesOSExec(t *testing.T) {
	testenv.IsolateAWS(t)
	const orphans = 500
	var wg sync.WaitGroup
	errs := make(chan error, 1024)
	stop := make(chan struct{})
	// os/exec children, started and waited for in a loop.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				if i < 50 {
					errs <- errors.New("fewer than 50 os/exec runs overlapped the reaping")
				}
				return
			default:
			}
			err := exec.Command("/bin/sh", "-c", "exit 7").Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 7 {
				errs <- err
				return
			}
		}
	}()
	// The SDK's credential_process provider, which waits with cmd.Wait.
	wg.Add(1)
	go func() {
		defer wg.Done()
		p := processcreds.NewProvider(`echo '{"Version": 1, "AccessKeyId": "AKIDREAPERTEST", "SecretAccessKey": "not-a-secret"}'`)
		for {
			select {
			case <-stop:
				return
			default:
			}
			creds, err := p.Retrieve(context.Background())
			if err != nil || creds.AccessKeyID != "AKIDREAPERTEST" {
				errs <- err
				return
			}
		}
	}()

	s := newInProcess(t, Config{Command: testBinary(t), Args: []string{strconv.Itoa(orphans)}})
	res, err := s.Run(context.Background(), childEnv("orphans"), nil)
	close(stop)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("os/exec child lost its status: %v", e)
	}
	if err != nil || res.ExitCode != 0 {
		t.Errorf("Run: %+v, %v; the child saw zombies left (its output is above)", res, err)
	}
}

// TestReaperProtects checks the rule itself: a process this process holds
// a pidfd for is protected; without pidfds, a process in rolesenv's own
// process group is.
func TestReaperProtects(t *testing.T) {
	start := func(t *testing.T, setpgid, pidfd bool) int {
		t.Helper()
		if pidfd { // os/exec: the os package keeps a pidfd
			cmd := exec.Command("/bin/sleep", "60")
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: setpgid}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
			return cmd.Process.Pid
		}
		pid, err := syscall.ForkExec("/bin/sleep", []string{"sleep", "60"}, &syscall.ProcAttr{Sys: &syscall.SysProcAttr{Setpgid: setpgid}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			syscall.Kill(pid, syscall.SIGKILL)
			var ws syscall.WaitStatus
			syscall.Wait4(pid, &ws, 0, nil)
		})
		return pid
	}
	r := &reaper{self: os.Getpid(), pgrp: syscall.Getpgrp()}
	cases := []struct {
		name           string
		setpgid, pidfd bool
		withPidfds     bool // os uses pidfds
		want           bool
	}{
		{"os/exec", false, true, true, true},
		{"os/exec, own group", true, true, true, true},
		{"forkexec, our group, pidfds", false, false, true, false},
		{"forkexec, our group, no pidfds", false, false, false, true},
		{"forkexec, own group, no pidfds", true, false, false, false},
	}
	for _, c := range cases {
		pid := start(t, c.setpgid, c.pidfd)
		r.pidfds = -1
		if c.withPidfds {
			r.pidfds = 1
		}
		if got := r.protected(pid); got != c.want {
			t.Errorf("%s: protected = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestReadStat(t *testing.T) {
	st, ok := readStat(os.Getpid())
	if !ok || st.ppid != os.Getppid() || st.pgrp != syscall.Getpgrp() || st.state == 0 {
		t.Errorf("readStat(self) = %+v, %v", st, ok)
	}
	if _, ok := readStat(1 << 30); ok {
		t.Error("readStat of a missing pid succeeded")
	}
}
