package awsdev

import (
	"encoding/base64"
	"encoding/json"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// SSM Parameter Store operations (JSON 1.1, X-Amz-Target AmazonSSM.*).

func init() {
	register("ssm:PutParameter", jsonOp((*Region).ssmPutParameter))
	register("ssm:GetParameter", jsonOp((*Region).ssmGetParameter))
	register("ssm:GetParameters", jsonOp((*Region).ssmGetParameters))
	register("ssm:DescribeParameters", jsonOp((*Region).ssmDescribeParameters))
	register("ssm:LabelParameterVersion", jsonOp((*Region).ssmLabelParameterVersion))
	register("ssm:DeleteParameter", jsonOp((*Region).ssmDeleteParameter))
}

type ssmPutParameterInput struct {
	Name           string
	Description    string
	Value          string
	Type           string
	KeyId          string
	Overwrite      bool
	AllowedPattern string
	Tier           string
	DataType       string
}

type ssmPutParameterOutput struct {
	Version int64  `json:"Version"`
	Tier    string `json:"Tier"`
}

func (r *Region) ssmPutParameter(c *call, in *ssmPutParameterInput) (any, *apiError) {
	if aerr := r.authorize(c.who, c.op, r.paramARN(in.Name)); aerr != nil {
		return nil, aerr
	}
	v, aerr := r.putParameter(putParam{
		name: in.Name, typ: in.Type, value: in.Value, description: in.Description,
		keyID: in.KeyId, tier: in.Tier, dataType: in.DataType, pattern: in.AllowedPattern,
		overwrite: in.Overwrite, by: c.who.arn,
	})
	if aerr != nil {
		return nil, aerr
	}
	return ssmPutParameterOutput{Version: v.version, Tier: v.tier}, nil
}

type ssmParameter struct {
	Name             string `json:"Name"`
	Type             string `json:"Type"`
	Value            string `json:"Value"`
	Version          int64  `json:"Version"`
	Selector         string `json:"Selector,omitempty"`
	SourceResult     string `json:"SourceResult,omitempty"`
	LastModifiedDate *epoch `json:"LastModifiedDate,omitempty"`
	ARN              string `json:"ARN"`
	DataType         string `json:"DataType"`
}

type ssmGetParameterInput struct {
	Name           string
	WithDecryption bool
}

type ssmGetParameterOutput struct {
	Parameter ssmParameter `json:"Parameter"`
}

func (r *Region) ssmGetParameter(c *call, in *ssmGetParameterInput) (any, *apiError) {
	if in.Name == "" {
		return nil, errValidation("1 validation error detected: Value null at 'name' failed to satisfy constraint: Member must not be null")
	}
	p, aerr := r.readParameter(c, in.Name, in.WithDecryption)
	if aerr != nil {
		return nil, aerr
	}
	return ssmGetParameterOutput{Parameter: p}, nil
}

type ssmGetParametersInput struct {
	Names          []string
	WithDecryption bool
}

type ssmGetParametersOutput struct {
	Parameters        []ssmParameter `json:"Parameters"`
	InvalidParameters []string       `json:"InvalidParameters"`
}

func (r *Region) ssmGetParameters(c *call, in *ssmGetParametersInput) (any, *apiError) {
	if len(in.Names) == 0 {
		return nil, errValidation("1 validation error detected: Value null at 'names' failed to satisfy constraint: Member must not be null")
	}
	if len(in.Names) > 10 {
		return nil, errValidation("1 validation error detected: Value '[%s]' at 'names' failed to satisfy constraint: Member must have length less than or equal to 10", strings.Join(in.Names, ", "))
	}
	// Access is checked for every name before anything is read: one
	// denied name denies the whole call, as in AWS.
	for _, name := range in.Names {
		if aerr := r.authorize(c.who, c.op, r.parseParamRef(name).resource); aerr != nil {
			return nil, aerr
		}
	}
	out := ssmGetParametersOutput{Parameters: []ssmParameter{}, InvalidParameters: []string{}}
	seen := map[string]bool{}
	for _, name := range in.Names {
		if seen[name] {
			continue
		}
		seen[name] = true
		p, aerr := r.readParameter(c, name, in.WithDecryption)
		switch {
		case aerr == nil:
			out.Parameters = append(out.Parameters, p)
		case aerr.code == "ParameterNotFound" || aerr.code == "ParameterVersionNotFound":
			out.InvalidParameters = append(out.InvalidParameters, name)
		default:
			return nil, aerr
		}
	}
	// AWS lists the parameters in alphabetical order; the same name with
	// different selectors keeps the order of the request.
	sort.SliceStable(out.Parameters, func(i, j int) bool { return out.Parameters[i].Name < out.Parameters[j].Name })
	return out, nil
}

// paramRef is a name as GetParameter and GetParameters take it: a
// parameter name or ARN, then an optional ":version" or ":label".
type paramRef struct {
	base, sel string
	resource  string // the ARN the caller needs access to
	byARN     bool
	foreign   bool // an ARN of another region, account or partition: never found
}

// parseParamRef reads a name or parameter ARN. An ARN's resource is
// "parameter" followed by the name with its leading slash
// (arn:aws:ssm:us-east-1:123456789012:parameter/app/db for /app/db); a
// top-level name may lack the slash (parameter/x names x, or /x, which
// Parameter Store takes for the same parameter).
func (r *Region) parseParamRef(name string) paramRef {
	if !strings.HasPrefix(name, "arn:") {
		base, sel := splitSelector(name)
		return paramRef{base: base, sel: sel, resource: r.paramARN(base)}
	}
	ref := paramRef{byARN: true}
	f := strings.SplitN(name, ":", 6)
	if len(f) < 6 || f[2] != "ssm" || !strings.HasPrefix(f[5], "parameter/") {
		// Not a parameter ARN: there is nothing to find, and the name is
		// the resource as given.
		ref.base, ref.resource, ref.foreign = name, name, true
		return ref
	}
	ref.base, ref.sel = splitSelector(strings.TrimPrefix(f[5], "parameter"))
	ref.resource = strings.Join(f[:5], ":") + ":parameter" + ref.base
	ref.foreign = f[1] != "aws" || f[3] != r.name || f[4] != r.s.accountID
	return ref
}

// readParameter answers GetParameter for one name or ARN with an optional
// selector, including the Secrets Manager bridge. r.s.mu is held.
func (r *Region) readParameter(c *call, name string, decrypt bool) (ssmParameter, *apiError) {
	if strings.HasPrefix(name, referencePrefix) {
		return r.readSecretReference(c, name, decrypt)
	}
	ref := r.parseParamRef(name)
	base, sel := ref.base, ref.sel
	if aerr := r.authorize(c.who, c.op, ref.resource); aerr != nil {
		return ssmParameter{}, aerr
	}
	var p *parameter
	if !ref.foreign {
		p = r.findParam(base)
	}
	if p == nil {
		if ref.byARN {
			base = ref.resource
		}
		return ssmParameter{}, errorf(400, "ParameterNotFound", "Parameter %s not found.", base)
	}
	if ref.byARN {
		// Asked by ARN, AWS answers the parameter's own name.
		base = p.name
	}
	v := p.latest()
	if sel != "" {
		if n, err := strconv.ParseInt(sel, 10, 64); err == nil {
			v = p.version(n)
		} else {
			v = p.labelled(sel)
		}
		if v == nil {
			return ssmParameter{}, errorf(400, "ParameterVersionNotFound", "Systems Manager could not find version %s of %s. Verify the version and try again.", sel, base)
		}
	}
	out := ssmParameter{
		Name: base, Type: v.typ, Value: v.value, Version: v.version,
		LastModifiedDate: epochPtr(v.modified), ARN: r.paramARN(p.name), DataType: v.dataType,
	}
	if sel != "" {
		out.Selector = ":" + sel
	}
	if v.typ == "SecureString" && !decrypt {
		out.Value = v.ciphertext
	}
	return out, nil
}

// readSecretReference reads a Secrets Manager secret through
// /aws/reference/secretsmanager/<secret-id>[:<selector>], where the
// selector is a version id or a staging label.
func (r *Region) readSecretReference(c *call, name string, decrypt bool) (ssmParameter, *apiError) {
	if aerr := r.authorize(c.who, c.op, r.paramARN(name)); aerr != nil {
		return ssmParameter{}, aerr
	}
	if !decrypt {
		return ssmParameter{}, errValidation("WithDecryption flag must be True for retrieving a Secret Manager secret.")
	}
	id, sel := strings.TrimPrefix(name, referencePrefix), ""
	if !strings.HasPrefix(id, "arn:") {
		id, sel = splitSelector(id)
	}
	sec := r.findSecret(id)
	if aerr := r.authorize(c.who, "secretsmanager:GetSecretValue", r.secretResource(id, sec)); aerr != nil {
		return ssmParameter{}, aerr
	}
	if sec == nil || sec.deleted() {
		return ssmParameter{}, errorf(400, "ParameterNotFound", "Secret %s not found.", id)
	}
	var ver *secretVersion
	var aerr *apiError
	switch {
	case sel == "":
		ver, aerr = selectVersion(sec, "", stageCurrent)
	case sec.version(sel) != nil:
		ver = sec.version(sel)
	default:
		ver, aerr = selectVersion(sec, "", sel)
	}
	if aerr != nil {
		return ssmParameter{}, errorf(400, "ParameterVersionNotFound", "Systems Manager could not find version %s of %s. Verify the version and try again.", sel, name)
	}
	value := r.secretValueOf(sec, ver)
	source, _ := json.Marshal(value)
	out := ssmParameter{
		Name: strings.TrimSuffix(name, ":"+sel), Type: "SecureString", Version: 0,
		SourceResult: string(source), LastModifiedDate: epochPtr(ver.created),
		ARN: sec.arn, DataType: "text",
	}
	if sel != "" {
		out.Selector = ":" + sel
	}
	if ver.str != nil {
		out.Value = *ver.str
	} else {
		out.Value = base64.StdEncoding.EncodeToString(ver.bin)
	}
	return out, nil
}

type ssmFilter struct {
	Key    string
	Option string
	Values []string
}

type ssmDescribeInput struct {
	Filters          []ssmFilter
	ParameterFilters []ssmFilter
	MaxResults       int
	NextToken        string
	Shared           bool // list the parameters other accounts share with the caller: none here
}

type ssmParameterMetadata struct {
	Name             string `json:"Name"`
	ARN              string `json:"ARN"`
	Type             string `json:"Type"`
	KeyId            string `json:"KeyId,omitempty"`
	LastModifiedDate *epoch `json:"LastModifiedDate,omitempty"`
	LastModifiedUser string `json:"LastModifiedUser,omitempty"`
	Description      string `json:"Description,omitempty"`
	AllowedPattern   string `json:"AllowedPattern,omitempty"`
	Version          int64  `json:"Version"`
	Tier             string `json:"Tier"`
	Policies         []any  `json:"Policies"`
	DataType         string `json:"DataType"`
}

type ssmDescribeOutput struct {
	Parameters []ssmParameterMetadata `json:"Parameters"`
	NextToken  string                 `json:"NextToken,omitempty"`
}

func (r *Region) ssmDescribeParameters(c *call, in *ssmDescribeInput) (any, *apiError) {
	if in.MaxResults > 50 {
		return nil, errValidation("1 validation error detected: Value '%d' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to 50", in.MaxResults)
	}
	filters := in.ParameterFilters
	for _, f := range in.Filters { // the older Filters: Name, Type, KeyId
		filters = append(filters, ssmFilter{Key: f.Key, Option: "BeginsWith", Values: f.Values})
	}
	for _, f := range filters {
		if aerr := checkParamFilter(f); aerr != nil {
			return nil, aerr
		}
	}
	if aerr := r.authorize(c.who, c.op, "*"); aerr != nil {
		return nil, aerr
	}
	var matched []*parameter
	for _, p := range r.params {
		if !in.Shared && matchParamFilters(p, filters) {
			matched = append(matched, p)
		}
	}
	sort.Slice(matched, func(i, j int) bool { return matched[i].name < matched[j].name })
	max := in.MaxResults
	if max == 0 {
		max = 10
	}
	page, next, aerr := paginate(matched, in.NextToken, max, 50)
	if aerr != nil {
		return nil, errorf(400, "InvalidNextToken", "The specified token isn't valid.")
	}
	out := ssmDescribeOutput{Parameters: []ssmParameterMetadata{}, NextToken: next}
	for _, p := range page {
		v := p.latest()
		out.Parameters = append(out.Parameters, ssmParameterMetadata{
			Name: p.name, ARN: r.paramARN(p.name), Type: v.typ, KeyId: v.keyID,
			LastModifiedDate: epochPtr(v.modified), LastModifiedUser: v.modifiedBy,
			Description: v.description, AllowedPattern: v.pattern, Version: v.version,
			Tier: v.tier, Policies: []any{}, DataType: v.dataType,
		})
	}
	return out, nil
}

func checkParamFilter(f ssmFilter) *apiError {
	options := map[string][]string{
		"Name":     {"", "Equals", "BeginsWith", "Contains"},
		"Type":     {"", "Equals", "BeginsWith"},
		"KeyId":    {"", "Equals", "BeginsWith"},
		"Path":     {"", "OneLevel", "Recursive"},
		"Tier":     {"", "Equals"},
		"DataType": {"", "Equals"},
	}
	allowed, ok := options[f.Key]
	if f.Key == "Label" {
		// Valid for GetParametersByPath, not for DescribeParameters.
		return errorf(400, "InvalidFilterKey", "The filter key Label is not valid for DescribeParameters.")
	}
	if !ok {
		return errorf(400, "InvalidFilterKey", "The filter key %s is not supported by the awsdev emulator.", f.Key)
	}
	if !slices.Contains(allowed, f.Option) {
		return errorf(400, "InvalidFilterOption", "The filter option %s is not valid for key %s.", f.Option, f.Key)
	}
	if len(f.Values) == 0 {
		return errorf(400, "InvalidFilterValue", "The filter %s needs at least one value.", f.Key)
	}
	return nil
}

func matchParamFilters(p *parameter, filters []ssmFilter) bool {
	v := p.latest()
	for _, f := range filters {
		hit := false
		for _, want := range f.Values {
			switch f.Key {
			case "Name":
				hit = hit || matchOption(f.Option, strings.TrimPrefix(p.name, "/"), strings.TrimPrefix(want, "/"))
			case "Type":
				hit = hit || matchOption(f.Option, v.typ, want)
			case "KeyId":
				hit = hit || matchOption(f.Option, v.keyID, want)
			case "Tier":
				hit = hit || v.tier == want
			case "DataType":
				hit = hit || v.dataType == want
			case "Path":
				hit = hit || inPath(p.name, want, f.Option == "Recursive")
			}
		}
		if !hit {
			return false
		}
	}
	return true
}

func matchOption(option, have, want string) bool {
	switch option {
	case "BeginsWith":
		return strings.HasPrefix(have, want)
	case "Contains":
		return strings.Contains(have, want)
	default:
		return have == want
	}
}

// inPath reports whether name is directly under path, or anywhere below
// it when recursive.
func inPath(name, path string, recursive bool) bool {
	prefix := strings.TrimSuffix(path, "/") + "/"
	rest, ok := strings.CutPrefix(name, prefix)
	if !ok || rest == "" {
		return false
	}
	return recursive || !strings.Contains(rest, "/")
}

type ssmLabelInput struct {
	Name             string
	ParameterVersion *int64
	Labels           []string
}

type ssmLabelOutput struct {
	InvalidLabels    []string `json:"InvalidLabels"`
	ParameterVersion int64    `json:"ParameterVersion"`
}

func (r *Region) ssmLabelParameterVersion(c *call, in *ssmLabelInput) (any, *apiError) {
	if len(in.Labels) == 0 || len(in.Labels) > 10 {
		return nil, errValidation("1 validation error detected: Value at 'labels' failed to satisfy constraint: Member must have length between 1 and 10")
	}
	if aerr := r.authorize(c.who, c.op, r.paramARN(in.Name)); aerr != nil {
		return nil, aerr
	}
	p := r.findParam(in.Name)
	if p == nil {
		return nil, errorf(400, "ParameterNotFound", "Parameter %s not found.", in.Name)
	}
	v := p.latest()
	if in.ParameterVersion != nil {
		if v = p.version(*in.ParameterVersion); v == nil {
			return nil, errorf(400, "ParameterVersionNotFound", "Systems Manager could not find version %d of %s. Verify the version and try again.", *in.ParameterVersion, in.Name)
		}
	}
	invalid, aerr := labelVersion(p, v, in.Labels)
	if aerr != nil {
		return nil, aerr
	}
	if invalid == nil {
		invalid = []string{}
	}
	return ssmLabelOutput{InvalidLabels: invalid, ParameterVersion: v.version}, nil
}

type ssmNameInput struct {
	Name string
}

func (r *Region) ssmDeleteParameter(c *call, in *ssmNameInput) (any, *apiError) {
	if aerr := r.authorize(c.who, c.op, r.paramARN(in.Name)); aerr != nil {
		return nil, aerr
	}
	p := r.findParam(in.Name)
	if p == nil {
		return nil, errorf(400, "ParameterNotFound", "Parameter %s not found.", in.Name)
	}
	delete(r.params, p.name)
	return struct{}{}, nil
}
