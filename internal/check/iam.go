package check

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	"github.com/rolesenv/rolesenv/inject"
)

// Statement is an IAM policy statement that would allow a denied call.
type Statement struct {
	Effect   string `json:"Effect"`
	Action   string `json:"Action"`
	Resource string `json:"Resource"`
}

// Allow is the statement that allows action on resource.
func Allow(action, resource string) *Statement {
	return &Statement{Effect: "Allow", Action: action, Resource: resource}
}

// JSON is the statement on one line, ready to paste into a policy.
func (s *Statement) JSON() string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return strings.TrimSpace(b.String())
}

// Principal says who is asking AWS, so that a denial can say which policy
// needs a statement and how to write resource ARNs.
type Principal struct {
	// ARN is the caller's identity: arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION
	// or an IAM user's ARN. "" when unknown.
	ARN string
	// Region is the configuration's region, for ARNs of references named
	// without one.
	Region string
}

// partition and account of the caller, or "aws" and "*" when unknown.
func (p Principal) partition() string {
	if f := arnFields(p.ARN); f != nil && f[1] != "" {
		return f[1]
	}
	return "aws"
}

func (p Principal) account() string {
	if f := arnFields(p.ARN); f != nil && f[4] != "" {
		return f[4]
	}
	return "*"
}

// PolicyHolder names the IAM identity whose policy needs the statement:
// the role of an assumed-role session, else the caller itself.
func (p Principal) PolicyHolder() string {
	f := arnFields(p.ARN)
	if f == nil {
		return ""
	}
	if f[2] == "sts" && strings.HasPrefix(f[5], "assumed-role/") {
		role, _, _ := strings.Cut(strings.TrimPrefix(f[5], "assumed-role/"), "/")
		return "arn:" + f[1] + ":iam::" + f[4] + ":role/" + role
	}
	return p.ARN
}

func arnFields(arn string) []string {
	f := strings.SplitN(arn, ":", 6)
	if len(f) != 6 || f[0] != "arn" {
		return nil
	}
	return f
}

// failure is what an AWS error says, in the terms a row needs.
type failure struct {
	code     string
	msg      string // AWS's message, on one line
	denied   bool
	notFound bool
	// From an AccessDenied message: the action and resource AWS
	// evaluated, and whether an explicit Deny decided.
	action, resource string
	explicitDeny     bool
}

var notFoundCodes = map[string]bool{
	"ResourceNotFoundException": true, "ParameterNotFound": true, "ParameterVersionNotFound": true,
}

// describe reads an error from the SDK, or an inject error that wraps one.
func describe(err error) failure {
	var f failure
	var ae smithy.APIError
	if errors.As(err, &ae) {
		f.code, f.msg = ae.ErrorCode(), oneLine(ae.ErrorMessage())
	}
	var re *awshttp.ResponseError
	status := 0
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	var rerr *inject.ResolveError
	if errors.As(err, &rerr) {
		if f.code == "" {
			f.code = rerr.Code
		}
		f.denied = rerr.AccessDenied()
	}
	f.denied = f.denied || inject.DeniedCode(f.code) || status == http.StatusForbidden
	f.notFound = notFoundCodes[f.code]
	f.action, f.resource, f.explicitDeny = parseDenial(f.msg)
	return f
}

// parseDenial reads the action and resource from AWS's wording of a
// denial: "User: ARN is not authorized to perform: ACTION on resource:
// RESOURCE because ..." (with "with an explicit deny" when a Deny
// statement decided).
func parseDenial(msg string) (action, resource string, explicit bool) {
	_, rest, ok := strings.Cut(msg, "is not authorized to perform: ")
	if !ok {
		return "", "", false
	}
	action, rest, ok = strings.Cut(rest, " on resource: ")
	if !ok || strings.ContainsAny(action, " \t") {
		return "", "", false
	}
	resource, why, _ := strings.Cut(rest, " ")
	resource = strings.TrimRight(resource, ".,;")
	return action, resource, strings.Contains(strings.ToLower(why), "explicit deny")
}

// resourceARN is the ARN a policy names for a reference's secret or
// parameter, built from the id when AWS's message did not give it.
// Secrets named without an ARN get Secrets Manager's six-character
// suffix as a wildcard, as the IAM documentation recommends.
func resourceARN(f inject.Fetch, p Principal) string {
	if strings.HasPrefix(f.ID, "arn:") {
		return f.ID
	}
	region := f.Region
	if region == "" {
		region = p.Region
	}
	if region == "" {
		region = "*"
	}
	prefix := "arn:" + p.partition() + ":"
	if f.Service == inject.ParameterStore {
		return prefix + "ssm:" + region + ":" + p.account() + ":parameter/" + strings.TrimPrefix(f.ID, "/")
	}
	return prefix + "secretsmanager:" + region + ":" + p.account() + ":secret:" + f.ID + "-??????"
}

// denial fills a row's action, resource and statement for a refused
// call: what AWS said it evaluated, else the action called on resource.
func denial(row *Row, fl failure, action, resource string, p Principal) {
	row.Action, row.Resource = fl.action, fl.resource
	if row.Action == "" {
		row.Action = action
	}
	if row.Resource == "" {
		row.Resource = resource
	}
	switch {
	case isKMS(fl):
		row.Hint = "the secret's KMS key refused decryption: allow kms:Decrypt on that key to " + holder(p) +
			" (in the identity policy and the key policy)"
		return
	case fl.explicitDeny:
		row.Hint = "an explicit Deny statement refused it; an Allow cannot override a Deny, so change the statement that denies"
		return
	case fl.code != "" && fl.code != "AccessDeniedException" && fl.code != "AccessDenied" && !strings.HasPrefix(fl.code, "HTTP "):
		// The credentials themselves were refused: no statement helps.
		row.Hint = "AWS did not accept the credentials (" + fl.code + "); check the credentials row"
		return
	}
	row.Statement = Allow(row.Action, row.Resource)
	row.Hint = "add this statement to the identity policy of " + holder(p)
}

func holder(p Principal) string {
	if h := p.PolicyHolder(); h != "" {
		return h
	}
	return "the caller"
}

func isKMS(fl failure) bool {
	return fl.code == "KMSAccessDeniedException" || fl.code == "DecryptionFailure" ||
		strings.Contains(fl.msg, "Access to KMS is not allowed")
}
