package inject

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/rolesenv/rolesenv/internal/awsdev"
	"github.com/rolesenv/rolesenv/internal/testenv"
)

// startDev runs the emulator for one test with AWS isolated from the
// machine, and returns an SDK configuration for a user with policy p.
func startDev(t testing.TB, p awsdev.Policy) (*awsdev.Server, aws.Config) {
	t.Helper()
	testenv.IsolateAWS(t)
	s, err := awsdev.Start(awsdev.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	id, secret := s.CreateUser("app", p)
	return s, endpointConfig(t, s.URL(), s.CAPEM(), id, secret)
}

// endpointConfig is an SDK configuration that talks to url only.
func endpointConfig(t testing.TB, url string, caPEM []byte, id, secret string) aws.Config {
	t.Helper()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	if caPEM != nil {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(caPEM) {
			t.Fatal("bad CA PEM")
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	}
	// Close idle connections before the server closes (cleanups run last
	// first): http.Server.Shutdown waits 5 s for a connection that never
	// sent a request.
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr}
	return aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider(id, secret, ""),
		BaseEndpoint: aws.String(url),
		HTTPClient:   client,
	}
}

// must is a test shorthand for calls that cannot fail in a sane test.
func must[T any](t testing.TB) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}
