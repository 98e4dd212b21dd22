package awsdev

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/rolesenv/rolesenv/internal/testenv"
)

// start runs an emulator for one test, with AWS isolated from the machine.
func start(t *testing.T, opts Options) *Server {
	t.Helper()
	testenv.IsolateAWS(t)
	s, err := Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// waitForCall waits until s has counted a call of op. Calls are counted
// before any latency, so the request is then held inside the emulator.
func waitForCall(t *testing.T, s *Server, op string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for s.Calls(op) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the request never arrived")
		}
		time.Sleep(time.Millisecond)
	}
}

// fakeClock is a settable clock for Options.Now.
type fakeClock struct{ ch chan time.Time }

func newFakeClock(t time.Time) *fakeClock {
	c := &fakeClock{ch: make(chan time.Time, 1)}
	c.ch <- t
	return c
}

func (c *fakeClock) Now() time.Time {
	t := <-c.ch
	c.ch <- t
	return t
}

func (c *fakeClock) Add(d time.Duration) {
	t := <-c.ch
	c.ch <- t.Add(d)
}

// sdkConfig is an SDK configuration that talks to s only, without
// retries so that counts and errors are exact.
func sdkConfig(t *testing.T, s *Server, keyID, secret, token string) aws.Config {
	t.Helper()
	return endpointConfig(t, s.URL(), s.CAPEM(), keyID, secret, token)
}

// endpointConfig is sdkConfig for any endpoint (moto, for one).
func endpointConfig(t testing.TB, url string, caPEM []byte, keyID, secret, token string) aws.Config {
	t.Helper()
	client := awshttp.NewBuildableClient()
	if ca := caPEM; ca != nil {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(ca) {
			t.Fatal("bad CA PEM")
		}
		client = client.WithTransportOptions(func(tr *http.Transport) {
			tr.TLSClientConfig = &tls.Config{RootCAs: pool}
		})
	}
	return aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider(keyID, secret, token),
		HTTPClient:   client,
		BaseEndpoint: aws.String(url),
		Retryer:      func() aws.Retryer { return aws.NopRetryer{} },
	}
}

type clients struct {
	sm  *secretsmanager.Client
	ssm *ssm.Client
	sts *sts.Client
}

func newClients(cfg aws.Config) clients {
	return clients{sm: secretsmanager.NewFromConfig(cfg), ssm: ssm.NewFromConfig(cfg), sts: sts.NewFromConfig(cfg)}
}

// adminClients creates a user allowed everything and returns its clients.
func adminClients(t *testing.T, s *Server) clients {
	t.Helper()
	id, secret := s.CreateUser("admin", AllowAll)
	return newClients(sdkConfig(t, s, id, secret, ""))
}

// errorCode is the AWS error code of err, or "" for none.
func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func errorMessage(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorMessage()
	}
	return ""
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := errorCode(err); got != code {
		t.Fatalf("error code = %q, want %q (err: %v)", got, code, err)
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}
