package inject

import (
	"errors"
	"net/url"
	"strconv"
	"strings"
)

// Service is the AWS service a reference reads from.
type Service uint8

const (
	SecretsManager Service = iota + 1
	ParameterStore
)

func (s Service) String() string {
	switch s {
	case SecretsManager:
		return "secretsmanager"
	case ParameterStore:
		return "ssm"
	}
	return "unknown"
}

// idName is what errors call the id of a reference to the service.
func (s Service) idName() string {
	if s == ParameterStore {
		return "parameter name"
	}
	return "secret id"
}

// currentStage is the stage a secret reference reads unless pinned.
const currentStage = "AWSCURRENT"

// bridgePrefix is the Parameter Store path that reads a Secrets Manager
// secret. rolesenv fetches such references from Secrets Manager directly
// (see the package documentation).
const bridgePrefix = "/aws/reference/secretsmanager/"

// maxRefLen bounds a reference's text, and maxKeyLen its JSON key or
// pointer, so that the canonical form (ids up to AWS's 2048 bytes, a key
// percent-encoded up to three times its length) stays under maxRefLen.
const (
	maxRefLen = 8192
	maxKeyLen = 1024
)

// Fetch is one distinct thing to fetch: a secret at a version selector, or
// a parameter at a selector. It is comparable: the resolver makes one
// request (or one slot of a batch) per distinct Fetch, however many
// variables and JSON keys use it.
type Fetch struct {
	Service Service
	// Region is the region of an ARN id; "" means the configuration's.
	Region string
	// ID is the secret's name or ARN, or the parameter's name or ARN.
	ID string
	// Stage is the secret's version stage (AWSCURRENT unless pinned
	// otherwise); empty when VersionID pins the version.
	Stage string
	// VersionID pins a secret's version.
	VersionID string
	// Version pins a parameter's version; 0 is the latest.
	Version int64
	// Label selects a parameter's version by label.
	Label string
}

// Pinned reports a fetch whose answer cannot change: a secret version id
// or a parameter version. A watcher never polls these.
func (f Fetch) Pinned() bool {
	return f.VersionID != "" || (f.Service == ParameterStore && f.Version != 0)
}

// String is the fetch as a canonical reference (without JSON key), for
// logs and errors.
func (f Fetch) String() string {
	return Ref{Fetch: f}.String()
}

// Ref is one parsed reference: what to fetch and which part of it to use.
type Ref struct {
	Fetch
	// Key is a top-level JSON key; Pointer a JSON Pointer (RFC 6901). At
	// most one is set.
	Key     string
	Pointer string
}

// ParseRef parses a reference in any of the forms of the reference
// grammar: sm://, ssm://, a Secrets Manager or SSM parameter ARN (ECS
// valueFrom), or the inside of a CloudFormation dynamic reference
// (resolve:secretsmanager:..., resolve:ssm:..., resolve:ssm-secure:...).
// Errors describe the problem without repeating the text.
func ParseRef(s string) (Ref, error) {
	if len(s) > maxRefLen {
		return Ref{}, errors.New("reference is too long")
	}
	switch {
	case strings.HasPrefix(s, "sm://"):
		return parseURI(SecretsManager, s[len("sm://"):])
	case strings.HasPrefix(s, "ssm://"):
		return parseURI(ParameterStore, s[len("ssm://"):])
	case strings.HasPrefix(s, "arn:"):
		return parseECS(s)
	case strings.HasPrefix(s, "resolve:secretsmanager:"):
		return parseCFNSecret(s[len("resolve:secretsmanager:"):])
	case strings.HasPrefix(s, "resolve:ssm:"):
		return parseCFNParam(s[len("resolve:ssm:"):])
	case strings.HasPrefix(s, "resolve:ssm-secure:"):
		return parseCFNParam(s[len("resolve:ssm-secure:"):])
	case strings.HasPrefix(s, "resolve:"):
		return Ref{}, errors.New("unknown dynamic reference service (want secretsmanager, ssm or ssm-secure)")
	}
	return Ref{}, errors.New("unknown reference scheme (want sm://, ssm://, an ARN or resolve:)")
}

