package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rolesenv/rolesenv/internal/awsdev"
	"github.com/rolesenv/rolesenv/internal/testenv"
)

func init() {
	// printvars [-hash] NAME...: print "start NAME=value ..." (with -hash,
	// the first 8 hex digits of each value's SHA-256 instead of the
	// value), then wait for SIGTERM and exit 0.
	testChildModes["printvars"] = func(args []string) int {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGTERM)
		hash := len(args) > 0 && args[0] == "-hash"
		if hash {
			args = args[1:]
		}
		var b strings.Builder
		b.WriteString("start")
		for _, name := range args {
			v := os.Getenv(name)
			if hash {
				sum := sha256.Sum256([]byte(v))
				v = hex.EncodeToString(sum[:4])
			}
			fmt.Fprintf(&b, " %s=%s", name, v)
		}
		fmt.Println(b.String())
		<-ch
		return 0
	}
}

// runProc is rolesenv run as a separate process: the command's output
// (rolesenv's stdout) and rolesenv's log (stderr) are collected line by
// line for the test to wait on.
type runProc struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	mu     sync.Mutex
	out    []string
	log    []string
	more   chan struct{} // a line arrived
	exited chan struct{}
	err    error
}

// startRun starts rolesenv with env added to the test's safe environment.
func startRun(t *testing.T, env []string, args ...string) *runProc {
	t.Helper()
	p := &runProc{t: t, cmd: rolesenvCmd(t, env, args...), more: make(chan struct{}, 1), exited: make(chan struct{})}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	collect := func(r io.Reader, dst *[]string) {
		defer wg.Done()
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			*dst = append(*dst, sc.Text())
			p.mu.Unlock()
			select {
			case p.more <- struct{}{}:
			default:
			}
		}
	}
	wg.Add(2)
	go collect(stdout, &p.out)
	go collect(stderr, &p.log)
	go func() {
		wg.Wait()
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("rolesenv output:\n%s\nrolesenv log:\n%s", strings.Join(p.lines(&p.out), "\n"), strings.Join(p.lines(&p.log), "\n"))
		}
	})
	return p
}

func (p *runProc) lines(which *[]string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(*which)
}

// waitFor waits until cond holds for the lines (of out or log), within
// the deadline; rolesenv exiting first fails the test. cond is evaluated
// on every new line, and every 20 ms for conditions on other state.
func (p *runProc) waitFor(what string, which *[]string, cond func([]string) bool) {
	p.t.Helper()
	deadline := time.After(runDeadline)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if cond(p.lines(which)) {
			return
		}
		select {
		case <-p.more:
		case <-tick.C:
		case <-p.exited:
			if cond(p.lines(which)) {
				return
			}
			p.t.Fatalf("rolesenv exited (%v) before %s", p.err, what)
		case <-deadline:
			p.t.Fatalf("no %s within %v", what, runDeadline)
		}
	}
}

func count(lines []string, sub string) int {
	n := 0
	for _, l := range lines {
		if strings.Contains(l, sub) {
			n++
		}
	}
	return n
}

// waitOut waits for a line of the command's output containing sub.
func (p *runProc) waitOut(sub string) {
	p.t.Helper()
	p.waitFor(fmt.Sprintf("output %q", sub), &p.out, func(l []string) bool { return count(l, sub) > 0 })
}

// waitLog waits until n log lines contain sub.
func (p *runProc) waitLog(sub string, n int) {
	p.t.Helper()
	p.waitFor(fmt.Sprintf("%d log lines with %q", n, sub), &p.log, func(l []string) bool { return count(l, sub) >= n })
}

func (p *runProc) countLog(sub string) int { return count(p.lines(&p.log), sub) }

// starts returns the command's "start ..." lines.
func (p *runProc) starts() []string {
	var out []string
	for _, l := range p.lines(&p.out) {
		if strings.HasPrefix(l, "start") {
			out = append(out, l)
		}
	}
	return out
}

