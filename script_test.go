package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/rolesenv/rolesenv/internal/testenv"
)

// TestScripts runs the end-to-end scripts in testdata/script: the rolesenv
// binary (this test binary, see TestMain) as users run it, against
// `rolesenv dev`, with the aws CLI as an independent client. The README's
// commands are these scripts' commands (TestREADMECommandsAreScripted).
//
// Besides testscript's own commands, the scripts have:
//
//	bg NAME PROG [ARGS...]   start PROG in the background, output to NAME.log
//	waitfor FILE REGEXP      wait (60s at most) until FILE has a match
//	stopbg NAME [SIGNAL]     signal a background program (TERM), wait for it,
//	                         write its exit status to NAME.status
//	signalbg NAME SIGNAL     send SIGNAL (HUP, USR1, TERM, ...) to a background program
//	source FILE              apply FILE's export and unset lines, as '.' would
//
// and the condition [have:TOOL], true when TOOL is on the PATH (on CI, a
// missing tool fails the script instead), and [pkcs11], true in the
// PKCS#11 build (go test -tags pkcs11).
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		Setup: func(e *testscript.Env) error {
			home := filepath.Join(e.WorkDir, "home")
			if err := os.MkdirAll(home, 0o700); err != nil {
				return err
			}
			// Nothing reaches for the real AWS.
			e.Setenv("HOME", home)
			e.Setenv("AWS_EC2_METADATA_DISABLED", "true")
			e.Setenv("AWS_CONFIG_FILE", filepath.Join(home, "no-aws-config"))
			e.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(home, "no-aws-credentials"))
			e.Setenv("AWS_PAGER", "")
			e.Setenv("NO_PROXY", "127.0.0.1,localhost")
			return nil
		},
		Condition: func(cond string) (bool, error) {
			if cond == "pkcs11" { // the test binary is the PKCS#11 build
				return pkcs11Built, nil
			}
			tool, ok := strings.CutPrefix(cond, "have:")
			if !ok {
				return false, fmt.Errorf("unknown condition %q", cond)
			}
			p, err := testenv.Lookup(tool)
			return p != "", err
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"bg":       cmdBackground,
			"waitfor":  cmdWaitFor,
			"stopbg":   cmdStopBackground,
			"signalbg": cmdSignalBackground,
			"source":   cmdSource,
		},
	})
}

// background programs of the running scripts, by script and name.
var background = struct {
	sync.Mutex
	m map[*testscript.TestScript]map[string]*exec.Cmd
}{m: map[*testscript.TestScript]map[string]*exec.Cmd{}}

func cmdBackground(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: bg NAME PROG [ARGS...]")
	}
	name := args[0]
	prog, err := lookPathIn(args[1], ts.Getenv("PATH"))
	ts.Check(err)
	log, err := os.Create(ts.MkAbs(name + ".log"))
	ts.Check(err)
	cmd := exec.Command(prog, args[2:]...)
	cmd.Dir = ts.MkAbs(".")
	cmd.Env = scriptEnv(ts)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	ts.Check(cmd.Start())
	background.Lock()
	if background.m[ts] == nil {
		background.m[ts] = map[string]*exec.Cmd{}
		ts.Defer(func() {
			background.Lock()
			cmds := background.m[ts]
			delete(background.m, ts)
			background.Unlock()
			for _, c := range cmds {
				_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
				_ = c.Wait()
			}
		})
	}
	background.m[ts][name] = cmd
	background.Unlock()
	ts.Defer(func() { log.Close() })
}

func cmdStopBackground(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 1 || len(args) > 2 {
		ts.Fatalf("usage: stopbg NAME [SIGNAL]")
	}
	background.Lock()
	cmd := background.m[ts][args[0]]
	delete(background.m[ts], args[0])
	background.Unlock()
	if cmd == nil {
		ts.Fatalf("no background program %q", args[0])
	}
	sig := syscall.SIGTERM
	if len(args) == 2 {
		sig = scriptSignal(ts, args[1])
	}
	// A program that has already exited has nothing to stop.
	if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		ts.Fatalf("stopbg %s: %v", args[0], err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		ts.Fatalf("%s did not exit within 60s of %v", args[0], sig)
	}
	status := fmt.Sprint(cmd.ProcessState.ExitCode())
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		status = "signal " + ws.Signal().String()
	}
	ts.Check(os.WriteFile(ts.MkAbs(args[0]+".status"), []byte(status+"\n"), 0o644))
}

func cmdSignalBackground(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: signalbg NAME SIGNAL")
	}
	background.Lock()
	cmd := background.m[ts][args[0]]
	background.Unlock()
	if cmd == nil {
		ts.Fatalf("no background program %q", args[0])
	}
	ts.Check(cmd.Process.Signal(scriptSignal(ts, args[1])))
}

