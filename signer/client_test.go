package signer

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func testIdentity(t testing.TB) *Identity {
	t.Helper()
	paths := private(t, "p256.pem", "p256.key")
	id, err := LoadFiles(LoadOptions{Certificate: paths[0], PrivateKey: paths[1]})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// testConfig points at endpoint with fast retries.
func testConfig(endpoint string) Config {
	cfg := goldenCfg
	cfg.Now = nil
	cfg.Endpoint = endpoint
	cfg.RetryBaseDelay = time.Millisecond
	cfg.RetryMaxDelay = 5 * time.Millisecond
	return cfg
}

func TestCreateSession(t *testing.T) {
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	srv := newFakeServer(t, func(r *requestSeen) (int, string, string) {
		if r.verified != nil {
			return 403, "AccessDeniedException", `{"message":"` + r.verified.Error() + `"}`
		}
		if r.query.Get("roleArn") != goldenCfg.RoleARN || r.query.Get("profileArn") != goldenCfg.ProfileARN ||
			r.query.Get("trustAnchorArn") != goldenCfg.TrustAnchorARN {
			return 400, "ValidationException", `{"message":"bad query"}`
		}
		if r.body != `{"durationSeconds":3600,"roleSessionName":"web-01"}` {
			return 400, "ValidationException", `{"message":"bad body"}`
		}
		return 201, "", sessionJSON(1, exp)
	})
	c, err := NewClient(testIdentity(t), testConfig(srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	creds, err := c.CreateSession(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if creds.AccessKeyID != "ASIAFAKE1" || creds.SecretAccessKey != "SECRETSENTINEL1" || creds.SessionToken != "TOKENSENTINEL1" ||
		!creds.Expiration.Equal(exp) || creds.AssumedRoleARN != "arn:aws:sts::123456789012:assumed-role/reader/web-01" ||
		creds.AccountID() != "123456789012" || creds.SourceIdentity != "p256.test.invalid" {
		t.Fatalf("credentials %+v", *creds)
	}
	aws := creds.AWS()
	if !aws.CanExpire || !aws.Expires.Equal(exp) || aws.Source != ProviderSource || aws.AccountID != "123456789012" {
		t.Errorf("aws.Credentials %+v", aws)
	}
}

func TestCreateSessionRetries(t *testing.T) {
	exp := time.Now().Add(time.Hour)
	tests := []struct {
		name     string
		failures []int // statuses before success; 0 closes the connection
		errType  string
		calls    int64
		ok       bool
		class    string
	}{
		{"500 then success", []int{500, 500}, "InternalServerException", 3, true, ""},
		{"throttled then success", []int{429, 429, 429}, "TooManyRequestsException", 4, true, ""},
		{"400 throttling then success", []int{400}, "ThrottlingException", 2, true, ""},
		{"connection reset then success", []int{0, 0}, "", 3, true, ""},
		{"503 every time", []int{503, 503, 503, 503, 503, 503}, "ServiceUnavailable", 5, false, "unavailable"},
		{"access denied is final", []int{403}, "AccessDeniedException", 1, false, "denied"},
		{"validation is final", []int{400}, "ValidationException", 1, false, "config"},
		{"not found is final", []int{404}, "ResourceNotFoundException", 1, false, "config"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var n atomic.Int64
			dates := make(chan string, 10)
			var srv *fakeServer
			srv = newFakeServer(t, func(r *requestSeen) (int, string, string) {
				dates <- r.header.Get("X-Amz-Date") + r.header.Get("Authorization")
				i := n.Add(1) - 1
				if r.verified != nil {
					t.Errorf("attempt %d: %v", i, r.verified)
				}
				if int(i) < len(tt.failures) {
					if tt.failures[i] == 0 {
						srv.CloseClientConnections()
						return 500, "", ""
					}
					return tt.failures[i], tt.errType, `{"message":"injected ` + tt.errType + `"}`
				}
				return 201, "", sessionJSON(i, exp)
			})
			c, err := NewClient(testIdentity(t), testConfig(srv.URL))
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.CreateSession(context.Background())
			if got := srv.calls.Load(); got != tt.calls {
				t.Errorf("%d calls, want %d", got, tt.calls)
			}
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v", err)
			}
			if err != nil {
				msg := err.Error()
				if strings.Contains(msg, "\n") || (tt.errType != "" && !strings.Contains(msg, tt.errType)) {
					t.Errorf("error %q: want one line with the service's type", msg)
				}
				classes := map[string]bool{
					"unavailable": is(err, func(e interface{ Unavailable() bool }) bool { return e.Unavailable() }),
					"denied":      is(err, func(e interface{ AccessDenied() bool }) bool { return e.AccessDenied() }),
					"config":      is(err, func(e interface{ Config() bool }) bool { return e.Config() }),
				}
				for k, v := range classes {
					if v != (k == tt.class) {
						t.Errorf("class %s = %v for %q", k, v, msg)
					}
				}
				if h, ok := err.(interface{ Hint() string }); !ok || h.Hint() == "" {
					t.Errorf("no hint for %q", msg)
				}
			}
			// Every attempt is signed anew (ECDSA signatures differ even
			// within one second).
			close(dates)
			seen := map[string]bool{}
			for d := range dates {
				if seen[d] {
					t.Errorf("an attempt reused a signature")
				}
				seen[d] = true
			}
		})
	}
}

func is[T any](err error, f func(T) bool) bool {
	var target T
	return errors.As(err, &target) && f(target)
}

func TestCreateSessionNetworkError(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	cfg := testConfig("http://" + addr)
	cfg.MaxAttempts = 3
	c, err := NewClient(testIdentity(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.CreateSession(context.Background())
	var ne *NetworkError
	if !errors.As(err, &ne) || ne.Attempts != 3 || !ne.Unavailable() {
		t.Fatalf("err = %v, want a NetworkError after 3 attempts", err)
	}
	if strings.Contains(err.Error(), "profileArn") || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("error %q: want the cause without the URL", err)
	}
}

func TestCreateSessionLocalChecksSendNothing(t *testing.T) {
	srv := newFakeServer(t, func(*requestSeen) (int, string, string) { return 500, "", "" })
	ca := newCA(t)
	id := testIdentity(t)
	id.Certificate = ca.issue(t, id.Signer().Public(), func(c *x509.Certificate) {
		c.NotBefore, c.NotAfter = time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour)
	})
	c, err := NewClient(id, testConfig(srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateSession(context.Background()); !errors.Is(err, ErrExpired) {
		t.Fatalf("err = %v, want ErrExpired", err)
	}
	if srv.calls.Load() != 0 {
		t.Fatalf("%d requests sent for an expired certificate", srv.calls.Load())
	}
}

func TestCreateSessionContext(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	srv := newFakeServer(t, func(*requestSeen) (int, string, string) {
		arrived <- struct{}{}
		<-release
		return 500, "", ""
	})
	defer close(release)
	c, err := NewClient(testIdentity(t), testConfig(srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { _, err := c.CreateSession(ctx); done <- err }()
	<-arrived
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestCheckConfig(t *testing.T) {
	ok := goldenCfg
	tests := []struct {
		name     string
		change   func(*Config)
		region   string
		endpoint string
		err      string
	}{
		{"default", nil, "us-east-1", "https://rolesanywhere.us-east-1.amazonaws.com", ""},
		{"fips", func(c *Config) { c.UseFIPS = true }, "us-east-1", "https://rolesanywhere-fips.us-east-1.amazonaws.com", ""},
		{"dual-stack", func(c *Config) { c.UseDualStack = true }, "us-east-1", "https://rolesanywhere.us-east-1.api.aws", ""},
		{"fips dual-stack", func(c *Config) { c.UseFIPS, c.UseDualStack = true, true }, "us-east-1", "https://rolesanywhere-fips.us-east-1.api.aws", ""},
		{"china", func(c *Config) {
			c.TrustAnchorARN = "arn:aws-cn:rolesanywhere:cn-north-1:123456789012:trust-anchor/x"
			c.ProfileARN = "arn:aws-cn:rolesanywhere:cn-north-1:123456789012:profile/y"
			c.RoleARN = "arn:aws-cn:iam::123456789012:role/r"
		}, "cn-north-1", "https://rolesanywhere.cn-north-1.amazonaws.com.cn", ""},
		{"gov cloud", func(c *Config) {
			c.TrustAnchorARN = "arn:aws-us-gov:rolesanywhere:us-gov-west-1:123456789012:trust-anchor/x"
			c.ProfileARN = "arn:aws-us-gov:rolesanywhere:us-gov-west-1:123456789012:profile/y"
			c.RoleARN = "arn:aws-us-gov:iam::123456789012:role/r"
		}, "us-gov-west-1", "https://rolesanywhere.us-gov-west-1.amazonaws.com", ""},
		{"explicit endpoint", func(c *Config) { c.Endpoint = "https://vpce-1.rolesanywhere.us-east-1.vpce.amazonaws.com/" }, "us-east-1", "https://vpce-1.rolesanywhere.us-east-1.vpce.amazonaws.com", ""},
		{"same region given", func(c *Config) { c.Region = "us-east-1" }, "us-east-1", "https://rolesanywhere.us-east-1.amazonaws.com", ""},
		{"region mismatch", func(c *Config) { c.Region = "eu-west-1" }, "", "", "eu-west-1 does not match the trust anchor ARN's region us-east-1"},
		{"ARN region mismatch", func(c *Config) { c.ProfileARN = strings.Replace(c.ProfileARN, "us-east-1", "eu-west-1", 1) }, "", "", "profile ARN: names region eu-west-1, but the trust anchor ARN names us-east-1"},
		{"partition mismatch", func(c *Config) { c.RoleARN = "arn:aws-cn:iam::123456789012:role/r" }, "", "", "partition"},
		{"account mismatch", func(c *Config) { c.ProfileARN = strings.Replace(c.ProfileARN, "123456789012", "210987654321", 1) }, "", "", "account"},
		{"not an ARN", func(c *Config) { c.TrustAnchorARN = "trust-anchor/x" }, "", "", "trust anchor ARN: \"trust-anchor/x\" is not an ARN"},
		{"profile as trust anchor", func(c *Config) { c.TrustAnchorARN = c.ProfileARN }, "", "", "does not name a trust-anchor"},
		{"role with region", func(c *Config) { c.RoleARN = "arn:aws:iam:us-east-1:123456789012:role/r" }, "", "", "must not name a region"},
		{"missing role", func(c *Config) { c.RoleARN = "" }, "", "", "role ARN: not given"},
		{"short duration", func(c *Config) { c.Duration = time.Minute }, "", "", "60 seconds is out of bounds"},
		{"bad session name", func(c *Config) { c.RoleSessionName = "a b" }, "", "", "role session name"},
		{"bad endpoint", func(c *Config) { c.Endpoint = "ftp://x" }, "", "", "endpoint"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			if tt.change != nil {
				tt.change(&cfg)
			}
			region, endpoint, err := CheckConfig(cfg)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				if c, ok := err.(interface{ Config() bool }); !ok || !c.Config() {
					t.Errorf("%T is not a configuration error", err)
				}
				return
			}
			if err != nil || region != tt.region || endpoint != tt.endpoint {
				t.Fatalf("got %q %q %v, want %q %q", region, endpoint, err, tt.region, tt.endpoint)
			}
		})
	}
}

func TestCABundleAndProxy(t *testing.T) {
	exp := time.Now().Add(time.Hour)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(201)
		_, _ = w.Write([]byte(sessionJSON(1, exp)))
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the failed handshake below is expected
	srv.StartTLS()
	defer srv.Close()
	bundle := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})

	// Without the bundle, TLS verification fails: no retry helps.
	cfg := testConfig(srv.URL)
	cfg.MaxAttempts = 1
	c, _ := NewClient(testIdentity(t), cfg)
	if _, err := c.CreateSession(context.Background()); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("err = %v, want a TLS verification failure", err)
	}
	cfg.CABundle = bundle
	c, _ = NewClient(testIdentity(t), cfg)
	if _, err := c.CreateSession(context.Background()); err != nil {
		t.Fatalf("with the CA bundle: %v", err)
	}

	// Through a proxy: the proxy sees a CONNECT to the endpoint.
	var connects atomic.Int64
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect {
			http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
			return
		}
		connects.Add(1)
		up, err := net.Dial("tcp", r.Host)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		w.WriteHeader(200)
		// The buffered reader can hold the start of the client's
		// handshake, read by the server before the hijack.
		down, buf, _ := w.(http.Hijacker).Hijack()
		go func() { defer up.Close(); _, _ = io.Copy(up, buf) }()
		_, _ = io.Copy(down, up)
		down.Close()
	}))
	defer proxy.Close()
	pu, _ := url.Parse(proxy.URL)
	cfg.Proxy = http.ProxyURL(pu)
	c, _ = NewClient(testIdentity(t), cfg)
	if _, err := c.CreateSession(context.Background()); err != nil {
		t.Fatalf("through the proxy: %v", err)
	}
	if connects.Load() != 1 {
		t.Fatalf("%d CONNECTs, want 1", connects.Load())
	}
}

// TestCABundleAlone: a CA bundle replaces the system's roots, as the AWS
// SDKs treat AWS_CA_BUNDLE; without one the system's roots are used.
func TestCABundleAlone(t *testing.T) {
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	defer srv.Close()
	bundle := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	c, err := newHTTPClient(&resolved{Config: Config{CABundle: bundle}})
	if err != nil {
		t.Fatal(err)
	}
	roots := c.Transport.(*http.Transport).TLSClientConfig.RootCAs
	if roots == nil || !roots.Equal(mustPool(t, bundle)) {
		t.Error("with a CA bundle, the roots are not the bundle alone")
	}
	c, err = newHTTPClient(&resolved{})
	if err != nil {
		t.Fatal(err)
	}
	if roots := c.Transport.(*http.Transport).TLSClientConfig.RootCAs; roots != nil {
		t.Error("without a CA bundle, the system's roots must be used (RootCAs nil)")
	}
}

func mustPool(t *testing.T, pemData []byte) *x509.CertPool {
	t.Helper()
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(pemData) {
		t.Fatal("no certificate in the bundle")
	}
	return p
}
