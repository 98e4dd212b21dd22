package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rolesenv/rolesenv/internal/exitcode"
	"github.com/rolesenv/rolesenv/internal/secretfiles"
	"github.com/rolesenv/rolesenv/internal/testenv"
	"golang.org/x/sys/unix"
)

func init() {
	// readfiles VAR...: print "files pid=N VAR=HASH..." with the first 8
	// hex digits of the SHA-256 of the file each variable names (@NAME:
	// the file NAME of $CREDENTIALS_DIRECTORY), at start and again on
	// every SIGHUP; exit 0 on SIGTERM.
	testChildModes["readfiles"] = func(args []string) int {
		ch := make(chan os.Signal, 4)
		signal.Notify(ch, syscall.SIGHUP, syscall.SIGTERM)
		for {
			var b strings.Builder
			fmt.Fprintf(&b, "files pid=%d", os.Getpid())
			for _, name := range args {
				path := os.Getenv(name)
				if n, ok := strings.CutPrefix(name, "@"); ok {
					path = filepath.Join(os.Getenv(credentialsDirVar), n)
				}
				data, err := os.ReadFile(path)
				if err != nil {
					fmt.Fprintf(&b, " %s=error", name)
					continue
				}
				fmt.Fprintf(&b, " %s=%s", name, hash8(string(data)))
			}
			fmt.Println(b.String())
			if <-ch == syscall.SIGTERM {
				return 0
			}
		}
	}
}

func hash8(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:4])
}

// secretsDirOf returns the directory of rolesenv's "secret files
// directory ready" log line.
func (p *runProc) secretsDirOf() string {
	p.t.Helper()
	p.waitLog("secret files directory ready", 1)
	for _, l := range p.lines(&p.log) {
		if strings.Contains(l, "secret files directory ready") {
			if i := strings.Index(l, "dir="); i >= 0 {
				return strings.Fields(l[i+len("dir="):])[0]
			}
		}
	}
	p.t.Fatal("no directory in the log line")
	return ""
}

// TestRunFilesReload: under --on-change reload, a rotation of a value
// delivered in a file rewrites the file and sends SIGHUP, and the child,
// which reads its files again, sees the new value without a restart; a
// rotation of a variable restarts it, and the log says why. The files are
// 0400 in a 0700 directory on /dev/shm, which is gone after SIGTERM.
func TestRunFilesReload(t *testing.T) {
	t.Parallel() // rolesenv runs as a subprocess with its own environment
	s, env := devBackend(t)
	mustDo[string](t)(s.CreateSecret("files/pw", "pw-1"))
	mustDo[string](t)(s.CreateSecret("files/api", "api-1"))
	tmpl := filepath.Join(t.TempDir(), "conf.tmpl")
	if err := os.WriteFile(tmpl, []byte("user = app\npassword = {{ sm://files/pw }}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	file := writeEnvFile(t, "PW_FILE=file:sm://files/pw\nAPI=sm://files/api\n")
	p := startRun(t, env, "run", "--env-file", file, "--template", tmpl+":app.conf:0440", "--on-change", "reload",
		"--child-credentials", "endpoint",
		"--interval", "10000h", "--refresh-signal", "USR1", "--debounce", "0s", "--log-level", "debug",
		"--", "rolesenv-testchild", "readfiles", "PW_FILE", "@app.conf")
	want := fmt.Sprintf("PW_FILE=%s @app.conf=%s", hash8("pw-1"), hash8("user = app\npassword = pw-1\n"))
	p.waitOut(want)
	dir := p.secretsDirOf()
	checkMode(t, dir, 0o700|os.ModeDir)
	checkMode(t, filepath.Join(dir, "PW_FILE"), 0o400)
	checkMode(t, filepath.Join(dir, "app.conf"), 0o440)
	if !strings.HasPrefix(dir, "/dev/shm/rolesenv-") {
		t.Errorf("directory %s, want one under /dev/shm", dir)
	}

	mustDo[string](t)(s.PutSecretValue("files/pw", "pw-2"))
	p.checkClean()
	p.waitOut(fmt.Sprintf("PW_FILE=%s @app.conf=%s", hash8("pw-2"), hash8("user = app\npassword = pw-2\n")))
	p.waitLog(`msg="child reloaded"`, 1)
	if n := p.countLog(logRestarted); n != 0 {
		t.Errorf("%d restarts for a change of files only", n)
	}
	if pids := pidsOf(p.lines(&p.out)); len(pids) != 1 {
		t.Errorf("the files were read by %d processes, want one: %v", len(pids), pids)
	}

	mustDo[string](t)(s.PutSecretValue("files/api", "api-2"))
	p.checkClean()
	p.waitLog(logRestarted, 1)
	p.waitLog("environment variables changed; restarting", 1)
	p.waitFor("the new child's files", &p.out, func(l []string) bool { return len(pidsOf(l)) == 2 })
	if code := p.stop(); code != 0 {
		t.Errorf("exit %d", code)
	}
	if _, err := os.Lstat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the secrets directory is still there after SIGTERM: %v", err)
	}
}

func pidsOf(lines []string) map[string]bool {
	pids := map[string]bool{}
	for _, l := range lines {
		if strings.HasPrefix(l, "files ") {
			pids[strings.Fields(l)[1]] = true
		}
	}
	return pids
}

func checkMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != want {
		t.Errorf("%s: mode %v, want %v", path, fi.Mode(), want)
	}
}

