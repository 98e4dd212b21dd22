package awsdev

// This file holds the emulator's types. The API is a contract that the
// packages testing against the emulator rely on: add to it, do not change
// it. Operation names everywhere in this API are IAM action names:
// "rolesanywhere:CreateSession", "secretsmanager:GetSecretValue",
// "secretsmanager:BatchGetSecretValue", "secretsmanager:DescribeSecret",
// "ssm:GetParameters", "sts:GetCallerIdentity", ...

import (
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// Options configure a Server. Zero values take defaults.
type Options struct {
	Addr      string           // listen address; default "127.0.0.1:0"
	HTTP      bool             // serve plain HTTP instead of HTTPS
	Region    string           // the home region; default "us-east-1"
	Regions   []string         // more regions served besides Region (see Server.InRegion)
	AccountID string           // default "123456789012"
	TLSCACert []byte           // PEM CA certificate for the TLS server certificate; nil generates one
	TLSCAKey  []byte           // PEM (PKCS#8) key of TLSCACert
	Now       func() time.Time // the emulator's clock; nil means time.Now
	Logger    *slog.Logger     // nil means quiet
}

// Server is a running emulator. All methods are safe for concurrent use.
type Server struct {
	accountID  string
	now        func() time.Time
	log        *slog.Logger
	home       *Region            // Options.Region
	regions    map[string]*Region // every region served, by name; never changes after newServer
	regionList []string           // their names, home first

	ln        net.Listener
	srv       *http.Server
	url       string
	caPEM     []byte
	caKeyPEM  []byte
	closing   chan struct{} // closed by Close
	closeOnce sync.Once
	served    chan struct{} // closed when Serve returns
	connMu    sync.Mutex
	fresh     map[net.Conn]bool // connections that have not sent a request yet

	mu           sync.Mutex // guards everything below
	users        map[string]*user
	keys         map[string]*accessKey // static keys by id
	roles        map[string]*role      // by name
	sessions     map[string]*session   // by access key id
	credLifetime time.Duration

	ctl *controls // its own lock
}

// Region is one region of the emulator: its Secrets Manager secrets, SSM
// parameters and Roles Anywhere trust anchors and profiles, which no other
// region sees. IAM (users, roles, policies) and STS are global, as in AWS.
// Its methods are the Server's data methods, acting in this region; it is
// safe for concurrent use.
type Region struct {
	s        *Server
	name     string
	secrets  map[string]*secret      // by name
	params   map[string]*parameter   // by name
	anchors  map[string]*trustAnchor // by ARN
	profiles map[string]*profile     // by ARN
	subjects map[string]string       // Roles Anywhere subject ids, by certificate subject and issuer
}

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

// TrustAnchorOptions describe a Roles Anywhere trust anchor.
type TrustAnchorOptions struct {
	ID       string // the ARN's id; "" generates a UUID
	Disabled bool
}

// ProfileOptions describe a Roles Anywhere profile.
type ProfileOptions struct {
	ID              string   // "" generates a UUID
	RoleARNs        []string // roles the profile may vend
	DurationSeconds int      // the profile's maximum; 0 means 3600
	Disabled        bool
	SessionPolicy   *Policy // optional: intersected with the role's policy
	// RejectRoleSessionName refuses a roleSessionName in CreateSession, as
	// AWS does for a profile without acceptRoleSessionName. The emulator
	// accepts one by default.
	RejectRoleSessionName bool
}

// SecretVersion is one version of a secret as the emulator stores it.
type SecretVersion struct {
	VersionID string
	String    *string
	Binary    []byte
	Stages    []string
}

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
