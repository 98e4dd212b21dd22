package awsdev

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// This file holds the SSM Parameter Store data model and its rules (names,
// versions, labels, selectors); ssm.go puts the API on top of it.

const (
	maxParamVersions    = 100
	maxLabelsPerVersion = 10
	maxStandardValue    = 4096
	maxAdvancedValue    = 8192
	maxHierarchyLevels  = 15
	referencePrefix     = "/aws/reference/secretsmanager/"
)

type parameter struct {
	name     string
	versions []*paramVersion // oldest first
}

type paramVersion struct {
	version     int64
	typ         string
	value       string
	ciphertext  string // what a SecureString reads as without decryption
	description string
	keyID       string
	tier        string
	dataType    string
	pattern     string
	labels      []string
	modified    time.Time
	modifiedBy  string
}

func (p *parameter) latest() *paramVersion { return p.versions[len(p.versions)-1] }

func (p *parameter) version(n int64) *paramVersion {
	for _, v := range p.versions {
		if v.version == n {
			return v
		}
	}
	return nil
}

func (p *parameter) labelled(label string) *paramVersion {
	for _, v := range p.versions {
		if slices.Contains(v.labels, label) {
			return v
		}
	}
	return nil
}

// paramARN is the ARN of a parameter; a leading / is not doubled.
func (r *Region) paramARN(name string) string {
	return "arn:aws:ssm:" + r.name + ":" + r.s.accountID + ":parameter/" + strings.TrimPrefix(name, "/")
}

// findParam finds a parameter by name. A top-level name names the same
// parameter with or without its leading slash ("x" and "/x" share the ARN
// …:parameter/x), as in Parameter Store. r.s.mu is held.
func (r *Region) findParam(name string) *parameter {
	if p := r.params[name]; p != nil {
		return p
	}
	rest := strings.TrimPrefix(name, "/")
	if rest == "" || strings.Contains(rest, "/") {
		return nil
	}
	if rest == name {
		return r.params["/"+name]
	}
	return r.params[rest]
}

// checkParamName applies Parameter Store's naming rules.
func checkParamName(name string) *apiError {
	if name == "" {
		return errValidation("1 validation error detected: Value null at 'name' failed to satisfy constraint: Member must not be null")
	}
	if len(name) > 2048 {
		return lengthError("name", 2048)
	}
	for _, c := range []byte(name) {
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || strings.IndexByte("_.-/", c) >= 0) {
			return errValidation("Parameter name: can only contain letters, numbers, and the symbols . - _ /")
		}
	}
	if strings.Contains(name, "/") && !strings.HasPrefix(name, "/") {
		return errValidation("Parameter name must be a fully qualified name.")
	}
	first := strings.ToLower(strings.TrimPrefix(name, "/"))
	if strings.HasPrefix(first, "aws") || strings.HasPrefix(first, "ssm") {
		return errValidation(`Parameter name: can't be prefixed with "aws" or "ssm" (case-insensitive).`)
	}
	if strings.Count(name, "/") > maxHierarchyLevels {
		return errorf(400, "HierarchyLevelLimitExceededException", "A hierarchy can have a maximum of 15 levels.")
	}
	return nil
}

// invalidLabel reports whether LabelParameterVersion refuses label.
func invalidLabel(label string) bool {
	if label == "" || len(label) > 100 {
		return true
	}
	lower := strings.ToLower(label)
	if strings.HasPrefix(lower, "aws") || strings.HasPrefix(lower, "ssm") {
		return true
	}
	if _, err := strconv.ParseUint(label, 10, 64); err == nil {
		return true
	}
	for _, c := range []byte(label) {
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-') {
			return true
		}
	}
	return false
}

type putParam struct {
	name, typ, value, description, keyID, tier, dataType, pattern string
	overwrite                                                     bool
	by                                                            string
}

