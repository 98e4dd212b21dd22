package inject

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/rolesenv/rolesenv/internal/awsdev"
	"github.com/rolesenv/rolesenv/internal/testenv"
)

// faultyClient is an SDK configuration through Toxiproxy whose DNS and
// credentials can be made to fail.
type faultyClient struct {
	tr       *http.Transport
	dnsFails atomic.Bool
	credFail atomic.Bool
}

func (fc *faultyClient) config(t *testing.T, url string, caPEM []byte, id, secret string) aws.Config {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("bad CA PEM")
	}
	var d net.Dialer
	fc.tr = &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool},
		MaxIdleConnsPerHost: DefaultParallel,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if fc.dnsFails.Load() {
				return nil, &net.OpError{Op: "dial", Net: network, Err: &net.DNSError{Err: "no such host", Name: "secretsmanager.us-east-1.amazonaws.com", IsNotFound: true}}
			}
			return d.DialContext(ctx, network, addr)
		},
	}
	t.Cleanup(fc.tr.CloseIdleConnections)
	creds := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		if fc.credFail.Load() {
			return aws.Credentials{}, errors.New("the credential source did not answer")
		}
		return aws.Credentials{AccessKeyID: id, SecretAccessKey: secret, Source: "test"}, nil
	})
	return aws.Config{Region: "us-east-1", Credentials: creds, BaseEndpoint: aws.String(url), HTTPClient: &http.Client{Transport: fc.tr}}
}

