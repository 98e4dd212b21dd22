package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rolesenv/rolesenv/internal/testenv"

	"github.com/rolesenv/rolesenv/internal/exitcode"
)

// runDeadline bounds every wait in these tests: generous, and never a
// synchronisation.
const runDeadline = 60 * time.Second

func init() {
	// hang: print "ready pid=N" and wait for a signal to take its default
	// action.
	testChildModes["hang"] = func([]string) int {
		fmt.Printf("ready pid=%d\n", os.Getpid())
		select {}
	}
	// trap-term CODE: print "ready", then on SIGTERM print "term" and
	// exit with CODE.
	testChildModes["trap-term"] = func(args []string) int {
		code, _ := strconv.Atoi(args[0])
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGTERM)
		fmt.Println("ready")
		<-ch
		fmt.Println("term")
		return code
	}
	// orphan-parent N: start N copies of /bin/true and exit without
	// waiting for any of them.
	testChildModes["orphan-parent"] = func(args []string) int {
		n, _ := strconv.Atoi(args[0])
		for range n {
			if _, err := syscall.ForkExec("/bin/true", []string{"true"}, &syscall.ProcAttr{}); err != nil {
				fmt.Println(err)
				return 3
			}
		}
		return 0
	}
	// orphans N: leave N orphans behind (through orphan-parent), then wait
	// until the parent, rolesenv, has no zombie child left; print the count
	// and exit 0 when it is zero, 1 at the deadline.
	testChildModes["orphans"] = func(args []string) int {
		if out, err := exec.Command("rolesenv-testchild", "orphan-parent", args[0]).CombinedOutput(); err != nil {
			fmt.Printf("orphan-parent failed: %v: %s\n", err, out)
			return 3
		}
		parent := os.Getppid()
		end := time.Now().Add(runDeadline)
		for {
			z := zombiesOf(parent)
			if z == 0 || time.Now().After(end) {
				fmt.Printf("parent %d zombies %d\n", parent, z)
				if z == 0 {
					return 0
				}
				return 1
			}
			time.Sleep(20 * time.Millisecond) // polling a condition with a deadline
		}
	}
}

// zombiesOf counts the zombies whose parent is pid, from /proc.
func zombiesOf(pid int) int {
	n := 0
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		if st, ok := procStat(e.Name()); ok && st[0] == "Z" && st[1] == strconv.Itoa(pid) {
			n++
		}
	}
	return n
}

// procStat returns the fields of /proc/PID/stat after the command name:
// state, ppid, pgrp, ...
func procStat(pid string) ([]string, bool) {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return nil, false
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return f, len(f) > 2
}

