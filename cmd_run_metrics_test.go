package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rolesenv/rolesenv/inject"
	"github.com/rolesenv/rolesenv/internal/awsdev"
	"github.com/rolesenv/rolesenv/internal/check"
	"github.com/rolesenv/rolesenv/internal/exitcode"
	"github.com/rolesenv/rolesenv/internal/testenv"
)

// scrape is one answer of /metrics: its text, and its samples by name.
type scrape struct {
	text    string
	samples map[string][]sample
}

type sample struct {
	labels string // `{a="x",b="y"}`, or ""
	value  float64
}

// getURL GETs url and returns the status and body.
func getURL(t *testing.T, url string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runDeadline)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// scrapeMetrics reads base/metrics and parses the text format's samples.
func scrapeMetrics(t *testing.T, base string) scrape {
	t.Helper()
	code, body := getURL(t, base+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	s := scrape{text: body, samples: map[string][]sample{}}
	for _, line := range strings.Split(body, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("sample %q: %v", line, err)
		}
		name, labels := line[:i], ""
		if j := strings.IndexByte(name, '{'); j >= 0 {
			name, labels = name[:j], name[j:]
		}
		s.samples[name] = append(s.samples[name], sample{labels: labels, value: v})
	}
	return s
}

// get sums the samples of name whose labels include every `k="v"` given.
func (s scrape) get(name string, labels ...string) float64 {
	sum := 0.0
	for _, smp := range s.samples[name] {
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(smp.labels, l)
		}
		if ok {
			sum += smp.value
		}
	}
	return sum
}

// promtoolCheck runs promtool check metrics on a scrape: the format and
// Prometheus's naming conventions.
func promtoolCheck(t *testing.T, text string) {
	t.Helper()
	bin := testenv.RequireTool(t, "promtool")
	cmd := exec.Command(bin, "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s\n--- scrape:\n%s", err, out.String(), text)
	}
}

// metricsURL waits for rolesenv's "serving metrics" line and returns the
// endpoint's base URL.
func (p *runProc) metricsURL() string {
	p.t.Helper()
	const key = `url=http://`
	p.waitLog(`msg="serving metrics"`, 1)
	for _, l := range p.lines(&p.log) {
		if i := strings.Index(l, key); i >= 0 && strings.Contains(l, "serving metrics") {
			u := l[i+len("url="):]
			if j := strings.IndexByte(u, ' '); j >= 0 {
				u = u[:j]
			}
			return strings.TrimSuffix(u, "/metrics")
		}
	}
	p.t.Fatal("no metrics URL in the log")
	return ""
}

// waitMetric scrapes until cond holds, within the deadline.
func waitMetric(t *testing.T, base, what string, cond func(scrape) bool) scrape {
	t.Helper()
	deadline := time.Now().Add(runDeadline)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		s := scrapeMetrics(t, base)
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v; last scrape:\n%s", what, runDeadline, s.text)
		}
		<-tick.C
	}
}

// waitProbe GETs base+path until it answers want.
func waitProbe(t *testing.T, base, path string, want int) {
	t.Helper()
	deadline := time.Now().Add(runDeadline)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		code, body := getURL(t, base+path)
		if code == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s answered %d %q, want %d within %v", path, code, body, want, runDeadline)
		}
		<-tick.C
	}
}

const metricsSentinel = "SENTINEL-metrics-secret-value"

