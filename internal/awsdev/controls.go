package awsdev

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"
)

// controls are the test knobs: counters, latency, faults and quotas. They
// have their own lock so that a slow answer never holds the data lock.
type controls struct {
	mu        sync.Mutex
	calls     map[string]int64
	byRegion  map[string]map[string]int64 // calls by region, then op
	throttled map[string]int64
	latency   time.Duration
	opLatency map[string]time.Duration
	failNext  map[string]*pendingFaults // by op, or "*"
	rates     map[string]faultRate      // by op, or "*"
	quotas    map[string]float64        // tps by op
	buckets   map[quotaKey]*bucket
}

// quotaKey names one quota's bucket: AWS counts requests per account and
// region.
type quotaKey struct{ op, region string }

type pendingFaults struct {
	n     int
	fault Fault
}

type faultRate struct {
	rate  float64
	fault Fault
}

// bucket is a token bucket refilled at rate tokens a second up to burst.
type bucket struct {
	rate, burst, tokens float64
	last                time.Time
}

func newControls() *controls {
	return &controls{
		calls:     map[string]int64{},
		byRegion:  map[string]map[string]int64{},
		throttled: map[string]int64{},
		opLatency: map[string]time.Duration{},
		failNext:  map[string]*pendingFaults{},
		rates:     map[string]faultRate{},
		quotas:    map[string]float64{},
		buckets:   map[quotaKey]*bucket{},
	}
}

// count counts a call of op, and in region unless that is "" (a request
// whose credential scope names no served region).
func (c *controls) count(op, region string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls[op]++
	if region != "" {
		m := c.byRegion[region]
		if m == nil {
			m = map[string]int64{}
			c.byRegion[region] = m
		}
		m[op]++
	}
}

// delay waits for the configured latency of op. It reports false when the
// client went away; the server closing cuts the wait short but still answers.
func (c *controls) delay(ctx context.Context, closing <-chan struct{}, op string) bool {
	c.mu.Lock()
	d := c.latency + c.opLatency[op]
	c.mu.Unlock()
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-closing:
		return true
	case <-ctx.Done():
		return false
	}
}

// fault returns the fault to inject into this call of op, or 0.
func (c *controls) fault(op string) Fault {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, key := range []string{op, "*"} {
		if p := c.failNext[key]; p != nil && p.n > 0 {
			p.n--
			if p.n == 0 {
				delete(c.failNext, key)
			}
			return p.fault
		}
	}
	for _, key := range []string{op, "*"} {
		if r, ok := c.rates[key]; ok && rand.Float64() < r.rate {
			return r.fault
		}
	}
	return 0
}

// allow takes a token from op's quota in region; a call over quota is
// counted as throttled.
func (c *controls) allow(op, region string, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	tps := c.quotas[op]
	if tps <= 0 {
		return true
	}
	k := quotaKey{op, region}
	b := c.buckets[k]
	if b == nil {
		burst := max(tps, 1)
		b = &bucket{rate: tps, burst: burst, tokens: burst}
		c.buckets[k] = b
	}
	if b.last.IsZero() {
		b.last = now
	}
	if elapsed := now.Sub(b.last).Seconds(); elapsed > 0 {
		b.tokens = min(b.burst, b.tokens+elapsed*b.rate)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true
	}
	c.throttled[op]++
	return false
}

func (c *controls) setQuota(op string, tps float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.buckets {
		if k.op == op {
			delete(c.buckets, k)
		}
	}
	if tps <= 0 {
		delete(c.quotas, op)
		return
	}
	c.quotas[op] = tps
}

// SetLatency adds d before every answer (all operations).
func (s *Server) SetLatency(d time.Duration) {
	s.ctl.mu.Lock()
	s.ctl.latency = d
	s.ctl.mu.Unlock()
}

// SetOperationLatency adds d before answers to op (in addition to SetLatency).
func (s *Server) SetOperationLatency(op string, d time.Duration) {
	s.ctl.mu.Lock()
	defer s.ctl.mu.Unlock()
	if d <= 0 {
		delete(s.ctl.opLatency, op)
		return
	}
	s.ctl.opLatency[op] = d
}

