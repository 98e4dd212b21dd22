package awsdev

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"time"
)

// This file holds the Secrets Manager data model and its rules (stages,
// versions, deletion); secretsmanager.go puts the API on top of it.

const (
	stageCurrent  = "AWSCURRENT"
	stagePrevious = "AWSPREVIOUS"
	stagePending  = "AWSPENDING"

	maxSecretSize = 65536
	// maxDeprecatedVersions is how many versions without a staging label a
	// secret keeps; AWS keeps about 100 and removes older ones.
	maxDeprecatedVersions = 100
)

type secret struct {
	name, arn    string
	description  string
	kmsKeyID     string
	tags         []smTag
	created      time.Time
	lastChanged  time.Time
	lastAccessed time.Time
	deletedAt    time.Time // zero unless scheduled for deletion
	deletionDate time.Time
	versions     []*secretVersion // oldest first
}

type secretVersion struct {
	id           string
	str          *string
	bin          []byte
	stages       []string
	created      time.Time
	lastAccessed time.Time
}

type smTag struct {
	Key   string `json:"Key"`
	Value string `json:"Value"`
}

func (sec *secret) deleted() bool { return !sec.deletedAt.IsZero() }

func (sec *secret) version(id string) *secretVersion {
	for _, v := range sec.versions {
		if v.id == id {
			return v
		}
	}
	return nil
}

// holder is the version that carries stage, or nil.
func (sec *secret) holder(stage string) *secretVersion {
	for _, v := range sec.versions {
		if slices.Contains(v.stages, stage) {
			return v
		}
	}
	return nil
}

// attach moves stage to v, taking it off any other version. Moving
// AWSCURRENT makes the version that had it AWSPREVIOUS.
func (sec *secret) attach(stage string, v *secretVersion) {
	old := sec.holder(stage)
	if old == v {
		return
	}
	if old != nil {
		old.stages = slices.DeleteFunc(old.stages, func(s string) bool { return s == stage })
	}
	v.stages = append(v.stages, stage)
	if stage == stageCurrent && old != nil {
		sec.attach(stagePrevious, old)
	}
}

func (sec *secret) detach(stage string, v *secretVersion) {
	v.stages = slices.DeleteFunc(v.stages, func(s string) bool { return s == stage })
}

// prune drops the oldest versions without a staging label beyond the limit.
func (sec *secret) prune() {
	n := 0
	for _, v := range sec.versions {
		if len(v.stages) == 0 {
			n++
		}
	}
	for i := 0; n > maxDeprecatedVersions && i < len(sec.versions); {
		if len(sec.versions[i].stages) == 0 {
			sec.versions = slices.Delete(sec.versions, i, i+1)
			n--
			continue
		}
		i++
	}
}

func (sec *secret) versionIDsToStages() map[string][]string {
	m := map[string][]string{}
	for _, v := range sec.versions {
		if len(v.stages) > 0 {
			m[v.id] = slices.Clone(v.stages)
		}
	}
	return m
}

// secretARNPrefix is the ARN of a secret without its name and suffix.
func (r *Region) secretARNPrefix() string {
	return "arn:aws:secretsmanager:" + r.name + ":" + r.s.accountID + ":secret:"
}

// findSecret resolves a SecretId: a name, a full ARN, or a partial ARN
// (without the 6-character suffix). r.s.mu is held. Secrets whose recovery
// window has passed are removed here, on the server's clock.
func (r *Region) findSecret(id string) *secret {
	name := id
	if strings.HasPrefix(id, "arn:") {
		rest, ok := strings.CutPrefix(id, r.secretARNPrefix())
		if !ok {
			return nil
		}
		for _, sec := range r.secrets {
			if sec.arn == id {
				return r.expireSecret(sec)
			}
		}
		name = rest
	}
	if sec := r.secrets[name]; sec != nil {
		return r.expireSecret(sec)
	}
	return nil
}