// TestRunMetrics: a watching rolesenv with Roles Anywhere credentials and
// --metrics-listen; every metric moves as the emulator's controls make
// things happen (throttling, denial, expired credentials, rotation, a
// stale environment and its recovery), promtool accepts every scrape, and
// no scrape holds the secret.
func TestRunMetrics(t *testing.T) {
	t.Parallel() // rolesenv runs as a subprocess with its own environment
	e := newRAEmulator(t)
	mustDo[string](t)(e.CreateSecret("m/api", metricsSentinel+"-1"))
	// A reference and a variable whose names are sentinels too: no label
	// names a reference or a variable.
	mustDo[string](t)(e.CreateSecret("m/SENTINEL-name", "v"))
	file := writeEnvFile(t, "API=sm://m/api\nSENTINEL_VAR=sm://m/SENTINEL-name\n")
	p := startRun(t, e.runEnv(), append(append([]string{"run", "--env-file", file, "--interval", "1s",
		"--debounce", "0s", "--metrics-listen", "0"}, e.args(t)...),
		"--log-level", "debug", "--", "rolesenv-testchild", "printvars", "-hash", "API")...)
	base := p.metricsURL()
	if !strings.HasPrefix(base, "http://127.0.0.1:") {
		t.Fatalf("a bare port listens on %s, want the loopback interface", base)
	}
	p.waitOut("start API=")
	var scrapes []string
	s := waitMetric(t, base, "a successful check", func(s scrape) bool {
		return s.get("rolesenv_checks_total", `outcome="ok"`) >= 1
	})
	scrapes = append(scrapes, s.text)
	now := float64(time.Now().Unix())
	for name, ok := range map[string]bool{
		"build info":           s.get("rolesenv_build_info", `version="`) == 1,
		"command up":           s.get("rolesenv_command_up") == 1,
		"command start time":   s.get("rolesenv_command_start_time_seconds") > now-runDeadline.Seconds(),
		"credentials expiry":   s.get("rolesenv_credentials_expiry_timestamp_seconds", `source="rolesanywhere"`) > now,
		"CreateSession":        s.get("rolesenv_aws_api_calls_total", `service="rolesanywhere"`, `operation="CreateSession"`, `outcome="ok"`) >= 1,
		"GetSecretValue":       s.get("rolesenv_aws_api_calls_total", `service="secretsmanager"`, `operation="GetSecretValue"`, `outcome="ok"`) >= 1,
		"DescribeSecret":       s.get("rolesenv_aws_api_call_duration_seconds_count", `service="secretsmanager"`, `operation="DescribeSecret"`) >= 1,
		"last success":         s.get("rolesenv_check_last_success_timestamp_seconds") > 0,
		"no failed checks":     s.get("rolesenv_check_consecutive_failures") == 0,
		"fresh environment":    s.get("rolesenv_environment_oldest_value_age_seconds") < 3,
		"ready":                s.get("rolesenv_ready") == 1,
		"loop turns":           s.get("rolesenv_loop_last_turn_timestamp_seconds") > 0,
		"no restart yet":       s.get("rolesenv_command_restarts_total") == 0,
		"rotations start at 0": s.get("rolesenv_rotations_total") == 0,
	} {
		if !ok {
			t.Errorf("%s: wrong in\n%s", name, s.text)
		}
	}
	waitProbe(t, base, "/healthz", http.StatusOK)
	waitProbe(t, base, "/readyz", http.StatusOK)

	// Throttling: the SDK retries, and each throttled attempt counts.
	e.FailNext("secretsmanager:DescribeSecret", 1, awsdev.FaultThrottle)
	s = waitMetric(t, base, "a throttled call", func(s scrape) bool {
		return s.get("rolesenv_aws_api_calls_total", `operation="DescribeSecret"`, `outcome="throttled"`) >= 1
	})
	scrapes = append(scrapes, s.text)

	// Denial: the role may do nothing; checks fail, and count.
	if err := e.SetRolePolicy("reader", awsdev.Policy{}); err != nil {
		t.Fatal(err)
	}
	s = waitMetric(t, base, "a denied call and failed checks", func(s scrape) bool {
		return s.get("rolesenv_aws_api_calls_total", `outcome="denied"`) >= 1 &&
			s.get("rolesenv_check_consecutive_failures") >= 2 && s.get("rolesenv_checks_total", `outcome="failed"`) >= 2
	})
	scrapes = append(scrapes, s.text)
	agreeWithCheck(t, e, file, s)
	// Stale beyond 3 intervals: not ready, but alive.
	waitProbe(t, base, "/readyz", http.StatusServiceUnavailable)
	waitProbe(t, base, "/healthz", http.StatusOK)
	if err := e.SetRolePolicy("reader", awsdev.AllowAll); err != nil {
		t.Fatal(err)
	}
	waitProbe(t, base, "/readyz", http.StatusOK)
	s = scrapeMetrics(t, base)
	if s.get("rolesenv_check_consecutive_failures") != 0 || s.get("rolesenv_environment_oldest_value_age_seconds") >= 3 {
		t.Errorf("after recovery:\n%s", s.text)
	}

	// Credentials AWS no longer accepts: dropped, and new ones expire later.
	expiry := s.get("rolesenv_credentials_expiry_timestamp_seconds")
	sessions := s.get("rolesenv_aws_api_calls_total", `operation="CreateSession"`, `outcome="ok"`)
	e.ExpireCredentials()
	s = waitMetric(t, base, "new credentials", func(s scrape) bool {
		return s.get("rolesenv_aws_api_calls_total", `operation="CreateSession"`, `outcome="ok"`) > sessions &&
			s.get("rolesenv_credentials_expiry_timestamp_seconds") > expiry
	})
	scrapes = append(scrapes, s.text)

	// Rotation: detected, counted, and the command restarted.
	started := s.get("rolesenv_command_start_time_seconds")
	mustDo[string](t)(e.PutSecretValue("m/api", metricsSentinel+"-2"))
	s = waitMetric(t, base, "a rotation and a restart", func(s scrape) bool {
		return s.get("rolesenv_rotations_total") >= 1 &&
			s.get("rolesenv_command_restarts_total", `reason="change"`, `outcome="ok"`) == 1 &&
			s.get("rolesenv_command_up") == 1 && s.get("rolesenv_command_exits_total") == 1
	})
	scrapes = append(scrapes, s.text)
	if got := s.get("rolesenv_command_start_time_seconds"); got < started {
		t.Errorf("command start time went from %v to %v", started, got)
	}
	for i, text := range scrapes {
		promtoolCheck(t, text)
		if strings.Contains(text, "SENTINEL") {
			t.Errorf("scrape %d holds the secret:\n%s", i, text)
		}
	}
	if code := p.stop(); code != 0 {
		t.Errorf("exit %d", code)
	}
}

