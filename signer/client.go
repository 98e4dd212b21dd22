package signer

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/rolesenv/rolesenv/internal/sysroots"
)

// IdentitySource gives the identity to sign with. An *Identity is a source
// of itself; a *FileIdentity reloads its files when they change.
type IdentitySource interface {
	Current() (*Identity, error)
}

// Current returns id: an Identity is a source that never changes.
func (id *Identity) Current() (*Identity, error) { return id, nil }

// Client calls IAM Roles Anywhere CreateSession. It is safe for concurrent
// use; it keeps no credentials (the Provider does).
type Client struct {
	cfg  *resolved
	src  IdentitySource
	http *http.Client
	log  *slog.Logger
}

// NewClient checks cfg (see CheckConfig) and makes a client that signs
// with the identity src gives.
func NewClient(src IdentitySource, cfg Config) (*Client, error) {
	r, err := resolve(cfg)
	if err != nil {
		return nil, err
	}
	hc := cfg.HTTPClient
	if hc == nil {
		if hc, err = newHTTPClient(r); err != nil {
			return nil, err
		}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Client{cfg: r, src: src, http: hc, log: log}, nil
}

// Region is the region requests are signed for.
func (c *Client) Region() string { return c.cfg.region }

// Endpoint is the base URL requests go to.
func (c *Client) Endpoint() string { return c.cfg.endpoint.String() }

// RoleARN is the role the sessions are for.
func (c *Client) RoleARN() string { return c.cfg.RoleARN }

// Identity is the identity requests are signed with now.
func (c *Client) Identity() (*Identity, error) { return c.src.Current() }

// Now is the client's clock.
func (c *Client) Now() time.Time { return c.cfg.Now() }

func newHTTPClient(r *resolved) (*http.Client, error) {
	var roots *x509.CertPool // nil: the system's
	if len(r.CABundle) > 0 {
		// The bundle alone, as the AWS SDKs trust AWS_CA_BUNDLE: the same
		// file then means the same trust for Roles Anywhere and the
		// services, and the system's roots need not be loaded.
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(r.CABundle) {
			return nil, &ConfigError{Field: "CA bundle", Msg: "holds no PEM certificate"}
		}
	}
	proxy := r.Proxy
	if proxy == nil {
		proxy = http.ProxyFromEnvironment
	}
	tr := &http.Transport{
		Proxy:                 proxy,
		DialContext:           (&net.Dialer{Timeout: r.ConnectTimeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   r.ConnectTimeout,
		ResponseHeaderTimeout: r.AttemptTimeout,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          4,
		IdleConnTimeout:       90 * time.Second,
	}
	if roots == nil {
		// Direct connections verify against the system's roots without
		// parsing them all; proxied ones are left to crypto/tls.
		tr.DialTLSContext = sysroots.ForTransport(tr).DialTLSContext
	}
	return &http.Client{Transport: tr}, nil
}

// The JSON of CreateSession.
type createSessionBody struct {
	DurationSeconds int64  `json:"durationSeconds"`
	RoleSessionName string `json:"roleSessionName,omitempty"`
}

type createSessionOutput struct {
	CredentialSet []struct {
		AssumedRoleUser struct {
			Arn           string `json:"arn"`
			AssumedRoleID string `json:"assumedRoleId"`
		} `json:"assumedRoleUser"`
		Credentials struct {
			AccessKeyID     string          `json:"accessKeyId"`
			SecretAccessKey string          `json:"secretAccessKey"`
			SessionToken    string          `json:"sessionToken"`
			Expiration      json.RawMessage `json:"expiration"`
		} `json:"credentials"`
		RoleArn        string `json:"roleArn"`
		SourceIdentity string `json:"sourceIdentity"`
	} `json:"credentialSet"`
	SubjectArn string `json:"subjectArn"`
}

// maxAnswer bounds the answers read: a credential set is a few KiB.
const maxAnswer = 1 << 20

// CreateSession checks the identity locally (Identity.Check), then asks
// for a session, retrying throttling, 5xx answers and network errors with
// exponential backoff and jitter (Config.MaxAttempts attempts; throttling,
// until ctx's deadline when it has one); each attempt is signed anew with a
// fresh date. Errors are *FileError (local checks; nothing was sent), *APIError
// (the service's answer), *SignError (the key did not sign; nothing was
// sent) or *NetworkError, or the context's error.
func (c *Client) CreateSession(ctx context.Context) (*Credentials, error) {
	return c.createSession(ctx, nil)
}

// createSession is CreateSession that tells failed calls, each with the
// error it would end with, to failed (when not nil) before trying again.
func (c *Client) createSession(ctx context.Context, failed func(error)) (*Credentials, error) {
	id, err := c.src.Current()
	if err != nil {
		return nil, err
	}
	if _, err := id.Check(c.cfg.Now()); err != nil {
		return nil, err
	}
	endpoint, body := c.target()
	deadline, hasDeadline := ctx.Deadline()

	var last error // the previous call's final error
	for attempt := 1; ; attempt++ {
		began := time.Now()
		creds, retryAfter, err := c.attempt(ctx, id, endpoint, body)
		if c.cfg.Observe != nil && sent(err) {
			c.cfg.Observe(err, time.Since(began))
		}
		if err == nil {
			return creds, nil
		}
		if ctx.Err() != nil {
			return nil, contextError(ctx.Err(), last)
		}
		var apiErr *APIError
		var signErr *SignError
		isAPI := errors.As(err, &apiErr)
		// Throttling means "not now": with a deadline, it is tried again
		// until the deadline, however many attempts that takes (a fleet
		// that starts at once shares CreateSession's quota, 10 a second
		// by default).
		keepTrying := isAPI && apiErr.Throttled() && hasDeadline
		// final is this call's failure as CreateSession returns it.
		var final error
		retryable := true
		switch {
		case isAPI:
			apiErr.Attempts = attempt
			final, retryable = apiErr, apiErr.Unavailable()
		case errors.As(err, &signErr):
			// The key did not sign (a TPM or token away or busy): nothing
			// was sent, and the key says whether to try again.
			signErr.Attempts = attempt
			final, retryable = signErr, signErr.Unavailable()
		default:
			final = &NetworkError{Endpoint: c.cfg.endpoint.String(), Attempts: attempt, Err: err}
		}
		if !retryable || (attempt >= c.cfg.MaxAttempts && !keepTrying) {
			return nil, final
		}
		delay := c.backoff(attempt)
		if retryAfter > delay {
			delay = min(retryAfter, c.cfg.RetryMaxDelay)
		}
		if hasDeadline && time.Until(deadline) <= delay {
			return nil, final
		}
		last = final
		if failed != nil {
			failed(last)
		}
		c.log.Debug("CreateSession will be retried", "attempt", attempt, "delay", delay.Round(time.Millisecond), "cause", oneLine(err.Error()))
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, contextError(ctx.Err(), last)
		case <-t.C:
		}
	}
}

// target is the URL and the body of CreateSession: the ARNs go in the
// query string, the duration and session name in the JSON body.
func (c *Client) target() (string, []byte) {
	body, _ := json.Marshal(createSessionBody{ // cannot fail: two plain fields
		DurationSeconds: int64(c.cfg.Duration / time.Second),
		RoleSessionName: c.cfg.RoleSessionName,
	})
	u := *c.cfg.endpoint
	u.Path += "/sessions"
	u.RawQuery = canonicalQuery(url.Values{
		"profileArn":     {c.cfg.ProfileARN},
		"roleArn":        {c.cfg.RoleARN},
		"trustAnchorArn": {c.cfg.TrustAnchorARN},
	})
	return u.String(), body
}

// backoff is exponential with full jitter: a random delay up to
// base*2^(attempt-1), capped.
func (c *Client) backoff(attempt int) time.Duration {
	ceiling := c.cfg.RetryBaseDelay << min(attempt-1, 20)
	if ceiling <= 0 || ceiling > c.cfg.RetryMaxDelay {
		ceiling = c.cfg.RetryMaxDelay
	}
	return time.Duration(rand.Int64N(int64(ceiling) + 1))
}

// sent reports whether an attempt that ended with err sent a request: a
// key that did not sign (*SignError) or a local check (*FileError) sends
// nothing.
func sent(err error) bool {
	var se *SignError
	var fe *FileError
	return !errors.As(err, &se) && !errors.As(err, &fe)
}

// attempt sends one signed request. It returns the server's Retry-After,
// if any, with an error.
func (c *Client) attempt(ctx context.Context, id *Identity, endpoint string, body []byte) (*Credentials, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.AttemptTimeout)
	defer cancel()
	req, _, err := c.request(ctx, id, endpoint, body)
	if err != nil {
		return nil, 0, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL: the caller names the endpoint
		}
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
			err = fmt.Errorf("no answer within %s", c.cfg.AttemptTimeout)
		}
		return nil, 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, 0, fmt.Errorf("failed to read the answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, retryAfter(resp.Header.Get("Retry-After")), apiError(resp, data)
	}
	creds, err := parseCredentials(data)
	if err != nil {
		return nil, 0, err
	}
	return creds, 0, nil
}