// stop sends SIGTERM to rolesenv and returns its exit status.
func (p *runProc) stop() int {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(runDeadline):
		p.t.Fatal("rolesenv did not exit after SIGTERM")
	}
	return p.cmd.ProcessState.ExitCode()
}

// Log messages the tests wait for.
const (
	logChecked   = `msg=checked`
	logRefresh   = `msg="refresh requested: checking now"`
	logWarn      = `msg="watch failed; the command keeps its environment"`
	logRecovered = `msg="watch recovered"`
	logRestarted = `msg="child restarted"`
	logDeferred  = `msg="restart deferred: restart budget spent"`
)

// awsCLI runs the aws CLI with env added to the safe environment and
// returns its output.
func awsCLI(t *testing.T, env []string, args ...string) string {
	t.Helper()
	bin := testenv.RequireTool(t, "aws")
	ctx, cancel := context.WithTimeout(context.Background(), runDeadline)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = testenv.SafeEnv(t, env...)
	out, err := cmd.Output()
	if err != nil {
		stderr := ""
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("aws %s: %v: %s", args[0]+" "+args[1], err, stderr)
	}
	return string(out)
}

// awsCall is one aws CLI call of a moto set-up; out, when set, receives
// its output.
type awsCall struct {
	args []string
	out  *string
}

// startMotoWith starts moto_server with IAM enforcement from the first
// call after setup, which it makes with the aws CLI.
func startMotoWith(t *testing.T, setup []awsCall) *testenv.Moto {
	t.Helper()
	m := testenv.StartMoto(t, fmt.Sprintf("INITIAL_NO_AUTH_ACTION_COUNT=%d", len(setup)))
	env := []string{"AWS_ENDPOINT_URL=" + m.URL, "AWS_ACCESS_KEY_ID=setup", "AWS_SECRET_ACCESS_KEY=setup", "AWS_DEFAULT_REGION=us-east-1"}
	for _, c := range setup {
		out := awsCLI(t, env, c.args...)
		if c.out != nil {
			*c.out = strings.TrimSpace(out)
		}
	}
	return m
}

// motoUser is the set-up of an IAM user whose only policy is policy;
// keys receives its access key as "ID<tab>SECRET".
func motoUser(name, policy string, keys *string) []awsCall {
	return []awsCall{
		{args: []string{"iam", "create-user", "--user-name", name}},
		{args: []string{"iam", "create-policy", "--policy-name", name, "--policy-document", policy}},
		{args: []string{"iam", "attach-user-policy", "--user-name", name, "--policy-arn", "arn:aws:iam::123456789012:policy/" + name}},
		{args: []string{"iam", "create-access-key", "--user-name", name, "--query", "[AccessKey.AccessKeyId, AccessKey.SecretAccessKey]", "--output", "text"}, out: keys},
	}
}

