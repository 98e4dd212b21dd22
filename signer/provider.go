package signer

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Refresh timing of the Provider.
const (
	// RefreshWindow is how long before expiry credentials are replaced
	// (plus up to half again as jitter). Credentials that live less than
	// twice as long are replaced after half their lifetime instead.
	RefreshWindow = 5 * time.Minute
	// maxRetryInterval bounds the wait between refresh attempts while
	// the current credentials are still good.
	maxRetryInterval = time.Minute
	// expiryMargin is how close to expiry credentials are no longer
	// handed out (a tenth of the lifetime for short-lived ones): a request
	// signed with them must still reach AWS in time.
	expiryMargin = 10 * time.Second
	// defaultRefreshTimeout bounds one refresh, retries included.
	defaultRefreshTimeout = 2 * time.Minute
)

// ProviderOptions tune a Provider. Zero values take defaults.
type ProviderOptions struct {
	// Now is the provider's clock; nil means the client's.
	Now func() time.Time
	// Logger gets one Info line for the first credentials (the identity
	// and when they expire), Debug lines for refreshes, and one Warn line
	// per episode of failed refreshes. nil means quiet.
	Logger *slog.Logger
	// RefreshTimeout bounds one refresh, retries included (default 2m).
	RefreshTimeout time.Duration
}

// Provider is a refreshing aws.CredentialsProvider: use it with
// config.WithCredentialsProvider in any program of the AWS SDK for Go v2.
//
// Retrieve returns the current credentials at the cost of a lock until
// they near expiry (RefreshWindow). The first caller past that point
// starts one refresh in the background and still gets the current
// credentials; every other caller meanwhile shares that refresh. Only when
// no valid credentials are left do callers wait, all of them for the same
// single CreateSession. Retrieve never returns expired credentials: when
// they are expired and refreshing fails, it returns the error. A failed
// refresh is retried on the next Retrieve, at most once per
// min(1m, a quarter of the time left) while the old credentials last.
//
// Invalidate drops credentials that AWS refused before their time (a
// revoked or otherwise invalidated session); aws.CredentialsCache has the
// same method, and a caller that sees an authentication failure of the
// credentials themselves may call it on whichever it holds.
type Provider struct {
	client  *Client
	now     func() time.Time
	log     *slog.Logger
	timeout time.Duration

	mu        sync.Mutex
	creds     *Credentials
	margin    time.Duration // creds are not handed out closer than this to expiry
	refreshAt time.Time     // when to replace creds
	nextTry   time.Time     // after a failure, when to try again
	failing   bool          // in an episode of failed refreshes (warned once)
	call      *refresh      // the refresh in flight, or nil
	gen       uint64        // Invalidate calls so far
}

type refresh struct {
	gen   uint64 // of the provider when the refresh started
	done  chan struct{}
	creds *Credentials
	err   error

	mu   sync.Mutex
	last error // the latest failed call while the refresh goes on
}

// failed records a call that failed and will be tried again.
func (r *refresh) failed(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.last = err
}

// lastFailure is the latest failed call of a refresh still going on.
func (r *refresh) lastFailure() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

// NewProvider returns a provider of the client's sessions.
func NewProvider(client *Client, opts ProviderOptions) *Provider {
	p := &Provider{client: client, now: opts.Now, log: opts.Logger, timeout: opts.RefreshTimeout}
	if p.now == nil {
		p.now = client.cfg.Now
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.timeout <= 0 {
		p.timeout = defaultRefreshTimeout
	}
	return p
}

// Retrieve implements aws.CredentialsProvider.
func (p *Provider) Retrieve(ctx context.Context) (aws.Credentials, error) {
	c, err := p.Credentials(ctx)
	if err != nil {
		return aws.Credentials{}, err
	}
	return c.AWS(), nil
}

// Credentials is Retrieve with the whole answer of CreateSession. The
// value is the caller's own copy.
func (p *Provider) Credentials(ctx context.Context) (*Credentials, error) {
	c, err := p.current(ctx)
	if err != nil {
		return nil, err
	}
	cp := *c
	return &cp, nil
}

func (p *Provider) current(ctx context.Context) (*Credentials, error) {
	p.mu.Lock()
	now := p.now()
	cur := p.creds
	if cur != nil && now.Before(p.refreshAt) {
		p.mu.Unlock()
		return cur, nil
	}
	usable := cur != nil && now.Before(cur.Expiration.Add(-p.margin))
	if p.call == nil && (!usable || !now.Before(p.nextTry)) {
		p.start(ctx)
	}
	call := p.call
	p.mu.Unlock()

	if usable {
		return cur, nil
	}
	select {
	case <-call.done:
		if call.err != nil {
			return nil, call.err
		}
		return call.creds, nil
	case <-ctx.Done():
		return nil, contextError(ctx.Err(), call.lastFailure())
	}
}

// start begins a refresh; p.mu is held. The refresh keeps the values of
// ctx but not its cancellation: other callers share it.
func (p *Provider) start(ctx context.Context) {
	call := &refresh{gen: p.gen, done: make(chan struct{})}
	p.call = call
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.timeout)
	go func() {
		defer cancel()
		call.creds, call.err = p.client.createSession(rctx, call.failed)
		p.finish(call)
		close(call.done)
	}()
}