// request makes the signed request of one attempt, dated now.
func (c *Client) request(ctx context.Context, id *Identity, endpoint string, body []byte) (*http.Request, *signature, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", c.cfg.UserAgent)
	sig, err := id.sign(req, body, c.cfg.region, c.cfg.Now())
	if err != nil {
		return nil, nil, err
	}
	return req, sig, nil
}

func parseCredentials(data []byte) (*Credentials, error) {
	var out createSessionOutput
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("the answer is not CreateSession's JSON: %v", err)
	}
	if len(out.CredentialSet) == 0 {
		return nil, errors.New("the answer holds no credential set")
	}
	s := out.CredentialSet[0]
	exp, err := parseTimestamp(s.Credentials.Expiration)
	if err != nil {
		return nil, fmt.Errorf("the answer's expiration: %v", err)
	}
	if s.Credentials.AccessKeyID == "" || s.Credentials.SecretAccessKey == "" || s.Credentials.SessionToken == "" {
		return nil, errors.New("the answer's credentials are incomplete")
	}
	return &Credentials{
		AccessKeyID:     s.Credentials.AccessKeyID,
		SecretAccessKey: s.Credentials.SecretAccessKey,
		SessionToken:    s.Credentials.SessionToken,
		Expiration:      exp,
		AssumedRoleARN:  s.AssumedRoleUser.Arn,
		AssumedRoleID:   s.AssumedRoleUser.AssumedRoleID,
		RoleARN:         s.RoleArn,
		SourceIdentity:  s.SourceIdentity,
		SubjectARN:      out.SubjectArn,
	}, nil
}

