package main

import (
	"strings"
	"testing"
	"time"
)

// TestInitCosts: each group is the median over the runs of its packages'
// sum, the groups sorted by cost, with their costliest package.
func TestInitCosts(t *testing.T) {
	run := func(ssm, sm, own time.Duration) initStats {
		return initStats{pkgs: map[string]initPkg{
			"github.com/aws/aws-sdk-go-v2/service/ssm/schemas":            {time: ssm, bytes: 1000},
			"github.com/aws/aws-sdk-go-v2/service/ssm/internal/endpoints": {time: ssm / 10, bytes: 10},
			"github.com/aws/aws-sdk-go-v2/service/secretsmanager":         {time: sm, bytes: 100},
			"github.com/rolesenv/rolesenv/signer":                         {time: own, bytes: 1},
			"net/http":                                                    {time: own, bytes: 1},
		}}
	}
	ms := time.Millisecond
	costs := initCosts([]initStats{run(2*ms, ms/2, ms/10), run(4*ms, ms/2, ms/10), run(3*ms, ms/2, ms/10)})
	if len(costs) != 4 {
		t.Fatalf("%d groups, want 4: %+v", len(costs), costs)
	}
	first := costs[0]
	if initGroups[first.group].name != "Parameter Store (`service/ssm`)" || first.time != 3300*time.Microsecond ||
		first.top != "github.com/aws/aws-sdk-go-v2/service/ssm/schemas" || first.topTime != 3*ms || first.pkgs != 2 || first.bytes != 1010 {
		t.Errorf("the costliest group is %+v (%s)", first, initGroups[first.group].name)
	}
	if got := initGroups[groupOf("crypto/tls")].name; got != "Go's standard library and the rest" {
		t.Errorf("crypto/tls is in %q", got)
	}
	if got := initGroups[groupOf("github.com/aws/aws-sdk-go-v2/service/ssooidc")].name; !strings.HasPrefix(got, "SSO") {
		t.Errorf("ssooidc is in %q", got)
	}
}

// TestStartupTargets: the plain-HTTP, CPU and cached credential-process
// targets are judged from their cells.
func TestStartupTargets(t *testing.T) {
	r := &report{roots: ms2(16)}
	r.exec = []*execCell{
		{size: size50, mode: viaToxiproxy, rtt: targetRTT, creds: credStatic, trust: trustPlain,
			rolesenv: ms2(40), floor: ms2(25), rolesenvCPU: ms2(14), floorCPU: ms2(9)},
		{size: size50, mode: viaToxiproxy, rtt: targetRTT, creds: credStatic, trust: trustSystem,
			rolesenv: ms2(70), floor: ms2(50), rolesenvCPU: ms2(31), floorCPU: ms2(15)},
	}
	r.credproc = &credprocResult{runs: []*credprocRun{
		{name: cpBare, wall: ms2(2)}, {name: cpVersion, wall: ms2(10)}, {name: cpCached, wall: ms2(13)},
	}}
	want := map[string]string{
		"50 secrets, 20 ms RTT (toxiproxy), plain HTTP, static: at most the floor + 1 RTT":       "5.00 ms to spare",
		"CPU time of a 50-secret start (20 ms, plain HTTP, static): at most twice the floor's":   "4.00 ms to spare",
		"CPU time of a 50-secret start (20 ms, system roots, static): at most twice the floor's": "1.00 ms over",
		"`credential-process --cache-file`, warm cache: within 5 ms of a bare Go binary's start": "6.00 ms over",
	}
	var rows []targetRow
	rows = append(rows, r.plainTargetRows()...)
	rows = append(rows, r.cpuTargetRows()...)
	rows = append(rows, r.credprocTargetRows()...)
	for _, row := range rows {
		m, ok := want[row.target]
		if !ok {
			t.Errorf("unexpected target %q", row.target)
			continue
		}
		if row.margin != m || row.ok != strings.HasSuffix(m, "spare") {
			t.Errorf("%s: %s, ok %v; want %s", row.target, row.margin, row.ok, m)
		}
		delete(want, row.target)
	}
	for target := range want {
		t.Errorf("no row for %q", target)
	}
	if why := r.credprocWhy(); !strings.Contains(why, "8.00 ms are the start of rolesenv's binary") || !strings.Contains(why, "3.00 ms the command's own work") {
		t.Errorf("credprocWhy: %s", why)
	}
}