func (p *Provider) finish(call *refresh) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	if call.err == nil && !now.Before(call.creds.Expiration) {
		call.creds, call.err = nil, errors.New("CreateSession returned credentials that have already expired; check the system clock")
	}
	if call.gen != p.gen {
		// Started before an Invalidate: its callers get its answer, but
		// the provider keeps what the refresh started since then.
		return
	}
	p.call = nil
	if call.err != nil {
		wait := maxRetryInterval
		if p.creds != nil {
			if left := p.creds.Expiration.Sub(now) / 4; left < wait {
				wait = left
			}
		}
		p.nextTry = now.Add(wait)
		if !p.failing {
			p.failing = true
			p.log.Warn("failed to refresh Roles Anywhere credentials", "error", call.err.Error(), "current_expiry", expiry(p.creds))
		} else {
			p.log.Debug("failed to refresh Roles Anywhere credentials", "error", call.err.Error())
		}
		return
	}
	first := p.creds == nil
	p.creds = call.creds
	p.refreshAt = refreshTime(now, call.creds.Expiration)
	p.margin = min(expiryMargin, call.creds.Expiration.Sub(now)/10)
	p.nextTry = time.Time{}
	level := slog.LevelDebug
	if first || p.failing {
		level = slog.LevelInfo
	}
	p.failing = false
	p.log.Log(context.Background(), level, "credentials obtained",
		"source", "rolesanywhere",
		"identity", call.creds.AssumedRoleARN,
		"expires", call.creds.Expiration.UTC().Format(time.RFC3339),
		"refresh_in", p.refreshAt.Sub(now).Round(time.Second).String())
}

// Invalidate drops the current credentials, for a caller that saw AWS
// refuse them (ExpiredToken, InvalidClientTokenId, a revoked session):
// they are never handed out again, and the next Retrieve starts a new
// CreateSession that every caller meanwhile shares. A refresh already
// under way is not cancelled and its callers still get its answer, but the
// provider does not keep it: it may have been issued before whatever made
// AWS refuse the session.
func (p *Provider) Invalidate() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.gen++
	if p.creds != nil {
		p.log.Info("credentials invalidated; new ones will be obtained on the next request",
			"source", "rolesanywhere", "identity", p.creds.AssumedRoleARN, "expires", expiry(p.creds))
	}
	p.creds, p.call = nil, nil
	p.refreshAt, p.nextTry = time.Time{}, time.Time{}
}

// refreshTime is when credentials obtained at now and expiring at exp
// should be replaced: RefreshWindow before expiry (half the lifetime for
// short-lived ones), moved earlier by a random amount up to half that, so
// that a fleet started together does not refresh together.
func refreshTime(now, exp time.Time) time.Time {
	lifetime := exp.Sub(now)
	window := RefreshWindow
	if window > lifetime/2 {
		window = lifetime / 2
	}
	jitter := time.Duration(rand.Int64N(int64(window/2) + 1))
	return exp.Add(-window - jitter)
}

func expiry(c *Credentials) string {
	if c == nil {
		return "none"
	}
	return c.Expiration.UTC().Format(time.RFC3339)
}
