package awsdev

import (
	"crypto/x509"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// IAM Roles Anywhere: trust anchors, profiles and CreateSession
// (restJson1, POST /sessions).

const (
	minSessionSeconds     = 900
	maxSessionSeconds     = 43200
	defaultProfileSeconds = 3600
	// forgetExpiredSessions is how long an expired session is remembered,
	// so that its use answers ExpiredToken rather than an unknown key.
	forgetExpiredSessions = 24 * time.Hour
)

type trustAnchor struct {
	arn      string
	ca       *x509.Certificate
	disabled bool
}

type profile struct {
	arn                   string
	roleARNs              []string
	duration              int
	disabled              bool
	sessionPolicy         *Policy
	rejectRoleSessionName bool
}

func init() {
	register("rolesanywhere:CreateSession", (*Server).raCreateSession)
}

func (r *Region) rolesAnywhereARN(resource string) string {
	return "arn:aws:rolesanywhere:" + r.name + ":" + r.s.accountID + ":" + resource
}

// CreateTrustAnchor registers a CA (a root, or an intermediate as AWS
// allows) and returns the trust anchor ARN
// (arn:aws:rolesanywhere:<region>:<account>:trust-anchor/<id>). An
// existing id is replaced.
func (r *Region) CreateTrustAnchor(ca *x509.Certificate, opts TrustAnchorOptions) string {
	id := opts.ID
	if id == "" {
		id = newUUID()
	}
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	a := &trustAnchor{arn: r.rolesAnywhereARN("trust-anchor/" + id), ca: ca, disabled: opts.Disabled}
	r.anchors[a.arn] = a
	return a.arn
}

// CreateProfile returns the profile ARN
// (arn:aws:rolesanywhere:<region>:<account>:profile/<id>). An existing id
// is replaced.
func (r *Region) CreateProfile(opts ProfileOptions) string {
	id := opts.ID
	if id == "" {
		id = newUUID()
	}
	duration := opts.DurationSeconds
	if duration <= 0 {
		duration = defaultProfileSeconds
	}
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	p := &profile{
		arn: r.rolesAnywhereARN("profile/" + id), roleARNs: slices.Clone(opts.RoleARNs),
		duration: duration, disabled: opts.Disabled, sessionPolicy: opts.SessionPolicy,
		rejectRoleSessionName: opts.RejectRoleSessionName,
	}
	r.profiles[p.arn] = p
	return p.arn
}

// SetEnabled enables or disables a trust anchor or a profile of this
// region by ARN.
func (r *Region) SetEnabled(arn string, enabled bool) error {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	if a := r.anchors[arn]; a != nil {
		a.disabled = !enabled
		return nil
	}
	if p := r.profiles[arn]; p != nil {
		p.disabled = !enabled
		return nil
	}
	return fmt.Errorf("awsdev: no trust anchor or profile %s", arn)
}

type raCreateSessionInput struct {
	DurationSeconds *int    `json:"durationSeconds"`
	RoleSessionName *string `json:"roleSessionName"`
	ProfileArn      string  `json:"profileArn"`
	RoleArn         string  `json:"roleArn"`
	TrustAnchorArn  string  `json:"trustAnchorArn"`
}

type raCredentials struct {
	AccessKeyID     string `json:"accessKeyId"`
	SecretAccessKey string `json:"secretAccessKey"`
	SessionToken    string `json:"sessionToken"`
	Expiration      string `json:"expiration"`
}

type raAssumedRoleUser struct {
	Arn           string `json:"arn"`
	AssumedRoleID string `json:"assumedRoleId"`
}

type raCredentialSet struct {
	AssumedRoleUser  raAssumedRoleUser `json:"assumedRoleUser"`
	Credentials      raCredentials     `json:"credentials"`
	PackedPolicySize int               `json:"packedPolicySize"`
	RoleArn          string            `json:"roleArn"`
	SourceIdentity   string            `json:"sourceIdentity"`
}

type raCreateSessionOutput struct {
	CredentialSet []raCredentialSet `json:"credentialSet"`
	SubjectArn    string            `json:"subjectArn"`
}

// roleSessionNameRE is compiled on first use: every command of rolesenv
// links the emulator and would pay for it at start-up.
var roleSessionNameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[\w+=,.@-]{2,64}$`) })

// raCreateSession authenticates the X.509 signature, checks the trust
// anchor, profile and role, and issues session credentials.
func (s *Server) raCreateSession(c *call) (any, *apiError) {
	var in raCreateSessionInput
	if err := decodeJSON(c.body, &in); err != nil {
		return nil, raValidation("The request body is not valid JSON.")
	}
	// The ARNs travel in the query string; the documentation also allows
	// them in the body.
	q := c.r.URL.Query()
	for _, f := range []struct {
		name string
		dst  *string
	}{{"profileArn", &in.ProfileArn}, {"roleArn", &in.RoleArn}, {"trustAnchorArn", &in.TrustAnchorArn}} {
		if v := q.Get(f.name); v != "" {
			*f.dst = v
		}
		if *f.dst == "" {
			return nil, raValidation("%s is required.", f.name)
		}
	}
	if d := in.DurationSeconds; d != nil && (*d < minSessionSeconds || *d > maxSessionSeconds) {
		return nil, raValidation("durationSeconds must be between %d and %d.", minSessionSeconds, maxSessionSeconds)
	}
	if n := in.RoleSessionName; n != nil && !roleSessionNameRE().MatchString(*n) {
		return nil, raValidation("roleSessionName must be 2 to 64 characters of letters, digits and +=,.@_-.")
	}

	req, aerr := s.verifyX509Signature(c)
	if aerr != nil {
		return nil, aerr
	}
	if aerr := checkLeaf(req.leaf); aerr != nil {
		return nil, aerr
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	// The trust anchor and profile are looked up in the region of the
	// request's scope, as a regional endpoint would.
	anchor := c.reg.anchors[in.TrustAnchorArn]
	if anchor == nil {
		return nil, errorf(http.StatusNotFound, "ResourceNotFoundException", "Trust anchor %s not found.", in.TrustAnchorArn)
	}
	if anchor.disabled {
		return nil, accessDenied("Trust anchor %s is disabled.", anchor.arn)
	}
	if aerr := s.verifyChain(req, anchor.ca); aerr != nil {
		return nil, aerr
	}
	prof := c.reg.profiles[in.ProfileArn]
	if prof == nil {
		return nil, errorf(http.StatusNotFound, "ResourceNotFoundException", "Profile %s not found.", in.ProfileArn)
	}
	if prof.disabled {
		return nil, accessDenied("Profile %s is disabled.", prof.arn)
	}
	if !slices.Contains(prof.roleARNs, in.RoleArn) {
		return nil, accessDenied("Role %s is not among the roles of profile %s.", in.RoleArn, prof.arn)
	}
	roleName, _ := strings.CutPrefix(in.RoleArn, s.iamARN("role/"))
	rl := s.roles[roleName]
	if rl == nil || rl.arn != in.RoleArn {
		return nil, errorf(http.StatusNotFound, "ResourceNotFoundException", "Role %s not found.", in.RoleArn)
	}
	duration := prof.duration
	if in.DurationSeconds != nil {
		if *in.DurationSeconds > prof.duration {
			return nil, raValidation("durationSeconds %d exceeds the profile's maximum of %d.", *in.DurationSeconds, prof.duration)
		}
		duration = *in.DurationSeconds
	}
	if aerr := checkConditions(rl.arn, rl.conditions, certAttributes(req.leaf)); aerr != nil {
		return nil, aerr
	}
	name := req.leaf.SerialNumber.Text(16)
	if in.RoleSessionName != nil {
		if prof.rejectRoleSessionName {
			return nil, accessDenied("Not authorized to set roleSessionName.")
		}
		name = *in.RoleSessionName
	}
	return s.issueSession(c.reg, rl, prof, req.leaf, name, time.Duration(duration)*time.Second), nil
}

// issueSession makes random credentials for a role session. s.mu is held.
// They expire after lifetime, or the test lifetime when one is set, and
// never after the certificate does.
func (s *Server) issueSession(reg *Region, rl *role, prof *profile, leaf *x509.Certificate, name string, lifetime time.Duration) raCreateSessionOutput {
	now := s.now()
	if s.credLifetime > 0 {
		lifetime = s.credLifetime
	}
	expires := now.Add(lifetime)
	if leaf.NotAfter.Before(expires) {
		expires = leaf.NotAfter
	}
	for id, old := range s.sessions {
		if now.Sub(old.expires) > forgetExpiredSessions {
			delete(s.sessions, id)
		}
	}
	sess := &session{
		accessKeyID: "ASIA" + randomID(16), secret: randomSecret(), token: randomToken(),
		role: rl.name, name: name, expires: expires, sessionPolicy: prof.sessionPolicy,
	}
	s.sessions[sess.accessKeyID] = sess
	p := s.sessionPrincipal(sess)
	return raCreateSessionOutput{
		CredentialSet: []raCredentialSet{{
			AssumedRoleUser: raAssumedRoleUser{Arn: p.arn, AssumedRoleID: p.userID},
			Credentials: raCredentials{
				AccessKeyID: sess.accessKeyID, SecretAccessKey: sess.secret, SessionToken: sess.token,
				Expiration: expires.UTC().Format(time.RFC3339),
			},
			RoleArn:        rl.arn,
			SourceIdentity: "CN=" + leaf.Subject.CommonName,
		}},
		SubjectArn: reg.subjectARN(leaf),
	}
}

// subjectARN is stable for a certificate's subject and issuer, as the
// Roles Anywhere subject resource is.
func (r *Region) subjectARN(leaf *x509.Certificate) string {
	key := leaf.Subject.String() + "|" + leaf.Issuer.String()
	id := r.subjects[key]
	if id == "" {
		id = newUUID()
		r.subjects[key] = id
	}
	return r.rolesAnywhereARN("subject/" + id)
}