// rolesenvCmd is rolesenv as a separate process (the test binary on the
// PATH), in a session of its own so that no terminal is involved.
func rolesenvCmd(t *testing.T, env []string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(rolesenvBin(t), args...)
	cmd.Env = append(testenv.SafeEnv(t), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	return cmd
}

// exitCode runs cmd and returns its status as a shell reports it.
func exitCode(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("%s: %v", cmd, err)
	}
	ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

func TestRunUsage(t *testing.T) {
	tests := []struct {
		args []string
		env  []string
		code int
		want string
	}{
		{[]string{"run"}, nil, exitcode.Usage, "rolesenv: error: no command given"},
		{[]string{"run", "--once", "--debounce", "1s", "--", "true"}, nil, exitcode.Usage, "--debounce cannot be used with --once"},
		{[]string{"run", "--once", "--refresh-signal", "HUP", "true"}, nil, exitcode.Usage, "--refresh-signal cannot be used with --once"},
		{[]string{"run", "--once", "--child-credentials", "endpoint", "true"}, nil, exitcode.Usage, "cannot be used with --once"},
		{[]string{"run", "--child-credentials", "sideways", "true"}, nil, exitcode.Usage, "invalid --child-credentials"},
		{[]string{"run", "--on-change", "reboot", "true"}, nil, exitcode.Usage, `invalid on-change "reboot"`},
		{[]string{"run", "--stop-signal", "NOPE", "true"}, nil, exitcode.Usage, "invalid --stop-signal"},
		{[]string{"run", "--stop-signal", "STOP", "true"}, nil, exitcode.Usage, "does not stop a process"},
		{[]string{"run", "--refresh-signal", "TERM", "true"}, nil, exitcode.Usage, "cannot be the refresh signal"},
		{[]string{"run", "--parent-death-signal", "99", "true"}, nil, exitcode.Usage, "invalid --parent-death-signal"},
		{[]string{"run", "true"}, []string{"ROLESENV_STOP_SIGNAL=hunter2"}, exitcode.Usage, "invalid ROLESENV_STOP_SIGNAL: not a signal"},
		{[]string{"run", "--stop-timeout", "0s", "true"}, nil, exitcode.Usage, "invalid --stop-timeout"},
		{[]string{"run", "--debounce", "-1s", "true"}, nil, exitcode.Usage, "invalid --debounce"},
		{[]string{"run", "--max-restarts", "-1", "true"}, nil, exitcode.Usage, "invalid --max-restarts"},
		{[]string{"run", "--env-file", "no-such.env", "true"}, nil, exitcode.Config, "no-such.env"},
		{[]string{"run", "--max-stale", "1m", "true"}, nil, exitcode.Usage, "invalid --max-stale 1m0s: want more than --interval (5m0s), or 0"},
		{[]string{"run", "--env-file", "-", "true"}, []string{"ROLESENV_MAX_STALE=1s", "ROLESENV_INTERVAL=2s"}, exitcode.Usage, "invalid --max-stale"},
		{[]string{"run", "--user", "no-such-user-here", "true"}, nil, exitcode.Config, "--user no-such-user-here"},
	}
	for _, tt := range tests {
		a := &app{stdin: strings.NewReader(""), stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}, environ: tt.env}
		err := dispatch(t.Context(), a, tt.args)
		var stderr bytes.Buffer
		if err != nil {
			printError(&stderr, err)
		}
		if code := exitcode.Of(err); code != tt.code {
			t.Errorf("%q: exit %d, want %d (%s)", tt.args, code, tt.code, stderr.String())
		}
		if !strings.Contains(stderr.String(), tt.want) || strings.Contains(stderr.String(), "hunter2") {
			t.Errorf("%q: stderr %q, want %q (and no twin value)", tt.args, stderr.String(), tt.want)
		}
	}
	code, stdout, _ := runCLI(t, "run", "--help")
	if code != 0 || !strings.Contains(stdout, "Examples:") || !strings.Contains(stdout, "--stop-signal") {
		t.Errorf("run --help: exit %d, %q", code, stdout)
	}
}

// TestRunExitStatusParity: rolesenv run and rolesenv run --once exit with
// what a shell reports for the same command.
func TestRunExitStatusParity(t *testing.T) {
	scripts := []string{"kill -TERM $$", "kill -KILL $$", "kill -SEGV $$"}
	for _, c := range []int{0, 1, 2, 42, 64, 126, 127, 128, 200, 255} {
		scripts = append(scripts, fmt.Sprintf("exit %d", c))
	}
	for _, script := range scripts {
		want := exitCode(t, exec.Command("/bin/sh", "-c", script))
		for _, mode := range [][]string{{"run"}, {"run", "--once"}} {
			args := append(slices.Clone(mode), "--", "/bin/sh", "-c", script)
			if got := exitCode(t, rolesenvCmd(t, nil, args...)); got != want {
				t.Errorf("rolesenv %s: exit %d, the shell's %d", strings.Join(args, " "), got, want)
			}
		}
	}
}

func TestRunStartErrors(t *testing.T) {
	dir := t.TempDir()
	notExec := filepath.Join(dir, "notexec")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		command string
		code    int
		want    string
	}{
		{"no-such-command-here", 127, "rolesenv: error: no-such-command-here: command not found"},
		{notExec, 126, "rolesenv: error: " + notExec + ": cannot execute: permission denied"},
	} {
		for _, mode := range [][]string{{"run"}, {"run", "--once"}} {
			cmd := rolesenvCmd(t, nil, append(mode, "--", c.command)...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if got := exitCode(t, cmd); got != c.code || !strings.Contains(stderr.String(), c.want) {
				t.Errorf("%v %s: exit %d, stderr %q; want %d and %q", mode, c.command, got, stderr.String(), c.code, c.want)
			}
		}
	}
}

