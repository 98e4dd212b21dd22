package awsdev

import (
	"crypto/hmac"
	"fmt"
	"net/http"
	"strings"
	"time"
)

type user struct {
	name, arn, id string
	policy        Policy
}

type accessKey struct {
	id, secret string
	user       string
}

type role struct {
	name, arn, id string
	policy        Policy
	conditions    map[string][]string
}

// session is a set of temporary credentials issued by CreateSession.
type session struct {
	accessKeyID, secret, token string
	role                       string // role name
	name                       string // role session name
	expires                    time.Time
	sessionPolicy              *Policy
}

// principal is who made an authenticated request.
type principal struct {
	arn    string // user ARN, or the assumed-role ARN of a session
	userID string // AIDA... for users, AROA...:session for sessions
	user   *user
	sess   *session
}

// CreateUser creates an IAM user with the given policy and returns
// long-term static credentials for it. Creating an existing user replaces
// its policy and adds a new access key.
func (s *Server) CreateUser(name string, p Policy) (accessKeyID, secretAccessKey string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[name]
	if u == nil {
		u = &user{name: name, arn: s.iamARN("user/" + name), id: "AIDA" + randomID(16)}
		s.users[name] = u
	}
	u.policy = p
	k := &accessKey{id: "AKIA" + randomID(16), secret: randomSecret(), user: name}
	s.keys[k.id] = k
	return k.id, k.secret
}

// AddAccessKey registers fixed static credentials for an existing user
// (for `rolesenv dev`, which keeps them across restarts).
func (s *Server) AddAccessKey(user, accessKeyID, secretAccessKey string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.users[user] == nil {
		return fmt.Errorf("awsdev: no user %q", user)
	}
	if accessKeyID == "" || secretAccessKey == "" || strings.ContainsAny(accessKeyID, "/ ,=") {
		return fmt.Errorf("awsdev: access key id and secret must be non-empty, and the id free of '/', ' ', ',' and '='")
	}
	if k := s.keys[accessKeyID]; k != nil && k.user != user {
		return fmt.Errorf("awsdev: access key %s belongs to user %q", accessKeyID, k.user)
	}
	s.keys[accessKeyID] = &accessKey{id: accessKeyID, secret: secretAccessKey, user: user}
	return nil
}

// SetUserPolicy replaces a user's policy at run time.
func (s *Server) SetUserPolicy(name string, p Policy) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[name]
	if u == nil {
		return fmt.Errorf("awsdev: no user %q", name)
	}
	u.policy = p
	return nil
}

// CreateRole creates (or replaces) a role and returns its ARN
// (arn:aws:iam::<account>:role/<name>).
func (s *Server) CreateRole(name string, opts RoleOptions) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.roles[name]
	if r == nil {
		r = &role{name: name, arn: s.iamARN("role/" + name), id: "AROA" + randomID(16)}
		s.roles[name] = r
	}
	r.policy = opts.Policy
	r.conditions = opts.Conditions
	return r.arn
}

// SetRolePolicy replaces a role's policy at run time (revoked access). It
// applies at once to every session of the role.
func (s *Server) SetRolePolicy(name string, p Policy) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.roles[name]
	if r == nil {
		return fmt.Errorf("awsdev: no role %q", name)
	}
	r.policy = p
	return nil
}

func (s *Server) iamARN(resource string) string {
	return "arn:aws:iam::" + s.accountID + ":" + resource
}

// authErrors are the error types one service uses for authentication.
type authErrors struct {
	missing, incomplete, unknownKey, badSignature, expired *apiError
}

func authErrorsFor(service string) authErrors {
	if service == "sts" {
		return authErrors{
			missing:      errorf(http.StatusForbidden, "MissingAuthenticationToken", "Request is missing Authentication Token"),
			incomplete:   errorf(http.StatusBadRequest, "IncompleteSignature", ""),
			unknownKey:   errorf(http.StatusForbidden, "InvalidClientTokenId", "The security token included in the request is invalid."),
			badSignature: errorf(http.StatusForbidden, "SignatureDoesNotMatch", ""),
			expired:      errorf(http.StatusBadRequest, "ExpiredToken", "The security token included in the request is expired"),
		}
	}
	return authErrors{
		missing:      errorf(http.StatusBadRequest, "MissingAuthenticationTokenException", "Missing Authentication Token"),
		incomplete:   errorf(http.StatusBadRequest, "IncompleteSignatureException", ""),
		unknownKey:   errorf(http.StatusBadRequest, "UnrecognizedClientException", "The security token included in the request is invalid."),
		badSignature: errorf(http.StatusBadRequest, "InvalidSignatureException", ""),
		expired:      errorf(http.StatusBadRequest, "ExpiredTokenException", "The security token included in the request is expired"),
	}
}

func withMessage(e *apiError, format string, args ...any) *apiError {
	return &apiError{status: e.status, code: e.code, message: fmt.Sprintf(format, args...)}
}

const badSignatureMessage = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."

