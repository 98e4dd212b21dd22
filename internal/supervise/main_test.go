package supervise

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rolesenv/rolesenv/internal/exitcode"
)

// The test binary is also the child and, for tests that send signals to
// rolesenv, a small rolesenv: TestMain dispatches on roleVar.
const roleVar = "SUPERVISE_TEST_ROLE"

func TestMain(m *testing.M) {
	if role := os.Getenv(roleVar); role != "" {
		os.Exit(runRole(role, os.Args[1:]))
	}
	code := m.Run()
	if leaked, _ := children(os.Getpid()); code == 0 && len(leaked) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: the tests left processes running: %v\n", leaked)
		code = 1
	}
	os.Exit(code)
}

func runRole(role string, args []string) int {
	switch role {
	case "hang":
		// Print readiness and the environment variable GEN, then wait for
		// a signal to take its default action.
		fmt.Printf("ready pid=%d gen=%s\n", os.Getpid(), os.Getenv("GEN"))
		select {}
	case "record":
		return roleRecord()
	case "late":
		return roleLate()
	case "stubborn":
		return roleStubborn()
	case "orphans":
		return roleOrphans(args)
	case "orphan-parent":
		return roleOrphanParent(args)
	case "ttychild":
		return roleTTYChild()
	case "supervisor":
		return roleSupervisor()
	}
	fmt.Fprintf(os.Stderr, "unknown role %q\n", role)
	return 2
}

// recordable are the signals a recording child reports: every forwarded
// one, plus SIGURG and SIGCHLD, which must never arrive.
func recordable() []os.Signal {
	return append(osSignals(Forwarded()), syscall.SIGURG, syscall.SIGCHLD)
}

// roleRecord prints "sig NAME" for every signal it receives and exits 0
// after SIGTERM. It runs with GODEBUG=asyncpreemptoff=1, so its own
// runtime never sends it SIGURG.
func roleRecord() int {
	ch := make(chan os.Signal, 64)
	signal.Notify(ch, recordable()...)
	fmt.Printf("ready pid=%d gen=%s\n", os.Getpid(), os.Getenv("GEN"))
	for sig := range ch {
		fmt.Printf("sig %s\n", SignalName(sig.(syscall.Signal)))
		if sig == syscall.SIGTERM && os.Getenv("RECORD_TERM_EXITS") == "1" {
			return 0
		}
	}
	return 0
}

// roleLate is an application whose handlers take a moment to install:
// it prints "waiting pid=P gen=G" and, until a go-ahead line arrives on
// stdin, has none (a HUP then kills it, as it would kill most programs at
// that point). After the go-ahead it catches the recordable signals,
// prints "ready pid=P gen=G" and "sig NAME" for each one it gets; the line
// "report" on stdin makes it print "saw NAME..." (or "saw none") and exit 0.
func roleLate() int {
	fmt.Printf("waiting pid=%d gen=%s\n", os.Getpid(), os.Getenv("GEN"))
	if line, _ := readLine(); line != "go" {
		return 3
	}
	ch := make(chan os.Signal, 64)
	signal.Notify(ch, recordable()...)
	fmt.Printf("ready pid=%d gen=%s\n", os.Getpid(), os.Getenv("GEN"))
	report := make(chan struct{})
	go func() {
		for {
			if line, ok := readLine(); !ok || line == "report" {
				break
			}
		}
		close(report)
	}()
	var saw []string
	for {
		select {
		case sig := <-ch:
			name := SignalName(sig.(syscall.Signal))
			saw = append(saw, name)
			fmt.Printf("sig %s\n", name)
		case <-report:
			if len(saw) == 0 {
				saw = []string{"none"}
			}
			fmt.Printf("saw %s\n", strings.Join(saw, " "))
			return 0
		}
	}
}

// readLine reads one line from stdin a byte at a time, so that nothing
// meant for the next child is buffered in this one; false at EOF.
func readLine() (string, bool) {
	var b []byte
	one := make([]byte, 1)
	for {
		if n, err := os.Stdin.Read(one); n == 0 || err != nil {
			return string(b), false
		}
		if one[0] == '\n' {
			return string(b), true
		}
		b = append(b, one[0])
	}
}

// roleStubborn ignores SIGTERM and starts a grandchild in its process
// group that ignores it too; it prints "ready pid=P grandchild=G". With
// STUBBORN_PARENT_EXITS=1 it exits 0 on SIGTERM itself and leaves the
// grandchild behind in its group.
func roleStubborn() int {
	if len(os.Args) > 1 && os.Args[1] == "grandchild" {
		signal.Ignore(syscall.SIGTERM)
		fmt.Println("ok")
		select {}
	}
	if os.Getenv("STUBBORN_PARENT_EXITS") == "1" {
		term := make(chan os.Signal, 1)
		signal.Notify(term, syscall.SIGTERM)
		go func() {
			<-term
			os.Exit(0)
		}()
	} else {
		signal.Ignore(syscall.SIGTERM)
	}
	cmd := exec.Command(os.Args[0], "grandchild")
	cmd.Env = append(os.Environ(), roleVar+"=stubborn")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 3
	}
	if err := cmd.Start(); err != nil {
		return 3
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	if line != "ok\n" {
		return 4
	}
	fmt.Printf("ready pid=%d grandchild=%d gen=%s\n", os.Getpid(), cmd.Process.Pid, os.Getenv("GEN"))
	select {}
}

