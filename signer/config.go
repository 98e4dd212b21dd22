package signer

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Config is what a Client needs besides the identity. Library code takes
// every setting from here and reads no environment variable: the caller
// decides the precedence of flags, environment and files.
type Config struct {
	TrustAnchorARN string // required
	ProfileARN     string // required
	RoleARN        string // required
	// RoleSessionName names the session (optional; the service uses the
	// certificate's serial number by default).
	RoleSessionName string
	// Duration of the session: MinDuration to the profile's maximum (at
	// most MaxDuration), whole seconds. 0 means DefaultDuration.
	Duration time.Duration

	// Region of the request. "" means the trust anchor ARN's region, the
	// only one where CreateSession can find the trust anchor; a different
	// one is an error.
	Region string
	// Endpoint is the service's base URL (a proxy, a VPC endpoint, an
	// emulator). "" derives it from the region and the ARN's partition:
	// https://rolesanywhere[-fips].<region>.<dns suffix>.
	Endpoint     string
	UseFIPS      bool // the FIPS endpoint of the region
	UseDualStack bool // the dual-stack (IPv4 and IPv6) endpoint

	// HTTPClient sends the requests. nil builds one from CABundle, Proxy
	// and ConnectTimeout.
	HTTPClient *http.Client
	// CABundle is PEM certificates trusted instead of the system's (the
	// content of the file AWS_CA_BUNDLE names, which the AWS SDKs trust
	// alone too).
	CABundle []byte
	// Proxy chooses the proxy of a request; nil means
	// http.ProxyFromEnvironment (HTTPS_PROXY, NO_PROXY).
	Proxy func(*http.Request) (*url.URL, error)
	// ConnectTimeout bounds the TCP and TLS handshakes (default 10s);
	// AttemptTimeout bounds one attempt, answer included (default 30s).
	ConnectTimeout time.Duration
	AttemptTimeout time.Duration
	// MaxAttempts is how many times a request is sent when it meets
	// throttling, a 5xx or a network error (default 5). RetryBaseDelay and
	// RetryMaxDelay shape the exponential backoff with full jitter between
	// attempts (defaults 250ms and 10s).
	MaxAttempts    int
	RetryBaseDelay time.Duration
	RetryMaxDelay  time.Duration

	// Observe, when set, is told of every CreateSession request sent: its
	// error (nil, an *APIError, or a network error) and how long it took.
	// An attempt that sent nothing (the key did not sign: *SignError; a
	// local check failed: *FileError) is not told of.
	Observe func(err error, took time.Duration)

	UserAgent string           // default "rolesenv-signer"
	Now       func() time.Time // the clock of the request dates and checks; nil means time.Now
	Logger    *slog.Logger     // nil means quiet
}

// The session durations IAM Roles Anywhere accepts, and the default.
// A profile may lower the maximum; CreateSession then refuses more.
const (
	DefaultDuration = time.Hour
	MinDuration     = 900 * time.Second
	MaxDuration     = 43200 * time.Second
)

// The defaults of Config.
const (
	defaultMaxAttempts    = 5
	defaultBaseDelay      = 250 * time.Millisecond
	defaultMaxDelay       = 10 * time.Second
	defaultConnectTimeout = 10 * time.Second
	defaultAttemptTimeout = 30 * time.Second
)

// arn is a parsed Amazon Resource Name.
type arn struct {
	partition, service, region, account, resource string
}

