package awsdev

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

const opGet = "secretsmanager:GetSecretValue"

func getSecret(t *testing.T, c clients, id string) error {
	_, err := c.sm.GetSecretValue(ctx(t), &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
	return err
}

func httpStatus(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

func TestCallCounters(t *testing.T) {
	s := start(t, Options{})
	c := adminClients(t, s)
	if _, err := s.CreateSecret("a", "v"); err != nil {
		t.Fatal(err)
	}
	_ = getSecret(t, c, "a")
	_ = getSecret(t, c, "missing") // failed calls count
	rid, rsecret := s.CreateUser("nobody", Policy{})
	_ = getSecret(t, newClients(sdkConfig(t, s, rid, rsecret, "")), "a") // denied calls count
	_, _ = c.sts.GetCallerIdentity(ctx(t), &sts.GetCallerIdentityInput{})
	if n := s.Calls(opGet); n != 3 {
		t.Errorf("Calls(GetSecretValue) = %d, want 3", n)
	}
	counts := s.CallCounts()
	if counts[opGet] != 3 || counts["sts:GetCallerIdentity"] != 1 || len(counts) != 2 {
		t.Errorf("CallCounts = %v", counts)
	}
	s.ResetCalls()
	if n := s.Calls(opGet); n != 0 || len(s.CallCounts()) != 0 {
		t.Errorf("after ResetCalls: %d, %v", n, s.CallCounts())
	}
}

func TestFailNext(t *testing.T) {
	s := start(t, Options{})
	c := adminClients(t, s)
	if _, err := s.CreateSecret("a", "v"); err != nil {
		t.Fatal(err)
	}
	s.FailNext(opGet, 2, FaultInternal)
	for range 2 {
		err := getSecret(t, c, "a")
		wantCode(t, err, "InternalServiceError")
		if st := httpStatus(err); st != 500 {
			t.Errorf("status = %d, want 500", st)
		}
	}
	if err := getSecret(t, c, "a"); err != nil {
		t.Fatalf("third call: %v", err)
	}

	// Each fault, and "*" for any operation.
	s.FailNext("*", 1, FaultThrottle)
	_, err := c.ssm.GetParameters(ctx(t), &ssm.GetParametersInput{Names: []string{"/x"}})
	wantCode(t, err, "ThrottlingException")
	s.FailNext("sts:GetCallerIdentity", 1, FaultThrottle)
	_, err = c.sts.GetCallerIdentity(ctx(t), &sts.GetCallerIdentityInput{})
	wantCode(t, err, "Throttling")
	s.FailNext("ssm:GetParameter", 1, FaultInternal)
	_, err = c.ssm.GetParameter(ctx(t), &ssm.GetParameterInput{Name: aws.String("/x")})
	wantCode(t, err, "InternalServerError")
	s.FailNext(opGet, 1, FaultUnavailable)
	if err := getSecret(t, c, "a"); httpStatus(err) != 503 {
		t.Errorf("unavailable: %v", err)
	}
	s.FailNext(opGet, 1, FaultReset)
	err = getSecret(t, c, "a")
	if err == nil || errorCode(err) != "" || httpStatus(err) != 0 {
		t.Errorf("reset: want a transport error, got %v", err)
	}
	if err := getSecret(t, c, "a"); err != nil {
		t.Errorf("after the faults: %v", err)
	}
	// FailNext with n = 0 cancels.
	s.FailNext(opGet, 5, FaultInternal)
	s.FailNext(opGet, 0, FaultInternal)
	if err := getSecret(t, c, "a"); err != nil {
		t.Errorf("after cancelling: %v", err)
	}
}

func TestErrorRate(t *testing.T) {
	s := start(t, Options{})
	c := adminClients(t, s)
	if _, err := s.CreateSecret("a", "v"); err != nil {
		t.Fatal(err)
	}
	s.SetErrorRate(opGet, 1, FaultThrottle)
	for range 5 {
		wantCode(t, getSecret(t, c, "a"), "ThrottlingException")
	}
	s.SetErrorRate(opGet, 0.5, FaultInternal)
	failed := 0
	for range 100 {
		if getSecret(t, c, "a") != nil {
			failed++
		}
	}
	// The chance of either bound being hit at rate 0.5 is below 1e-29.
	if failed == 0 || failed == 100 {
		t.Errorf("rate 0.5 failed %d of 100 calls", failed)
	}
	s.SetErrorRate(opGet, 0, FaultInternal)
	for range 5 {
		if err := getSecret(t, c, "a"); err != nil {
			t.Fatalf("rate 0: %v", err)
		}
	}
}

func TestQuota(t *testing.T) {
	clock := newFakeClock(time.Now())
	s := start(t, Options{Now: clock.Now})
	c := adminClients(t, s)
	if _, err := s.CreateSecret("a", "v"); err != nil {
		t.Fatal(err)
	}
	s.SetQuota(opGet, 2)
	for i := range 2 {
		if err := getSecret(t, c, "a"); err != nil {
			t.Fatalf("call %d within the burst: %v", i, err)
		}
	}
	wantCode(t, getSecret(t, c, "a"), "ThrottlingException")
	if n := s.Throttled(opGet); n != 1 {
		t.Errorf("Throttled = %d, want 1", n)
	}
	clock.Add(500 * time.Millisecond) // one token back at 2 a second
	if err := getSecret(t, c, "a"); err != nil {
		t.Fatalf("after refill: %v", err)
	}
	wantCode(t, getSecret(t, c, "a"), "ThrottlingException")
	s.SetQuota(opGet, 0)
	if err := getSecret(t, c, "a"); err != nil {
		t.Fatalf("quota removed: %v", err)
	}
	if n := s.Calls(opGet); n != 6 {
		t.Errorf("Calls = %d, want 6 (throttled calls count)", n)
	}

	// The documented quotas: 100 a second for BatchGetSecretValue.
	s.SetAWSQuotas(1)
	for i := range 100 {
		if _, err := c.sm.BatchGetSecretValue(ctx(t), &secretsmanager.BatchGetSecretValueInput{SecretIdList: []string{"a"}}); err != nil {
			t.Fatalf("batch call %d: %v", i, err)
		}
	}
	_, err := c.sm.BatchGetSecretValue(ctx(t), &secretsmanager.BatchGetSecretValueInput{SecretIdList: []string{"a"}})
	wantCode(t, err, "ThrottlingException")
}

func TestLatency(t *testing.T) {
	s := start(t, Options{})
	c := adminClients(t, s)
	if _, err := s.CreateSecret("a", "v"); err != nil {
		t.Fatal(err)
	}
	s.SetLatency(20 * time.Millisecond)
	s.SetOperationLatency(opGet, 30*time.Millisecond)
	begin := time.Now()
	if err := getSecret(t, c, "a"); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(begin); d < 50*time.Millisecond {
		t.Errorf("GetSecretValue answered after %v, before the 50ms of added latency", d)
	}
	// A client that gives up is not kept waiting.
	s.SetOperationLatency(opGet, time.Hour)
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.sm.GetSecretValue(short, &secretsmanager.GetSecretValueInput{SecretId: aws.String("a")}); err == nil {
		t.Fatal("a call with an hour of latency succeeded")
	}
	s.SetLatency(0)
	s.SetOperationLatency(opGet, 0)
	if err := getSecret(t, c, "a"); err != nil {
		t.Fatal(err)
	}
}

func TestCloseDuringLatency(t *testing.T) {
	s, err := Start(Options{HTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	s.SetLatency(time.Hour)
	done := make(chan error, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, s.URL()+"/", strings.NewReader("{}"))
		req.Header.Set("X-Amz-Target", "secretsmanager.GetSecretValue")
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	// Wait until the request is in the emulator, then close it.
	waitForCall(t, s, opGet)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the request is still waiting after Close")
	}
}

// control calls the HTTP control API.
func control(t *testing.T, s *Server, method, path, body string) (int, map[string]any) {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.CAPEM())
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req, err := http.NewRequest(method, s.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s %s: not JSON: %q", method, path, raw)
	}
	return resp.StatusCode, out
}

func mustControl(t *testing.T, s *Server, path, body string) {
	t.Helper()
	if st, out := control(t, s, http.MethodPost, path, body); st != 200 {
		t.Fatalf("POST %s %s: %d %v", path, body, st, out)
	}
}

func TestControlAPI(t *testing.T) {
	clock := newFakeClock(time.Now().UTC().Truncate(time.Second))
	s := start(t, Options{Now: clock.Now})
	c := adminClients(t, s)
	if _, err := s.CreateSecret("a", "v"); err != nil {
		t.Fatal(err)
	}

	mustControl(t, s, "/_awsdev/fail-next", `{"op":"secretsmanager:GetSecretValue","n":1,"fault":"throttle"}`)
	wantCode(t, getSecret(t, c, "a"), "ThrottlingException")
	if err := getSecret(t, c, "a"); err != nil {
		t.Fatal(err)
	}

	mustControl(t, s, "/_awsdev/error-rate", `{"op":"*","rate":1,"fault":"internal"}`)
	wantCode(t, getSecret(t, c, "a"), "InternalServiceError")
	mustControl(t, s, "/_awsdev/error-rate", `{"op":"*","rate":0,"fault":"internal"}`)

	mustControl(t, s, "/_awsdev/quota", `{"op":"secretsmanager:GetSecretValue","tps":1}`)
	if err := getSecret(t, c, "a"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, getSecret(t, c, "a"), "ThrottlingException")
	mustControl(t, s, "/_awsdev/quota", `{"op":"secretsmanager:GetSecretValue","tps":0}`)
	mustControl(t, s, "/_awsdev/aws-quotas", `{"createSessionTPS":5}`)
	s.ctl.mu.Lock()
	if tps := s.ctl.quotas["rolesanywhere:CreateSession"]; tps != 5 {
		t.Errorf("aws-quotas set the CreateSession quota to %v, want 5", tps)
	}
	s.ctl.mu.Unlock()

	mustControl(t, s, "/_awsdev/latency", `{"op":"secretsmanager:GetSecretValue","duration":"40ms"}`)
	begin := time.Now()
	if err := getSecret(t, c, "a"); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(begin); d < 40*time.Millisecond {
		t.Errorf("answered after %v despite 40ms of latency", d)
	}
	mustControl(t, s, "/_awsdev/latency", `{"duration":"0s"}`)
	mustControl(t, s, "/_awsdev/latency", `{"op":"secretsmanager:GetSecretValue","duration":"0s"}`)

	st, out := control(t, s, http.MethodGet, "/_awsdev/calls", "")
	calls, _ := out["calls"].(map[string]any)
	throttled, _ := out["throttled"].(map[string]any)
	if st != 200 || calls[opGet] != float64(s.Calls(opGet)) || throttled[opGet] != float64(1) {
		t.Errorf("GET calls = %d %v", st, out)
	}
	mustControl(t, s, "/_awsdev/calls/reset", "")
	if n := s.Calls(opGet); n != 0 {
		t.Errorf("after reset, calls = %d", n)
	}

	// Mistakes are reported, not ignored.
	for _, tt := range []struct {
		method, path, body string
		status             int
	}{
		{http.MethodPost, "/_awsdev/nope", "{}", 404},
		{http.MethodGet, "/_awsdev/fail-next", "", 405},
		{http.MethodPost, "/_awsdev/fail-next", `{"op":"x","n":1,"fault":"boom"}`, 400},
		{http.MethodPost, "/_awsdev/latency", `{"duraton":"1s"}`, 400},
		{http.MethodPost, "/_awsdev/latency", `{"duration":"soon"}`, 400},
		{http.MethodPost, "/_awsdev/role-policy", `{"role":"ghost","policy":{}}`, 400},
	} {
		if st, out := control(t, s, tt.method, tt.path, tt.body); st != tt.status || out["error"] == nil {
			t.Errorf("%s %s %s: %d %v, want %d with an error", tt.method, tt.path, tt.body, st, out, tt.status)
		}
	}
	if counts := s.CallCounts(); len(counts) != 0 {
		t.Errorf("control requests were counted as AWS calls: %v", counts)
	}

	// Credentials and policies: a session to expire and a role to revoke.
	f := raFixtureOn(t, s, clock)
	mustControl(t, s, "/_awsdev/credential-lifetime", `{"duration":"2m"}`)
	a := f.request(f.rsaLeaf).send(t, s)
	cred := a.out.CredentialSet[0].Credentials
	if exp, _ := time.Parse(time.RFC3339, cred.Expiration); !exp.Equal(clock.Now().Add(2 * time.Minute)) {
		t.Errorf("expiration = %s, want now + 2m", cred.Expiration)
	}
	rc := newClients(sdkConfig(t, s, cred.AccessKeyID, cred.SecretAccessKey, cred.SessionToken))
	if err := getSecret(t, rc, "app/db"); err != nil {
		t.Fatal(err)
	}
	mustControl(t, s, "/_awsdev/role-policy", `{"role":"app","policy":{"Allow":[{"Actions":["ssm:*"],"Resources":["*"]}]}}`)
	wantCode(t, getSecret(t, rc, "app/db"), "AccessDeniedException")
	mustControl(t, s, "/_awsdev/expire-credentials", "")
	wantCode(t, getSecret(t, rc, "app/db"), "ExpiredTokenException")
}