// isWholeRef reports whether a value is meant as a whole-value reference:
// it starts with sm:// or ssm://, or is a Secrets Manager secret ARN or an
// SSM parameter ARN. Other ARNs are ordinary values.
func isWholeRef(v string) bool {
	if strings.HasPrefix(v, "sm://") || strings.HasPrefix(v, "ssm://") {
		return true
	}
	if !strings.HasPrefix(v, "arn:") {
		return false
	}
	f := strings.SplitN(v, ":", 7)
	if len(f) < 6 {
		return false
	}
	switch f[2] {
	case "secretsmanager":
		return len(f) == 7 && f[5] == "secret"
	case "ssm":
		return strings.HasPrefix(f[5], "parameter/")
	}
	return false
}

// parseURI parses the part after sm:// or ssm://: id[?query][#fragment].
// Each part is percent-decoded once, as a URL path is: '+' stays '+'.
// No character of a secret or parameter name needs encoding, so the
// canonical form (String) never encodes one.
func parseURI(svc Service, rest string) (Ref, error) {
	var r Ref
	r.Service = svc
	id, frag, hasFrag := strings.Cut(rest, "#")
	id, query, hasQuery := strings.Cut(id, "?")
	id, err := url.PathUnescape(id)
	if err != nil {
		return Ref{}, errors.New("invalid percent-encoding in the " + svc.idName())
	}
	r.ID = id
	if hasQuery {
		if err := r.parseQuery(query); err != nil {
			return Ref{}, err
		}
	}
	if hasFrag {
		key, err := url.PathUnescape(frag)
		if err != nil {
			return Ref{}, errors.New("invalid percent-encoding in the JSON key")
		}
		if err := r.setKey(key, true); err != nil {
			return Ref{}, err
		}
	}
	return r.finish()
}

// parseQuery parses a query of selectors, each given once.
func (r *Ref) parseQuery(q string) error {
	seen := map[string]bool{}
	for _, kv := range strings.Split(q, "&") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || v == "" {
			return errors.New("empty or malformed query parameter (want ?stage=, ?version= or ?label=)")
		}
		v, err := url.PathUnescape(v)
		if err != nil {
			return errors.New("invalid percent-encoding in the query")
		}
		if seen[k] {
			return errors.New("query parameter " + strconv.Quote(k) + " given twice")
		}
		seen[k] = true
		if err := r.setSelector(k, v); err != nil {
			return err
		}
	}
	return nil
}

// setSelector sets the selector a query parameter names. A parameter's
// version stays in VersionID until finish knows whether it is a number
// or, through the bridge, a secret's version id.
func (r *Ref) setSelector(k, v string) error {
	switch {
	case r.Service == SecretsManager && k == "stage":
		r.Stage = v
	case r.Service == SecretsManager && k == "version":
		r.VersionID = v
	case r.Service == ParameterStore && k == "version":
		r.VersionID = v
	case r.Service == ParameterStore && k == "label":
		r.Label = v
	case len(k) > 20 || !isToken(k):
		return errors.New("unknown query parameter")
	case r.Service == SecretsManager:
		return errors.New("unknown query parameter " + strconv.Quote(k) + " (want stage or version)")
	default:
		return errors.New("unknown query parameter " + strconv.Quote(k) + " (want version or label)")
	}
	return nil
}

// setKey sets a JSON key or, for a fragment starting with '/', a JSON
// Pointer.
func (r *Ref) setKey(key string, pointerAllowed bool) error {
	if key == "" {
		return errors.New("empty JSON key")
	}
	if len(key) > maxKeyLen {
		return errors.New("JSON key is too long")
	}
	if pointerAllowed && strings.HasPrefix(key, "/") {
		if err := checkPointer(key); err != nil {
			return err
		}
		r.Pointer = key
		return nil
	}
	r.Key = key
	return nil
}