// FailNext makes the next n calls of op fail with f. op "*" means any
// operation. A later FailNext for the same op replaces the earlier one;
// n <= 0 cancels it.
func (s *Server) FailNext(op string, n int, f Fault) {
	s.ctl.mu.Lock()
	defer s.ctl.mu.Unlock()
	if n <= 0 {
		delete(s.ctl.failNext, op)
		return
	}
	s.ctl.failNext[op] = &pendingFaults{n: n, fault: f}
}

// SetErrorRate makes a fraction (0 to 1) of calls of op fail with f; 0
// turns it off. op "*" means any operation.
func (s *Server) SetErrorRate(op string, rate float64, f Fault) {
	s.ctl.mu.Lock()
	defer s.ctl.mu.Unlock()
	if rate <= 0 {
		delete(s.ctl.rates, op)
		return
	}
	s.ctl.rates[op] = faultRate{rate: min(rate, 1), fault: f}
}

// SetQuota enforces a request-rate quota on op (a token bucket of tps
// tokens a second with a burst of tps, at least 1, as AWS documents its
// quotas); calls over it get the service's throttling error. 0 removes it.
// Each region has its own bucket, as AWS quotas are per account and
// region. The buckets refill on the server's clock (Options.Now).
func (s *Server) SetQuota(op string, tps float64) { s.ctl.setQuota(op, tps) }

// awsQuotas are the documented default request-rate quotas (per account
// and region). AWS shares the SSM standard-throughput quota between
// GetParameter and GetParameters; the emulator gives each its own bucket.
var awsQuotas = map[string]float64{
	"secretsmanager:GetSecretValue":      10000,
	"secretsmanager:BatchGetSecretValue": 100,
	"secretsmanager:DescribeSecret":      40000,
	"ssm:GetParameter":                   40,
	"ssm:GetParameters":                  40,
}

// SetAWSQuotas sets the documented default quotas: GetSecretValue 10,000,
// BatchGetSecretValue 100, DescribeSecret 40,000, ssm GetParameter and
// GetParameters 40 (standard throughput) and CreateSession at the rate
// given (0 leaves CreateSession unlimited).
func (s *Server) SetAWSQuotas(createSessionTPS float64) {
	for op, tps := range awsQuotas {
		s.ctl.setQuota(op, tps)
	}
	s.ctl.setQuota("rolesanywhere:CreateSession", createSessionTPS)
}

// Calls is the number of calls of op received so far (including failed,
// throttled and denied ones). Throttled is how many of them were throttled
// by a quota.
func (s *Server) Calls(op string) int64 {
	s.ctl.mu.Lock()
	defer s.ctl.mu.Unlock()
	return s.ctl.calls[op]
}

func (s *Server) Throttled(op string) int64 {
	s.ctl.mu.Lock()
	defer s.ctl.mu.Unlock()
	return s.ctl.throttled[op]
}

// CallCounts returns every operation's call count; ResetCalls zeroes them
// (and the throttled counts).
func (s *Server) CallCounts() map[string]int64 {
	s.ctl.mu.Lock()
	defer s.ctl.mu.Unlock()
	m := make(map[string]int64, len(s.ctl.calls))
	for k, v := range s.ctl.calls {
		m[k] = v
	}
	return m
}

func (s *Server) ResetCalls() {
	s.ctl.mu.Lock()
	defer s.ctl.mu.Unlock()
	clear(s.ctl.calls)
	clear(s.ctl.byRegion)
	clear(s.ctl.throttled)
}

// Calls is the number of calls of op whose credential scope named this
// region (a request that names no served region counts in
// Server.Calls only). ResetCalls zeroes it.
func (r *Region) Calls(op string) int64 {
	r.s.ctl.mu.Lock()
	defer r.s.ctl.mu.Unlock()
	return r.s.ctl.byRegion[r.name][op]
}