// putParameter creates a parameter or a new version of it. r.s.mu is held.
func (r *Region) putParameter(in putParam) (*paramVersion, *apiError) {
	if aerr := checkParamName(in.name); aerr != nil {
		return nil, aerr
	}
	if in.value == "" {
		return nil, errValidation("1 validation error detected: Value at 'value' failed to satisfy constraint: Member must have length greater than or equal to 1")
	}
	switch in.typ {
	case "", "String", "StringList", "SecureString":
	default:
		return nil, errValidation("1 validation error detected: Value '%s' at 'type' failed to satisfy constraint: Member must satisfy enum value set: [SecureString, StringList, String]", in.typ)
	}
	switch in.tier {
	case "", "Standard", "Intelligent-Tiering":
		in.tier = "Standard"
		if len(in.value) > maxStandardValue {
			return nil, errValidation("Standard tier parameters support a maximum parameter value of 4096 characters. To create a larger parameter value, upgrade the parameter to use the advanced-parameter tier.")
		}
	case "Advanced":
		if len(in.value) > maxAdvancedValue {
			return nil, lengthError("value", maxAdvancedValue)
		}
	default:
		return nil, errValidation("1 validation error detected: Value '%s' at 'tier' failed to satisfy constraint: Member must satisfy enum value set: [Standard, Advanced, Intelligent-Tiering]", in.tier)
	}
	if in.dataType == "" {
		in.dataType = "text"
	}
	p := r.findParam(in.name)
	if p != nil && !in.overwrite {
		return nil, errorf(400, "ParameterAlreadyExists", "The parameter already exists. To overwrite this value, set the overwrite option in the request to true.")
	}
	next := int64(1)
	if p != nil {
		last := p.latest()
		next = last.version + 1
		if in.typ == "" {
			in.typ = last.typ
		}
		if in.description == "" {
			in.description = last.description
		}
	}
	if in.typ == "" {
		return nil, errValidation("A parameter type is required when you create a parameter.")
	}
	if in.typ == "SecureString" && in.keyID == "" {
		in.keyID = "alias/aws/ssm"
	}
	if p != nil && len(p.versions) >= maxParamVersions {
		if len(p.versions[0].labels) > 0 {
			return nil, errorf(400, "ParameterMaxVersionLimitExceeded", "You attempted to create a new version of %s by calling the PutParameter API with the overwrite flag. Version 1, the oldest version, can't be deleted because it has a label associated with it. Move the label to another version of the parameter, and try again.", in.name)
		}
		p.versions = p.versions[1:]
	}
	v := &paramVersion{
		version: next, typ: in.typ, value: in.value, description: in.description,
		keyID: in.keyID, tier: in.tier, dataType: in.dataType, pattern: in.pattern,
		modified: r.now(), modifiedBy: in.by,
	}
	if in.typ == "SecureString" {
		v.ciphertext = fakeCiphertext()
	}
	if p == nil {
		p = &parameter{name: in.name}
		r.params[in.name] = p
	}
	p.versions = append(p.versions, v)
	return v, nil
}

// fakeCiphertext stands for the KMS ciphertext a SecureString reads as
// without WithDecryption; it is random so it can never leak the value.
func fakeCiphertext() string {
	b := make([]byte, 48)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// labelVersion attaches labels to v, moving them from other versions, and
// returns the labels it refused. r.s.mu is held.
func labelVersion(p *parameter, v *paramVersion, labels []string) (invalid []string, aerr *apiError) {
	var valid []string
	for _, l := range labels {
		if invalidLabel(l) {
			invalid = append(invalid, l)
		} else if !slices.Contains(valid, l) {
			valid = append(valid, l)
		}
	}
	added := 0
	for _, l := range valid {
		if !slices.Contains(v.labels, l) {
			added++
		}
	}
	if len(v.labels)+added > maxLabelsPerVersion {
		return nil, errorf(400, "ParameterVersionLabelLimitExceeded", "A parameter version can have maximum 10 labels.Move one or more labels to another version and try again.")
	}
	for _, l := range valid {
		if old := p.labelled(l); old != nil && old != v {
			old.labels = slices.DeleteFunc(old.labels, func(x string) bool { return x == l })
		}
		if !slices.Contains(v.labels, l) {
			v.labels = append(v.labels, l)
		}
	}
	return invalid, nil
}

// selector is the part after the first ':' of a GetParameter(s) name:
// a version number or a label.
func splitSelector(name string) (base, sel string) {
	base, sel, _ = strings.Cut(name, ":")
	return base, sel
}

// PutParameter creates or overwrites an SSM parameter (typ is "String",
// "StringList" or "SecureString") and returns its new version.
func (r *Region) PutParameter(name, typ, value string) (version int64, err error) {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	v, aerr := r.putParameter(putParam{name: name, typ: typ, value: value, overwrite: true})
	if aerr != nil {
		return 0, fmt.Errorf("awsdev: %w", aerr)
	}
	return v.version, nil
}

// LabelParameterVersion attaches labels to a parameter version.
func (r *Region) LabelParameterVersion(name string, version int64, labels ...string) error {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	p := r.findParam(name)
	if p == nil {
		return fmt.Errorf("awsdev: no parameter %q", name)
	}
	v := p.version(version)
	if v == nil {
		return fmt.Errorf("awsdev: no version %d of parameter %q", version, name)
	}
	invalid, aerr := labelVersion(p, v, labels)
	if aerr != nil {
		return fmt.Errorf("awsdev: %w", aerr)
	}
	if len(invalid) > 0 {
		return fmt.Errorf("awsdev: invalid labels %q", invalid)
	}
	return nil
}

// DeleteParameter deletes a parameter.
func (r *Region) DeleteParameter(name string) error {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	p := r.findParam(name)
	if p == nil {
		return fmt.Errorf("awsdev: no parameter %q", name)
	}
	delete(r.params, p.name)
	return nil
}
