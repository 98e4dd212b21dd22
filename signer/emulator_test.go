package signer

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/rolesenv/rolesenv/internal/awsdev"
	"github.com/rolesenv/rolesenv/internal/testenv"
)

const opCreateSession = "rolesanywhere:CreateSession"

// emulator is internal/awsdev with a trust anchor for the fixtures' root
// CA, a role and a profile.
type emulator struct {
	*awsdev.Server
	anchor, profile, role string
}

func startEmulator(t *testing.T) *emulator {
	t.Helper()
	testenv.IsolateAWS(t)
	srv, err := awsdev.Start(awsdev.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	root, err := ParseCertificate(mustRead(t, fixture("root.pem")))
	if err != nil {
		t.Fatal(err)
	}
	e := &emulator{Server: srv}
	e.role = srv.CreateRole("reader", awsdev.RoleOptions{Policy: awsdev.AllowAll})
	e.anchor = srv.CreateTrustAnchor(root, awsdev.TrustAnchorOptions{})
	e.profile = srv.CreateProfile(awsdev.ProfileOptions{RoleARNs: []string{e.role}})
	return e
}

func (e *emulator) config() Config {
	return Config{
		TrustAnchorARN: e.anchor, ProfileARN: e.profile, RoleARN: e.role,
		Endpoint: e.URL(), CABundle: e.CAPEM(),
		RetryBaseDelay: time.Millisecond, RetryMaxDelay: 10 * time.Millisecond,
	}
}

func mustRead(t testing.TB, p string) []byte {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// callerIdentity uses creds for STS GetCallerIdentity on the emulator.
func (e *emulator) callerIdentity(t *testing.T, p aws.CredentialsProvider) string {
	t.Helper()
	client := sts.New(sts.Options{
		Region: "us-east-1", Credentials: p, BaseEndpoint: aws.String(e.URL()),
		HTTPClient: caClient(t, e.CAPEM()),
	})
	out, err := client.GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatalf("GetCallerIdentity: %v", err)
	}
	return aws.ToString(out.Arn)
}

// TestEmulatorEveryFormat obtains credentials from the emulator with every
// key format and algorithm, with and without intermediates, and uses them.
func TestEmulatorEveryFormat(t *testing.T) {
	e := startEmulator(t)
	pass := []byte(passphrase)
	tests := []struct {
		name string
		opts LoadOptions
	}{
		{"rsa2048", LoadOptions{Certificate: "rsa2048.pem", PrivateKey: "rsa2048.key"}},
		{"rsa3072", LoadOptions{Certificate: "rsa3072.pem", PrivateKey: "rsa3072.key"}},
		{"rsa4096", LoadOptions{Certificate: "rsa4096.pem", PrivateKey: "rsa4096.key"}},
		{"p256", LoadOptions{Certificate: "p256.pem", PrivateKey: "p256.key"}},
		{"p384", LoadOptions{Certificate: "p384.pem", PrivateKey: "p384.key"}},
		{"p521", LoadOptions{Certificate: "p521.pem", PrivateKey: "p521.key"}},
		{"DER certificate", LoadOptions{Certificate: "rsa2048.der", PrivateKey: "rsa2048.key"}},
		{"PKCS#8 DER", LoadOptions{Certificate: "rsa2048.pem", PrivateKey: "rsa2048.pkcs8.der"}},
		{"PKCS#1 PEM", LoadOptions{Certificate: "rsa2048.pem", PrivateKey: "rsa2048.pkcs1.pem"}},
		{"PKCS#1 DER", LoadOptions{Certificate: "rsa2048.pem", PrivateKey: "rsa2048.pkcs1.der"}},
		{"SEC1 PEM", LoadOptions{Certificate: "p256.pem", PrivateKey: "p256.sec1.pem"}},
		{"SEC1 DER", LoadOptions{Certificate: "p256.pem", PrivateKey: "p256.sec1.der"}},
		{"PBKDF2 AES-256", LoadOptions{Certificate: "rsa2048.pem", PrivateKey: "rsa2048.pbkdf2-aes256.pem", Passphrase: pass}},
		{"PBKDF2 AES-128 DER", LoadOptions{Certificate: "rsa3072.pem", PrivateKey: "rsa3072.pbkdf2-aes128-sha1.der", Passphrase: pass}},
		{"PBKDF2 AES-192", LoadOptions{Certificate: "p384.pem", PrivateKey: "p384.pbkdf2-aes192-sha512.pem", Passphrase: pass}},
		{"scrypt", LoadOptions{Certificate: "p256.pem", PrivateKey: "p256.scrypt-aes256.pem", Passphrase: pass}},
		{"PKCS#12", LoadOptions{Certificate: "rsa2048.p12", Passphrase: pass}},
		{"PKCS#12 legacy", LoadOptions{Certificate: "p521.legacy.p12", Passphrase: pass}},
		{"PKCS#12 with chain", LoadOptions{Certificate: "chained.p12", Passphrase: pass}},
		{"combined PEM", LoadOptions{Certificate: "p384.combined.pem"}},
		{"intermediates", LoadOptions{Certificate: "chained.pem", PrivateKey: "chained.key", Intermediates: "intermediates.pem"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := tt.opts
			opts.Certificate = fixture(opts.Certificate)
			if opts.PrivateKey != "" {
				opts.PrivateKey = fixture(opts.PrivateKey)
			}
			if opts.Intermediates != "" {
				opts.Intermediates = fixture(opts.Intermediates)
			}
			id, err := LoadFiles(opts)
			if err != nil {
				t.Fatal(err)
			}
			c, err := NewClient(id, e.config())
			if err != nil {
				t.Fatal(err)
			}
			creds, err := c.CreateSession(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(creds.AssumedRoleARN, ":assumed-role/reader/") {
				t.Errorf("identity %q", creds.AssumedRoleARN)
			}
			p := NewProvider(c, ProviderOptions{})
			if got := e.callerIdentity(t, p); got != creds.AssumedRoleARN {
				t.Errorf("GetCallerIdentity %q, CreateSession said %q", got, creds.AssumedRoleARN)
			}
		})
	}
}

// TestEmulatorBadInputs checks that every bad input fails with one line
// naming the cause, and that those found locally send nothing.
func TestEmulatorBadInputs(t *testing.T) {
	e := startEmulator(t)
	ca := newCA(t) // not the trust anchor's
	key, _ := ecdsa.GenerateKey(elliptic.P256(), randReader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), randReader)
	rootCA := fixtureCA(t)
	now := time.Now()
	withCert := func(signer *testCA, k *ecdsa.PrivateKey, tweak func(*x509.Certificate)) *Identity {
		return &Identity{Certificate: signer.issue(t, &key.PublicKey, tweak), key: k, certPath: "leaf.pem", keyPath: "leaf.key"}
	}
	tests := []struct {
		name   string
		id     func() (*Identity, error)
		cfg    func(*Config)
		want   string
		local  bool // found before anything is sent
		denied bool
	}{
		{"mismatched key", func() (*Identity, error) { return withCert(rootCA, other, nil), nil }, nil, "does not match the certificate", true, false},
		{"expired", func() (*Identity, error) {
			return withCert(rootCA, key, func(c *x509.Certificate) { c.NotBefore, c.NotAfter = now.Add(-48*time.Hour), now.Add(-time.Hour) }), nil
		}, nil, "certificate has expired", true, false},
		{"not yet valid", func() (*Identity, error) {
			return withCert(rootCA, key, func(c *x509.Certificate) { c.NotBefore = now.Add(time.Hour) }), nil
		}, nil, "not valid yet", true, false},
		{"cannot sign", func() (*Identity, error) {
			return LoadFiles(LoadOptions{Certificate: fixture("nosign.pem"), PrivateKey: fixture("p256.key")})
		}, nil, "lacks digitalSignature", true, false},
		{"ARN region mismatch", func() (*Identity, error) { return testIdentity(t), nil }, func(c *Config) {
			c.ProfileARN = strings.Replace(c.ProfileARN, "us-east-1", "eu-west-1", 1)
		}, "names region eu-west-1", true, false},
		{"untrusted CA", func() (*Identity, error) { return withCert(ca, key, nil), nil }, nil, "AccessDeniedException", false, true},
		{"unknown profile", func() (*Identity, error) { return testIdentity(t), nil }, func(c *Config) {
			c.ProfileARN = strings.Replace(c.ProfileARN, "profile/", "profile/0", 1)
		}, "ResourceNotFoundException", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.ResetCalls()
			cfg := e.config()
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			id, err := tt.id()
			if err == nil {
				var c *Client
				if c, err = NewClient(id, cfg); err == nil {
					_, err = c.CreateSession(context.Background())
				}
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("err = %v, want one line with %q", err, tt.want)
			}
			t.Log(err)
			if calls := e.Calls(opCreateSession); tt.local && calls != 0 {
				t.Errorf("%d CreateSession calls for a local problem", calls)
			} else if !tt.local && calls != 1 {
				t.Errorf("%d CreateSession calls, want 1 (no retry)", calls)
			}
			if d := is(err, func(e interface{ AccessDenied() bool }) bool { return e.AccessDenied() }); d != tt.denied {
				t.Errorf("AccessDenied() = %v", d)
			}
			if h, ok := err.(interface{ Hint() string }); tt.denied && (!ok || !strings.Contains(h.Hint(), "trust anchor's CA")) {
				t.Errorf("no trust anchor hint for %v", err)
			}
		})
	}
}

