// Package credserver serves AWS credentials to a child process through the
// container credentials protocol, which every AWS SDK and the AWS CLI
// support: the child finds AWS_CONTAINER_CREDENTIALS_FULL_URI and
// AWS_CONTAINER_AUTHORIZATION_TOKEN in its environment, and GETs the URI
// with the token in the Authorization header whenever it needs fresh
// credentials.
//
// Security properties: the server listens on 127.0.0.1 only, on a random
// port, and answers 401 to any request without the exact token (compared in
// constant time); the token is 32 random bytes, made anew for every server.
// It serves whatever the provider gives, so refreshing is the provider's
// job; it never logs credentials, only that they were served and when they
// expire, nor the output of a credential_process that a provider's error
// may quote. Any local user can reach the port, so refused requests are
// warned about at most once a minute, with their count, and nobody without
// the token can hold a connection: a refused request is answered with
// "Connection: close", headers must arrive within seconds and fit in
// 8 KiB, and the server holds at most [Config.MaxConns] connections at
// once (more wait in the kernel's backlog), so a flood of connections
// cannot take rolesenv's file descriptors. The HTTP server's own error
// lines go to the given logger, never to the global log.
package credserver

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/rolesenv/rolesenv/internal/netlimit"

	"github.com/rolesenv/rolesenv/inject"
)

// The environment variables the protocol uses.
const (
	FullURIVar = "AWS_CONTAINER_CREDENTIALS_FULL_URI"
	TokenVar   = "AWS_CONTAINER_AUTHORIZATION_TOKEN"
)

// Outranking lists the credential variables that an SDK would use before
// the container endpoint; the child must not inherit them, or the endpoint
// would never be asked. AWS_CONTAINER_* is replaced as a whole by Env.
var Outranking = []string{
	"AWS_ACCESS_KEY_ID",
	"AWS_SECRET_ACCESS_KEY",
	"AWS_SESSION_TOKEN",
	"AWS_SECURITY_TOKEN",
	"AWS_PROFILE",
	"AWS_DEFAULT_PROFILE",
	"AWS_WEB_IDENTITY_TOKEN_FILE",
	"AWS_ROLE_ARN",
	"AWS_ROLE_SESSION_NAME",
	"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
	"AWS_CONTAINER_CREDENTIALS_FULL_URI",
	"AWS_CONTAINER_AUTHORIZATION_TOKEN",
	"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
}

// Server is a running credentials endpoint.
type Server struct {
	provider aws.CredentialsProvider
	token    string
	url      string
	srv      *http.Server
	ln       net.Listener
	log      *slog.Logger

	mu       sync.Mutex
	refused  int       // refusals since the last warning
	warnedAt time.Time // of the last warning about refusals
}

// refusalWarnEvery bounds how often refused requests are warned about.
const refusalWarnEvery = time.Minute

// Config bounds what the server holds for its clients. Zero values take
// the defaults, which suit SDKs on the same host that ask every few
// minutes and send their request at once.
type Config struct {
	// MaxConns is how many connections the server holds at once (default
	// 64). Further ones wait in the kernel's listen backlog until one
	// closes, costing rolesenv no descriptor.
	MaxConns int
	// ReadHeaderTimeout bounds a new connection's wait for its request
	// headers (default 5s); ReadTimeout the whole request (default 10s);
	// WriteTimeout the answer, credentials fetched included (default 1m);
	// IdleTimeout an authenticated connection kept alive between
	// requests (default 30s).
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	// MaxHeaderBytes bounds the request headers (default 8 KiB).
	MaxHeaderBytes int
}

// The defaults of Config.
const (
	DefaultMaxConns          = 64
	defaultReadHeaderTimeout = 5 * time.Second
	defaultReadTimeout       = 10 * time.Second
	defaultWriteTimeout      = time.Minute
	defaultIdleTimeout       = 30 * time.Second
	defaultMaxHeaderBytes    = 8 << 10
)

func (c Config) withDefaults() Config {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.ReadHeaderTimeout, defaultReadHeaderTimeout)
	def(&c.ReadTimeout, defaultReadTimeout)
	def(&c.WriteTimeout, defaultWriteTimeout)
	def(&c.IdleTimeout, defaultIdleTimeout)
	if c.MaxConns <= 0 {
		c.MaxConns = DefaultMaxConns
	}
	if c.MaxHeaderBytes <= 0 {
		c.MaxHeaderBytes = defaultMaxHeaderBytes
	}
	return c
}

