// Package awsdev is a local, in-memory AWS emulator for rolesenv's tests,
// benchmarks and the `rolesenv dev` command: IAM Roles Anywhere
// CreateSession, Secrets Manager, SSM Parameter Store and STS
// GetCallerIdentity, on one loopback listener, over HTTPS with its own CA or
// plain HTTP.
//
// API CONTRACT (frozen while the packages that test against it are being
// written; add to it, do not change it). Operation names everywhere in this
// API are IAM action names: "rolesanywhere:CreateSession",
// "secretsmanager:GetSecretValue", "secretsmanager:BatchGetSecretValue",
// "secretsmanager:DescribeSecret", "ssm:GetParameters", "sts:GetCallerIdentity", ...
package awsdev

import (
	"crypto/x509"
	"log/slog"
	"time"
)

// Options configure a Server. Zero values take defaults.
type Options struct {
	Addr      string           // listen address; default "127.0.0.1:0"
	HTTP      bool             // serve plain HTTP instead of HTTPS
	Region    string           // default "us-east-1"
	AccountID string           // default "123456789012"
	TLSCACert []byte           // PEM CA certificate for the TLS server certificate; nil generates one
	TLSCAKey  []byte           // PEM (PKCS#8) key of TLSCACert
	Now       func() time.Time // the emulator's clock; nil means time.Now
	Logger    *slog.Logger     // nil means quiet
}

// Server is a running emulator. All methods are safe for concurrent use.
type Server struct{}

// Start listens and serves until Close.
func Start(opts Options) (*Server, error) { panic("awsdev: not implemented") }

// URL is the base URL clients use as their endpoint, e.g. "https://127.0.0.1:41234".
func (s *Server) URL() string { panic("awsdev: not implemented") }

// CAPEM is the PEM CA certificate that signed the TLS certificate (nil with HTTP).
// Clients trust it through AWS_CA_BUNDLE.
func (s *Server) CAPEM() []byte { panic("awsdev: not implemented") }

// CAKeyPEM is the PEM key of CAPEM, so `rolesenv dev` can keep it across restarts.
func (s *Server) CAKeyPEM() []byte { panic("awsdev: not implemented") }

// Region and AccountID are the ones the server was started with.
func (s *Server) Region() string    { panic("awsdev: not implemented") }
func (s *Server) AccountID() string { panic("awsdev: not implemented") }

// Close stops the listener and waits for in-flight requests.
func (s *Server) Close() error { panic("awsdev: not implemented") }

// Rule allows Actions on Resources. Both use IAM wildcards (* and ?).
type Rule struct {
	Actions   []string
	Resources []string
}

// Policy is a role's or user's identity policy: what is not allowed is denied.
type Policy struct {
	Allow []Rule
}

// AllowAll is a policy that allows every action on every resource.
var AllowAll = Policy{Allow: []Rule{{Actions: []string{"*"}, Resources: []string{"*"}}}}

// RoleOptions describe an IAM role.
type RoleOptions struct {
	Policy Policy
	// Conditions on the certificate of a Roles Anywhere session, as the
	// role's trust policy would state them with aws:PrincipalTag/x509...:
	// keys "x509Subject/CN", "x509Issuer/CN", "x509SAN/DNS", "x509SAN/URI",
	// "x509SAN/Name"; each value is a list of IAM wildcard patterns of which
	// one must match (StringLike).
	Conditions map[string][]string
}

// CreateRole creates (or replaces) a role and returns its ARN
// (arn:aws:iam::<account>:role/<name>).
func (s *Server) CreateRole(name string, opts RoleOptions) string { panic("awsdev: not implemented") }

// SetRolePolicy replaces a role's policy at run time (revoked access).
func (s *Server) SetRolePolicy(name string, p Policy) error { panic("awsdev: not implemented") }

// CreateUser creates an IAM user with the given policy and returns
// long-term static credentials for it.
func (s *Server) CreateUser(name string, p Policy) (accessKeyID, secretAccessKey string) {
	panic("awsdev: not implemented")
}

// AddAccessKey registers fixed static credentials for an existing user
// (for `rolesenv dev`, which keeps them across restarts).
func (s *Server) AddAccessKey(user, accessKeyID, secretAccessKey string) error {
	panic("awsdev: not implemented")
}

// TrustAnchorOptions describe a Roles Anywhere trust anchor.
type TrustAnchorOptions struct {
	ID       string // the ARN's id; "" generates a UUID
	Disabled bool
}

// CreateTrustAnchor registers a CA (a root, or an intermediate as AWS
// allows) and returns the trust anchor ARN
// (arn:aws:rolesanywhere:<region>:<account>:trust-anchor/<id>).
func (s *Server) CreateTrustAnchor(ca *x509.Certificate, opts TrustAnchorOptions) string {
	panic("awsdev: not implemented")
}

// ProfileOptions describe a Roles Anywhere profile.
type ProfileOptions struct {
	ID              string   // "" generates a UUID
	RoleARNs        []string // roles the profile may vend
	DurationSeconds int      // the profile's maximum; 0 means 3600
	Disabled        bool
	SessionPolicy   *Policy // optional: intersected with the role's policy
}

