package signer

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Redacted is what a Credentials value prints as, however it is printed.
const Redacted = "[redacted]"

// Credentials are the temporary credentials of a role session, with what
// CreateSession said about the session. The value prints as [redacted]
// with every fmt verb, in slog and in JSON or text marshalling: the keys
// leave it only through its fields or AWS.
type Credentials struct {
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	Expiration      time.Time

	// AssumedRoleARN is the session's identity,
	// arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION.
	AssumedRoleARN string
	AssumedRoleID  string
	RoleARN        string
	SourceIdentity string // the certificate's subject CN, as the service sets it
	SubjectARN     string // the Roles Anywhere subject of the certificate
}

func (Credentials) String() string               { return Redacted }
func (Credentials) GoString() string             { return Redacted }
func (Credentials) Format(f fmt.State, _ rune)   { _, _ = f.Write([]byte(Redacted)) }
func (Credentials) MarshalText() ([]byte, error) { return []byte(Redacted), nil }
func (Credentials) LogValue() slog.Value         { return slog.StringValue(Redacted) }

// AccountID is the account of the session, from AssumedRoleARN or RoleARN.
func (c Credentials) AccountID() string {
	for _, a := range []string{c.AssumedRoleARN, c.RoleARN} {
		if p := strings.SplitN(a, ":", 6); len(p) == 6 && p[4] != "" {
			return p[4]
		}
	}
	return ""
}

// AWS returns the credentials as the AWS SDK for Go v2 takes them.
func (c Credentials) AWS() aws.Credentials {
	return aws.Credentials{
		AccessKeyID:     c.AccessKeyID,
		SecretAccessKey: c.SecretAccessKey,
		SessionToken:    c.SessionToken,
		Source:          ProviderSource,
		CanExpire:       true,
		Expires:         c.Expiration,
		AccountID:       c.AccountID(),
	}
}

// ProviderSource is the Source of the aws.Credentials this package makes.
const ProviderSource = "RolesAnywhere"
