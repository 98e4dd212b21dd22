package main

import (
	"os"
	"strings"
	"testing"

	"github.com/rolesenv/rolesenv/internal/awsdev"

	"github.com/rolesenv/rolesenv/internal/exitcode"
)

// TestRunLogsNoValues runs every path of rolesenv run at --log-level
// debug, in both log formats, with secret values that carry a sentinel:
// start-up, rotation, restart, deferral, watch errors and recovery, a
// rotated secret that lost a key, an env file rewritten with a syntax
// error inside a value, --max-stale, --on-change exit, a start-up
// failure, and the exit. The sentinel never reaches stdout or stderr (the
// command prints hashes of what it gets), nor the metrics endpoint.
func TestRunLogsNoValues(t *testing.T) {
	t.Parallel() // rolesenv runs as a subprocess with its own environment
	s, env := devBackend(t)
	mustDo[string](t)(s.CreateSecret("log/api", sentinel+"-api-1"))
	mustDo[string](t)(s.CreateSecret("log/db", `{"password":"`+sentinel+`-pw-1"}`))
	mustDo[int64](t)(s.PutParameter("/log/flag", "SecureString", sentinel+"-flag"))
	const tmpl = "API=sm://log/api\nPASS={{ sm://log/db#password | urlquery }}\nFLAG=ssm:///log/flag\nLIT=" + sentinel + "-literal\n"
	child := []string{"--", "rolesenv-testchild", "printvars", "-hash", "API", "PASS", "FLAG", "LIT"}
	noSentinel := func(name string, p *runProc) {
		t.Helper()
		for _, l := range append(p.lines(&p.out), p.lines(&p.log)...) {
			if strings.Contains(l, sentinel) {
				t.Errorf("%s: a value reached the output: %s", name, l)
			}
		}
	}

	for _, format := range []string{"text", "json"} {
		file := writeEnvFile(t, tmpl)
		p := startRun(t, env, append([]string{"run", "--env-file", file, "--interval", "1s", "--debounce", "200ms",
			"--max-restarts", "1", "--restart-window", "1h", "--log-level", "debug", "--log-format", format,
			"--metrics-listen", "0"}, child...)...)
		restarted, deferred, warned, recovered := "child restarted", "restart deferred", "watch failed", "watch recovered"
		p.waitFor("the start", &p.out, func(l []string) bool { return len(l) == 1 })
		mustDo[string](t)(s.PutSecretValue("log/api", sentinel+"-api-2"))
		p.waitLog(restarted, 1)
		mustDo[string](t)(s.PutSecretValue("log/api", sentinel+"-api-3"))
		p.waitLog(deferred, 1)
		s.SetErrorRate("*", 1, awsdev.FaultInternal)
		p.waitLog(warned, 1)
		s.SetErrorRate("*", 0, 0)
		p.waitLog(recovered, 1)
		mustDo[string](t)(s.PutSecretValue("log/db", `{"pass":"`+sentinel+`-pw-2"}`))
		p.waitLog(warned, 2)
		mustDo[string](t)(s.PutSecretValue("log/db", `{"password":"`+sentinel+`-pw-3"}`))
		p.waitLog(recovered, 2)
		if err := os.WriteFile(file, []byte(tmpl+"BROKEN=\""+sentinel+"-unterminated\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		p.waitLog("cannot be used", 1)
		if format == "text" { // the line metricsURL reads
			base := p.metricsURL()
			_, ready := getURL(t, base+"/readyz")
			if text := scrapeMetrics(t, base).text + ready; strings.Contains(text, sentinel) {
				t.Errorf("a value reached the metrics endpoint:\n%s", text)
			}
		}
		if code := p.stop(); code != 0 {
			t.Errorf("%s: exit %d", format, code)
		}
		noSentinel("watching ("+format+")", p)
	}

	// --max-stale: checks denied for longer than --max-stale end rolesenv
	// with 69.
	file := writeEnvFile(t, tmpl)
	p := startRun(t, env, append([]string{"run", "--env-file", file, "--interval", "1s", "--max-stale", "3s", "--log-level", "debug"}, child...)...)
	p.waitFor("the start", &p.out, func(l []string) bool { return len(l) == 1 })
	if err := s.SetUserPolicy("app", awsdev.Policy{}); err != nil {
		t.Fatal(err)
	}
	<-p.exited
	if code := p.cmd.ProcessState.ExitCode(); code != exitcode.Unavailable {
		t.Errorf("--max-stale: exit %d, want %d", code, exitcode.Unavailable)
	}
	p.waitLog("rolesenv: error: no successful check for rotation", 1)
	noSentinel("max-stale", p)
	if err := s.SetUserPolicy("app", awsdev.AllowAll); err != nil {
		t.Fatal(err)
	}

	// --on-change exit: a rotation stops the command, rolesenv exits 75.
	p = startRun(t, env, append([]string{"run", "--env-file", file, "--interval", "1s", "--debounce", "0s", "--on-change", "exit", "--log-level", "debug"}, child...)...)
	p.waitFor("the start", &p.out, func(l []string) bool { return len(l) == 1 })
	mustDo[string](t)(s.PutSecretValue("log/api", sentinel+"-api-4"))
	<-p.exited
	if code := p.cmd.ProcessState.ExitCode(); code != exitcode.TempFail {
		t.Errorf("--on-change exit: exit %d, want %d", code, exitcode.TempFail)
	}
	noSentinel("on-change exit", p)

	// Start-up fails closed, naming the variable and the reference.
	file = writeEnvFile(t, tmpl+"KEY=sm://log/db#nokey\n")
	p = startRun(t, env, append([]string{"run", "--env-file", file, "--log-level", "debug"}, child...)...)
	<-p.exited
	if code := p.cmd.ProcessState.ExitCode(); code != exitcode.Config || len(p.starts()) != 0 {
		t.Errorf("start-up failure: exit %d, %d starts", code, len(p.starts()))
	}
	p.waitLog("KEY", 1)
	noSentinel("start-up failure", p)
}