// parseECS parses an ECS valueFrom ARN:
// arn:aws:secretsmanager:<region>:<account>:secret:<name>[:<json-key>:<stage>:<version-id>]
// or arn:aws:ssm:<region>:<account>:parameter/<name>.
func parseECS(s string) (Ref, error) {
	f := strings.Split(s, ":")
	if len(f) < 6 {
		return Ref{}, errors.New("malformed ARN")
	}
	var r Ref
	switch f[2] {
	case "secretsmanager":
		if len(f) != 7 && len(f) != 10 {
			return Ref{}, errors.New("malformed secret ARN (want arn:aws:secretsmanager:<region>:<account>:secret:<name>, optionally followed by :<json-key>:<stage>:<version-id>)")
		}
		r.Service = SecretsManager
		r.ID = strings.Join(f[:7], ":")
		if len(f) == 10 {
			if f[7] != "" {
				if err := r.setKey(f[7], false); err != nil {
					return Ref{}, err
				}
			}
			r.Stage, r.VersionID = f[8], f[9]
		}
	case "ssm":
		if len(f) != 6 {
			return Ref{}, errors.New("malformed parameter ARN (want arn:aws:ssm:<region>:<account>:parameter/<name>)")
		}
		r.Service = ParameterStore
		r.ID = s
	default:
		return Ref{}, errors.New("unsupported ARN service (want secretsmanager or ssm)")
	}
	return r.finish()
}

// parseCFNSecret parses <id>[:SecretString[:<json-key>[:<stage>[:<version-id>]]]]
// where <id> may be a full ARN.
func parseCFNSecret(rest string) (Ref, error) {
	f := strings.Split(rest, ":")
	n := 1
	if strings.HasPrefix(rest, "arn:") {
		n = 7
		if len(f) < n {
			return Ref{}, errors.New("malformed secret ARN")
		}
	}
	r := Ref{Fetch: Fetch{Service: SecretsManager, ID: strings.Join(f[:n], ":")}}
	extra := f[n:]
	if len(extra) > 4 {
		return Ref{}, errors.New("too many fields (want <id>:SecretString:<json-key>:<stage>:<version-id>)")
	}
	extra = append(extra, "", "", "", "")
	if extra[0] != "" && extra[0] != "SecretString" {
		return Ref{}, errors.New("the field after the secret id must be SecretString")
	}
	if extra[1] != "" {
		if err := r.setKey(extra[1], false); err != nil {
			return Ref{}, err
		}
	}
	r.Stage, r.VersionID = extra[2], extra[3]
	return r.finish()
}

// parseCFNParam parses <name>[:<version>] where <name> may be a parameter
// ARN.
func parseCFNParam(rest string) (Ref, error) {
	r := Ref{Fetch: Fetch{Service: ParameterStore}}
	f := strings.Split(rest, ":")
	n := 1
	if strings.HasPrefix(rest, "arn:") {
		n = 6
		if len(f) < n {
			return Ref{}, errors.New("malformed parameter ARN")
		}
	}
	r.ID = strings.Join(f[:n], ":")
	switch len(f) - n {
	case 0:
	case 1:
		if f[n] == "" {
			return Ref{}, errors.New("empty parameter version")
		}
		r.VersionID = f[n]
	default:
		return Ref{}, errors.New("too many fields (want <name>:<version>)")
	}
	return r.finish()
}

// finish validates and normalises a parsed reference: ids and selectors,
// the region of an ARN, the Parameter Store bridge to Secrets Manager.
func (r Ref) finish() (Ref, error) {
	if r.Service == ParameterStore {
		name, region, err := paramName(r.ID)
		if err != nil {
			return Ref{}, err
		}
		secret, ok := strings.CutPrefix(name, bridgePrefix)
		if !ok {
			return r.finishParam(region)
		}
		r = r.bridged(secret, region)
	}
	return r.finishSecret()
}

// bridged turns a reference to /aws/reference/secretsmanager/<secret-id>
// into the secret reference it stands for: a label selects a stage, a
// version a secret version id.
func (r Ref) bridged(secret, region string) Ref {
	paramARN := r.ID
	r.Service = SecretsManager
	r.ID = secret
	if region != "" {
		// By parameter ARN: the secret's partial ARN (without the random
		// suffix, which GetSecretValue accepts) keeps the partition,
		// region and account.
		f := strings.Split(paramARN, ":")
		r.ID = strings.Join([]string{"arn", f[1], "secretsmanager", f[3], f[4], "secret", secret}, ":")
	}
	r.Stage, r.Label = r.Label, ""
	return r
}