// TestRunFilesUser: with --user, the directory and files belong to that
// account, which reads them.
func TestRunFilesUser(t *testing.T) {
	t.Parallel() // rolesenv runs as a subprocess with its own environment
	if os.Geteuid() != 0 {
		t.Skip("--user needs root")
	}
	s, env := devBackend(t)
	mustDo[string](t)(s.CreateSecret("files/pw", "pw-1"))
	file := writeEnvFile(t, "PW_FILE=file:sm://files/pw\n")
	cmd := rolesenvCmd(t, env, "run", "--env-file", file, "--user", "65534:65534", "--", "/bin/sh", "-c",
		`id -u; cat "$PW_FILE"; echo; stat -c '%u:%g %a' "$PW_FILE" "$(dirname "$PW_FILE")"`)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if want := "65534\npw-1\n65534:65534 400\n65534:65534 700\n"; string(out) != want {
		t.Errorf("the command saw:\n%s\nwant:\n%s", out, want)
	}
}

// TestRunFilesKilled: the files of a rolesenv killed with SIGKILL are
// removed by the next run, for the default directory and for a named one.
func TestRunFilesKilled(t *testing.T) {
	t.Parallel() // rolesenv runs as a subprocess with its own environment
	s, env := devBackend(t)
	mustDo[string](t)(s.CreateSecret("files/pw", "pw-1"))
	file := writeEnvFile(t, "PW_FILE=file:sm://files/pw\n")
	named := filepath.Join(t.TempDir(), "secrets")
	for _, extra := range [][]string{nil, {"--secrets-dir", named}} {
		args := append(append([]string{"run", "--env-file", file}, extra...), "--", "rolesenv-testchild", "readfiles", "PW_FILE")
		p := startRun(t, env, args...)
		p.waitOut("PW_FILE=" + hash8("pw-1"))
		dir := p.secretsDirOf()
		if err := p.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		<-p.exited
		if _, err := os.Lstat(filepath.Join(dir, "PW_FILE")); err != nil {
			t.Fatalf("after SIGKILL the file should be left behind: %v", err)
		}
		next := startRun(t, env, args...)
		next.waitOut("PW_FILE=" + hash8("pw-1"))
		if extra == nil {
			// The next run removes the killed run's directory, unless the
			// run of another test, started meanwhile in the same parent,
			// did it first: either way it is gone once next has started.
			if _, err := os.Lstat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the killed run's directory %s is still there after the next run started", dir)
			}
		}
		if code := next.stop(); code != 0 {
			t.Errorf("exit %d", code)
		}
	}
	if _, err := os.Lstat(named); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the named directory is still there: %v", err)
	}
}

