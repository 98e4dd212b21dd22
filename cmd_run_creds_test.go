package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rolesenv/rolesenv/internal/testenv"
)

// raRunEnv is the environment of a rolesenv (and its command) that reaches
// the Roles Anywhere emulator for every service and trusts its CA.
func (e *raEmulator) runEnv() []string {
	return []string{"AWS_ENDPOINT_URL=" + e.URL(), "AWS_CA_BUNDLE=" + e.caFile}
}

// TestRunChildCredentialsEndpoint: the aws CLI, run as the command with
// --child-credentials endpoint, gets the Roles Anywhere role from the
// endpoint, before and after the credentials rolesenv holds have expired
// and been refreshed (they live 3 seconds). Credential variables that
// would outrank the endpoint never reach it.
func TestRunChildCredentialsEndpoint(t *testing.T) {
	t.Parallel() // rolesenv runs as a subprocess with its own environment
	testenv.RequireTool(t, "aws")
	e := newRAEmulator(t)
	const lifetime = 3 * time.Second
	e.SetCredentialLifetime(lifetime)
	// The command asks for its identity each time it reads a line.
	script := `while read -r line; do aws sts get-caller-identity --query Arn --output text 2>&1 | sed 's/^/arn /'; done`
	// rolesenv inherits static keys and a profile with other static keys:
	// if either reached the CLI, it would not ask the endpoint.
	config := filepath.Join(e.dir, "aws-config")
	if err := os.WriteFile(config, []byte("[profile outranking]\nregion = us-east-1\naws_access_key_id = AKIAOUTRANKING2\naws_secret_access_key = outranking\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := append(e.runEnv(), "AWS_CONFIG_FILE="+config, "AWS_ACCESS_KEY_ID=AKIAOUTRANKING", "AWS_SECRET_ACCESS_KEY=outranking", "AWS_PROFILE=outranking")
	p := startRun(t, env, append(append([]string{"run", "--child-credentials", "endpoint"}, e.args(t)...),
		"--log-level", "debug", "--", "/bin/sh", "-c", script)...)
	role := "arn arn:aws:sts::" + e.AccountID() + ":assumed-role/reader/"
	ask := func() string {
		t.Helper()
		n := len(p.lines(&p.out))
		if _, err := fmt.Fprintln(p.stdin, "who"); err != nil {
			t.Fatal(err)
		}
		p.waitFor("an answer from the aws CLI", &p.out, func(l []string) bool { return len(l) > n })
		return p.lines(&p.out)[n]
	}
	first := time.Now()
	if got := ask(); !strings.HasPrefix(got, role) {
		t.Fatalf("the command got %q, want the role %s...", got, role)
	}
	sessions := e.Calls(opCreateSession)
	// Ask again until the first credentials have expired and rolesenv has
	// made new ones: every answer must be the role.
	deadline := time.Now().Add(runDeadline)
	asked := 1
	for time.Since(first) < lifetime+time.Second || e.Calls(opCreateSession) < sessions+2 {
		if time.Now().After(deadline) {
			t.Fatalf("credentials were not refreshed within %v (%d sessions)", runDeadline, e.Calls(opCreateSession))
		}
		if got := ask(); !strings.HasPrefix(got, role) {
			t.Fatalf("after %v the command got %q, want the role", time.Since(first).Round(time.Millisecond), got)
		}
		asked++
	}
	t.Logf("%d identity calls over %v, %d sessions", asked, time.Since(first).Round(time.Millisecond), e.Calls(opCreateSession))
	if code := p.stop(); code != 143 && code != 0 {
		t.Errorf("exit %d", code)
	}
	for _, l := range p.lines(&p.log) {
		if strings.Contains(l, "outranking") || strings.Contains(l, "AKIAOUTRANKING") {
			t.Errorf("log line %q", l)
		}
	}
}

// TestRunCredentialProcessReaper: rolesenv's own credentials come from the
// SDK's credential_process provider (rolesenv credential-process, whose
// credentials live 3 seconds, so the SDK runs it again and again) while
// rolesenv, not PID 1, is a child subreaper reaping orphans and polling
// every 100 ms. The reaper never takes the exit status of those processes:
// no credential error, no failed check.
func TestRunCredentialProcessReaper(t *testing.T) {
	t.Parallel() // rolesenv runs as a subprocess with its own environment
	e := newRAEmulator(t)
	e.SetCredentialLifetime(3 * time.Second)
	mustDo[string](t)(e.CreateSecret("reap/api", "api-1"))
	config := filepath.Join(e.dir, "aws-config")
	process := rolesenvBin(t) + " credential-process " + strings.Join(e.args(t), " ")
	if err := os.WriteFile(config, []byte("[profile ra]\nregion = us-east-1\ncredential_process = "+process+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	file := writeEnvFile(t, "API=sm://reap/api\n")
	env := append(e.runEnv(), "AWS_CONFIG_FILE="+config, "AWS_PROFILE=ra")
	p := startRun(t, env, "run", "--env-file", file, "--interval", "1s", "--log-level", "debug",
		"--", "rolesenv-testchild", "printvars", "API")
	p.waitOut("start API=api-1")
	sessions := e.Calls(opCreateSession)
	// Each new session is one more credential_process run.
	p.waitFor("five more credential_process runs", &p.log, func([]string) bool { return e.Calls(opCreateSession) >= sessions+5 })
	checks := p.countLog(logChecked)
	p.waitLog(logChecked, checks+5)
	if code := p.stop(); code != 0 {
		t.Errorf("exit %d", code)
	}
	log := strings.Join(p.lines(&p.log), "\n")
	for _, bad := range []string{logWarn, "credential_process failed", "no child processes", "failed to obtain AWS credentials"} {
		if strings.Contains(log, bad) {
			t.Errorf("log has %q", bad)
		}
	}
	if n := len(p.starts()); n != 1 {
		t.Errorf("the command started %d times", n)
	}
	t.Logf("%d credential_process runs, %d checks", e.Calls(opCreateSession), p.countLog(logChecked))
}

// longRunFor is how long TestRunLongRun polls: two minutes, as the run
// issue asks. With 3-second credentials and the CLI's shortest interval
// (1 s) that is about 40 refreshes and 120 polls.
const longRunFor = 2 * time.Minute

// TestRunLongRun is a long run on compressed time: Roles Anywhere
// credentials live 3 seconds, rolesenv polls every second for two minutes;
// credentials are refreshed many times, no check fails, nothing restarts.
func TestRunLongRun(t *testing.T) {
	t.Parallel() // rolesenv runs as a subprocess with its own environment
	if testing.Short() {
		t.Skip("two minutes of polling")
	}
	e := newRAEmulator(t)
	e.SetCredentialLifetime(3 * time.Second)
	mustDo[string](t)(e.CreateSecret("long/api", "api-1"))
	mustDo[int64](t)(e.PutParameter("/long/flag", "String", "on"))
	file := writeEnvFile(t, "API=sm://long/api\nFLAG=ssm:///long/flag\n")
	p := startRun(t, e.runEnv(), append(append([]string{"run", "--env-file", file, "--interval", "1s", "--log-level", "debug"},
		e.args(t)...), "--", "rolesenv-testchild", "printvars", "API", "FLAG")...)
	p.waitOut("start API=api-1 FLAG=on")
	e.ResetCalls()
	checks0 := p.countLog(logChecked) // a check may be in flight: counts match within one
	end := time.After(longRunFor)     // the length of the run, not a synchronisation
	select {
	case <-end:
	case <-p.exited:
		t.Fatalf("rolesenv exited: %v", p.err)
	}
	if code := p.stop(); code != 0 {
		t.Errorf("exit %d", code)
	}
	sessions, describes, params := e.Calls(opCreateSession), e.Calls("secretsmanager:DescribeSecret"), e.Calls("ssm:GetParameters")
	checks := p.countLog(logChecked) - checks0
	t.Logf("%v: %d sessions, %d checks, %d DescribeSecret, %d GetParameters", longRunFor, sessions, checks, describes, params)
	if sessions < 20 {
		t.Errorf("only %d credential refreshes", sessions)
	}
	near := func(a, b int64) bool { return a-b <= 1 && b-a <= 1 }
	if checks < int(longRunFor/time.Second)/2 || !near(int64(checks), describes) || !near(describes, params) {
		t.Errorf("%d checks, %d DescribeSecret and %d GetParameters calls: want one of each per check", checks, describes, params)
	}
	if n, all := p.countLog("failures=0"), p.countLog(logChecked); n != all {
		t.Errorf("%d of %d checks failed", all-n, all)
	}
	for _, bad := range []string{logWarn, logRestarted, "level=ERROR"} {
		if n := p.countLog(bad); n != 0 {
			t.Errorf("%d log lines with %s", n, bad)
		}
	}
	if n := len(p.starts()); n != 1 {
		t.Errorf("the command started %d times", n)
	}
}
