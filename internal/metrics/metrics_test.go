package metrics

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rolesenv/rolesenv/internal/testenv"
)

// clock is a settable time for a State.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newTestState() (*State, *clock) {
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	return newAt("1.2.3", c.now), c
}

func text(t *testing.T, s *State) string {
	t.Helper()
	var b bytes.Buffer
	if err := s.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// promtool checks the text format and Prometheus's naming conventions.
func promtool(t *testing.T, out string) {
	t.Helper()
	bin := testenv.RequireTool(t, "promtool")
	cmd := exec.Command(bin, "check", "metrics")
	cmd.Stdin = strings.NewReader(out)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s\n--- text:\n%s", err, msg, out)
	}
}

// TestTextFormat: every family, empty and then filled, passes promtool,
// and the values are the ones recorded.
func TestTextFormat(t *testing.T) {
	s, c := newTestState()
	promtool(t, text(t, s))
	s.Credentials(c.now().Add(time.Hour), "default-chain", "SharedConfigCredentials")
	s.Check(c.now(), true, 0)
	c.add(10 * time.Second)
	s.Check(c.now(), false, 1)
	s.Rotated(2)
	s.CommandStarted(c.now())
	s.CommandExited(true)
	s.Restart("change", "ok")
	s.Reload("change", "failed")
	s.APICall("secretsmanager", "DescribeSecret", OutcomeThrottled, 30*time.Millisecond)
	s.APICall("secretsmanager", "DescribeSecret", OutcomeOK, time.Minute)
	s.Beat(time.Second)
	s.SetReadyThreshold(time.Minute)
	out := text(t, s)
	promtool(t, out)
	for _, want := range []string{
		`rolesenv_build_info{version="1.2.3",goversion="go`,
		`rolesenv_credentials_expiry_timestamp_seconds{source="default-chain",provider="SharedConfigCredentials"} 1.8000036e+09`,
		"rolesenv_check_last_success_timestamp_seconds 1.8e+09\n",
		"rolesenv_check_consecutive_failures 1\n",
		`rolesenv_checks_total{outcome="failed"} 1`,
		"rolesenv_environment_oldest_value_age_seconds 10\n",
		"rolesenv_rotations_total 2\n",
		"rolesenv_command_up 0\n",
		`rolesenv_command_exits_total{how="signaled"} 1`,
		`rolesenv_command_restarts_total{reason="change",outcome="ok"} 1`,
		`rolesenv_command_reloads_total{reason="change",outcome="failed"} 1`,
		`rolesenv_aws_api_calls_total{service="secretsmanager",operation="DescribeSecret",outcome="throttled"} 1`,
		`rolesenv_aws_api_call_duration_seconds_bucket{service="secretsmanager",operation="DescribeSecret",le="0.05"} 1`,
		`rolesenv_aws_api_call_duration_seconds_bucket{service="secretsmanager",operation="DescribeSecret",le="30"} 1`,
		`rolesenv_aws_api_call_duration_seconds_bucket{service="secretsmanager",operation="DescribeSecret",le="+Inf"} 2`,
		`rolesenv_aws_api_call_duration_seconds_sum{service="secretsmanager",operation="DescribeSecret"} 60.03`,
		"rolesenv_ready 0\n",
		"rolesenv_ready_max_age_seconds 60\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
}

// TestCardinalityIsBounded: whatever label values come, the API call
// metrics hold at most MaxOperations service and operation pairs plus
// "other"; the outcome is kept, and the counter and the histogram agree.
func TestCardinalityIsBounded(t *testing.T) {
	s, _ := newTestState()
	outcomes := []string{OutcomeOK, OutcomeThrottled, OutcomeDenied, OutcomeError}
	for i := range 10 * MaxSeries {
		s.APICall("svc", fmt.Sprintf("Op%d", i), outcomes[i%4], time.Millisecond)
	}
	out := text(t, s)
	if n := strings.Count(out, "rolesenv_aws_api_calls_total{"); n > MaxSeries {
		t.Errorf("%d series, want at most %d", n, MaxSeries)
	}
	if n := strings.Count(out, "rolesenv_aws_api_call_duration_seconds_count{"); n != MaxOperations+1 {
		t.Errorf("%d histograms, want %d", n, MaxOperations+1)
	}
	folded := 10*MaxSeries - MaxOperations
	for _, o := range outcomes {
		want := fmt.Sprintf(`rolesenv_aws_api_calls_total{service="other",operation="other",outcome="%s"} `, o)
		if !strings.Contains(out, want) {
			t.Errorf("no %q", want)
		}
	}
	want := fmt.Sprintf(`rolesenv_aws_api_call_duration_seconds_count{service="other",operation="other"} %d`, folded)
	if !strings.Contains(out, want) {
		t.Errorf("no %q", want)
	}
	promtool(t, out)
}

// TestNothingToPollIsCurrent: with nothing to poll no check ever comes,
// and the environment stays current and ready however long it runs.
func TestNothingToPollIsCurrent(t *testing.T) {
	s, c := newTestState()
	s.SetReadyThreshold(3 * time.Second)
	s.Loaded(c.now())
	s.Polled(false)
	s.CommandStarted(c.now())
	c.add(time.Hour)
	if ok, why := s.Ready(c.now()); !ok {
		t.Errorf("nothing to poll, after an hour: %s", why)
	}
	if got := s.envAge(c.now()); got != 0 {
		t.Errorf("age %v, want 0", got)
	}
	// A changed env file's new environment, not applied yet, ages it.
	n := s.Changed(c.now())
	c.add(4 * time.Second)
	if ok, _ := s.Ready(c.now()); ok {
		t.Error("ready while the command lacks the new environment")
	}
	s.Applied(n)
	if ok, why := s.Ready(c.now()); !ok {
		t.Errorf("applied: %s", why)
	}
}

// TestStaleUntilApplied: a check that sent a new environment does not
// make the command's environment current; only the command's start with
// the newest one does.
func TestStaleUntilApplied(t *testing.T) {
	s, c := newTestState()
	s.SetReadyThreshold(3 * time.Second)
	s.Loaded(c.now())
	s.Polled(true)
	s.CommandStarted(c.now())
	c.add(time.Second)
	first := s.Changed(c.now())
	s.Check(c.now(), true, 0)
	c.add(time.Second)
	second := s.Changed(c.now())
	for range 3 {
		c.add(time.Second)
		s.Check(c.now(), true, 0)
	}
	if got := s.envAge(c.now()); got != 4*time.Second {
		t.Errorf("age %v, want 4s: since the first change not applied", got)
	}
	if ok, _ := s.Ready(c.now()); ok {
		t.Error("ready while the command runs on rotated-away values")
	}
	s.Applied(first) // a start with the first; the second is on its way
	if ok, _ := s.Ready(c.now()); ok {
		t.Error("ready while the newest environment is on its way")
	}
	s.Applied(second)
	if ok, why := s.Ready(c.now()); !ok {
		t.Errorf("applied: %s", why)
	}
}

// TestStartUpLimit: /healthz says starting until start-up's limit, then
// unhealthy, and healthy again once the loop runs.
func TestStartUpLimit(t *testing.T) {
	s, c := newTestState()
	s.SetStartUpLimit(30 * time.Second)
	c.add(29 * time.Second)
	if ok, why := s.Healthy(c.now()); !ok {
		t.Errorf("within the limit: %s", why)
	}
	c.add(2 * time.Second)
	if ok, _ := s.Healthy(c.now()); ok {
		t.Error("healthy with start-up past its limit")
	}
	s.Beat(time.Second)
	if ok, why := s.Healthy(c.now()); !ok {
		t.Errorf("loop running: %s", why)
	}
}

// TestWatcherHealth: a watcher that stops turning for longer than its
// bound makes rolesenv unhealthy, though the supervisor's loop turns.
func TestWatcherHealth(t *testing.T) {
	s, c := newTestState()
	s.Beat(time.Second)
	s.Watched(10 * time.Second)
	c.add(9 * time.Second)
	s.Beat(time.Second)
	if ok, why := s.Healthy(c.now()); !ok {
		t.Errorf("within the bound: %s", why)
	}
	c.add(2 * time.Second)
	s.Beat(time.Second)
	if ok, why := s.Healthy(c.now()); ok || !strings.Contains(why, "watcher") {
		t.Errorf("watcher stuck for 11s of 10s: %v %q", ok, why)
	}
	s.Watched(10 * time.Second)
	if ok, why := s.Healthy(c.now()); !ok {
		t.Errorf("watcher turning again: %s", why)
	}
}

// TestLabelsAreEscaped: a label value cannot break the format.
func TestLabelsAreEscaped(t *testing.T) {
	s, _ := newTestState()
	s.Restart("a\"b\\c\nd", "ok")
	out := text(t, s)
	if !strings.Contains(out, `reason="a\"b\\c\nd"`) {
		t.Errorf("not escaped:\n%s", out)
	}
	promtool(t, out)
}

// TestHealthAndReadiness: healthy while starting and while the loop
// turns, not after three missed turns; ready only while the command runs
// on an environment no older than the threshold, and again on recovery.
func TestHealthAndReadiness(t *testing.T) {
	s, c := newTestState()
	s.SetReadyThreshold(3 * time.Second)
	if ok, why := s.Healthy(c.now()); !ok {
		t.Errorf("starting: %s", why)
	}
	if ok, _ := s.Ready(c.now()); ok {
		t.Error("ready before the command runs")
	}
	s.Beat(time.Second)
	s.Loaded(c.now())
	s.CommandStarted(c.now())
	if ok, why := s.Ready(c.now()); !ok {
		t.Errorf("fresh: %s", why)
	}
	c.add(4 * time.Second)
	if ok, _ := s.Healthy(c.now()); ok {
		t.Error("healthy after four seconds without a turn")
	}
	if ok, _ := s.Ready(c.now()); ok {
		t.Error("ready with a four-second-old environment")
	}
	s.Beat(time.Second)
	s.Check(c.now(), false, 1)
	if ok, _ := s.Ready(c.now()); ok {
		t.Error("ready after a failed check")
	}
	s.Check(c.now(), true, 0)
	if ok, why := s.Healthy(c.now()); !ok {
		t.Errorf("turning again: %s", why)
	}
	if ok, why := s.Ready(c.now()); !ok {
		t.Errorf("recovered: %s", why)
	}
	s.CommandExited(false)
	if ok, _ := s.Ready(c.now()); ok {
		t.Error("ready without a command")
	}
}

func TestListenAddr(t *testing.T) {
	for in, want := range map[string]string{
		"9464":           "127.0.0.1:9464",
		":9464":          "127.0.0.1:9464",
		"0":              "127.0.0.1:0",
		"0.0.0.0:9464":   "0.0.0.0:9464",
		"[::1]:9464":     "[::1]:9464",
		"localhost:9464": "localhost:9464",
	} {
		if got, err := ListenAddr(in); err != nil || got != want {
			t.Errorf("ListenAddr(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "host", "99999", "host:port", "1.2.3.4:70000"} {
		if got, err := ListenAddr(bad); err == nil {
			t.Errorf("ListenAddr(%q) = %q, want an error", bad, got)
		}
	}
}

func serve(t *testing.T, s *State, o ServerOptions) string {
	t.Helper()
	srv, err := Serve("127.0.0.1:0", s, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv.Addr()
}

// TestEndpoint: GET and HEAD of the three paths; any other method is 405,
// any other path 404.
func TestEndpoint(t *testing.T) {
	s, _ := newTestState()
	addr := serve(t, s, ServerOptions{})
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/metrics", 200}, {"HEAD", "/metrics", 200}, {"GET", "/healthz", 200},
		{"GET", "/readyz", 503}, {"POST", "/metrics", 405}, {"PUT", "/healthz", 405},
		{"DELETE", "/readyz", 405}, {"GET", "/", 404}, {"GET", "/debug/pprof/", 404},
	} {
		req, _ := http.NewRequest(tc.method, "http://"+addr+tc.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s %s: %d %q, want %d", tc.method, tc.path, resp.StatusCode, body, tc.want)
		}
		if tc.path == "/metrics" && tc.method == "GET" && !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain; version=0.0.4") {
			t.Errorf("content type %q", resp.Header.Get("Content-Type"))
		}
	}
}

// TestSlowHeadersAreCutOff: a connection that never finishes its headers
// is closed after the header timeout, not held.
func TestSlowHeadersAreCutOff(t *testing.T) {
	s, _ := newTestState()
	const timeout = 200 * time.Millisecond
	addr := serve(t, s, ServerOptions{HeaderTimeout: timeout})
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /metrics HTTP/1.1\r\nHost: x\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(timeout + 10*time.Second))
	start := time.Now()
	_, err = io.ReadAll(conn)
	if err != nil {
		t.Fatalf("the connection was not closed: %v", err)
	}
	if took := time.Since(start); took < timeout/2 {
		t.Errorf("closed after %v, before the header timeout", took)
	}
}

// TestLargeHeadersAreRefused: headers past 8 KiB get 431.
func TestLargeHeadersAreRefused(t *testing.T) {
	s, _ := newTestState()
	addr := serve(t, s, ServerOptions{})
	req, _ := http.NewRequest("GET", "http://"+addr+"/metrics", nil)
	req.Header.Set("X-Big", strings.Repeat("a", 2*maxHeaderBytes))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("status %d", resp.StatusCode)
	}
}