// TestRunFilesForeign: a symbolic link or a file rolesenv did not write
// at a destination stops the start with a configuration error, and
// neither is touched.
func TestRunFilesForeign(t *testing.T) {
	t.Parallel() // rolesenv runs as a subprocess with its own environment
	s, env := devBackend(t)
	mustDo[string](t)(s.CreateSecret("files/pw", "pw-1"))
	file := writeEnvFile(t, "PW_FILE=file:sm://files/pw\n")
	target := filepath.Join(t.TempDir(), "target")
	if err := os.WriteFile(target, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, plant := range []func(string) error{
		func(p string) error { return os.Symlink(target, p) },
		func(p string) error { return os.WriteFile(p, []byte("keep"), 0o600) },
	} {
		dir := filepath.Join(t.TempDir(), "secrets")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := plant(filepath.Join(dir, "PW_FILE")); err != nil {
			t.Fatal(err)
		}
		cmd := rolesenvCmd(t, env, "run", "--env-file", file, "--secrets-dir", dir, "--", "rolesenv-testchild", "readfiles", "PW_FILE")
		out, _ := cmd.CombinedOutput()
		if code := cmd.ProcessState.ExitCode(); code != exitcode.Config || !strings.Contains(string(out), "refusing to") {
			t.Errorf("exit %d, want %d; output:\n%s", code, exitcode.Config, out)
		}
		if strings.Contains(string(out), "files pid=") {
			t.Error("the command started")
		}
		if data, _ := os.ReadFile(filepath.Join(dir, "PW_FILE")); string(data) != "keep" {
			t.Errorf("the destination was changed: %q", data)
		}
	}
	if data, _ := os.ReadFile(target); string(data) != "keep" {
		t.Errorf("the link's target was written: %q", data)
	}
}

// TestRunFilesOnce: with --once the files are written, then rolesenv
// becomes the command, which reads them; they stay for the command.
func TestRunFilesOnce(t *testing.T) {
	t.Parallel() // rolesenv runs as a subprocess with its own environment
	s, env := devBackend(t)
	mustDo[string](t)(s.CreateSecret("files/pw", "pw-1"))
	file := writeEnvFile(t, "PW_FILE=file:sm://files/pw\n")
	dir := filepath.Join(t.TempDir(), "secrets")
	p := startRun(t, env, "run", "--once", "--env-file", file, "--secrets-dir", dir, "--", "rolesenv-testchild", "readfiles", "PW_FILE")
	p.waitOut(fmt.Sprintf("files pid=%d PW_FILE=%s", p.cmd.Process.Pid, hash8("pw-1")))
	if _, err := os.Lstat(filepath.Join(dir, "PW_FILE")); err != nil {
		t.Errorf("the file is gone while the command runs: %v", err)
	}
	// The command holds the directory's lock, as rolesenv did: a run in
	// another PID namespace, which cannot look its pid up, keeps off.
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); !errors.Is(err, unix.EWOULDBLOCK) {
		t.Errorf("flock of the directory while the command runs: %v, want it held", err)
	}
	if code := p.stop(); code != 0 {
		t.Errorf("exit %d", code)
	}
}