// TestRunMetricsUsage: --metrics-listen with --once, an address that is
// not one, and a port in use.
func TestRunMetricsUsage(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"run", "--once", "--metrics-listen", "9464", "true"}, exitcode.Usage, "--metrics-listen cannot be used with --once"},
		{[]string{"run", "--metrics-listen", "nowhere", "true"}, exitcode.Usage, "invalid --metrics-listen"},
		{[]string{"run", "--metrics-listen", ln.Addr().String(), "true"}, exitcode.Config, "--metrics-listen: failed to listen for metrics"},
	} {
		a := &app{stdin: strings.NewReader(""), stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}
		err := dispatch(t.Context(), a, tt.args)
		var stderr bytes.Buffer
		if err != nil {
			printError(&stderr, err)
		}
		if code := exitcode.Of(err); code != tt.code || !strings.Contains(stderr.String(), tt.want) {
			t.Errorf("%q: exit %d, %q; want %d, %q", tt.args, code, stderr.String(), tt.code, tt.want)
		}
		if tt.code == exitcode.Config && !errors.Is(err, syscall.EADDRINUSE) {
			t.Errorf("%q: %v does not wrap EADDRINUSE", tt.args, err)
		}
	}
}

// TestRunWatchdog: under a unit with WatchdogSec, rolesenv pings systemd
// while it watches; with WATCHDOG_PID naming another process, it does not.
// Either way the command does not inherit the watchdog's variables: they
// are rolesenv's, and a command that pinged would hide a stuck rolesenv.
func TestRunWatchdog(t *testing.T) {
	t.Parallel() // rolesenv runs as a subprocess with its own environment
	sock := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	pings := func(within time.Duration, want int) int {
		t.Helper()
		n, end, buf := 0, time.Now().Add(within), make([]byte, 4096)
		for n < want {
			_ = conn.SetReadDeadline(end)
			m, err := conn.Read(buf)
			if err != nil {
				return n
			}
			if strings.Contains(string(buf[:m]), "WATCHDOG=1") {
				n++
			}
		}
		return n
	}
	env := []string{"NOTIFY_SOCKET=" + sock, "WATCHDOG_USEC=200000"}
	p := startRun(t, env, "run", "--", "rolesenv-testchild", "printvars", "X", "WATCHDOG_USEC")
	p.waitOut("start X= WATCHDOG_USEC=")
	if out := strings.Join(p.lines(&p.out), "\n"); strings.Contains(out, "200000") {
		t.Errorf("the command inherited WATCHDOG_USEC: %q", out)
	}
	if n := pings(runDeadline, 3); n != 3 {
		t.Errorf("%d watchdog pings, want 3", n)
	}
	p.stop()

	for pings(10*time.Millisecond, 1) > 0 {
	}
	q := startRun(t, append(env, "WATCHDOG_PID=1"), "run", "--", "rolesenv-testchild", "printvars", "WATCHDOG_PID", "WATCHDOG_USEC")
	q.waitOut("start")
	if out := strings.Join(q.lines(&q.out), "\n"); !strings.Contains(out, "start WATCHDOG_PID= WATCHDOG_USEC=") || strings.Contains(out, "200000") {
		t.Errorf("the command inherited the watchdog's variables: %q", out)
	}
	if n := pings(time.Second, 1); n != 0 {
		t.Error("pinged for WATCHDOG_PID=1")
	}
	q.stop()
}