// TestRunOnceExecsInPlace: with --once the command is rolesenv's process,
// the same PID.
func TestRunOnceExecsInPlace(t *testing.T) {
	cmd := rolesenvCmd(t, []string{"ROLESENV_DEBOUNCE=1s", "ROLESENV_ON_CHANGE=bogus"}, "run", "--once", "--", "/bin/sh", "-c", "echo $$")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%v (watching flags from ROLESENV_* must be ignored with --once)", err)
	}
	if got := strings.TrimSpace(string(out)); got != strconv.Itoa(cmd.Process.Pid) {
		t.Errorf("the command ran as pid %s, rolesenv was %d", got, cmd.Process.Pid)
	}
}

// TestRunChildEnvironment: the command gets rolesenv's environment, sorted,
// without any ROLESENV_* variable.
func TestRunChildEnvironment(t *testing.T) {
	for _, mode := range [][]string{{"run"}, {"run", "--once"}} {
		cmd := rolesenvCmd(t, []string{"ROLESENV_PRIVATE_KEY_PASSPHRASE=sentinel-passphrase", "ZZ_LAST=1", "AA_FIRST=1"},
			append(mode, "--", "rolesenv-testchild", "printenv")...)
		out, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		env := strings.Split(strings.TrimSpace(string(out)), "\n")
		if !slices.Contains(env, "AA_FIRST=1") || !slices.Contains(env, "ZZ_LAST=1") {
			t.Errorf("%v: inherited variables missing: %q", mode, env)
		}
		if strings.Contains(string(out), "ROLESENV_") || strings.Contains(string(out), "sentinel") {
			t.Errorf("%v: a ROLESENV_ variable reached the command", mode)
		}
		if !slices.IsSorted(env) {
			t.Errorf("%v: environment not sorted: %q", mode, env)
		}
	}
}

// TestRunKilled: when rolesenv is SIGKILLed, the command gets the
// parent-death signal and goes.
func TestRunKilled(t *testing.T) {
	cmd := rolesenvCmd(t, nil, "run", "--", "rolesenv-testchild", "hang")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := readLineWithin(out, runDeadline)
	if err != nil {
		t.Fatal(err)
	}
	pid := strings.TrimPrefix(strings.TrimSpace(line), "ready pid=")
	cmd.Process.Kill()
	cmd.Wait()
	end := time.Now().Add(runDeadline)
	for {
		st, ok := procStat(pid)
		if !ok || st[0] == "Z" {
			return
		}
		if time.Now().After(end) {
			n, _ := strconv.Atoi(pid)
			syscall.Kill(n, syscall.SIGKILL)
			t.Fatalf("the command (pid %s) outlived rolesenv by %v", pid, runDeadline)
		}
		time.Sleep(10 * time.Millisecond) // a liveness check, not a synchronisation
	}
}

func readLineWithin(r io.Reader, d time.Duration) (string, error) {
	ch := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(r).ReadString('\n')
		ch <- line
	}()
	select {
	case line := <-ch:
		if line == "" {
			return "", fmt.Errorf("no output")
		}
		return line, nil
	case <-time.After(d):
		return "", fmt.Errorf("no output within %v", d)
	}
}

// requirePIDNamespace skips unless unshare can make a PID namespace here
// (it needs root or user namespaces), or fails on CI.
func requirePIDNamespace(t *testing.T) string {
	t.Helper()
	unshare := testenv.RequireTool(t, "unshare")
	if out, err := exec.Command(unshare, "--pid", "--fork", "--mount-proc", "true").CombinedOutput(); err != nil {
		if os.Getenv(testenv.RequireToolsVar) == "1" {
			t.Fatalf("unshare --pid --fork --mount-proc is not permitted here: %v: %s", err, out)
		}
		t.Skipf("unshare --pid --fork --mount-proc is not permitted here (needs root or user namespaces): %v: %s", err, out)
	}
	return unshare
}

