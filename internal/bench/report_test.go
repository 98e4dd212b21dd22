package main

import (
	"strings"
	"testing"
	"time"
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
	r := &report{command: "make bench", began: time.Now(), machine: machine{cpu: "cpu", cores: 2}, roots: ms2(11)}
	for _, c := range []creds{credStatic, credRA} {
		for _, m := range []latencyMode{viaEmulator, viaToxiproxy} {
			r.exec = append(r.exec, &execCell{size: size50, mode: m, rtt: 20 * time.Millisecond, creds: c,
				rolesenv: ms2(60, 62, 64), floor: ms2(45, 46, 47), baseline: ms2(1100), calls: []int64{3, 3, 3}})
		}
	}
	r.exec = append(r.exec, &execCell{size: size50, mode: viaToxiproxy, rtt: 20 * time.Millisecond, creds: credRA, trust: trustBundle,
		rolesenv: ms2(90), floor: ms2(60), calls: []int64{4}})
	r.overhead = &overhead{bare: ms2(1, 1), once: ms2(9, 10), watching: ms2(8, 8), binarySize: 13e6, initTime: 4 * time.Millisecond}
	r.footprint = &footprint{refs: 50, window: time.Minute, maxRSS: 24000, anon: 12000, file: 12000, polls: 60,
		cpu: time.Second, calls: counts{Calls: map[string]int64{opDescribe: 3000}}, idleWindow: 20 * time.Second}
	r.polls = []*pollRow{{size: size10, polls: 3, idle: map[string]int64{opDescribe: 30},
		changed: map[string]int64{opDescribe: 10, opGet: 1}, changes: 1}}
	r.fleetStarts = []*fleetStart{{name: "documented quotas", instances: 1000, sessionTPS: 10, failedFirst: 900,
		reasons: map[string]int{"CreateSession TooManyRequestsException": 900}, durations: ms2(100, 200), allStarted: time.Minute,
		calls: counts{Calls: map[string]int64{opSession: 9000}, Throttled: map[string]int64{opSession: 8000}}}}
	perSecond := make([]int, 3600)
	checks := make([]int, 3600)
	for i := range perSecond {
		perSecond[i] = 30 + i%20
		checks[i] = 3 + i%3
	}
	r.fleetHour = &fleetHour{instances: 1000, scale: 60, interval: 5 * time.Minute, real: time.Minute,
		perSecond: perSecond, checks: checks, checksPerInst: 12}
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
}