// roleOrphans leaves N orphans behind: an intermediate process starts N
// processes that exit at once and exits itself without waiting for them,
// so their zombies pass to the reaper. It then waits until its parent
// (the supervisor) has no zombie child left, prints "zombies 0" (or the
// count at the deadline), and exits 0 when there are none.
func roleOrphans(args []string) int {
	n, _ := strconv.Atoi(args[0])
	cmd := exec.Command(os.Args[0], strconv.Itoa(n))
	cmd.Env = append(os.Environ(), roleVar+"=orphan-parent")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Printf("orphan-parent failed: %v: %s\n", err, out)
		return 3
	}
	parent := os.Getppid()
	deadline := time.Now().Add(60 * time.Second)
	for {
		_, z := children(parent)
		if z == 0 {
			fmt.Println("zombies 0")
			return 0
		}
		if time.Now().After(deadline) {
			fmt.Printf("zombies %d\n", z)
			return 1
		}
		time.Sleep(20 * time.Millisecond) // polling a condition with a deadline
	}
}

// roleOrphanParent starts N copies of /bin/true and exits without waiting
// for them.
func roleOrphanParent(args []string) int {
	n, _ := strconv.Atoi(args[0])
	for range n {
		if _, err := syscall.ForkExec("/bin/true", []string{"true"}, &syscall.ProcAttr{}); err != nil {
			fmt.Println(err)
			return 3
		}
	}
	return 0
}

// children lists the children of pid from /proc: those still running
// (as "PID (comm)") and the number of zombies.
func children(pid int) (live []string, zombies int) {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		comm := s[strings.IndexByte(s, '(') : strings.LastIndexByte(s, ')')+1]
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) < 2 || f[1] != strconv.Itoa(pid) {
			continue
		}
		if f[0] == "Z" {
			zombies++
		} else {
			live = append(live, e.Name()+" "+comm)
		}
	}
	return live, zombies
}

// roleTTYChild reads lines from the terminal and answers "got LINE"; it
// counts SIGINTs and exits 40+count on the first.
func roleTTYChild() int {
	ints := make(chan os.Signal, 8)
	signal.Notify(ints, syscall.SIGINT)
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	fmt.Println("ttychild ready")
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				return 3
			}
			fmt.Printf("got %s\n", line)
		case <-ints:
			n := 1
			for more := true; more; {
				select {
				case <-ints:
					n++
				default:
					more = false
				}
			}
			fmt.Printf("interrupted %d\n", n)
			return 40 + n
		}
	}
}

// supervisorSpec configures the supervisor role.
type supervisorSpec struct {
	Command string   `json:"command"`
	Args    []string `json:"args"`
	Env     []string `json:"env"`
	// BlockStart makes it wait for a signal before Run, after printing
	// "preparing" on stderr.
	BlockStart bool `json:"block_start"`
	// FillFDs fills the descriptor table (under a low RLIMIT_NOFILE)
	// before Run, so that starting the command fails with EMFILE;
	// FreeOnRetry closes those descriptors when the supervisor logs that
	// it retries. RetryLimit is Config.StartRetryLimit.
	FillFDs     bool          `json:"fill_fds"`
	FreeOnRetry bool          `json:"free_on_retry"`
	RetryLimit  time.Duration `json:"retry_limit"`
}

const specVar = "SUPERVISE_TEST_SPEC"

// roleSupervisor is rolesenv run in miniature: New, then Run, then exit
// with the child's status or the error's code.
func roleSupervisor() int {
	var spec supervisorSpec
	if err := json.Unmarshal([]byte(os.Getenv(specVar)), &spec); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	var h slog.Handler = slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})
	var fds []int
	if spec.FreeOnRetry {
		h = &onMessage{Handler: h, msg: retryMsg, do: func() {
			for _, fd := range fds {
				syscall.Close(fd)
			}
		}}
	}
	s, err := New(Config{Command: spec.Command, Args: spec.Args, Logger: slog.New(h), ParentDeathSignal: syscall.SIGTERM, StartRetryLimit: spec.RetryLimit})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if spec.FillFDs { // after New, as rolesenv calls it first
		if fds, err = fillFDs(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		fmt.Fprintf(os.Stderr, "filled %d descriptors\n", len(fds))
	}
	defer s.Close()
	if spec.BlockStart {
		ctx, cancel := s.Context(context.Background())
		fmt.Fprintln(os.Stderr, "preparing")
		<-ctx.Done()
		cancel()
	}
	res, err := s.Run(context.Background(), spec.Env, nil)
	if err != nil {
		fmt.Fprintf(os.Stderr, "supervisor: %v\n", err)
		return exitcode.Of(err)
	}
	return res.ExitCode
}

// fillFDs lowers RLIMIT_NOFILE and opens /dev/null until the table is
// full, returning the descriptors it opened.
func fillFDs() ([]int, error) {
	// The runtime's poller needs descriptors of its own: create it now.
	if _, _, err := os.Pipe(); err != nil {
		return nil, err
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return nil, err
	}
	lim.Cur = 64
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return nil, err
	}
	var fds []int
	for {
		fd, err := syscall.Open("/dev/null", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if errors.Is(err, syscall.EMFILE) {
			return fds, nil
		}
		if err != nil {
			return nil, err
		}
		fds = append(fds, fd)
	}
}

// onMessage is a slog.Handler that runs do, once, before handling the
// first record with message msg.
type onMessage struct {
	slog.Handler
	msg  string
	do   func()
	once sync.Once
}

func (h *onMessage) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.once.Do(h.do)
	}
	return h.Handler.Handle(ctx, r)
}