// TestMetricsCostNothingAtStartUp: internal/metrics does no work at
// package initialisation, so a rolesenv without --metrics-listen pays
// nothing for it (GODEBUG=inittrace lists every package that does).
func TestMetricsCostNothingAtStartUp(t *testing.T) {
	cmd := exec.Command(rolesenvBin(t), "version")
	cmd.Env = testenv.SafeEnv(t, "GODEBUG=inittrace=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if !strings.Contains(string(out), "init ") {
		t.Fatalf("no inittrace lines in %q", out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "rolesenv/internal/metrics ") {
			t.Errorf("package initialisation: %s", line)
		}
	}
}

// agreeWithCheck runs check --format json --describe-only with the same
// settings while the role is denied everything: every action check names
// is the service:operation of a series in the scrape, with the outcome
// that check's status and code mean.
func agreeWithCheck(t *testing.T, e *raEmulator, file string, s scrape) {
	t.Helper()
	args := append([]string{"check", "--format", "json", "--describe-only", "--env-file", file}, e.args(t)...)
	out, _ := rolesenvCmd(t, e.runEnv(), args...).Output() // exit 1: a check failed
	var doc struct{ Checks []check.Row }
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("check --format json: %v\n%s", err, out)
	}
	seen := 0
	for _, row := range doc.Checks {
		if row.Action == "" {
			continue
		}
		service, operation, _ := strings.Cut(row.Action, ":")
		outcome := "ok"
		if row.Status == check.Fail {
			outcome = "error"
			if inject.DeniedCode(row.Code) {
				outcome = "denied"
			}
		}
		labels := []string{`service="` + service + `"`, `operation="` + operation + `"`, `outcome="` + outcome + `"`}
		if s.get("rolesenv_aws_api_calls_total", labels...) == 0 {
			t.Errorf("check's %s (%s %s) has no series %v", row.Action, row.Status, row.Code, labels)
		}
		seen++
	}
	if seen < 2 {
		t.Errorf("check named %d actions, want CreateSession and DescribeSecret:\n%s", seen, out)
	}
}

// TestReadyThreshold: /readyz's threshold is three intervals or
// --max-stale, but never less than two successful checks can be apart
// (the interval with its jitter and a margin, and a check's timeout), so
// that a healthy rolesenv never flaps.
func TestReadyThreshold(t *testing.T) {
	for _, tt := range []struct {
		interval, maxStale, want time.Duration
	}{
		{5 * time.Minute, 0, 15 * time.Minute},
		{5 * time.Minute, 10 * time.Minute, 10 * time.Minute},
		// Just above the interval: the floor, 1.2 intervals and a 30 s check.
		{5 * time.Minute, 5*time.Minute + time.Second, 6*time.Minute + 30*time.Second},
		// A short interval: its check may still take 5 s.
		{time.Second, 0, 1200*time.Millisecond + 5*time.Second},
		{time.Minute, 10 * time.Minute, 3 * time.Minute},
	} {
		rf := &runFlags{interval: tt.interval, maxStale: tt.maxStale}
		if got := readyThreshold(rf); got != tt.want {
			t.Errorf("interval %v, max-stale %v: %v, want %v", tt.interval, tt.maxStale, got, tt.want)
		}
	}
}

