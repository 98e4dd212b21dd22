package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rolesenv/rolesenv/inject"
	"github.com/rolesenv/rolesenv/signer"
)

func TestExpectedCalls(t *testing.T) {
	for _, tc := range []struct {
		s    size
		c    creds
		want int
	}{
		{size1, credStatic, 1},
		{size10, credStatic, 10},
		{size50, credStatic, 3},
		{size200, credRA, 11},
		{sizeMix, credStatic, 3},
		{sizeFleet, credRA, 12},
	} {
		if got := expectedCalls(tc.s, tc.c); got != tc.want {
			t.Errorf("expectedCalls(%s, %s) = %d, want %d", tc.s.name, tc.c, got, tc.want)
		}
	}
}

func TestBaselineRuns(t *testing.T) {
	if got := baselineRuns(size1, 0, 8); got != 8 {
		t.Errorf("fast baseline: %d runs, want all 8", got)
	}
	// 200 round trips of 100 ms: 20 s a sample, one sample.
	if got := baselineRuns(size200, 100*time.Millisecond, 8); got != 1 {
		t.Errorf("slow baseline: %d runs, want 1", got)
	}
	// 50 of 20 ms: about 1.1 s a sample, 5 in 6 s.
	if got := baselineRuns(size50, 20*time.Millisecond, 8); got != 5 {
		t.Errorf("50 at 20 ms: %d runs, want 5", got)
	}
}

func ms2(v ...int) sample {
	var s sample
	for _, x := range v {
		s = append(s, time.Duration(x)*time.Millisecond)
	}
	return s
}

// TestMarkdown renders a report from made-up numbers: every section is
// there, no format verb is left broken, and the targets are judged.
func TestMarkdown(t *testing.T) {
	r := &report{command: "make bench", began: time.Now(), machine: machine{cpu: "cpu", cores: 2}, roots: ms2(11), rootsIndex: ms2(3)}
	for _, c := range []creds{credStatic, credRA} {
		for _, m := range []latencyMode{viaEmulator, viaToxiproxy} {
			r.exec = append(r.exec, &execCell{size: size50, mode: m, rtt: 20 * time.Millisecond, creds: c,
				rolesenv: ms2(60, 62, 64), floor: ms2(45, 46, 47), baseline: ms2(1100), calls: []int64{3, 3, 3}})
		}
	}
	r.exec = append(r.exec, &execCell{size: size50, mode: viaToxiproxy, rtt: 20 * time.Millisecond, creds: credRA, trust: trustBundle,
		rolesenv: ms2(90), floor: ms2(60), calls: []int64{4}})
	r.overhead = &overhead{bare: ms2(1, 1), once: ms2(9, 10), watching: ms2(8, 8), binarySize: 13e6, initTime: 4 * time.Millisecond}
	r.footprint = &footprint{refs: 50, interval: time.Second, window: time.Minute, maxRSS: 24000, anon: 12000, file: 12000, polls: 60,
		cpu: time.Second, calls: counts{Calls: map[string]int64{opDescribe: 3000}}, idleWindow: 20 * time.Second}
	r.polls = []*pollRow{{size: size10, polls: 3, idle: map[string]int64{opDescribe: 30},
		changed: map[string]int64{opDescribe: 10, opGet: 1}, changes: 1}}
	r.fleetStarts = []*fleetStart{{name: "documented quotas", instances: 1000, sessionTPS: 10, failedFirst: 690,
		reasons: map[string]int{"deadline before credentials": 900, "GetParameters ThrottlingException": 3}, durations: ms2(100, 200), allStarted: time.Minute,
		startedAt: sample{10 * time.Second, 29 * time.Second, 40 * time.Second},
		calls:     counts{Calls: map[string]int64{opSession: 9000}, Throttled: map[string]int64{opSession: 8000}}},
		{name: "CreateSession quota raised", instances: 1000, sessionTPS: 100, durations: ms2(100, 9000), allStarted: 20 * time.Second}}
	perSecond := make([]int, 3600)
	scheduled := make([]int, 3600)
	for i := range perSecond {
		perSecond[i] = 30 + i%20
		scheduled[i] = 33 + i%3
	}
	r.fleetHour = &fleetHour{instances: 1000, scale: 20, interval: 5 * time.Minute, spread: 10 * time.Second, real: 3 * time.Minute,
		perSecond: perSecond, scheduled: scheduled, checksPerInst: 11.6}
	md := r.markdown()
	for _, want := range []string{"## Targets", "## What the numbers decided", "## 1. Time to exec", "## 2. Wrapper overhead",
		"## 3. Supervisor footprint", "## 4. Poll cost", "## 5. Fleet", "## Variation", "**met**", "**missed**"} {
		if !strings.Contains(md, want) {
			t.Errorf("the report has no %q", want)
		}
	}
	if i := strings.Index(md, "%!"); i >= 0 {
		t.Errorf("a broken format verb: %q", md[max(0, i-80):min(len(md), i+40)])
	}
	// 62 ms against a floor of 46: 16 ms over, within one 20 ms RTT.
	if !strings.Contains(md, "floor + 16.0 ms | **met** (4.00 ms to spare)") {
		t.Errorf("the static target is not judged as expected:\n%s", md[:min(len(md), 3000)])
	}
	// 24 MB against 20.
	if !strings.Contains(md, "24000") && !strings.Contains(md, "23.4 MB") {
		t.Errorf("the RSS is not reported")
	}
	// The fleet: the documented quota's arithmetic, and the raised one met.
	for _, want := range []string{
		"CreateSession's quota is 10 a second: the fleet's 1,000 calls take at least 100 s, more than the start-up deadline",
		"about 310 instances start", "2 did.", "at least instances / deadline, 34 a second",
		"| fleet of 1000: zero failed starts (CreateSession quota raised, CreateSession 100/s) | 0 of 1000 first starts failed; the slowest start took 9.0 s of the 30s deadline | **met** (21.0 s to spare)",
		"per simulated second 1.24× as sent, 1.03× as scheduled",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("the report has no %q", want)
		}
	}
	if t.Failed() {
		t.Logf("the report:\n%s", md)
	}
}