func (r *Region) expireSecret(sec *secret) *secret {
	if sec.deleted() && !r.now().Before(sec.deletionDate) {
		delete(r.secrets, sec.name)
		return nil
	}
	return sec
}

// secretResource is the resource an action on id is authorised against:
// the secret's ARN, or for a secret that does not exist the ARN it would
// have without its suffix.
func (r *Region) secretResource(id string, sec *secret) string {
	switch {
	case sec != nil:
		return sec.arn
	case strings.HasPrefix(id, "arn:"):
		return id
	default:
		return r.secretARNPrefix() + id
	}
}

func validSecretName(name string) bool {
	if name == "" || len(name) > 512 {
		return false
	}
	for _, c := range []byte(name) {
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || strings.IndexByte("/_+=.@-!", c) >= 0) {
			return false
		}
	}
	return true
}

// secretValue is a SecretString or a SecretBinary, exactly one of them.
type secretValue struct {
	str *string
	bin []byte
}

func (v secretValue) empty() bool { return v.str == nil && v.bin == nil }

func (v secretValue) equal(sv *secretVersion) bool {
	if v.str != nil {
		return sv.str != nil && *sv.str == *v.str
	}
	return sv.str == nil && bytes.Equal(sv.bin, v.bin)
}

func checkSecretValue(v secretValue) *apiError {
	switch {
	case v.str != nil && v.bin != nil:
		return errInvalidParameter("You can't specify both a binary secret value and a string secret value in the same secret.")
	case v.str != nil && len(*v.str) > maxSecretSize:
		return lengthError("secretString", maxSecretSize)
	case len(v.bin) > maxSecretSize:
		return lengthError("secretBinary", maxSecretSize)
	case v.str != nil && *v.str == "":
		return errValidation("1 validation error detected: Value at 'secretString' failed to satisfy constraint: Member must have length greater than or equal to 1")
	case v.bin != nil && len(v.bin) == 0:
		return errValidation("1 validation error detected: Value at 'secretBinary' failed to satisfy constraint: Member must have length greater than or equal to 1")
	}
	return nil
}

func checkVersionID(token string) *apiError {
	if token != "" && (len(token) < 32 || len(token) > 64) {
		return errValidation("1 validation error detected: Value at 'clientRequestToken' failed to satisfy constraint: Member must have length between 32 and 64")
	}
	return nil
}

// createSecret adds a secret, with a first version when v is not empty.
// r.s.mu is held.
func (r *Region) createSecret(name, token string, v secretValue, description, kmsKeyID string, tags []smTag) (*secret, *secretVersion, *apiError) {
	if !validSecretName(name) {
		return nil, nil, errInvalidParameter("Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!")
	}
	if aerr := checkSecretValue(v); aerr != nil {
		return nil, nil, aerr
	}
	if aerr := checkVersionID(token); aerr != nil {
		return nil, nil, aerr
	}
	if old := r.findSecret(name); old != nil {
		if old.deleted() {
			return nil, nil, errInvalidRequest("You can't create this secret because a secret with this name is already scheduled for deletion.")
		}
		return nil, nil, errorf(400, "ResourceExistsException", "The operation failed because the secret %s already exists.", name)
	}
	now := r.now()
	sec := &secret{
		name: name, arn: r.secretARNPrefix() + name + "-" + secretSuffix(),
		description: description, kmsKeyID: kmsKeyID, tags: tags,
		created: now, lastChanged: now,
	}
	r.secrets[name] = sec
	if v.empty() {
		return sec, nil, nil
	}
	if token == "" {
		token = newUUID()
	}
	ver := &secretVersion{id: token, str: v.str, bin: v.bin, created: now}
	sec.versions = append(sec.versions, ver)
	sec.attach(stageCurrent, ver)
	return sec, ver, nil
}