// TestProviderName: the provider label is one of the SDK's fixed names,
// never a path the SDK appends, nor a name rolesenv does not know.
func TestProviderName(t *testing.T) {
	for in, want := range map[string]string{
		"SharedConfigCredentials: /home/u/.aws/credentials": "SharedConfigCredentials",
		"EnvConfigCredentials":                              "EnvConfigCredentials",
		"WebIdentityCredentials":                            "WebIdentityCredentials",
		"SSOProvider":                                       "SSOProvider",
		"example hard coded credentials":                    "other",
		"":                                                  "other",
	} {
		if got := providerName(in); got != want {
			t.Errorf("providerName(%q) = %q, want %q", in, got, want)
		}
	}
}

// waitTurns waits until the supervisor's loop has turned for d since
// the first scrape, so that d has passed in rolesenv's own time.
func waitTurns(t *testing.T, base string, d time.Duration) scrape {
	t.Helper()
	var from float64
	return waitMetric(t, base, fmt.Sprintf("%v of turns", d), func(s scrape) bool {
		turn := s.get("rolesenv_loop_last_turn_timestamp_seconds")
		if from == 0 {
			from = turn
		}
		return from > 0 && turn-from >= d.Seconds()
	})
}

// TestRunReadyWithNothingToPoll: with nothing to poll (no reference, or
// only references pinned to a version) no check ever comes, and the
// environment stays current: age 0, ready.
func TestRunReadyWithNothingToPoll(t *testing.T) {
	t.Parallel()
	e := newRAEmulator(t)
	mustDo[string](t)(e.CreateSecret("m/pinned", metricsSentinel+"-1"))
	v := mustDo[string](t)(e.PutSecretValue("m/pinned", metricsSentinel+"-2"))
	for name, tc := range map[string]struct {
		file string
		env  []string
		args []string
	}{
		"no references": {file: "A=plain\n"},
		"pinned":        {file: "P=sm://m/pinned?version=" + v + "\n", env: e.runEnv(), args: e.args(t)},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			file := writeEnvFile(t, tc.file)
			args := append([]string{"run", "--env-file", file, "--interval", "1s", "--metrics-listen", "0"}, tc.args...)
			p := startRun(t, tc.env, append(args, "--", "rolesenv-testchild", "printvars", "-hash", "A")...)
			base := p.metricsURL()
			p.waitOut("start")
			s := waitTurns(t, base, 3*time.Second) // past three intervals
			if age := s.get("rolesenv_environment_oldest_value_age_seconds"); age != 0 || s.get("rolesenv_ready") != 1 {
				t.Errorf("nothing to poll: age %v, ready %v; want 0 and 1", age, s.get("rolesenv_ready"))
			}
			if code, body := getURL(t, base+"/readyz"); code != http.StatusOK {
				t.Errorf("/readyz %d %q", code, body)
			}
			if n := s.get("rolesenv_checks_total"); n != 0 {
				t.Errorf("%v checks with nothing to poll", n)
			}
			p.stop()
		})
	}
}