// TestRunFilesLogsNoValues extends the sentinel test to files: at every
// log level, with file: variables and a template whose values carry the
// sentinel, through start-up, a reload, a restart, a template that no
// longer renders and the exit, the sentinel never reaches stdout or
// stderr (the command prints hashes of what it reads).
func TestRunFilesLogsNoValues(t *testing.T) {
	t.Parallel() // rolesenv runs as a subprocess with its own environment
	s, env := devBackend(t)
	mustDo[string](t)(s.CreateSecret("logf/pw", `{"password":"`+sentinel+`-pw-1"}`))
	mustDo[string](t)(s.CreateSecret("logf/api", sentinel+"-api-1"))
	tmpl := filepath.Join(t.TempDir(), "conf.tmpl")
	if err := os.WriteFile(tmpl, []byte("pw={{ sm://logf/pw#password | urlquery }}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	file := writeEnvFile(t, "PW_FILE=file:{{ sm://logf/pw#password }}\nAPI=sm://logf/api\n")
	n := 1
	for _, run := range []struct{ level, format string }{
		{"debug", "text"}, {"debug", "json"}, {"info", "text"}, {"warn", "text"}, {"error", "json"},
	} {
		p := startRun(t, env, "run", "--env-file", file, "--template", tmpl+":app.conf", "--on-change", "reload",
			"--interval", "1s", "--debounce", "0s", "--log-level", run.level, "--log-format", run.format,
			"--", "rolesenv-testchild", "readfiles", "PW_FILE", "@app.conf")
		pw := func(i int) string { return fmt.Sprintf("%s-pw-%d", sentinel, i) }
		p.waitOut("PW_FILE=" + hash8(pw(n)))
		n++
		mustDo[string](t)(s.PutSecretValue("logf/pw", `{"password":"`+pw(n)+`"}`))
		p.waitOut(fmt.Sprintf("PW_FILE=%s @app.conf=%s", hash8(pw(n)), hash8("pw="+pw(n)+"\n")))
		mustDo[string](t)(s.PutSecretValue("logf/api", fmt.Sprintf("%s-api-%d", sentinel, n)))
		p.waitFor("a restart", &p.out, func(l []string) bool { return len(pidsOf(l)) == 2 })
		// A key that goes away: the template no longer renders; the
		// command keeps its files.
		mustDo[string](t)(s.PutSecretValue("logf/pw", `{"other":"`+sentinel+`-other"}`))
		if run.level == "debug" || run.level == "info" || run.level == "warn" {
			p.waitLog("watch failed", 1)
		}
		mustDo[string](t)(s.PutSecretValue("logf/pw", `{"password":"`+pw(n)+`"}`))
		if code := p.stop(); code != 0 {
			t.Errorf("%s/%s: exit %d", run.level, run.format, code)
		}
		for _, l := range append(p.lines(&p.out), p.lines(&p.log)...) {
			if strings.Contains(l, sentinel) {
				t.Errorf("%s/%s: a value reached the output: %s", run.level, run.format, l)
			}
		}
	}
}

// TestRunFilesPID1: as PID 1 (a container's entry point) killed with
// SIGKILL, rolesenv leaves a marker naming pid 1; the next PID 1, with the
// same --secrets-dir (a volume that outlives the container), is another
// process and takes the directory over.
func TestRunFilesPID1(t *testing.T) {
	unshare := requirePIDNamespace(t)
	s, env := devBackend(t)
	mustDo[string](t)(s.CreateSecret("files/pw", "pw-1"))
	file := writeEnvFile(t, "PW_FILE=file:sm://files/pw\n")
	dir := filepath.Join(t.TempDir(), "secrets")
	start := func() (*exec.Cmd, int) {
		cmd := exec.Command(unshare, "--pid", "--fork", "--mount-proc", rolesenvBin(t), "run", "--env-file", file,
			"--secrets-dir", dir, "--", "rolesenv-testchild", "readfiles", "PW_FILE")
		cmd.Env = append(testenv.SafeEnv(t), env...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if !scanPrefixWithin(bufio.NewScanner(out), "files pid=", " PW_FILE="+hash8("pw-1")) {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("the command did not read its file: %s", stderr.String())
		}
		pid1 := childOf(cmd.Process.Pid)
		if pid1 == 0 {
			t.Fatal("cannot find rolesenv, unshare's child")
		}
		return cmd, pid1
	}
	cmd, pid1 := start()
	_ = syscall.Kill(pid1, syscall.SIGKILL)
	_ = cmd.Wait()
	if _, err := os.Lstat(filepath.Join(dir, "PW_FILE")); err != nil {
		t.Fatalf("after SIGKILL the file should be left behind: %v", err)
	}
	cmd, pid1 = start()
	_ = syscall.Kill(pid1, syscall.SIGTERM)
	_ = cmd.Wait()
	if _, err := os.Lstat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the directory is still there: %v", err)
	}
}

// scanPrefixWithin reports whether a line that starts with prefix and
// ends with suffix comes within the deadline.
func scanPrefixWithin(sc *bufio.Scanner, prefix, suffix string) bool {
	ch := make(chan bool, 1)
	go func() {
		for sc.Scan() {
			if l := sc.Text(); strings.HasPrefix(l, prefix) && strings.HasSuffix(l, suffix) {
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

// TestRunFilesUsage: the file and reload flags' misuse, before anything
// is resolved.
func TestRunFilesUsage(t *testing.T) {
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"run", "--reload-signal", "USR2", "true"}, exitcode.Usage, "--reload-signal needs --on-change reload"},
		{[]string{"run", "--on-change", "reload", "--reload-signal", "TERM", "true"}, exitcode.Usage, "SIGTERM means stop, not reload"},
		{[]string{"run", "--on-change", "reload", "--reload-timeout", "0s", "true"}, exitcode.Usage, "invalid --reload-timeout"},
		{[]string{"run", "--on-change", "reload", "--reload-signal", "USR2", "--reload-command", "x", "true"}, exitcode.Usage, "--reload-signal and --reload-command are alternatives"},
		{[]string{"run", "--once", "--reload-command", "x", "true"}, exitcode.Usage, "--reload-command cannot be used with --once"},
		{[]string{"run", "--template", "a.tmpl", "true"}, exitcode.Usage, "want SRC:DEST or SRC:DEST:MODE"},
		{[]string{"run", "--template", "a.tmpl:../x", "true"}, exitcode.Usage, "DEST is a file name in the secrets directory"},
		{[]string{"run", "--template", "a.tmpl:x:0200", "true"}, exitcode.Usage, "MODE is an octal mode that its owner can read"},
		{[]string{"run", "--template", "no-such.tmpl:x", "true"}, exitcode.Config, "--template no-such.tmpl: cannot read it"},
	} {
		code, _, stderr := runIn("", tt.args...)
		if code != tt.code || !strings.Contains(stderr, tt.want) {
			t.Errorf("%q: exit %d, want %d; stderr %q, want %q", tt.args, code, tt.code, stderr, tt.want)
		}
	}
}

// TestRunFilesDirUnusable: a --secrets-dir that cannot be created is a
// configuration error, and the command does not start.
func TestRunFilesDirUnusable(t *testing.T) {
	t.Parallel() // rolesenv runs as a subprocess with its own environment
	s, env := devBackend(t)
	mustDo[string](t)(s.CreateSecret("files/pw", "pw-1"))
	file := writeEnvFile(t, "PW_FILE=file:sm://files/pw\n")
	notDir := filepath.Join(t.TempDir(), "plain")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := rolesenvCmd(t, env, "run", "--env-file", file, "--secrets-dir", filepath.Join(notDir, "sub"), "--", "rolesenv-testchild", "readfiles", "PW_FILE")
	out, _ := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code != exitcode.Config || !strings.Contains(string(out), "rolesenv: error: secrets directory:") ||
		!strings.Contains(string(out), "rolesenv: hint: give --secrets-dir") || strings.Contains(string(out), "files pid=") {
		t.Errorf("exit %d, want %d; output:\n%s", code, exitcode.Config, out)
	}
}

// TestFileSinkPlansOnFirstUse: a run without files does not plan the
// secrets directory (a look at /dev/shm and a random name); the first
// path it is asked for plans it, once.
func TestFileSinkPlansOnFirstUse(t *testing.T) {
	a := &app{}
	s := a.newFileSink(&fileFlags{}, nil)
	if s.parent != "" || s.o.Name != "" {
		t.Fatalf("planned at creation: parent %q, name %q", s.parent, s.o.Name)
	}
	p := s.Join("x")
	if s.parent == "" || !strings.HasPrefix(s.o.Name, secretfiles.Prefix) || p != filepath.Join(s.parent, s.o.Name, "x") {
		t.Errorf("Join gave %q; planned parent %q, name %q", p, s.parent, s.o.Name)
	}
	if again := s.Join("x"); again != p {
		t.Errorf("planned twice: %q, then %q", p, again)
	}
	d := a.newFileSink(&fileFlags{secretsDir: "/run/app/"}, nil)
	if got := d.Join("x"); got != "/run/app/x" || d.o.Dir != "/run/app/" {
		t.Errorf("--secrets-dir: Join gave %q, Dir %q", got, d.o.Dir)
	}
}