// TestRunAsPID1Reaps: as PID 1 of a PID namespace, rolesenv reaps the 500
// orphans its command leaves behind.
func TestRunAsPID1Reaps(t *testing.T) {
	unshare := requirePIDNamespace(t)
	cmd := exec.Command(unshare, "--pid", "--fork", "--mount-proc", rolesenvBin(t), "run", "--", "rolesenv-testchild", "orphans", "500")
	cmd.Env = testenv.SafeEnv(t)
	out, err := cmd.CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("%v: zombies were left (see above)", err)
	}
	if !strings.Contains(string(out), "parent 1 zombies 0") {
		t.Errorf("rolesenv was not PID 1, or zombies were left")
	}
}

// TestRunAsPID1Term: SIGTERM to rolesenv as PID 1 stops the command
// gracefully, and rolesenv exits with the command's status.
func TestRunAsPID1Term(t *testing.T) {
	unshare := requirePIDNamespace(t)
	cmd := exec.Command(unshare, "--pid", "--fork", "--mount-proc", rolesenvBin(t), "run", "--", "rolesenv-testchild", "trap-term", "7")
	cmd.Env = testenv.SafeEnv(t)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(out)
	if !scanWithin(lines, "ready") {
		t.Fatal("the command did not start")
	}
	// rolesenv, PID 1 inside, is unshare's child outside.
	pid1 := childOf(cmd.Process.Pid)
	if pid1 == 0 {
		t.Fatal("cannot find rolesenv, unshare's child")
	}
	if err := syscall.Kill(pid1, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if !scanWithin(lines, "term") {
		t.Error("the command did not get SIGTERM")
	}
	err = cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 7 {
		t.Errorf("exit %d (%v), want the command's 7", code, err)
	}
}

func scanWithin(sc *bufio.Scanner, want string) bool {
	ch := make(chan bool, 1)
	go func() {
		for sc.Scan() {
			if sc.Text() == want {
				ch <- true
				return
			}
		}
		ch <- false
	}()
	select {
	case ok := <-ch:
		return ok
	case <-time.After(runDeadline):
		return false
	}
}

// childOf returns a child of pid, from /proc.
func childOf(pid int) int {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if st, ok := procStat(e.Name()); ok && st[1] == strconv.Itoa(pid) {
			n, _ := strconv.Atoi(e.Name())
			return n
		}
	}
	return 0
}

// TestSystemdUnits verifies the example units with systemd-analyze, with
// their binaries pointed at files that exist.
func TestSystemdUnits(t *testing.T) {
	analyze := testenv.RequireTool(t, "systemd-analyze")
	units, err := filepath.Glob("examples/systemd/*.service")
	if err != nil || len(units) < 2 {
		t.Fatalf("example units: %v, %v", units, err)
	}
	dir := t.TempDir()
	for _, unit := range units {
		b, err := os.ReadFile(unit)
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		for _, want := range []string{"KillMode=mixed", "SuccessExitStatus=143", "ExecStart=/usr/local/bin/rolesenv run "} {
			if !strings.Contains(text, want) {
				t.Errorf("%s lacks %s", unit, want)
			}
		}
		if strings.Contains(text, "Type=notify") && !strings.Contains(text, "NotifyAccess=all") {
			t.Errorf("%s: Type=notify needs NotifyAccess=all for the child's READY=1", unit)
		}
		text = strings.ReplaceAll(text, "/usr/local/bin/rolesenv", rolesenvBin(t))
		text = strings.ReplaceAll(text, "/usr/local/bin/app", "/bin/true")
		out := filepath.Join(dir, filepath.Base(unit))
		if err := os.WriteFile(out, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(analyze, "verify", out)
		if b, err := cmd.CombinedOutput(); err != nil || len(bytes.TrimSpace(b)) > 0 {
			t.Errorf("systemd-analyze verify %s: %v\n%s", filepath.Base(unit), err, b)
		}
	}
}

// TestRunAsUser: --user runs the command as another account, supervised
// or in place.
func TestRunAsUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody here")
	}
	for _, mode := range [][]string{{"run"}, {"run", "--once"}} {
		cmd := rolesenvCmd(t, nil, append(mode, "--user", "nobody", "--", "/bin/sh", "-c", "id -u; id -g")...)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%v: %v", mode, err)
		}
		if got, want := strings.Fields(string(out)), []string{u.Uid, u.Gid}; !slices.Equal(got, want) {
			t.Errorf("%v: ids %q, want %q", mode, got, want)
		}
	}
}