// finishParam checks a parameter's selectors: a version is a positive
// number (in VersionID until now), a label follows SSM's rules, and at
// most one of them is given.
func (r Ref) finishParam(region string) (Ref, error) {
	r.Region = region
	if r.VersionID != "" {
		v, err := strconv.ParseInt(r.VersionID, 10, 64)
		if err != nil || v <= 0 || r.VersionID[0] == '0' {
			return Ref{}, errors.New("a parameter version is a positive number")
		}
		r.Version, r.VersionID = v, ""
	}
	if r.Version != 0 && r.Label != "" {
		return Ref{}, errors.New("both a version and a label are pinned; give one")
	}
	if r.Label != "" && !validLabel(r.Label) {
		return Ref{}, errors.New("invalid parameter label (letters, digits, . - _; not starting with a digit)")
	}
	return r, nil
}

// finishSecret checks a secret's id and selectors, and pins AWSCURRENT
// when nothing else is.
func (r Ref) finishSecret() (Ref, error) {
	region, err := secretID(r.ID)
	if err != nil {
		return Ref{}, err
	}
	r.Region = region
	if r.Stage != "" && r.VersionID != "" {
		return Ref{}, errors.New("both a stage and a version id are pinned; give one")
	}
	if r.Stage != "" && !validStage(r.Stage) {
		return Ref{}, errors.New("invalid version stage")
	}
	if r.VersionID != "" && !validVersionID(r.VersionID) {
		return Ref{}, errors.New("invalid version id")
	}
	if r.VersionID == "" && r.Stage == "" {
		r.Stage = currentStage
	}
	return r, nil
}

// maxIDLen bounds a secret id or parameter name, ARN included: AWS's
// limit for both (names alone are shorter; AWS refuses what is too long).
const maxIDLen = 2048

var (
	errSecretName = errors.New("invalid character in the secret name (allowed: letters, digits and /_+=.@!-)")
	errParamName  = errors.New("invalid character in the parameter name (allowed: letters, digits and _.-/)")
)

// secretID validates a secret name or ARN and returns the ARN's region.
func secretID(id string) (region string, err error) {
	if id == "" {
		return "", errors.New("empty secret id")
	}
	if len(id) > maxIDLen {
		return "", errors.New("secret id is too long")
	}
	name := id
	if strings.HasPrefix(id, "arn:") {
		f := strings.Split(id, ":")
		if len(f) != 7 || f[2] != "secretsmanager" || f[5] != "secret" || f[6] == "" || !validARNPart(f[1]) || !validRegion(f[3]) || !validARNPart(f[4]) {
			return "", errors.New("malformed secret ARN (want arn:<partition>:secretsmanager:<region>:<account>:secret:<name>)")
		}
		name, region = f[6], f[3]
	}
	if !validSecretName(name) {
		return "", errSecretName
	}
	return region, nil
}

// paramName validates a parameter name or ARN and returns the name and the
// ARN's region. The name of a bridge parameter
// (/aws/reference/secretsmanager/<secret-id>) ends in a secret's name,
// with a secret name's characters.
func paramName(id string) (name, region string, err error) {
	if id == "" {
		return "", "", errors.New("empty parameter name")
	}
	if len(id) > maxIDLen {
		return "", "", errors.New("parameter name is too long")
	}
	name = id
	if strings.HasPrefix(id, "arn:") {
		if name, region, err = paramARN(id); err != nil {
			return "", "", err
		}
	}
	if secret, ok := strings.CutPrefix(name, bridgePrefix); ok {
		if secret != "" && !validSecretName(secret) {
			return "", "", errSecretName
		}
		return name, region, nil
	}
	if !validParamName(name) {
		return "", "", errParamName
	}
	return name, region, nil
}

// paramARN splits a parameter ARN into the parameter's name and the
// region.
func paramARN(id string) (name, region string, err error) {
	f := strings.Split(id, ":")
	res, ok := "", false
	if len(f) == 6 {
		res, ok = strings.CutPrefix(f[5], "parameter/")
	}
	if !ok || f[2] != "ssm" || res == "" || !validARNPart(f[1]) || !validRegion(f[3]) || !validARNPart(f[4]) {
		return "", "", errors.New("malformed parameter ARN (want arn:<partition>:ssm:<region>:<account>:parameter/<name>)")
	}
	// parameter/a/b is /a/b; parameter/a is a (same as /a).
	if strings.Contains(res, "/") {
		return "/" + res, f[3], nil
	}
	return res, f[3], nil
}

func isAlnum(c byte) bool {
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
}