// devBackend is the emulator with a user that may do everything, and the
// environment that points rolesenv and the aws CLI at it.
func devBackend(t *testing.T) (*awsdev.Server, []string) {
	t.Helper()
	s, err := awsdev.Start(awsdev.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, s.CAPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	id, secret := s.CreateUser("app", awsdev.AllowAll)
	return s, []string{"AWS_ENDPOINT_URL=" + s.URL(), "AWS_CA_BUNDLE=" + ca, "AWS_ACCESS_KEY_ID=" + id, "AWS_SECRET_ACCESS_KEY=" + secret}
}

func writeEnvFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "app.env")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// rotationScenario runs one rolesenv through every rotation case, with the
// aws CLI rotating: a put-secret-value restarts the command once with the
// new value; an AWSPENDING-only put restarts nothing; rotating a JSON key
// that no variable uses restarts nothing; five rotations before a check
// restart once, with the last value; past the restart budget the change
// is deferred and logged.
//
// Nothing here depends on how fast the machine is: rolesenv checks only
// when the test sends the refresh signal (the --interval is so long that
// its first check, at a random point of the first interval, practically
// never comes), so every rotation is made before the check that sees it,
// however long the aws CLI takes. The debounce is then short: it delays
// a restart, and nothing happens meanwhile. The debounce's timing is
// tested on a fake clock in internal/supervise.
//
// transient is how many watch failures may occur, each followed by a
// recovery (the last may be cut short by the stop): none against the
// emulator; against moto_server, whose development HTTP server closes
// every connection after its answer, a poll now and then fails on the
// connection and a later one recovers.
func rotationScenario(t *testing.T, env []string, transient int) {
	cli := func(args ...string) { awsCLI(t, env, args...) }
	put := func(id, value string, extra ...string) {
		cli(append([]string{"secretsmanager", "put-secret-value", "--secret-id", id, "--secret-string", value}, extra...)...)
	}
	cli("secretsmanager", "create-secret", "--name", "rot/api", "--secret-string", "api-1")
	cli("secretsmanager", "create-secret", "--name", "rot/db", "--secret-string", `{"user":"u","password":"pw-1","unused":"x-1"}`)
	file := writeEnvFile(t, "API=sm://rot/api\nPASS=sm://rot/db#password\n")
	p := startRun(t, env, "run", "--env-file", file, "--interval", "10000h", "--refresh-signal", "USR1",
		"--debounce", "100ms", "--max-restarts", "2", "--restart-window", "1h", "--log-level", "debug",
		"--", "rolesenv-testchild", "printvars", "API", "PASS")
	p.waitOut("start API=api-1 PASS=pw-1")

	put("rot/api", "api-2")
	p.checkClean()
	p.waitOut("start API=api-2 PASS=pw-1")

	// AWSPENDING only: two full checks after the put find nothing.
	put("rot/api", "api-pending", "--version-stages", "AWSPENDING")
	p.checkClean()
	p.checkClean()
	if n := p.countLog(`msg="rotation detected" ref=sm://rot/api`); n != 1 {
		t.Errorf("%d rotations of sm://rot/api detected after an AWSPENDING put, want the first only", n)
	}

	put("rot/db", `{"user":"u","password":"pw-1","unused":"x-2"}`)
	p.checkClean()
	p.waitLog(`msg="nothing the command receives changed" reason="sm://rot/db rotated`, 1)

	// The last check was clean: no retry is pending, so no check comes
	// before the next signal.
	for i := 3; i <= 7; i++ {
		put("rot/api", fmt.Sprintf("api-%d", i))
	}
	p.checkClean()
	p.waitOut("start API=api-7 PASS=pw-1")

	put("rot/api", "api-8")
	p.checkClean()
	p.waitLog(logDeferred, 1)

	want := []string{"start API=api-1 PASS=pw-1", "start API=api-2 PASS=pw-1", "start API=api-7 PASS=pw-1"}
	if got := p.starts(); !slices.Equal(got, want) {
		t.Errorf("the command started with %q, want %q", got, want)
	}
	if code := p.stop(); code != 0 {
		t.Errorf("exit %d after SIGTERM, want the command's 0", code)
	}
	if n := p.countLog(logRestarted); n != 2 {
		t.Errorf("%d restarts logged, want 2", n)
	}
	if n, r := p.countLog(logWarn), p.countLog(logRecovered); n > transient || r < n-1 {
		t.Errorf("%d watch failures (at most %d allowed), %d recoveries", n, transient, r)
	} else if n > 0 {
		t.Logf("%d transient watch failures, each followed by a recovery", n)
	}
}

// checkNow sends the refresh signal (USR1) and returns the log line of
// the check it started: the first "checked" line after the refresh line
// the signal caused. The check runs as soon as the watcher takes the
// signal, so it sees everything done before checkNow was called.
func (p *runProc) checkNow() string {
	p.t.Helper()
	n := p.countLog(logRefresh)
	if err := p.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		p.t.Fatal(err)
	}
	var line string
	p.waitFor("the check asked for with the refresh signal", &p.log, func(l []string) bool {
		seen := 0
		for i, s := range l {
			if !strings.Contains(s, logRefresh) {
				continue
			}
			if seen++; seen == n+1 {
				for _, s := range l[i+1:] {
					if strings.Contains(s, logChecked) {
						line = s
						return true
					}
				}
				return false
			}
		}
		return false
	})
	return line
}