// fixtureCA is the fixtures' root CA, to issue made-up leaves the
// emulator's trust anchor accepts.
func fixtureCA(t *testing.T) *testCA {
	cert, err := ParseCertificate(mustRead(t, fixture("root.pem")))
	if err != nil {
		t.Fatal(err)
	}
	key, err := ParsePrivateKey(mustRead(t, fixture("root.key")), nil)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key}
}

func TestEmulatorRetries(t *testing.T) {
	e := startEmulator(t)
	c, err := NewClient(testIdentity(t), e.config())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []awsdev.Fault{awsdev.FaultInternal, awsdev.FaultThrottle, awsdev.FaultUnavailable, awsdev.FaultReset} {
		e.ResetCalls()
		e.FailNext(opCreateSession, 3, f)
		if _, err := c.CreateSession(context.Background()); err != nil {
			t.Errorf("fault %d: %v", f, err)
		}
		if n := e.Calls(opCreateSession); n != 4 {
			t.Errorf("fault %d: %d calls, want 4", f, n)
		}
	}
	// Through the provider, too.
	e.ResetCalls()
	e.FailNext(opCreateSession, 2, awsdev.FaultThrottle)
	if _, err := NewProvider(c, ProviderOptions{}).Retrieve(context.Background()); err != nil || e.Calls(opCreateSession) != 3 {
		t.Errorf("provider: %v after %d calls, want success after 3", err, e.Calls(opCreateSession))
	}
	// Past the attempts, the error says the service is unavailable.
	e.ResetCalls()
	e.FailNext(opCreateSession, defaultMaxAttempts, awsdev.FaultThrottle)
	_, err = c.CreateSession(context.Background())
	if !is(err, func(e interface{ Unavailable() bool }) bool { return e.Unavailable() }) || e.Calls(opCreateSession) != defaultMaxAttempts {
		t.Errorf("err = %v after %d calls", err, e.Calls(opCreateSession))
	}
	// AccessDenied is not retried.
	e.ResetCalls()
	if err := e.SetEnabled(e.anchor, false); err != nil {
		t.Fatal(err)
	}
	defer e.SetEnabled(e.anchor, true)
	_, err = NewProvider(c, ProviderOptions{}).Retrieve(context.Background())
	if !is(err, func(e interface{ AccessDenied() bool }) bool { return e.AccessDenied() }) || e.Calls(opCreateSession) != 1 {
		t.Errorf("disabled trust anchor: err = %v after %d calls, want AccessDenied after one call", err, e.Calls(opCreateSession))
	}
}