// TestConnectionCap: at the cap, a further connection is not served until
// one closes; it waits in the backlog rather than failing.
func TestConnectionCap(t *testing.T) {
	s, _ := newTestState()
	addr := serve(t, s, ServerOptions{MaxConns: 2})
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		held = append(held, c)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(c).ReadString('\n')
		lines <- l
	}()
	select {
	case l := <-lines:
		t.Fatalf("served past the cap: %q", l)
	case <-time.After(300 * time.Millisecond): // an absence, checked for a while
	}
	held[0].Close()
	select {
	case l := <-lines:
		if !strings.HasPrefix(l, "HTTP/1.1 200") {
			t.Errorf("answer %q", l)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("not served once a slot was free")
	}
}

// TestUpdatesNeverWaitForAScrape: updates go on, at full speed, while
// scrapes run without pause; the race detector checks the rest.
func TestUpdatesNeverWaitForAScrape(t *testing.T) {
	s, c := newTestState()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 2000 {
			s.APICall("ssm", "GetParameters", OutcomeOK, time.Millisecond)
			s.Check(c.now(), true, 0)
			s.Beat(time.Second)
		}
	}()
	for {
		_ = text(t, s)
		select {
		case <-done:
			if out := text(t, s); !strings.Contains(out, `rolesenv_checks_total{outcome="ok"} 2000`) {
				t.Errorf("lost updates:\n%s", out)
			}
			return
		default:
		}
	}
}

// TestServerLimits: idle keep-alive connections are closed after 5 s, so
// that they do not hold the connection slots, and the HTTP server's own
// error lines, which a remote client can cause at will, are logged at
// debug level only.
func TestServerLimits(t *testing.T) {
	s, _ := newTestState()
	var logged bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelInfo}))
	srv, err := Serve("127.0.0.1:0", s, ServerOptions{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if d := srv.srv.IdleTimeout; d <= 0 || d > 5*time.Second {
		t.Errorf("idle timeout %v, want at most 5s", d)
	}
	srv.srv.ErrorLog.Print("http: TLS handshake error from 10.0.0.1:1234: EOF")
	if logged.Len() != 0 {
		t.Errorf("a client's error logged above debug level: %s", logged.String())
	}
}