// TestRunStaleUntilApplied: a rotation the command has not received
// (with --on-change none; past the restart budget) ages its environment
// however many checks succeed, until /readyz says not ready; a restart
// with the new values makes it current again.
func TestRunStaleUntilApplied(t *testing.T) {
	t.Parallel()
	for name, extra := range map[string][]string{
		"on-change none": {"--on-change", "none"},
		"restart budget": {"--max-restarts", "1", "--restart-window", "1h"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newRAEmulator(t)
			mustDo[string](t)(e.CreateSecret("m/api", metricsSentinel+"-1"))
			file := writeEnvFile(t, "API=sm://m/api\n")
			args := append([]string{"run", "--env-file", file, "--interval", "1s", "--debounce", "0s", "--metrics-listen", "0"}, extra...)
			p := startRun(t, e.runEnv(), append(append(args, e.args(t)...), "--", "rolesenv-testchild", "printvars", "-hash", "API")...)
			base := p.metricsURL()
			p.waitOut("start")
			waitProbe(t, base, "/readyz", http.StatusOK)
			if extra[0] == "--max-restarts" { // the budget's one restart applies the first rotation
				mustDo[string](t)(e.PutSecretValue("m/api", metricsSentinel+"-2"))
				waitMetric(t, base, "a restart", func(s scrape) bool {
					return s.get("rolesenv_command_restarts_total", `outcome="ok"`) == 1
				})
				waitProbe(t, base, "/readyz", http.StatusOK)
			}
			rotations := scrapeMetrics(t, base).get("rolesenv_rotations_total")
			mustDo[string](t)(e.PutSecretValue("m/api", metricsSentinel+"-3"))
			var checks float64
			waitMetric(t, base, "aging of the environment", func(s scrape) bool {
				if s.get("rolesenv_rotations_total") <= rotations {
					return false
				}
				if checks == 0 {
					checks = s.get("rolesenv_checks_total", `outcome="ok"`)
				}
				// Successful checks since the rotation do not make it current.
				return s.get("rolesenv_checks_total", `outcome="ok"`) >= checks+2 &&
					s.get("rolesenv_environment_oldest_value_age_seconds") >= 2
			})
			waitProbe(t, base, "/readyz", http.StatusServiceUnavailable)
			p.stop()
		})
	}
}

// TestRunMetricsWebIdentity: with the default chain's web identity
// credentials (moto as STS), the STS call the chain makes inside the
// SDK's configuration loading is counted too, and the provider label is
// the SDK's fixed name.
func TestRunMetricsWebIdentity(t *testing.T) {
	t.Parallel()
	m := testenv.StartMoto(t)
	setup := []string{"AWS_ENDPOINT_URL=" + m.URL, "AWS_ACCESS_KEY_ID=setup", "AWS_SECRET_ACCESS_KEY=setup"}
	awsCLI(t, setup, "secretsmanager", "create-secret", "--name", "app/api", "--secret-string", metricsSentinel)
	token := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(token, []byte("a-web-identity-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	// STS comes by its own variable: the chain's client is made before
	// AWS_ENDPOINT_URL is read.
	env := []string{"AWS_ENDPOINT_URL=" + m.URL, "AWS_ENDPOINT_URL_STS=" + m.URL, "AWS_ROLE_ARN=arn:aws:iam::123456789012:role/app",
		"AWS_WEB_IDENTITY_TOKEN_FILE=" + token, "AWS_ROLE_SESSION_NAME=rolesenv-test"}
	file := writeEnvFile(t, "API=sm://app/api\n")
	p := startRun(t, env, "run", "--env-file", file, "--interval", "1h", "--metrics-listen", "0",
		"--", "rolesenv-testchild", "printvars", "-hash", "API")
	base := p.metricsURL()
	p.waitOut("start API=")
	s := scrapeMetrics(t, base)
	if n := s.get("rolesenv_aws_api_calls_total", `service="sts"`, `operation="AssumeRoleWithWebIdentity"`, `outcome="ok"`); n < 1 {
		t.Errorf("the chain's AssumeRoleWithWebIdentity is not counted:\n%s", s.text)
	}
	if s.get("rolesenv_credentials_expiry_timestamp_seconds", `source="default-chain"`, `provider="WebIdentityCredentials"`) == 0 {
		t.Errorf("no web identity credentials:\n%s", s.text)
	}
	if strings.Contains(s.text, "SENTINEL") || strings.Contains(s.text, token) {
		t.Errorf("the scrape holds the secret or the token's path:\n%s", s.text)
	}
	promtoolCheck(t, s.text)
	p.stop()
}

// TestWatcherLiveness: the watchdog's view of the watcher: alive before
// it runs and while its last turn is within the bound, not after.
func TestWatcherLiveness(t *testing.T) {
	var l liveness
	if !l.alive() {
		t.Error("not alive before watching")
	}
	l.beat(time.Hour)
	if !l.alive() {
		t.Error("not alive just after a turn")
	}
	l.beat(-time.Nanosecond) // a bound already past
	if l.alive() {
		t.Error("alive past the bound")
	}
	if b := watcherBound(5 * time.Minute); b < 30*time.Second+heartbeat {
		t.Errorf("bound %v: shorter than a check's timeout and a heartbeat", b)
	}
}