// validSecretName reports the characters Secrets Manager allows in a
// secret's name: ASCII letters, digits and /_+=.@-, and '!', which only
// the secrets other AWS services create and manage use, after a prefix
// naming the service (rds!db-<uuid>, rds!cluster-<uuid>,
// events!connection/..., redshift!..., appflow!...). Which names exist is
// for AWS to say; none of these characters is part of the reference
// grammar.
func validSecretName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(isAlnum(c) || strings.IndexByte("/_+=.@!-", c) >= 0) {
			return false
		}
	}
	return s != ""
}

// validParamName reports the characters Parameter Store allows in a
// parameter's name: ASCII letters, digits and _.-, and '/' between the
// levels of a hierarchy.
func validParamName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(isAlnum(c) || c == '_' || c == '.' || c == '-' || c == '/') {
			return false
		}
	}
	return s != ""
}

func validARNPart(s string) bool {
	for i := 0; i < len(s); i++ {
		if !(isAlnum(s[i]) || s[i] == '-') {
			return false
		}
	}
	return true
}

func validRegion(s string) bool { return s != "" && len(s) <= 64 && validARNPart(s) }

func validStage(s string) bool {
	return len(s) <= 256 && validSecretName(s)
}

func validVersionID(s string) bool {
	return len(s) <= 64 && s != "" && validARNPart(s)
}

func validLabel(s string) bool {
	if s == "" || len(s) > 100 || (s[0] >= '0' && s[0] <= '9') {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !(isAlnum(s[i]) || s[i] == '.' || s[i] == '-' || s[i] == '_') {
			return false
		}
	}
	return true
}

func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isAlnum(s[i]) && s[i] != '_' && s[i] != '-' {
			return false
		}
	}
	return s != ""
}

// checkPointer validates a JSON Pointer: '/'-separated tokens where '~' is
// only ever followed by 0 or 1.
func checkPointer(p string) error {
	for i := 0; i < len(p); i++ {
		if p[i] == '~' && (i+1 == len(p) || (p[i+1] != '0' && p[i+1] != '1')) {
			return errors.New("invalid JSON Pointer: '~' must be followed by 0 or 1")
		}
	}
	return nil
}

// String prints the reference back in the canonical sm:// or ssm:// form,
// which parses to an equivalent reference. A top-level key that starts
// with '/' is printed as the equivalent one-token JSON Pointer.
func (r Ref) String() string {
	var b strings.Builder
	switch r.Service {
	case SecretsManager:
		b.WriteString("sm://")
	case ParameterStore:
		b.WriteString("ssm://")
	default:
		return "invalid reference"
	}
	b.WriteString(r.ID)
	b.WriteString(r.query())
	switch {
	case r.Pointer != "":
		b.WriteString("#" + escapeRef(r.Pointer))
	case strings.HasPrefix(r.Key, "/"):
		b.WriteString("#/" + escapeRef(pointerToken(r.Key)))
	case r.Key != "":
		b.WriteString("#" + escapeRef(r.Key))
	}
	return b.String()
}

// query is the canonical query of a reference's version selector: none
// for the latest parameter or the current secret.
func (r Ref) query() string {
	switch {
	case r.Service == SecretsManager && r.VersionID != "":
		return "?version=" + escapeRef(r.VersionID)
	case r.Service == SecretsManager && r.Stage != "" && r.Stage != currentStage:
		return "?stage=" + escapeRef(r.Stage)
	case r.Service == ParameterStore && r.Version != 0:
		return "?version=" + strconv.FormatInt(r.Version, 10)
	case r.Service == ParameterStore && r.Label != "":
		return "?label=" + escapeRef(r.Label)
	}
	return ""
}

// escapeRef percent-encodes everything but unreserved characters and the
// few that are safe inside a reference, so the result never contains
// space, '|', '}', '#', '?', '&' or '%' unescaped.
func escapeRef(s string) string {
	return percentEncode(s, func(c byte) bool { return strings.IndexByte("-._~/:@=+!$'()*,;", c) >= 0 })
}

// percentEncode writes every byte that is neither alphanumeric nor kept
// as %XX.
func percentEncode(s string, keep func(byte) bool) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isAlnum(c) || keep(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// pointerToken escapes one JSON Pointer token ('~' as ~0, '/' as ~1).
func pointerToken(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}