// authenticate verifies the SigV4 signature of a Secrets Manager, SSM or
// STS request against static or session credentials.
func (s *Server) authenticate(c *call) (*principal, *apiError) {
	e := authErrorsFor(c.service)
	r := c.r
	hdr := r.Header.Get("Authorization")
	if hdr == "" {
		return nil, e.missing
	}
	a, err := parseAuthorization(hdr)
	if err != nil || a.algorithm != hmacAlgorithm || !signedHeadersValid(a.signedHeaders) {
		return nil, withMessage(e.incomplete, "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' (including host) with algorithm %s.", hmacAlgorithm)
	}
	amzDate, t, ok := requestDate(r)
	if !ok {
		return nil, withMessage(e.incomplete, "Authorization header requires existence of a valid 'X-Amz-Date' header.")
	}
	token := r.Header.Get("X-Amz-Security-Token")

	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	var p *principal
	var secret string
	if k := s.keys[a.credential]; k != nil {
		if token != "" {
			return nil, e.unknownKey
		}
		u := s.users[k.user]
		p = &principal{arn: u.arn, userID: u.id, user: u}
		secret = k.secret
	} else if sess := s.sessions[a.credential]; sess != nil {
		if !hmac.Equal([]byte(token), []byte(sess.token)) {
			return nil, e.unknownKey
		}
		if !now.Before(sess.expires) {
			return nil, e.expired
		}
		p = s.sessionPrincipal(sess)
		secret = sess.secret
	} else {
		return nil, e.unknownKey
	}
	if t.Before(now.Add(-sigV4Skew)) {
		return nil, withMessage(e.badSignature, "Signature expired: %s is now earlier than %s (%s - 15 min.)",
			amzDate, now.Add(-sigV4Skew).UTC().Format(amzDateFormat), now.UTC().Format(amzDateFormat))
	}
	if t.After(now.Add(sigV4Skew)) {
		return nil, withMessage(e.badSignature, "Signature not yet current: %s is still later than %s (%s + 15 min.)",
			amzDate, now.Add(sigV4Skew).UTC().Format(amzDateFormat), now.UTC().Format(amzDateFormat))
	}
	if a.date != amzDate[:8] {
		return nil, withMessage(e.badSignature, "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '%s' != '%s', from 'x-amz-date'.", a.date, amzDate[:8])
	}
	reg := s.regions[a.region]
	if reg == nil {
		return nil, withMessage(e.badSignature, "Credential should be scoped to a valid region. ")
	}
	if a.service != c.service {
		return nil, withMessage(e.badSignature, "Credential should be scoped to correct service: '%s'. ", c.service)
	}
	if a.terminator != "aws4_request" {
		return nil, withMessage(e.badSignature, "Credential should be scoped with a valid terminator: 'aws4_request', not '%s'. ", a.terminator)
	}
	hash := payloadHash(c.body)
	if h := r.Header.Get("X-Amz-Content-Sha256"); h != "" && h != hash {
		return nil, withMessage(e.badSignature, "The provided 'x-amz-content-sha256' header does not match what was computed.")
	}
	sts := stringToSign(hmacAlgorithm, amzDate, a.scope(), canonicalRequest(r, a.signedHeaders, hash))
	if !hmac.Equal([]byte(sigV4Signature(secret, a, sts)), []byte(strings.ToLower(a.signature))) {
		return nil, withMessage(e.badSignature, badSignatureMessage)
	}
	c.reg = reg
	return p, nil
}

func (s *Server) sessionPrincipal(sess *session) *principal {
	roleID := ""
	if r := s.roles[sess.role]; r != nil {
		roleID = r.id
	}
	return &principal{
		arn:    "arn:aws:sts::" + s.accountID + ":assumed-role/" + sess.role + "/" + sess.name,
		userID: roleID + ":" + sess.name,
		sess:   sess,
	}
}

// authorize checks that p may perform action on resource; s.mu is held.
// What no policy allows is denied, with AWS's wording.
func (s *Server) authorize(p *principal, action, resource string) *apiError {
	var identity Policy
	var sessionPolicy *Policy
	if p.user != nil {
		identity = p.user.policy
	} else if r := s.roles[p.sess.role]; r != nil {
		identity = r.policy
		sessionPolicy = p.sess.sessionPolicy
	}
	why := ""
	switch {
	case !identity.allows(action, resource):
		why = "no identity-based policy allows"
	case sessionPolicy != nil && !sessionPolicy.allows(action, resource):
		why = "no session policy allows"
	default:
		return nil
	}
	return errorf(http.StatusBadRequest, "AccessDeniedException",
		"User: %s is not authorized to perform: %s on resource: %s because %s the %s action",
		p.arn, action, resource, why, action)
}

func (p Policy) allows(action, resource string) bool {
	for _, r := range p.Allow {
		if matchAny(r.Actions, action, true) && matchAny(r.Resources, resource, false) {
			return true
		}
	}
	return false
}

func matchAny(patterns []string, s string, foldCase bool) bool {
	for _, p := range patterns {
		if foldCase {
			if wildcardMatch(strings.ToLower(p), strings.ToLower(s)) {
				return true
			}
		} else if wildcardMatch(p, s) {
			return true
		}
	}
	return false
}

// wildcardMatch matches s against an IAM pattern where * is any run of
// characters and ? is one character.
func wildcardMatch(pattern, s string) bool {
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == s[i]):
			p++
			i++
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}