// putSecretValue adds a version as PutSecretValue does. r.s.mu is held and
// sec is not deleted.
func (r *Region) putSecretValue(sec *secret, token string, v secretValue, stages []string) (*secretVersion, *apiError) {
	if v.empty() {
		return nil, errInvalidRequest("You must provide either SecretString or SecretBinary.")
	}
	if aerr := checkSecretValue(v); aerr != nil {
		return nil, aerr
	}
	if aerr := checkVersionID(token); aerr != nil {
		return nil, aerr
	}
	if token == "" {
		token = newUUID()
	}
	if old := sec.version(token); old != nil {
		if v.equal(old) {
			return old, nil // idempotent retry: nothing changes
		}
		return nil, errorf(400, "ResourceExistsException", "You can't modify an existing version, you can only create a new version.")
	}
	if len(stages) == 0 {
		stages = []string{stageCurrent}
	}
	if len(stages) > 20 {
		return nil, lengthError("versionStages", 20)
	}
	now := r.now()
	ver := &secretVersion{id: token, str: v.str, bin: v.bin, created: now}
	sec.versions = append(sec.versions, ver)
	if sec.holder(stageCurrent) == nil && !slices.Contains(stages, stageCurrent) {
		stages = append(stages, stageCurrent) // the first version is always current
	}
	for _, st := range stages {
		sec.attach(st, ver)
	}
	sec.lastChanged = now
	sec.prune()
	return ver, nil
}

// CreateSecret creates a secret with a first version (AWSCURRENT) and
// returns its ARN
// (arn:aws:secretsmanager:<region>:<account>:secret:<name>-<6 random characters>).
// value is the SecretString.
func (r *Region) CreateSecret(name, value string) (arn string, err error) {
	return r.createSecretValue(name, secretValue{str: &value})
}

// CreateBinarySecret is CreateSecret with a SecretBinary.
func (r *Region) CreateBinarySecret(name string, value []byte) (arn string, err error) {
	return r.createSecretValue(name, secretValue{bin: bytes.Clone(value)})
}

func (r *Region) createSecretValue(name string, v secretValue) (string, error) {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	sec, _, aerr := r.createSecret(name, "", v, "", "", nil)
	if aerr != nil {
		return "", fmt.Errorf("awsdev: %w", aerr)
	}
	return sec.arn, nil
}

// PutSecretValue adds a version as the PutSecretValue API does: with no
// stages it becomes AWSCURRENT and the old current becomes AWSPREVIOUS.
// It returns the new version id.
func (r *Region) PutSecretValue(secretID, value string, stages ...string) (versionID string, err error) {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	sec := r.findSecret(secretID)
	if sec == nil || sec.deleted() {
		return "", fmt.Errorf("awsdev: no secret %q", secretID)
	}
	ver, aerr := r.putSecretValue(sec, "", secretValue{str: &value}, stages)
	if aerr != nil {
		return "", fmt.Errorf("awsdev: %w", aerr)
	}
	return ver.id, nil
}

// DeleteSecret deletes a secret at once (ForceDeleteWithoutRecovery).
func (r *Region) DeleteSecret(secretID string) error {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	sec := r.findSecret(secretID)
	if sec == nil {
		return fmt.Errorf("awsdev: no secret %q", secretID)
	}
	delete(r.secrets, sec.name)
	return nil
}

// SecretVersions lists the versions of a secret, oldest first.
func (r *Region) SecretVersions(secretID string) ([]SecretVersion, error) {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	sec := r.findSecret(secretID)
	if sec == nil {
		return nil, fmt.Errorf("awsdev: no secret %q", secretID)
	}
	out := make([]SecretVersion, 0, len(sec.versions))
	for _, v := range sec.versions {
		sv := SecretVersion{VersionID: v.id, Binary: bytes.Clone(v.bin), Stages: slices.Clone(v.stages)}
		if v.str != nil {
			str := *v.str
			sv.String = &str
		}
		out = append(out, sv)
	}
	return out, nil
}
