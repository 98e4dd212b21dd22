package procsec

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// childVar makes the test binary a helper child: "report" prints its
// dumpable flag and RLIMIT_CORE; "start" and "exec" set a known soft
// limit, call Protect, report, then run "report" through StartProcess or
// Exec.
const childVar = "PROCSEC_TEST_CHILD"

// knownLimit is the soft RLIMIT_CORE the helper sets before Protect.
const knownLimit = 1 << 20

func TestMain(m *testing.M) {
	switch os.Getenv(childVar) {
	case "":
		os.Exit(m.Run())
	case "report":
		report("child")
	case "start", "exec":
		os.Exit(protectThenRun(os.Getenv(childVar)))
	case "hold", "hold-protected":
		hold(os.Getenv(childVar) == "hold-protected")
	case "read":
		_, err := os.ReadFile("/proc/" + os.Getenv("PROCSEC_TEST_PID") + "/environ")
		if err != nil {
			fmt.Println("denied:", err)
		} else {
			fmt.Println("readable")
		}
	}
	os.Exit(0)
}

// childEnv is this process's environment with childVar set to mode (and
// only once: the first of two settings would win).
func childEnv(mode string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, childVar+"=") {
			env = append(env, kv)
		}
	}
	return append(env, childVar+"="+mode)
}

func report(who string) {
	d, err := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0)
	var lim syscall.Rlimit
	if err == nil {
		err = syscall.Getrlimit(syscall.RLIMIT_CORE, &lim)
	}
	if err != nil {
		fmt.Printf("%s error=%v\n", who, err)
		return
	}
	fmt.Printf("%s dumpable=%d core=%d max=%d\n", who, d, lim.Cur, lim.Max)
}

func protectThenRun(mode string) int {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_CORE, &lim); err != nil {
		fmt.Println("error", err)
		return 1
	}
	if lim.Max < knownLimit {
		fmt.Println("skip: hard RLIMIT_CORE below", knownLimit)
		return 0
	}
	lim.Cur = knownLimit
	if err := syscall.Setrlimit(syscall.RLIMIT_CORE, &lim); err != nil {
		fmt.Println("error", err)
		return 1
	}
	if err := Protect(nil); err != nil {
		fmt.Println("error", err)
		return 1
	}
	report("parent")
	if orig, ok := OriginalCoreLimit(); ok {
		fmt.Printf("original core=%d\n", orig.Cur)
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	env := childEnv("report")
	if mode == "exec" {
		err := Exec(self, []string{self}, env)
		fmt.Println("error", err)
		return 1
	}
	p, err := StartProcess(self, []string{self}, &os.ProcAttr{Env: env, Files: []*os.File{nil, os.Stdout, os.Stderr}})
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	if _, err := p.Wait(); err != nil {
		fmt.Println("error", err)
		return 1
	}
	report("after")
	return 0
}

func runHelper(t *testing.T, mode string) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self)
	cmd.Env = childEnv(mode)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper %s: %v\n%s", mode, err, out)
	}
	if strings.HasPrefix(string(out), "skip: ") {
		t.Skip(strings.TrimSpace(string(out)))
	}
	return string(out)
}

func wantLines(t *testing.T, out string, want ...string) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for _, w := range want {
		found := false
		for _, l := range lines {
			found = found || strings.HasPrefix(l, w)
		}
		if !found {
			t.Errorf("no line %q in the helper's output:\n%s", w, out)
		}
	}
}

// TestProtectStartProcess: after Protect the process is not dumpable and
// its soft core limit is 0; a child started with StartProcess is dumpable
// (execve resets the flag) with the soft limit the parent had before, and
// the parent's limit is 0 again afterwards.
func TestProtectStartProcess(t *testing.T) {
	out := runHelper(t, "start")
	wantLines(t, out,
		"parent dumpable=0 core=0 ",
		fmt.Sprintf("original core=%d", knownLimit),
		fmt.Sprintf("child dumpable=1 core=%d ", knownLimit),
		"after dumpable=0 core=0 ",
	)
}

// TestProtectExec: Exec gives the original soft limit back to the program
// that replaces the process.
func TestProtectExec(t *testing.T) {
	out := runHelper(t, "exec")
	wantLines(t, out,
		"parent dumpable=0 core=0 ",
		fmt.Sprintf("child dumpable=1 core=%d ", knownLimit),
	)
}

// TestStartProcessUnprotected: without Protect, StartProcess changes
// nothing.
func TestStartProcessUnprotected(t *testing.T) {
	if _, ok := OriginalCoreLimit(); ok {
		t.Fatal("OriginalCoreLimit reports a limit before Protect")
	}
	var before syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_CORE, &before); err != nil {
		t.Fatal(err)
	}
	self, _ := os.Executable()
	p, err := StartProcess(self, []string{self}, &os.ProcAttr{Env: childEnv("none")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	var after syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_CORE, &after); err != nil {
		t.Fatal(err)
	}
	if after != before {
		t.Errorf("RLIMIT_CORE %+v after StartProcess, was %+v", after, before)
	}
}

// hold (optionally after Protect) says "ready" and waits for its standard
// input to close.
func hold(protected bool) {
	if protected {
		if err := Protect(nil); err != nil {
			fmt.Println("error", err)
			return
		}
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
}

// TestProtectHidesEnviron: another process of the same user can read
// /proc/PID/environ of an unprotected process, not of a protected one.
// Run as root, both processes run as nobody (root could read anything).
func TestProtectHidesEnviron(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var cred *syscall.Credential
	bin := self
	if os.Geteuid() == 0 {
		// A copy of the test binary that nobody can run.
		dir := t.TempDir()
		for _, d := range []string{filepath.Dir(dir), dir} { // both made by t.TempDir, mode 0700
			if err := os.Chmod(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		bin = filepath.Join(dir, "procsec.test")
		data, err := os.ReadFile(self)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(bin, data, 0o755); err != nil {
			t.Fatal(err)
		}
		cred = &syscall.Credential{Uid: 65534, Gid: 65534}
	}
	for _, tc := range []struct{ mode, want string }{
		{"hold", "readable"},
		{"hold-protected", "denied: open /proc/"},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			holder := exec.Command(bin)
			holder.Env = childEnv(tc.mode)
			holder.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
			in, err := holder.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			out, err := holder.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := holder.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() {
				in.Close()
				_ = holder.Wait()
			}()
			line, err := bufio.NewReader(out).ReadString('\n')
			if line != "ready\n" {
				t.Fatalf("the holder said %q (%v)", line, err)
			}
			reader := exec.Command(bin)
			reader.Env = append(childEnv("read"), fmt.Sprintf("PROCSEC_TEST_PID=%d", holder.Process.Pid))
			reader.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
			got, err := reader.CombinedOutput()
			if err != nil {
				t.Fatalf("reader: %v\n%s", err, got)
			}
			if !strings.HasPrefix(string(got), tc.want) {
				t.Errorf("reading the environ of a %s process: %q, want %q", tc.mode, got, tc.want)
			}
		})
	}
}