func TestFailureKind(t *testing.T) {
	deadline := fmt.Errorf("operation error: %w", context.DeadlineExceeded)
	for _, tc := range []struct {
		err      error
		gotCreds bool
		want     string
	}{
		{&inject.ResolveError{Ref: "sm://a", Err: &signer.APIError{Code: "TooManyRequestsException"}}, false, "CreateSession TooManyRequestsException"},
		{&inject.ResolveError{Ref: "sm://a", Err: deadline}, false, "deadline before credentials"},
		{&inject.ResolveError{Ref: "ssm:///p", Code: "ThrottlingException", Err: errors.New("throttled")}, true, "GetParameters ThrottlingException"},
		{&inject.ResolveError{Ref: "sm://a", Code: "ThrottlingException", Err: errors.New("throttled")}, true, "GetSecretValue ThrottlingException"},
		{&inject.ResolveError{Ref: "ssm:///p", Err: deadline}, true, "deadline during GetParameters"},
		{deadline, true, "start-up deadline"},
	} {
		if got := failureKind(tc.err, tc.gotCreds); got != tc.want {
			t.Errorf("failureKind(%v, %v) = %q, want %q", tc.err, tc.gotCreds, got, tc.want)
		}
	}
}

func TestStartNeeds(t *testing.T) {
	// 1,000 instances of 10 secrets and 2 parameters: CreateSession at
	// 10/s takes 100 s, GetParameters at 40/s 25 s, GetSecretValue 1 s.
	needs := startNeeds(1000, 10)
	if needs[0].call != "CreateSession" || needs[0].seconds(1000) != 100 {
		t.Errorf("first need %s %.1f s, want CreateSession 100 s", needs[0].call, needs[0].seconds(1000))
	}
	if needs[1].call != "GetParameters" || needs[1].seconds(1000) != 25 {
		t.Errorf("second need %s %.1f s, want GetParameters 25 s", needs[1].call, needs[1].seconds(1000))
	}
	if needs := startNeeds(1000, 100); needs[0].call != "GetParameters" {
		t.Errorf("with CreateSession at 100/s the longest need is %s, want GetParameters", needs[0].call)
	}
}

func TestNum(t *testing.T) {
	for v, want := range map[float64]string{7: "7", 100: "100", 1000: "1,000", 40000: "40,000", 1234567: "1,234,567"} {
		if got := num(v); got != want {
			t.Errorf("num(%v) = %q, want %q", v, got, want)
		}
	}
	if got := possessive("GetParameters") + " " + possessive("CreateSession"); got != "GetParameters' CreateSession's" {
		t.Errorf("possessive: %q", got)
	}
}