// TestWatchFaults is the fault matrix while watching: faults of the
// emulator (500, 503, throttling, resets, a deleted secret, revoked
// access), of the network through Toxiproxy (latency past the check
// timeout, a connection that stalls, resets), DNS and the credential
// source. In every case no change reaches the child, one warning marks the
// episode, every failed check costs the same calls (one per secret and one
// per 10 parameters: no SDK retries), the waits between failed checks
// double from 1s (here 0.75s, 1.5s, ... with the random source in the
// middle) up to the interval, and the first good check recovers. A real
// rotation afterwards still applies.
func TestWatchFaults(t *testing.T) {
	s, _ := startDev(t, awsdev.AllowAll)
	id, secret := s.CreateUser("watcher", awsdev.AllowAll)
	proxy := testenv.StartToxiproxy(t, strings.TrimPrefix(s.URL(), "https://"))
	fc := &faultyClient{}
	cfg := fc.config(t, "https://"+proxy.Addr, s.CAPEM(), id, secret)
	must[string](t)(s.CreateSecret("app/api", "SNTL-k1"))
	must[string](t)(s.CreateSecret("app/db", `{"password":"SNTL-p1"}`))
	must[int64](t)(s.PutParameter("/app/flag", "String", "SNTL-on"))
	wt := newWatchTest(t, s, cfg, File{Name: "app.env", Data: []byte("API=sm://app/api\nPASS=sm://app/db#password\nFLAG=ssm:///app/flag\n")})
	wt.w.CheckTimeout = 500 * time.Millisecond
	wt.start()
	wt.step()

	const perCheck = 3 // DescribeSecret twice, GetParameters once
	const attempts = 6
	cases := []struct {
		name    string
		code    string // in the warning
		server  bool   // the calls reach the emulator
		on, off func()
	}{
		{"HTTP 500", "InternalServiceError", true,
			func() { s.SetErrorRate("*", 1, awsdev.FaultInternal) }, func() { s.SetErrorRate("*", 0, 0) }},
		{"HTTP 503", "ServiceUnavailable", true,
			func() { s.SetErrorRate("*", 1, awsdev.FaultUnavailable) }, func() { s.SetErrorRate("*", 0, 0) }},
		{"throttling", "ThrottlingException", true,
			func() { s.SetErrorRate("*", 1, awsdev.FaultThrottle) }, func() { s.SetErrorRate("*", 0, 0) }},
		{"emulator reset", "", true,
			func() { s.SetErrorRate("*", 1, awsdev.FaultReset) }, func() { s.SetErrorRate("*", 0, 0) }},
		{"deleted secret", "ResourceNotFoundException", true,
			func() {
				if err := s.DeleteSecret("app/api"); err != nil {
					t.Fatal(err)
				}
			},
			func() { must[string](t)(s.CreateSecret("app/api", "SNTL-k1")) }},
		{"revoked access", "AccessDeniedException", true,
			func() {
				if err := s.SetUserPolicy("watcher", awsdev.Policy{}); err != nil {
					t.Fatal(err)
				}
			},
			func() {
				if err := s.SetUserPolicy("watcher", awsdev.AllowAll); err != nil {
					t.Fatal(err)
				}
			}},
		{"toxiproxy latency", "", false,
			func() { proxy.Latency("slow", 2*time.Second) }, func() { proxy.Remove("slow") }},
		{"toxiproxy timeout", "", false,
			func() { proxy.Stall("stall") }, func() { proxy.Remove("stall") }},
		{"toxiproxy reset_peer", "", false,
			func() { proxy.ResetPeer("reset") }, func() { proxy.Remove("reset") }},
		{"DNS", "", false,
			func() { fc.dnsFails.Store(true); fc.tr.CloseIdleConnections() }, func() { fc.dnsFails.Store(false) }},
		{"credential refresh", "", false,
			func() { fc.credFail.Store(true) }, func() { fc.credFail.Store(false) }},
	}
	const warn = "watch failed; the command keeps its environment"
	for _, c := range cases {
		warns, recovered := wt.logs.count(warn), wt.logs.count("watch recovered")
		c.on()
		s.ResetCalls()
		client := wt.src.Calls()
		var waits []time.Duration
		for range attempts {
			waits = append(waits, wt.step())
			wt.noChange()
		}
		want := []time.Duration{750 * time.Millisecond, 1500 * time.Millisecond, 3 * time.Second, 6 * time.Second, 12 * time.Second, 24 * time.Second}
		for i := range want {
			if waits[i] != want[i] {
				t.Errorf("%s: waits %v, want the back-off %v", c.name, waits, want)
				break
			}
		}
		if n := wt.src.Calls() - client; n != attempts*perCheck {
			t.Errorf("%s: %d calls in %d failed checks, want %d each", c.name, n, attempts, perCheck)
		}
		server := int64(0)
		for _, n := range calls(s) {
			server += n
		}
		if server > attempts*perCheck || (c.server && server != attempts*perCheck) {
			t.Errorf("%s: the emulator saw %d calls (%v)", c.name, server, calls(s))
		}
		if n := wt.logs.count(warn) - warns; n != 1 {
			t.Errorf("%s: %d warnings for one episode", c.name, n)
		}
		if c.code != "" && !strings.Contains(lastLine(wt.logs.String(), warn), "code="+c.code) {
			t.Errorf("%s: the warning does not carry the code %s: %s", c.name, c.code, lastLine(wt.logs.String(), warn))
		}
		c.off()
		if d := wt.step(); d != time.Minute {
			t.Errorf("%s: after recovery the next check comes after %v, want the interval", c.name, d)
		}
		wt.noChange()
		if wt.logs.count("watch recovered")-recovered != 1 {
			t.Errorf("%s: the first good check did not log the recovery", c.name)
		}
	}
	must[string](t)(s.PutSecretValue("app/api", "SNTL-k2"))
	wt.step()
	if c := wt.change(); envVal(t, c.Env, "API") != "SNTL-k2" || envVal(t, c.Env, "PASS") != "SNTL-p1" {
		t.Error("a rotation after the faults did not apply")
	}
}

// lastLine returns the last log line that contains msg.
func lastLine(logs, msg string) string {
	lines := strings.Split(logs, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], msg) {
			return lines[i]
		}
	}
	return ""
}