// TestRunSignalDuringStartup: a signal that arrives while the references
// are being resolved ends rolesenv with 128+N, and the command never
// starts, with --once too: TERM, and USR1, which a Go program that does
// not catch it drops.
func TestRunSignalDuringStartup(t *testing.T) {
	s, env := devBackend(t)
	if _, err := s.CreateSecret("slow/api", "api-1"); err != nil {
		t.Fatal(err)
	}
	s.SetLatency(runDeadline)
	defer s.SetLatency(0)
	file := writeEnvFile(t, "API=sm://slow/api\n")
	for _, mode := range [][]string{{"run"}, {"run", "--once"}} {
		for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGUSR1} {
			calls := s.Calls("secretsmanager:GetSecretValue")
			p := startRun(t, env, append(mode, "--env-file", file, "--", "rolesenv-testchild", "printvars", "API")...)
			p.waitFor("the resolution's first request", &p.log, func([]string) bool { return s.Calls("secretsmanager:GetSecretValue") > calls })
			if err := p.cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			select {
			case <-p.exited:
			case <-time.After(runDeadline):
				t.Fatalf("%v: rolesenv did not exit after %v", mode, sig)
			}
			if code := p.cmd.ProcessState.ExitCode(); code != 128+int(sig) || len(p.starts()) != 0 {
				t.Errorf("%v, %v: exit %d with %d starts, want %d and none", mode, sig, code, len(p.starts()), 128+int(sig))
			}
		}
	}
}

// TestRunOnceSignalDispositions: the command that --once executes starts
// with the signal mask it would have had started directly, nothing
// caught, and HUP, INT, TTIN and TTOU still ignored when rolesenv was
// started with them ignored (nohup, a shell's background job). Other
// signals ignored at start are not kept: the Go runtime installs its
// handler over them (the README says so).
func TestRunOnceSignalDispositions(t *testing.T) {
	const traps = `trap "" HUP INT TTIN TTOU; exec "$@"`
	show := []string{"grep", "-E", "^Sig(Blk|Ign|Cgt):", "/proc/self/status"}
	var outs []string
	for _, argv := range [][]string{show, append([]string{rolesenvBin(t), "run", "--once", "--"}, show...)} {
		cmd := rolesenvCmd(t, nil)
		cmd.Path, cmd.Args = "/bin/sh", append([]string{"/bin/sh", "-c", traps, "sh"}, argv...)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%q: %v", argv, err)
		}
		outs = append(outs, string(out))
	}
	if outs[0] != outs[1] {
		t.Errorf("started directly:\n%s\nwith rolesenv run --once:\n%s", outs[0], outs[1])
	}
	var ign uint64
	for _, line := range strings.Split(outs[1], "\n") {
		if hex, ok := strings.CutPrefix(line, "SigIgn:\t"); ok {
			ign, _ = strconv.ParseUint(hex, 16, 64)
		}
	}
	for _, sig := range []syscall.Signal{syscall.SIGHUP, syscall.SIGINT, syscall.SIGTTIN, syscall.SIGTTOU} {
		if ign&(1<<(sig-1)) == 0 {
			t.Errorf("%v not ignored by the command:\n%s", sig, outs[1])
		}
	}
}

// TestRunOnceResolves: --once resolves the env files, then execs the
// command in place with the secrets.
func TestRunOnceResolves(t *testing.T) {
	s, env := devBackend(t)
	if _, err := s.CreateSecret("once/api", "api-1"); err != nil {
		t.Fatal(err)
	}
	file := writeEnvFile(t, "API=sm://once/api\n")
	cmd := rolesenvCmd(t, env, "run", "--once", "--env-file", file, "--", "/bin/sh", "-c", `echo "$$ $API"`)
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.TrimSpace(string(out)), fmt.Sprintf("%d api-1", cmd.Process.Pid); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if n := s.Calls("secretsmanager:DescribeSecret"); n != 0 {
		t.Errorf("--once polled %d times", n)
	}
}