// Start listens on 127.0.0.1 at a random port with the default Config.
// log may be nil.
func Start(provider aws.CredentialsProvider, log *slog.Logger) (*Server, error) {
	return Config{}.Start(provider, log)
}

// Start listens on 127.0.0.1 at a random port. log may be nil; the HTTP
// server's own error lines (a handler's panic, accept errors) go to it
// too, at warning level.
func (c Config) Start(provider aws.CredentialsProvider, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c = c.withDefaults()
	buf := make([]byte, 32)
	if _, err := rand.Read(buf); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("failed to listen for the credentials endpoint: %w", err)
	}
	s := &Server{
		provider: provider,
		token:    hex.EncodeToString(buf),
		url:      fmt.Sprintf("http://%s/credentials", ln.Addr()),
		ln:       netlimit.New(ln, c.MaxConns),
		log:      log,
	}
	s.srv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: c.ReadHeaderTimeout,
		ReadTimeout:       c.ReadTimeout,
		WriteTimeout:      c.WriteTimeout,
		IdleTimeout:       c.IdleTimeout,
		MaxHeaderBytes:    c.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	go func() { _ = s.srv.Serve(s.ln) }()
	return s, nil
}

// Env returns the two variables a child needs to use the endpoint.
func (s *Server) Env() []string {
	return []string{FullURIVar + "=" + s.url, TokenVar + "=" + s.token}
}

// String names the endpoint by its URL. The token is a credential: a
// Server never prints it, with any verb or in a log line.
func (s *Server) String() string { return "credentials endpoint " + s.url }

func (s *Server) GoString() string           { return s.String() }
func (s *Server) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(s.String())) }
func (s *Server) LogValue() slog.Value       { return slog.StringValue(s.String()) }

// URL is the endpoint's address.
func (s *Server) URL() string { return s.url }

// Close stops the server: it lets requests in flight finish for up to 5
// s, then closes every connection that is left.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		return s.srv.Close()
	}
	return nil
}

// response is the container credentials JSON document.
type response struct {
	AccessKeyID     string `json:"AccessKeyId"`
	SecretAccessKey string `json:"SecretAccessKey"`
	Token           string `json:"Token"`
	Expiration      string `json:"Expiration,omitempty"`
	AccountID       string `json:"AccountId,omitempty"`
}

type errorResponse struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Only a client with the token may keep its connection: anyone else
	// is answered and let go, so that no local process can hold them.
	w.Header().Set("Connection", "close")
	if r.URL.Path != "/credentials" {
		writeJSON(w, http.StatusNotFound, errorResponse{"NotFound", "no such path"})
		return
	}
	if r.Method != http.MethodGet {
		writeJSON(w, http.StatusMethodNotAllowed, errorResponse{"MethodNotAllowed", "use GET"})
		return
	}
	if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), []byte(s.token)) != 1 {
		s.refuse(r)
		writeJSON(w, http.StatusUnauthorized, errorResponse{"Unauthorized", "missing or wrong authorization token"})
		return
	}
	w.Header().Del("Connection")
	creds, err := s.provider.Retrieve(r.Context())
	if err != nil {
		s.log.Warn("credentials endpoint could not get credentials", "err", inject.CredentialError(err))
		writeJSON(w, http.StatusServiceUnavailable, errorResponse{"CredentialsUnavailable", "failed to obtain credentials"})
		return
	}
	resp := response{
		AccessKeyID:     creds.AccessKeyID,
		SecretAccessKey: creds.SecretAccessKey,
		Token:           creds.SessionToken,
		AccountID:       creds.AccountID,
	}
	if creds.CanExpire {
		resp.Expiration = creds.Expires.UTC().Format(time.RFC3339)
	}
	s.log.Debug("credentials served to the child", "expires", resp.Expiration)
	writeJSON(w, http.StatusOK, resp)
}

// refuse logs a request refused for its token: a warning for the first,
// then one a minute with the count, and debug lines in between.
func (s *Server) refuse(r *http.Request) {
	now := time.Now()
	s.mu.Lock()
	s.refused++
	n, warn := s.refused, s.warnedAt.IsZero() || now.Sub(s.warnedAt) >= refusalWarnEvery
	if warn {
		s.refused, s.warnedAt = 0, now
	}
	s.mu.Unlock()
	if warn {
		s.log.Warn("credentials endpoint refused requests without the right token", "remote", r.RemoteAddr, "refused", n)
		return
	}
	s.log.Debug("credentials endpoint refused a request without the right token", "remote", r.RemoteAddr)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