// parseTimestamp takes RFC 3339 text, or seconds since the epoch as a
// JSON number (the other form AWS JSON protocols use for timestamps).
func parseTimestamp(raw json.RawMessage) (time.Time, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return time.Parse(time.RFC3339, s)
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err == nil && f > 0 {
		sec := int64(f)
		return time.Unix(sec, int64((f-float64(sec))*1e9)).UTC(), nil
	}
	return time.Time{}, errors.New("missing or not a timestamp")
}

// apiError reads an error answer: the type from X-Amzn-ErrorType (without
// the ":namespace" suffix AWS may add) or the body's __type or code; the
// message from the body's message or Message.
func apiError(resp *http.Response, data []byte) *APIError {
	e := &APIError{StatusCode: resp.StatusCode, RequestID: resp.Header.Get("X-Amzn-Requestid")}
	var body struct {
		Type     string `json:"__type"`
		Code     string `json:"code"`
		Message  string `json:"message"`
		Message2 string `json:"Message"`
	}
	_ = json.Unmarshal(data, &body)
	e.Code = resp.Header.Get("X-Amzn-Errortype")
	for _, c := range []string{body.Type, body.Code} {
		if e.Code == "" {
			e.Code = c
		}
	}
	if i := strings.IndexByte(e.Code, ':'); i >= 0 {
		e.Code = e.Code[:i]
	}
	if i := strings.LastIndexByte(e.Code, '#'); i >= 0 {
		e.Code = e.Code[i+1:]
	}
	e.Message = body.Message
	if e.Message == "" {
		e.Message = body.Message2
	}
	e.Code, e.Message = oneLine(e.Code), oneLine(e.Message)
	return e
}

func retryAfter(h string) time.Duration {
	if s, err := strconv.Atoi(strings.TrimSpace(h)); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	return 0
}