func scriptSignal(ts *testscript.TestScript, name string) syscall.Signal {
	sigs := map[string]syscall.Signal{"HUP": syscall.SIGHUP, "INT": syscall.SIGINT, "QUIT": syscall.SIGQUIT,
		"TERM": syscall.SIGTERM, "USR1": syscall.SIGUSR1, "USR2": syscall.SIGUSR2, "KILL": syscall.SIGKILL}
	sig, ok := sigs[name]
	if !ok {
		ts.Fatalf("unknown signal %q", name)
	}
	return sig
}

func cmdWaitFor(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: waitfor FILE REGEXP")
	}
	re, err := regexp.Compile(args[1])
	ts.Check(err)
	deadline := time.Now().Add(60 * time.Second)
	for {
		data, _ := os.ReadFile(ts.MkAbs(args[0]))
		if re.Match(data) {
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("no match for %q in %s within 60s; it holds:\n%s", args[1], args[0], data)
		}
		time.Sleep(50 * time.Millisecond) // polling a condition, with a deadline
	}
}

// exportLine matches what `rolesenv dev` writes in env.sh.
var exportLine = regexp.MustCompile(`^export ([A-Za-z_][A-Za-z0-9_]*)='((?:[^']|'\\'')*)'$`)

func cmdSource(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: source FILE")
	}
	f, err := os.Open(ts.MkAbs(args[0]))
	ts.Check(err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "unset "):
			ts.Setenv(strings.TrimPrefix(line, "unset "), "")
		default:
			m := exportLine.FindStringSubmatch(line)
			if m == nil {
				ts.Fatalf("source: cannot read line %q", line)
			}
			ts.Setenv(m[1], strings.ReplaceAll(m[2], `'\''`, "'"))
		}
	}
	ts.Check(sc.Err())
}

// scriptEnv is the environment of a program started by bg: testscript
// does not list a script's variables, so these are the ones scripts use.
func scriptEnv(ts *testscript.TestScript) []string {
	var env []string
	for _, k := range scriptVars {
		if v := ts.Getenv(k); v != "" {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// scriptVars are the variables passed to programs started by bg.
var scriptVars = []string{
	"PATH", "HOME", "TMPDIR", "WORK",
	"AWS_EC2_METADATA_DISABLED", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_PAGER",
	"AWS_ENDPOINT_URL", "AWS_CA_BUNDLE", "AWS_REGION", "AWS_DEFAULT_REGION", "NO_PROXY",
	"ROLESENV_CERTIFICATE", "ROLESENV_PRIVATE_KEY", "ROLESENV_TRUST_ANCHOR_ARN", "ROLESENV_PROFILE_ARN",
	"ROLESENV_ROLE_ARN", "ROLESENV_ENDPOINT", "ROLESENV_LOG_LEVEL", "ROLESENV_REFRESH_SIGNAL",
}

func lookPathIn(prog, path string) (string, error) {
	if strings.Contains(prog, "/") {
		return prog, nil
	}
	for _, dir := range filepath.SplitList(path) {
		p := filepath.Join(dir, prog)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found on the script's PATH", prog)
}

// TestREADMECommandsAreScripted: every command line in the README's code
// blocks (rolesenv, aws, curl, and '.' to source a file) is run, as
// written, by a script in testdata/script.
func TestREADMECommandsAreScripted(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	var scripted []string
	files, _ := filepath.Glob("testdata/script/*.txtar")
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		scripted = append(scripted, strings.Split(string(data), "\n")...)
	}
	commands := readmeCommands(string(readme))
	if len(commands) < 10 {
		t.Fatalf("found only %d commands in the README; the extraction is broken", len(commands))
	}
	for _, c := range commands {
		want := c
		if rest, ok := strings.CutPrefix(c, ". "); ok {
			want = "source " + rest
		}
		found := false
		for _, line := range scripted {
			if strings.Contains(line, want) {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("the README's command is in no script: %s", c)
		}
	}
}

// readmeCommands returns the command lines of the README's code blocks:
// indented blocks and fenced blocks without a language or marked sh/bash.
func readmeCommands(readme string) []string {
	var cmds []string
	inFence, fenceIsShell := false, false
	for _, line := range strings.Split(readme, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "```") {
			if !inFence {
				lang := strings.TrimPrefix(trimmed, "```")
				inFence, fenceIsShell = true, lang == "" || lang == "sh" || lang == "bash"
			} else {
				inFence = false
			}
			continue
		}
		isCode := (inFence && fenceIsShell) || (!inFence && strings.HasPrefix(line, "    ") && !strings.HasPrefix(trimmed, "- "))
		if !isCode {
			continue
		}
		if c, _, _ := strings.Cut(trimmed, "  #"); c != "" {
			for _, prefix := range []string{"rolesenv ", "aws ", "curl ", ". "} {
				if strings.HasPrefix(c, prefix) || c == strings.TrimSpace(prefix) {
					cmds = append(cmds, strings.TrimSpace(c))
					break
				}
			}
		}
	}
	return cmds
}