// CreateProfile returns the profile ARN
// (arn:aws:rolesanywhere:<region>:<account>:profile/<id>).
func (s *Server) CreateProfile(opts ProfileOptions) string { panic("awsdev: not implemented") }

// SecretVersion is one version of a secret as the emulator stores it.
type SecretVersion struct {
	VersionID string
	String    *string
	Binary    []byte
	Stages    []string
}

// CreateSecret creates a secret with a first version (AWSCURRENT) and
// returns its ARN (…:secret:<name>-<6 random characters>). value is the
// SecretString.
func (s *Server) CreateSecret(name, value string) (arn string, err error) {
	panic("awsdev: not implemented")
}

// CreateBinarySecret is CreateSecret with a SecretBinary.
func (s *Server) CreateBinarySecret(name string, value []byte) (arn string, err error) {
	panic("awsdev: not implemented")
}

// PutSecretValue adds a version as the PutSecretValue API does: with no
// stages it becomes AWSCURRENT and the old current becomes AWSPREVIOUS.
// It returns the new version id.
func (s *Server) PutSecretValue(secretID, value string, stages ...string) (versionID string, err error) {
	panic("awsdev: not implemented")
}

// DeleteSecret deletes a secret at once (ForceDeleteWithoutRecovery).
func (s *Server) DeleteSecret(secretID string) error { panic("awsdev: not implemented") }

// SecretVersions lists the versions of a secret.
func (s *Server) SecretVersions(secretID string) ([]SecretVersion, error) {
	panic("awsdev: not implemented")
}

// PutParameter creates or overwrites an SSM parameter (typ is "String",
// "StringList" or "SecureString") and returns its new version.
func (s *Server) PutParameter(name, typ, value string) (version int64, err error) {
	panic("awsdev: not implemented")
}

// LabelParameterVersion attaches labels to a parameter version.
func (s *Server) LabelParameterVersion(name string, version int64, labels ...string) error {
	panic("awsdev: not implemented")
}

// DeleteParameter deletes a parameter.
func (s *Server) DeleteParameter(name string) error { panic("awsdev: not implemented") }

// Fault is an injected failure.
type Fault int

const (
	// FaultInternal answers HTTP 500 with the service's InternalFailure /
	// InternalServiceError type.
	FaultInternal Fault = iota + 1
	// FaultThrottle answers HTTP 400 ThrottlingException (429
	// TooManyRequestsException for Roles Anywhere), as the real services do.
	FaultThrottle
	// FaultUnavailable answers HTTP 503 ServiceUnavailable.
	FaultUnavailable
	// FaultReset closes the connection without an answer.
	FaultReset
)

// SetLatency adds d before every answer (all operations).
func (s *Server) SetLatency(d time.Duration) { panic("awsdev: not implemented") }

// SetOperationLatency adds d before answers to op (in addition to SetLatency).
func (s *Server) SetOperationLatency(op string, d time.Duration) { panic("awsdev: not implemented") }

// FailNext makes the next n calls of op fail with f. op "*" means any operation.
func (s *Server) FailNext(op string, n int, f Fault) { panic("awsdev: not implemented") }

// SetErrorRate makes a fraction (0 to 1) of calls of op fail with f; 0 turns it off.
func (s *Server) SetErrorRate(op string, rate float64, f Fault) { panic("awsdev: not implemented") }

// SetQuota enforces a request-rate quota on op (a token bucket of tps
// tokens a second with a burst of tps, as AWS documents its quotas);
// calls over it get the service's throttling error. 0 removes it.
func (s *Server) SetQuota(op string, tps float64) { panic("awsdev: not implemented") }

// SetAWSQuotas sets the documented default quotas: GetSecretValue 10,000,
// BatchGetSecretValue 100, DescribeSecret 40,000, ssm GetParameters 40
// (standard throughput) and CreateSession at the rate given.
func (s *Server) SetAWSQuotas(createSessionTPS float64) { panic("awsdev: not implemented") }

// Calls is the number of calls of op received so far (including failed,
// throttled and denied ones). Throttled is how many of them were throttled
// by a quota.
func (s *Server) Calls(op string) int64     { panic("awsdev: not implemented") }
func (s *Server) Throttled(op string) int64 { panic("awsdev: not implemented") }

// CallCounts returns every operation's call count; ResetCalls zeroes them.
func (s *Server) CallCounts() map[string]int64 { panic("awsdev: not implemented") }
func (s *Server) ResetCalls()                  { panic("awsdev: not implemented") }

// SetCredentialLifetime sets the lifetime of session credentials issued
// from now on; shorter than AWS allows is allowed (tests use seconds). 0
// restores the requested duration.
func (s *Server) SetCredentialLifetime(d time.Duration) { panic("awsdev: not implemented") }

// ExpireCredentials makes every session credential issued so far expired.
func (s *Server) ExpireCredentials() { panic("awsdev: not implemented") }