// checkClean asks for checks until one has no failure. After it, the
// watcher has no retry pending and checks again only when asked (or at
// its --interval).
func (p *runProc) checkClean() {
	p.t.Helper()
	for range 10 {
		if strings.Contains(p.checkNow(), " failures=0 ") {
			return
		}
	}
	p.t.Fatal("ten checks in a row failed")
}

// TestRunRotationDev is the rotation scenario against the emulator.
func TestRunRotationDev(t *testing.T) {
	t.Parallel() // rolesenv runs as a subprocess with its own environment
	testenv.RequireTool(t, "aws")
	_, env := devBackend(t)
	rotationScenario(t, env, 0)
}

// TestRunRotationMoto is the rotation scenario against moto_server. The
// calls it depends on (DescribeSecret's VersionIdsToStages, GetSecretValue
// by VersionId, PutSecretValue with and without stages) are those where
// moto follows AWS.
func TestRunRotationMoto(t *testing.T) {
	t.Parallel() // rolesenv runs as a subprocess with its own environment
	testenv.RequireTool(t, "aws")
	m := testenv.StartMoto(t)
	rotationScenario(t, []string{"AWS_ENDPOINT_URL=" + m.URL, "AWS_ACCESS_KEY_ID=testing", "AWS_SECRET_ACCESS_KEY=testing"}, 2)
}

// TestRunEnvFileChange: the command restarts when its env file changes
// on disk, with nothing to resolve (no AWS configuration at all), and a
// --refresh-signal checks at once.
func TestRunEnvFileChange(t *testing.T) {
	t.Parallel() // rolesenv runs as a subprocess with its own environment
	file := writeEnvFile(t, "GREETING=hello\n")
	p := startRun(t, []string{"AWS_ENDPOINT_URL=http://127.0.0.1:1"}, "run", "--env-file", file, "--debounce", "0s",
		"--refresh-signal", "USR1", "--log-level", "debug", "--", "rolesenv-testchild", "printvars", "GREETING")
	p.waitOut("start GREETING=hello")
	if err := os.WriteFile(file+".new", []byte("GREETING=bonjour\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(file+".new", file); err != nil {
		t.Fatal(err)
	}
	p.waitOut("start GREETING=bonjour")
	if err := p.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	p.waitLog(`msg="refresh requested: checking now"`, 1)
	if code := p.stop(); code != 0 {
		t.Errorf("exit %d", code)
	}
	if n := p.countLog(`msg="credential`); n != 0 {
		t.Errorf("credentials were looked for with nothing to resolve")
	}
}

// TestRunEnvTooLargeKept: an env file changed to something too large to
// exec the command with is refused: the command keeps its environment,
// the failure is warned about, and a later usable change is applied.
func TestRunEnvTooLargeKept(t *testing.T) {
	t.Parallel() // rolesenv runs as a subprocess with its own environment
	file := writeEnvFile(t, "GREETING=hello\n")
	p := startRun(t, []string{"AWS_ENDPOINT_URL=http://127.0.0.1:1"}, "run", "--env-file", file, "--debounce", "0s",
		"--", "rolesenv-testchild", "printvars", "GREETING")
	p.waitOut("start GREETING=hello")
	replace := func(content string) {
		t.Helper()
		if err := os.WriteFile(file+".new", []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(file+".new", file); err != nil {
			t.Fatal(err)
		}
	}
	// One value over the kernel's limit for a single string (128 KiB).
	replace("GREETING=bonjour\nBIG=" + strings.Repeat("x", 200<<10) + "\n")
	p.waitLog("the new environment cannot be used", 1)
	replace("GREETING=salut\n")
	p.waitOut("start GREETING=salut")
	if got := p.starts(); len(got) != 2 {
		t.Errorf("starts %q: want hello, then salut (bonjour never)", got)
	}
	if code := p.stop(); code != 0 {
		t.Errorf("exit %d", code)
	}
}