func parseARN(field, s string, service, resourcePrefix string, regional bool) (arn, error) {
	bad := func(msg string) (arn, error) {
		return arn{}, &ConfigError{Field: field, Msg: msg,
			hint: fmt.Sprintf("the form is arn:aws:%s:%s:ACCOUNT:%sID", service, map[bool]string{true: "REGION", false: ""}[regional], resourcePrefix)}
	}
	if s == "" {
		return bad("not given")
	}
	p := strings.SplitN(s, ":", 6)
	if len(p) != 6 || p[0] != "arn" {
		return bad(fmt.Sprintf("%q is not an ARN", s))
	}
	a := arn{partition: p[1], service: p[2], region: p[3], account: p[4], resource: p[5]}
	switch {
	case a.service != service:
		return bad(fmt.Sprintf("%q is a %s ARN, not a %s one", s, a.service, service))
	case !strings.HasPrefix(a.resource, resourcePrefix) || len(a.resource) == len(resourcePrefix):
		return bad(fmt.Sprintf("%q does not name a %s", s, strings.TrimSuffix(resourcePrefix, "/")))
	case regional && !isRegion(a.region):
		return bad(fmt.Sprintf("%q has no valid region", s))
	case !regional && a.region != "":
		return bad(fmt.Sprintf("%q must not name a region", s))
	case !isAccount(a.account):
		return bad(fmt.Sprintf("%q has no valid account id", s))
	}
	if _, ok := partitions[a.partition]; !ok {
		return bad(fmt.Sprintf("%q names an unknown partition %q", s, a.partition))
	}
	return a, nil
}

// The names are checked by hand rather than with regular expressions:
// compiling one costs tens of microseconds in every process that checks a
// configuration, credential-process answering from its cache included.

// isRegion reports whether s has a region's form, ^[a-z]{2,}(-[a-z]+)+-\d+$:
// two or more lower-case letters, one or more words of them, and a number,
// joined by dashes (us-east-1, us-gov-west-1).
func isRegion(s string) bool {
	words := strings.Split(s, "-")
	if len(words) < 3 || len(words[0]) < 2 {
		return false
	}
	for _, w := range words[:len(words)-1] {
		if w == "" || strings.IndexFunc(w, func(r rune) bool { return r < 'a' || r > 'z' }) >= 0 {
			return false
		}
	}
	return allDigits(words[len(words)-1])
}

// isAccount reports whether s is an account id: twelve digits.
func isAccount(s string) bool { return len(s) == 12 && allDigits(s) }

// isSessionName reports whether s is a role session name the service
// accepts, ^[\w+=,.@-]{2,64}$.
func isSessionName(s string) bool {
	if len(s) < 2 || len(s) > 64 {
		return false
	}
	for _, c := range []byte(s) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("_+=,.@-", c) >= 0
		if !ok {
			return false
		}
	}
	return true
}

// allDigits reports whether s is one or more ASCII digits.
func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// partitions maps an ARN partition to its DNS suffixes (plain and
// dual-stack), as the AWS SDKs' partition table lists them.
var partitions = map[string][2]string{
	"aws":        {"amazonaws.com", "api.aws"},
	"aws-cn":     {"amazonaws.com.cn", "api.amazonwebservices.com.cn"},
	"aws-us-gov": {"amazonaws.com", "api.aws"},
	"aws-iso":    {"c2s.ic.gov", "api.aws.ic.gov"},
	"aws-iso-b":  {"sc2s.sgov.gov", "api.aws.scloud"},
	"aws-iso-e":  {"cloud.adc-e.uk", "api.cloud-aws.adc-e.uk"},
	"aws-iso-f":  {"csp.hci.ic.gov", "api.aws.hci.ic.gov"},
	"aws-eusc":   {"amazonaws.eu", "api.amazonwebservices.eu"},
}

// resolved is a validated Config.
type resolved struct {
	Config
	region    string
	partition string
	endpoint  *url.URL // base URL; requests go to <endpoint>/sessions
}

// CheckConfig validates cfg without any network: the three ARNs and their
// forms, that the trust anchor and the profile are in the same partition,
// account and region, the region, the duration, the session name and the
// endpoint. It returns the region and the endpoint requests would use.
func CheckConfig(cfg Config) (region, endpoint string, err error) {
	r, err := resolve(cfg)
	if err != nil {
		return "", "", err
	}
	return r.region, r.endpoint.String(), nil
}