// TestEmulatorAttemptTimeout: an answer slower than AttemptTimeout is a
// network error, retried, then reported as such.
func TestEmulatorAttemptTimeout(t *testing.T) {
	e := startEmulator(t)
	e.SetOperationLatency(opCreateSession, time.Second)
	cfg := e.config()
	cfg.AttemptTimeout = 100 * time.Millisecond
	cfg.MaxAttempts = 2
	c, err := NewClient(testIdentity(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.CreateSession(context.Background())
	var ne *NetworkError
	if !errors.As(err, &ne) || ne.Attempts != 2 || !strings.Contains(err.Error(), "no answer within 100ms") {
		t.Fatalf("err = %v, want a timeout after 2 attempts", err)
	}
	e.SetOperationLatency(opCreateSession, 0)
}

// TestEmulatorProviderShortLived runs the provider on the real clock with
// credentials that live seconds (the SDK keeps its own time): STS calls
// never meet expired credentials, and the provider refreshes.
func TestEmulatorProviderShortLived(t *testing.T) {
	e := startEmulator(t)
	e.SetCredentialLifetime(4 * time.Second)
	c, err := NewClient(testIdentity(t), e.config())
	if err != nil {
		t.Fatal(err)
	}
	p := NewProvider(c, ProviderOptions{})
	client := sts.New(sts.Options{Region: "us-east-1", Credentials: p, BaseEndpoint: aws.String(e.URL()), HTTPClient: caClient(t, e.CAPEM())})
	deadline := time.Now().Add(7 * time.Second)
	calls := 0
	for time.Now().Before(deadline) {
		if _, err := client.GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{}); err != nil {
			t.Fatalf("after %d calls: %v", calls, err)
		}
		calls++
	}
	if n := e.Calls(opCreateSession); n < 3 {
		t.Errorf("%d CreateSession calls in 7s of 4s credentials, want at least 3", n)
	}
	// One hundred concurrent callers with no credentials: one CreateSession.
	e.SetCredentialLifetime(0)
	p = NewProvider(c, ProviderOptions{})
	e.ResetCalls()
	errs := make(chan error, 100)
	for range 100 {
		go func() { _, err := p.Retrieve(context.Background()); errs <- err }()
	}
	for range 100 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n := e.Calls(opCreateSession); n != 1 {
		t.Errorf("%d CreateSession calls for 100 callers", n)
	}
}

// TestEmulatorThrottledUntilDeadline: with a deadline, throttling is tried
// again past MaxAttempts until the deadline (a fleet start shares
// CreateSession's quota); other failures keep to MaxAttempts.
func TestEmulatorThrottledUntilDeadline(t *testing.T) {
	e := startEmulator(t)
	cfg := e.config()
	cfg.RetryBaseDelay, cfg.RetryMaxDelay = time.Millisecond, 20*time.Millisecond
	c, err := NewClient(testIdentity(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const throttled = 2 * defaultMaxAttempts
	e.ResetCalls()
	e.FailNext(opCreateSession, throttled, awsdev.FaultThrottle)
	if _, err := c.CreateSession(ctx); err != nil {
		t.Fatalf("throttled %d times within the deadline: %v", throttled, err)
	}
	if n := e.Calls(opCreateSession); n != throttled+1 {
		t.Errorf("%d calls, want %d", n, throttled+1)
	}
	// A 5xx is not throttling: MaxAttempts, deadline or not.
	e.ResetCalls()
	e.FailNext(opCreateSession, throttled, awsdev.FaultInternal)
	if _, err := c.CreateSession(ctx); err == nil || e.Calls(opCreateSession) != defaultMaxAttempts {
		t.Errorf("5xx: err %v after %d calls, want a failure after %d", err, e.Calls(opCreateSession), defaultMaxAttempts)
	}
	// A deadline too near for the next wait ends the retries with the
	// service's error, not the context's.
	e.FailNext(opCreateSession, 1000, awsdev.FaultThrottle)
	short, cancel2 := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel2()
	_, err = c.CreateSession(short)
	var apiErr *APIError
	if !errors.As(err, &apiErr) || !apiErr.Throttled() {
		t.Errorf("near the deadline: %v, want the throttling answer", err)
	}
	e.FailNext(opCreateSession, 0, awsdev.FaultThrottle)
}
