package inject

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials/processcreds"
	"github.com/aws/smithy-go"
	"github.com/rolesenv/rolesenv/internal/exitcode"
)

// fetchError is why one fetch failed: the action and resource, the AWS
// error code and message, and how to classify it. It never holds a value:
// AWS error messages name principals, actions and resources only.
type fetchError struct {
	action   string // IAM action, e.g. secretsmanager:GetSecretValue
	resource string // the secret id or parameter name as requested
	code     string
	msg      string
	class    class
	cause    error
	// shared marks a failure that is not the resource's own (no
	// credentials, no region, the start-up deadline): every fetch of the
	// run fails the same way, and Errors reports it once.
	shared bool
}

// forResource is the same failure for one resource of a batch call.
func (e *fetchError) forResource(resource string) *fetchError {
	c := *e
	c.resource = resource
	return &c
}

// sharedText is the failure without the action and resource.
func (e *fetchError) sharedText() string {
	return e.prefix() + e.detail()
}

func (e *fetchError) Error() string {
	s := e.prefix() + e.action + " on " + e.resource
	if d := e.detail(); d != "" {
		s += ": " + d
	}
	return s
}

// prefix says what kind of failure it is, for the classes that have one.
func (e *fetchError) prefix() string {
	switch e.class {
	case classDenied:
		return "access denied: "
	case classUnavailable:
		return "AWS unavailable: "
	}
	return ""
}

// detail is AWS's error code and message, either of which may be empty.
func (e *fetchError) detail() string {
	if e.code != "" && e.msg != "" {
		return e.code + ": " + e.msg
	}
	return e.code + e.msg
}

func (e *fetchError) Unwrap() error { return e.cause }

// Codes that mean the caller is not allowed (IAM, KMS, or credentials that
// AWS does not accept).
var deniedCodes = map[string]bool{
	"AccessDeniedException": true, "AccessDenied": true, "UnrecognizedClientException": true,
	"InvalidClientTokenId": true, "InvalidSignatureException": true, "SignatureDoesNotMatch": true,
	"ExpiredTokenException": true, "ExpiredToken": true, "IncompleteSignature": true,
	"MissingAuthenticationToken": true, "NotAuthorized": true, "AuthFailure": true,
	"DecryptionFailure": true, "KMSAccessDeniedException": true,
}

// Codes of throttling: the call was refused for the rate of calls.
var throttleCodes = map[string]bool{
	"ThrottlingException": true, "Throttling": true, "TooManyRequestsException": true,
	"RequestLimitExceeded": true, "ThrottledException": true, "RequestThrottled": true,
}

// throttled reports a call refused for the rate of calls.
func (e *fetchError) throttled() bool {
	if throttleCodes[e.code] {
		return true
	}
	var re *awshttp.ResponseError
	return errors.As(e.cause, &re) && re.HTTPStatusCode() == http.StatusTooManyRequests
}

// Codes that mean "try again later", besides throttling.
var transientCodes = map[string]bool{
	"InternalServiceError": true, "InternalFailure": true, "InternalServerError": true,
	"ServiceUnavailable": true, "ServiceUnavailableException": true, "RequestTimeout": true,
	"RequestTimeoutException": true,
}

// awsFailure classifies an error from an SDK call.
func awsFailure(action, resource string, err error) *fetchError {
	fe := &fetchError{action: action, resource: resource, cause: err}
	status := 0
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		fe.code = ae.ErrorCode()
		fe.msg = oneLine(ae.ErrorMessage())
	}
	var ce *credentialsError
	switch {
	case errors.Is(err, context.Canceled):
		fe.class, fe.msg = classOther, "canceled"
	case errors.As(err, &ce):
		// The credential source's error comes first, deadline or not: it
		// may say what kept the credentials away (throttling, say).
		fe.msg = ce.Error()
		fe.shared = true
		switch {
		case exitcode.Classified(ce.err):
			fe.class = classOther // the credential source's own error says what it is
		case errors.Is(err, context.DeadlineExceeded):
			fe.class = classUnavailable
		default:
			fe.class = classConfig
		}
	case errors.Is(err, context.DeadlineExceeded):
		fe.class, fe.msg = classUnavailable, "the start-up deadline passed before AWS answered"
		fe.shared = true
	case deniedCodes[fe.code]:
		fe.class = classDenied
	case fe.throttled() || transientCodes[fe.code] || status >= 500:
		fe.class = classUnavailable
	case status == http.StatusForbidden:
		// A 403 whose body is not the service's JSON (moto answers XML):
		// access denied all the same.
		fe.class = classDenied
		if fe.code == "" || fe.code == "UnknownError" {
			fe.code, fe.msg = "HTTP 403", "the answer was not the service's error format"
		}
	case fe.code != "" && status >= 400 && status < 500:
		fe.class = classConfig
	case fe.code != "" && status == 0:
		fe.class = classConfig
	default:
		fe.class = classUnavailable
		if fe.msg == "" {
			fe.msg = oneLine(err.Error())
		}
	}
	return fe
}

