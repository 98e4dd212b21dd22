package main

import (
	"strings"
	"testing"
	"time"

	"github.com/rolesenv/rolesenv/internal/awsdev"
	"github.com/rolesenv/rolesenv/internal/testenv"
)

// TestRunWatchFaults is the fault matrix while rolesenv watches (Roles
// Anywhere credentials of 10 seconds, a check every second, the services
// behind Toxiproxy): the emulator's 500s and throttling, revoked access, a
// deleted secret, expired credentials, a failing credential refresh, and
// Toxiproxy's latency, stalled connections and resets. In every case the
// command keeps running with its environment, nothing restarts, one
// warning marks the episode and the first good check logs the recovery;
// no check makes more than one call per secret (no retry storm); and a
// real rotation afterwards restarts the command with the new value.
func TestRunWatchFaults(t *testing.T) {
	t.Parallel() // rolesenv runs as a subprocess with its own environment
	e := newRAEmulator(t)
	e.SetCredentialLifetime(10 * time.Second)
	mustDo[string](t)(e.CreateSecret("flt/api", "api-1"))
	mustDo[int64](t)(e.PutParameter("/flt/flag", "String", "on"))
	proxy := testenv.StartToxiproxy(t, strings.TrimPrefix(e.URL(), "https://"))
	file := writeEnvFile(t, "API=sm://flt/api\nFLAG=ssm:///flt/flag\n")
	// Roles Anywhere goes straight to the emulator (--endpoint), the
	// services through the proxy.
	env := []string{"AWS_ENDPOINT_URL=https://" + proxy.Addr, "AWS_CA_BUNDLE=" + e.caFile}
	p := startRun(t, env, append(append([]string{"run", "--env-file", file, "--interval", "1s", "--debounce", "0s", "--log-level", "debug"},
		e.args(t)...), "--", "rolesenv-testchild", "printvars", "API", "FLAG")...)
	p.waitOut("start API=api-1 FLAG=on")
	e.ResetCalls()
	checks0 := p.countLog(logChecked)

	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	noop := func() {}
	cases := []struct {
		name    string
		fails   bool   // the fault makes checks fail
		code    string // in the warning
		on, off func()
	}{
		{"HTTP 500", true, "InternalServiceError",
			func() { e.SetErrorRate("secretsmanager:DescribeSecret", 1, awsdev.FaultInternal) },
			func() { e.SetErrorRate("secretsmanager:DescribeSecret", 0, 0) }},
		{"throttling", true, "ThrottlingException",
			func() { e.SetErrorRate("ssm:GetParameters", 1, awsdev.FaultThrottle) },
			func() { e.SetErrorRate("ssm:GetParameters", 0, 0) }},
		{"revoked access", true, "AccessDeniedException",
			func() { must(e.SetRolePolicy("reader", awsdev.Policy{})) },
			func() { must(e.SetRolePolicy("reader", awsdev.AllowAll)) }},
		{"deleted secret", true, "ResourceNotFoundException",
			func() { must(e.DeleteSecret("flt/api")) },
			func() { _, err := e.CreateSecret("flt/api", "api-1"); must(err) }},
		// The provider renews the credentials on its own schedule.
		{"expired credentials", true, "ExpiredTokenException", e.ExpireCredentials, noop},
		// The old credentials serve until they near expiry.
		{"credential refresh", true, "",
			func() { e.SetErrorRate(opCreateSession, 1, awsdev.FaultInternal) },
			func() { e.SetErrorRate(opCreateSession, 0, 0) }},
		{"toxiproxy latency", false, "",
			func() { proxy.Latency("slow", 300*time.Millisecond) }, func() { proxy.Remove("slow") }},
		{"toxiproxy timeout", true, "", func() { proxy.Stall("stall") }, func() { proxy.Remove("stall") }},
		{"toxiproxy reset_peer", true, "", func() { proxy.ResetPeer("reset") }, func() { proxy.Remove("reset") }},
	}
	episodes := 0
	for _, c := range cases {
		warns, recovered := p.countLog(logWarn), p.countLog(logRecovered)
		c.on()
		if c.fails {
			p.waitLog(logWarn, warns+1)
			if c.code != "" {
				if l := lastWith(p.lines(&p.log), logWarn); !strings.Contains(l, "code="+c.code) {
					t.Errorf("%s: warning without the code %s: %s", c.name, c.code, l)
				}
			}
			episodes++
		} else {
			p.waitLog(logChecked, p.countLog(logChecked)+3)
		}
		c.off()
		if c.fails {
			p.waitLog(logRecovered, recovered+1)
		}
		if n := p.countLog(logWarn); n != episodes {
			t.Errorf("%s: %d warnings after %d episodes", c.name, n, episodes)
		}
		if n := len(p.starts()); n != 1 {
			t.Fatalf("%s: the command started %d times", c.name, n)
		}
	}
	checks := int64(p.countLog(logChecked) - checks0)
	// A check in flight at the reset makes one more.
	if d := e.Calls("secretsmanager:DescribeSecret"); d > checks+1 {
		t.Errorf("%d DescribeSecret calls in %d checks: more than one per check", d, checks)
	}
	if n := e.Calls("ssm:GetParameters"); n > checks+1 {
		t.Errorf("%d GetParameters calls in %d checks: more than one per check", n, checks)
	}
	if _, err := e.PutSecretValue("flt/api", "api-2"); err != nil {
		t.Fatal(err)
	}
	p.waitOut("start API=api-2 FLAG=on")
	if code := p.stop(); code != 0 {
		t.Errorf("exit %d", code)
	}
	if n := p.countLog(logRecovered); n != episodes {
		t.Errorf("%d recoveries for %d episodes", n, episodes)
	}
}

func lastWith(lines []string, sub string) string {
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], sub) {
			return lines[i]
		}
	}
	return ""
}