func resolve(cfg Config) (*resolved, error) {
	ta, err := parseARN("trust anchor ARN", cfg.TrustAnchorARN, "rolesanywhere", "trust-anchor/", true)
	if err != nil {
		return nil, err
	}
	prof, err := parseARN("profile ARN", cfg.ProfileARN, "rolesanywhere", "profile/", true)
	if err != nil {
		return nil, err
	}
	role, err := parseARN("role ARN", cfg.RoleARN, "iam", "role/", false)
	if err != nil {
		return nil, err
	}
	switch {
	case ta.region != prof.region:
		return nil, &ConfigError{Field: "profile ARN",
			Msg:  fmt.Sprintf("names region %s, but the trust anchor ARN names %s", prof.region, ta.region),
			hint: "a profile and a trust anchor work together only in one region"}
	case ta.partition != prof.partition || ta.partition != role.partition:
		return nil, &ConfigError{Field: "ARNs", Msg: fmt.Sprintf("the trust anchor is in partition %s, the profile in %s and the role in %s",
			ta.partition, prof.partition, role.partition)}
	case ta.account != prof.account:
		return nil, &ConfigError{Field: "profile ARN",
			Msg: fmt.Sprintf("names account %s, but the trust anchor ARN names %s", prof.account, ta.account)}
	}
	if cfg.Region != "" && cfg.Region != ta.region {
		return nil, &ConfigError{Field: "region",
			Msg:  fmt.Sprintf("%s does not match the trust anchor ARN's region %s", cfg.Region, ta.region),
			hint: "IAM Roles Anywhere is called in the trust anchor's region; leave the region unset or make them agree"}
	}
	switch {
	case cfg.Duration == 0:
		cfg.Duration = DefaultDuration
	case cfg.Duration < MinDuration || cfg.Duration > MaxDuration || cfg.Duration%time.Second != 0:
		return nil, &ConfigError{Field: "session duration",
			Msg: fmt.Sprintf("%d seconds is out of bounds (%d to %d whole seconds)",
				int64(cfg.Duration/time.Second), MinDuration/time.Second, MaxDuration/time.Second)}
	}
	if cfg.RoleSessionName != "" && !isSessionName(cfg.RoleSessionName) {
		return nil, &ConfigError{Field: "role session name",
			Msg: "must be 2 to 64 characters of letters, digits and _+=,.@-"}
	}
	r := &resolved{Config: cfg, region: ta.region, partition: ta.partition}
	if r.endpoint, err = endpointURL(cfg, ta); err != nil {
		return nil, err
	}
	if r.MaxAttempts <= 0 {
		r.MaxAttempts = defaultMaxAttempts
	}
	if r.RetryBaseDelay <= 0 {
		r.RetryBaseDelay = defaultBaseDelay
	}
	if r.RetryMaxDelay <= 0 {
		r.RetryMaxDelay = defaultMaxDelay
	}
	if r.ConnectTimeout <= 0 {
		r.ConnectTimeout = defaultConnectTimeout
	}
	if r.AttemptTimeout <= 0 {
		r.AttemptTimeout = defaultAttemptTimeout
	}
	if r.UserAgent == "" {
		r.UserAgent = "rolesenv-signer"
	}
	if r.Now == nil {
		r.Now = time.Now
	}
	return r, nil
}

func endpointURL(cfg Config, ta arn) (*url.URL, error) {
	if cfg.Endpoint != "" {
		u, err := url.Parse(cfg.Endpoint)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return nil, &ConfigError{Field: "endpoint", Msg: fmt.Sprintf("%q is not an http or https base URL", cfg.Endpoint)}
		}
		u.Path = strings.TrimSuffix(u.Path, "/")
		u.RawPath = ""
		return u, nil
	}
	suffixes := partitions[ta.partition]
	suffix := suffixes[0]
	if cfg.UseDualStack {
		suffix = suffixes[1]
	}
	host := serviceName
	if cfg.UseFIPS {
		host += "-fips"
	}
	return &url.URL{Scheme: "https", Host: host + "." + ta.region + "." + suffix}, nil
}