// taggedCredentials marks the errors of a credential provider, so that a
// failure to obtain credentials is told apart from a failing request.
type taggedCredentials struct{ p aws.CredentialsProvider }

func tagCredentials(p aws.CredentialsProvider) aws.CredentialsProvider {
	switch p.(type) {
	case nil, aws.AnonymousCredentials:
		return p // the SDK does not sign with these: keep them recognisable
	}
	return taggedCredentials{p}
}

func (t taggedCredentials) Retrieve(ctx context.Context) (aws.Credentials, error) {
	c, err := t.p.Retrieve(ctx)
	if err != nil {
		return c, &credentialsError{err: err}
	}
	return c, nil
}

type credentialsError struct{ err error }

func (e *credentialsError) Error() string {
	return "failed to obtain AWS credentials: " + CredentialError(e.err)
}

func (e *credentialsError) Unwrap() error { return e.err }

// Hint says where credentials come from, unless the credential source
// gives a hint of its own (Roles Anywhere does).
func (e *credentialsError) Hint() string {
	var h exitcode.Hinter
	if errors.As(e.err, &h) && h.Hint() != "" {
		return ""
	}
	return "the credentials come from IAM Roles Anywhere when its settings (certificate, key, trust anchor, profile, role) are given, " +
		"and from the AWS SDK's default chain otherwise (environment, profile, SSO, web identity, ECS, instance metadata)"
}

// DeniedCode reports an AWS error code that means the caller is not
// allowed: IAM, KMS, or credentials that AWS does not accept.
func DeniedCode(code string) bool { return deniedCodes[code] }

// CredentialError describes a credential provider's failure in one line.
// The credential_process provider quotes the process's output when it
// cannot parse it, and that output may hold credentials: it is never
// shown.
func CredentialError(err error) string {
	var pe *processcreds.ProviderError
	if errors.As(err, &pe) {
		return "credential_process failed (its output is not shown: it may hold credentials)"
	}
	return oneLine(err.Error())
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 400 {
		s = s[:400] + "…"
	}
	return s
}

// Codes that mean AWS does not accept the credentials themselves: they
// expired (early: revoked sessions answer the same), or AWS does not know
// the key or token, or the signature does not match (what a key whose
// secret AWS no longer has gives). New credentials from the same source
// may be accepted where these were not. A policy that denies the call
// (AccessDenied, KMS) is not among them: new credentials get the same
// answer. Neither are a request AWS could not authenticate at all
// (IncompleteSignature, MissingAuthenticationToken) nor EC2's AuthFailure,
// which covers both kinds.
var rejectedCredentialCodes = map[string]bool{
	"ExpiredToken": true, "ExpiredTokenException": true,
	"InvalidClientTokenId": true, "UnrecognizedClientException": true, "InvalidAccessKeyId": true,
	"InvalidSignatureException": true, "SignatureDoesNotMatch": true,
}

// credentialsRejected reports an AWS error code that means the
// credentials themselves are no longer good.
func credentialsRejected(code string) bool { return rejectedCredentialCodes[code] }

// invalidateCredentials drops the cached credentials of p, when it caches
// them (aws.CredentialsCache does, and rolesenv's providers pass it on),
// so that the next request obtains new ones. It reports whether p could.
func invalidateCredentials(p aws.CredentialsProvider) bool {
	i, ok := p.(interface{ Invalidate() })
	if ok {
		i.Invalidate()
	}
	return ok
}

// fetchRenewing is Fetch, and when AWS rejected the credentials themselves
// (see credentialsRejected), drops them and fetches what failed that way
// once more with new ones: cached credentials that AWS revoked or expired
// early would otherwise fail every fetch until their expiry time.
func (r *Resolver) fetchRenewing(ctx context.Context, fs []Fetch) *Values {
	vals := r.Fetch(ctx, fs)
	var again []Fetch
	code := ""
	for _, f := range vals.Fetches() {
		if fe := vals.m[f].err; fe != nil && credentialsRejected(fe.code) {
			again = append(again, f)
			code = fe.code
		}
	}
	if len(again) == 0 || ctx.Err() != nil || !invalidateCredentials(r.Config.Credentials) {
		return vals
	}
	r.log().Info("AWS rejected the credentials; dropping them to obtain new ones and trying again", "code", code, "fetches", len(again))
	vals.Merge(r.Fetch(ctx, again))
	return vals
}
