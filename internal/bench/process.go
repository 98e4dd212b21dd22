package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// How the harness knows that the child runs: the child is /bin/echo (a
// small C program, dynamically linked, that writes one line and exits),
// and its standard output is a pipe the harness reads. The first byte
// arrives when the child has been executed and has run its first system
// call of note. Nothing is added to rolesenv's path (no readiness file,
// no extra descriptor: rolesenv passes only the standard ones to a child
// it supervises), and the bare command is measured the same way, so the
// child's own start (about a millisecond) is in every number and the
// comparisons cancel it.

// started is a process whose child has printed its first byte.
type started struct {
	cmd    *exec.Cmd
	out    *os.File // the read end of the child's stdout
	stderr *syncBuffer
	took   time.Duration // from just before fork to the first byte
}

// syncBuffer is a buffer that os/exec may write while the harness reads
// it for an error message.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startTimed starts argv with env and waits until something reads the
// first byte of its standard output (or the process ends first).
func startTimed(ctx context.Context, argv, env []string) (*started, error) {
	return startTimedIn(ctx, argv, env, nil)
}

// startTimedIn is startTimed with stdin as the process's standard input.
func startTimedIn(ctx context.Context, argv, env []string, stdin io.Reader) (*started, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Stdin = stdin
	cmd.Stdout = w
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	// Its own process group, so that a stop reaches the child too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return nil, err
	}
	w.Close()
	type result struct {
		n   int
		err error
	}
	done := make(chan result, 1)
	go func() {
		var b [1]byte
		n, err := r.Read(b[:])
		done <- result{n, err}
	}()
	var res result
	select {
	case res = <-done:
	case <-ctx.Done():
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		r.Close()
		return nil, fmt.Errorf("%s: no output before the deadline: %s", argv[0], lastLine(stderr.String()))
	}
	took := time.Since(t0)
	s := &started{cmd: cmd, out: r, stderr: stderr, took: took}
	if res.n == 0 {
		err := cmd.Wait()
		r.Close()
		return nil, fmt.Errorf("%s exited before its child printed anything (%v): %s", argv[0], err, lastLine(stderr.String()))
	}
	return s, nil
}

// wait waits for the process to exit and releases the pipe.
func (s *started) wait() error {
	err := s.cmd.Wait()
	s.out.Close()
	if err != nil {
		return fmt.Errorf("%v: %s", err, lastLine(s.stderr.String()))
	}
	return nil
}

// stop ends a watching rolesenv: TERM to rolesenv, which forwards it to
// the child and exits with its status.
func (s *started) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
	s.out.Close()
}

// runOnce starts argv, times it to the child's first byte and waits for
// the end.
func runOnce(ctx context.Context, argv, env []string) (time.Duration, error) {
	took, _, err := runOnceCPU(ctx, argv, env)
	return took, err
}

// runOnceCPU is runOnce that also returns the CPU time (user + system)
// of the process, from its resource usage: with --once, rolesenv's and
// then the child's, which runs in the same process.
func runOnceCPU(ctx context.Context, argv, env []string) (took, cpu time.Duration, err error) {
	s, err := startTimed(ctx, argv, env)
	if err != nil {
		return 0, 0, err
	}
	if err := s.wait(); err != nil {
		return 0, 0, err
	}
	return s.took, cpuTime(s.cmd.ProcessState), nil
}

// cpuTime is the user and system CPU time of an ended process.
func cpuTime(ps *os.ProcessState) time.Duration {
	if ps == nil {
		return 0
	}
	return ps.UserTime() + ps.SystemTime()
}

// lastLine is the last line of a process's standard error that is not
// the Go runtime's gctrace.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for len(lines) > 1 && strings.HasPrefix(lines[len(lines)-1], "gc ") {
		lines = lines[:len(lines)-1]
	}
	s = lines[len(lines)-1]
	if len(s) > 300 {
		s = s[:300]
	}
	return s
}