// TestEndedGeneration: once a start's process has ended, what it left
// running cannot reach the emulator any more.
func TestEndedGeneration(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	g := &generation{tr: &http.Transport{}}
	c := &http.Client{Transport: endable{g}}
	resp, err := c.Get(srv.URL)
	if err != nil {
		t.Fatalf("a live generation's request failed: %v", err)
	}
	resp.Body.Close()
	g.end()
	if _, err := c.Get(srv.URL); !errors.Is(err, errEnded) {
		t.Errorf("an ended generation's request: %v, want errEnded", err)
	}
}

func TestParseInitTrace(t *testing.T) {
	st := parseInitTrace("init internal/bytealg @0.006 ms, 0.004 ms clock, 0 bytes, 0 allocs\n" +
		"init github.com/aws/aws-sdk-go-v2/service/ssm/schemas @3.5 ms, 1.9 ms clock, 1441240 bytes, 7936 allocs\n" +
		"rolesenv dev\n" +
		"init net/http @4.7 ms, 0.033 ms clock, 4712 bytes, 49 allocs\n")
	if st.bytes != 1441240+4712 || st.top != "github.com/aws/aws-sdk-go-v2/service/ssm/schemas" || st.topBytes != 1441240 {
		t.Errorf("parseInitTrace = %+v", st)
	}
	if want := 1937 * time.Microsecond; st.time < want-time.Microsecond || st.time > want+time.Microsecond {
		t.Errorf("init time %v, want %v", st.time, want)
	}
}

func TestParseGCTrace(t *testing.T) {
	text := "time=... level=INFO msg=\"child started\"\n" +
		"gc 21 @30.522s 0%: 0.063+0.84+0.002 ms clock, 0.12+0.070/0.32/0.86+0.005 ms cpu, 5->5->2 MB, 6 MB goal, 0 MB stacks, 0 MB globals, 2 P\n" +
		"gc 22 @31.664s 0%: 0.074+0.87+0.002 ms clock, 0.14+0.020/0.32/0.84+0.004 ms cpu, 4->4->3 MB, 4 MB goal, 0 MB stacks, 0 MB globals, 2 P\n"
	if got := parseGCTrace(text); got != (gcStats{n: 2, live: 3, goal: 4}) {
		t.Errorf("parseGCTrace = %+v", got)
	}
	if got := lastLine(text); !strings.Contains(got, "child started") {
		t.Errorf("lastLine = %q, want the last line that is not gctrace's", got)
	}
}

func TestCredprocTarget(t *testing.T) {
	result := func(bare, sdk, version, cached float64) *report {
		at := func(ms float64) sample { return sample{time.Duration(ms * float64(time.Millisecond))} }
		runs := []*credprocRun{{name: cpBare, wall: at(bare)}, {name: cpSDK, wall: at(sdk)},
			{name: cpVersion, wall: at(version)}, {name: cpCached, wall: at(cached)}}
		return &report{credproc: &credprocResult{runs: runs}}
	}
	for _, tc := range []struct {
		name                     string
		bare, sdk, version, call float64
		ok                       bool
		want                     string
	}{
		{"met", 3, 6, 7, 7.5, true, "7.50 ms; bare Go binary 3.00 ms; 4.50 ms over; Go binary linking rolesenv's AWS SDK packages 6.00 ms, so rolesenv's cached call is 1.50 ms over it"},
		{"the SDK alone is over", 3, 9, 9.5, 10, false, "Not reachable for any Go program linking the SDK's packages: a program that links rolesenv's third-party packages and only writes one line starts 6.00 ms after the bare binary, 1.00 ms over the 5 ms before it does anything. That is the reason, in numbers; rolesenv's cached call adds 1.00 ms to it, within 5 ms of that program."},
		{"rolesenv's part is over", 3, 6, 8, 10, false, "Linking the SDK's packages takes 3.00 ms of the 5 (a program that links them and only writes one line, over the bare binary); rolesenv's cached call adds 4.00 ms to that, 2.00 ms more than the 2.00 ms left."},
	} {
		rows := result(tc.bare, tc.sdk, tc.version, tc.call).credprocTargetRows()
		if len(rows) != 1 {
			t.Fatalf("%s: %d rows, want 1", tc.name, len(rows))
		}
		row := rows[0]
		if row.ok != tc.ok {
			t.Errorf("%s: ok = %v, want %v", tc.name, row.ok, tc.ok)
		}
		if !strings.Contains(row.measured+" "+row.why, tc.want) {
			t.Errorf("%s: the row says\n%s\n%s\nwant %q in it", tc.name, row.measured, row.why, tc.want)
		}
	}
}
