package awsdev

import (
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

func TestParameterNames(t *testing.T) {
	s := start(t, Options{})
	for _, tt := range []struct{ name, code string }{
		{"plain", ""},
		{"/a/b/c", ""},
		{"a/b", "ValidationException"},
		{"/aws/x", "ValidationException"},
		{"SSM-thing", "ValidationException"},
		{"/has space", "ValidationException"},
		{"/" + strings.Repeat("l/", 15) + "x", "HierarchyLevelLimitExceededException"},
	} {
		_, err := s.PutParameter(tt.name, "String", "v")
		if got := apiCode(err); got != tt.code {
			t.Errorf("PutParameter(%q) = %v, want %q", tt.name, err, tt.code)
		}
	}
}

// apiCode is the AWS error code inside an error of the Go API.
func apiCode(err error) string {
	if err == nil {
		return ""
	}
	msg := strings.TrimPrefix(err.Error(), "awsdev: ")
	code, _, _ := strings.Cut(msg, ":")
	return code
}

func TestParameterVersionsAndLabels(t *testing.T) {
	s := start(t, Options{})
	c := adminClients(t, s)
	put := func(v string, overwrite bool) (*ssm.PutParameterOutput, error) {
		return c.ssm.PutParameter(ctx(t), &ssm.PutParameterInput{Name: aws.String("/app/p"), Value: aws.String(v), Type: ssmtypes.ParameterTypeString, Overwrite: aws.Bool(overwrite)})
	}
	if _, err := put("v1", false); err != nil {
		t.Fatal(err)
	}
	_, err := put("v2", false)
	wantCode(t, err, "ParameterAlreadyExists")
	// An overwrite without a type keeps the type.
	if out, err := c.ssm.PutParameter(ctx(t), &ssm.PutParameterInput{Name: aws.String("/app/p"), Value: aws.String("v2"), Overwrite: aws.Bool(true)}); err != nil || out.Version != 2 {
		t.Fatalf("overwrite: %v", err)
	}
	_, err = c.ssm.PutParameter(ctx(t), &ssm.PutParameterInput{Name: aws.String("/app/new"), Value: aws.String("v")})
	wantCode(t, err, "ValidationException")
	_, err = c.ssm.PutParameter(ctx(t), &ssm.PutParameterInput{Name: aws.String("/app/big"), Value: aws.String(strings.Repeat("x", 4097)), Type: ssmtypes.ParameterTypeString})
	wantCode(t, err, "ValidationException")

	lab, err := c.ssm.LabelParameterVersion(ctx(t), &ssm.LabelParameterVersionInput{Name: aws.String("/app/p"), Labels: []string{"live", "aws-no", "123", "a/b"}})
	if err != nil || lab.ParameterVersion != 2 || strings.Join(lab.InvalidLabels, ",") != "aws-no,123,a/b" {
		t.Fatalf("LabelParameterVersion = %+v, %v", lab, err)
	}
	// A label moves from one version to another.
	if _, err := c.ssm.LabelParameterVersion(ctx(t), &ssm.LabelParameterVersionInput{Name: aws.String("/app/p"), ParameterVersion: aws.Int64(1), Labels: []string{"live"}}); err != nil {
		t.Fatal(err)
	}
	got, err := c.ssm.GetParameter(ctx(t), &ssm.GetParameterInput{Name: aws.String("/app/p:live")})
	if err != nil || *got.Parameter.Value != "v1" || *got.Parameter.Selector != ":live" || *got.Parameter.Name != "/app/p" {
		t.Fatalf("by label: %+v, %v", got, err)
	}
	_, err = c.ssm.LabelParameterVersion(ctx(t), &ssm.LabelParameterVersionInput{Name: aws.String("/app/p"), ParameterVersion: aws.Int64(9), Labels: []string{"x"}})
	wantCode(t, err, "ParameterVersionNotFound")
	var many []string
	for i := range 10 {
		many = append(many, "l"+string(rune('a'+i)))
	}
	if _, err := c.ssm.LabelParameterVersion(ctx(t), &ssm.LabelParameterVersionInput{Name: aws.String("/app/p"), ParameterVersion: aws.Int64(2), Labels: many}); err != nil {
		t.Fatal(err)
	}
	_, err = c.ssm.LabelParameterVersion(ctx(t), &ssm.LabelParameterVersionInput{Name: aws.String("/app/p"), ParameterVersion: aws.Int64(2), Labels: []string{"eleventh"}})
	wantCode(t, err, "ParameterVersionLabelLimitExceeded")

	// 100 versions at most; the oldest goes unless it is labelled.
	for i := 3; i <= 100; i++ {
		if _, err := s.PutParameter("/app/p", "String", "v"); err != nil {
			t.Fatal(err)
		}
	}
	_, err = put("v101", true)
	wantCode(t, err, "ParameterMaxVersionLimitExceeded")
	if _, err := s.PutParameter("/app/q", "String", "v"); err != nil {
		t.Fatal(err)
	}
	for i := 2; i <= 101; i++ {
		if _, err := s.PutParameter("/app/q", "String", "v"); err != nil {
			t.Fatalf("version %d: %v", i, err)
		}
	}
	_, err = c.ssm.GetParameter(ctx(t), &ssm.GetParameterInput{Name: aws.String("/app/q:1")})
	wantCode(t, err, "ParameterVersionNotFound")
}

func TestGetParametersRules(t *testing.T) {
	s := start(t, Options{})
	c := adminClients(t, s)
	if _, err := s.PutParameter("/app/list", "StringList", "a,b"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutParameter("/app/key", "SecureString", "hidden"); err != nil {
		t.Fatal(err)
	}
	out, err := c.ssm.GetParameters(ctx(t), &ssm.GetParametersInput{Names: []string{"/app/list", "/app/key"}})
	// In alphabetical order, as AWS documents.
	if err != nil || len(out.Parameters) != 2 || *out.Parameters[0].Name != "/app/key" || *out.Parameters[0].Value == "hidden" || *out.Parameters[1].Value != "a,b" {
		t.Fatalf("without decryption: %+v, %v", out, err)
	}
	var eleven []string
	for i := range 11 {
		eleven = append(eleven, "/app/list")
		_ = i
	}
	_, err = c.ssm.GetParameters(ctx(t), &ssm.GetParametersInput{Names: eleven})
	wantCode(t, err, "ValidationException")

	// One name the caller may not read denies the whole call.
	id, secret := s.CreateUser("lister", Policy{Allow: []Rule{{Actions: []string{"ssm:GetParameters"}, Resources: []string{"arn:aws:ssm:us-east-1:123456789012:parameter/app/list"}}}})
	lc := newClients(sdkConfig(t, s, id, secret, ""))
	if _, err := lc.ssm.GetParameters(ctx(t), &ssm.GetParametersInput{Names: []string{"/app/list"}}); err != nil {
		t.Fatal(err)
	}
	_, err = lc.ssm.GetParameters(ctx(t), &ssm.GetParametersInput{Names: []string{"/app/list", "/app/key"}})
	wantCode(t, err, "AccessDeniedException")
}

func TestSecretsManagerReference(t *testing.T) {
	s := start(t, Options{})
	c := adminClients(t, s)
	if _, err := s.CreateSecret("db", "one"); err != nil {
		t.Fatal(err)
	}
	v2, err := s.PutSecretValue("db", "two")
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"/aws/reference/secretsmanager/db":             "two",
		"/aws/reference/secretsmanager/db:AWSPREVIOUS": "one",
		"/aws/reference/secretsmanager/db:" + v2:       "two",
	} {
		got, err := c.ssm.GetParameter(ctx(t), &ssm.GetParameterInput{Name: aws.String(name), WithDecryption: aws.Bool(true)})
		if err != nil || *got.Parameter.Value != want || got.Parameter.Type != ssmtypes.ParameterTypeSecureString {
			t.Errorf("%s = %+v, %v", name, got, err)
		}
	}
	_, err = c.ssm.GetParameter(ctx(t), &ssm.GetParameterInput{Name: aws.String("/aws/reference/secretsmanager/db")})
	wantCode(t, err, "ValidationException")
	_, err = c.ssm.GetParameter(ctx(t), &ssm.GetParameterInput{Name: aws.String("/aws/reference/secretsmanager/nope"), WithDecryption: aws.Bool(true)})
	wantCode(t, err, "ParameterNotFound")
	out, err := c.ssm.GetParameters(ctx(t), &ssm.GetParametersInput{Names: []string{"/aws/reference/secretsmanager/db", "/aws/reference/secretsmanager/nope"}, WithDecryption: aws.Bool(true)})
	if err != nil || len(out.Parameters) != 1 || len(out.InvalidParameters) != 1 {
		t.Errorf("GetParameters through the bridge = %+v, %v", out, err)
	}

	// The bridge needs the secret's permission too.
	id, secret := s.CreateUser("ssm-only", Policy{Allow: []Rule{{Actions: []string{"ssm:GetParameter"}, Resources: []string{"*"}}}})
	_, err = newClients(sdkConfig(t, s, id, secret, "")).ssm.GetParameter(ctx(t), &ssm.GetParameterInput{Name: aws.String("/aws/reference/secretsmanager/db"), WithDecryption: aws.Bool(true)})
	wantCode(t, err, "AccessDeniedException")
	if !strings.Contains(errorMessage(err), "secretsmanager:GetSecretValue") {
		t.Errorf("denial = %q", errorMessage(err))
	}
}

func TestDescribeParameters(t *testing.T) {
	s := start(t, Options{})
	c := adminClients(t, s)
	for _, n := range []string{"/a/x", "/a/y", "/a/deep/z", "/b/x", "top"} {
		if _, err := s.PutParameter(n, "String", "v"); err != nil {
			t.Fatal(err)
		}
	}
	names := func(filters []ssmtypes.ParameterStringFilter) string {
		t.Helper()
		var got []string
		p := ssm.NewDescribeParametersPaginator(c.ssm, &ssm.DescribeParametersInput{ParameterFilters: filters, MaxResults: aws.Int32(2)})
		for p.HasMorePages() {
			out, err := p.NextPage(ctx(t))
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range out.Parameters {
				got = append(got, *m.Name)
			}
		}
		return strings.Join(got, " ")
	}
	if got := names(nil); got != "/a/deep/z /a/x /a/y /b/x top" {
		t.Errorf("all = %s", got)
	}
	if got := names([]ssmtypes.ParameterStringFilter{{Key: aws.String("Path"), Values: []string{"/a"}}}); got != "/a/x /a/y" {
		t.Errorf("one level = %s", got)
	}
	if got := names([]ssmtypes.ParameterStringFilter{{Key: aws.String("Path"), Option: aws.String("Recursive"), Values: []string{"/a"}}}); got != "/a/deep/z /a/x /a/y" {
		t.Errorf("recursive = %s", got)
	}
	if got := names([]ssmtypes.ParameterStringFilter{{Key: aws.String("Name"), Values: []string{"/b/x", "top"}}}); got != "/b/x top" {
		t.Errorf("names = %s", got)
	}
	_, err := c.ssm.DescribeParameters(ctx(t), &ssm.DescribeParametersInput{ParameterFilters: []ssmtypes.ParameterStringFilter{{Key: aws.String("Nope"), Values: []string{"x"}}}})
	wantCode(t, err, "InvalidFilterKey")
	// The emulator has one account: nothing is shared with it.
	shared, err := c.ssm.DescribeParameters(ctx(t), &ssm.DescribeParametersInput{Shared: aws.Bool(true)})
	if err != nil || len(shared.Parameters) != 0 {
		t.Errorf("DescribeParameters(Shared) = %+v, %v", shared, err)
	}
	// Label is a filter of GetParametersByPath only.
	_, err = c.ssm.DescribeParameters(ctx(t), &ssm.DescribeParametersInput{ParameterFilters: []ssmtypes.ParameterStringFilter{{Key: aws.String("Label"), Values: []string{"x"}}}})
	wantCode(t, err, "InvalidFilterKey")
}

// GetParameter and GetParameters take parameter ARNs, as AWS documents
// (the only way to name a parameter shared from another account). AWS
// answers the parameter's own name in Name (recorded answers of
// GetParameter by ARN show it), and an ARN it cannot find is listed
// verbatim in InvalidParameters.
func TestGetParametersByARN(t *testing.T) {
	s := start(t, Options{})
	c := adminClients(t, s)
	for _, v := range []string{"v1", "v2"} {
		if _, err := s.PutParameter("/app/db", "SecureString", v); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.LabelParameterVersion("/app/db", 1, "stable"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutParameter("plain", "String", "p"); err != nil {
		t.Fatal(err)
	}
	const prefix = "arn:aws:ssm:us-east-1:123456789012:parameter"
	arn, plainARN := prefix+"/app/db", prefix+"/plain"

	got, err := c.ssm.GetParameter(ctx(t), &ssm.GetParameterInput{Name: aws.String(arn), WithDecryption: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	if p := got.Parameter; *p.Name != "/app/db" || *p.Value != "v2" || *p.ARN != arn || p.Version != 2 {
		t.Errorf("GetParameter(ARN) = %s %s %s v%d", *p.Name, *p.Value, *p.ARN, p.Version)
	}
	got, err = c.ssm.GetParameter(ctx(t), &ssm.GetParameterInput{Name: aws.String(plainARN)})
	if err != nil || *got.Parameter.Name != "plain" || *got.Parameter.Value != "p" {
		t.Fatalf("GetParameter(ARN of a name without /) = %+v, %v", got, err)
	}
	_, err = c.ssm.GetParameter(ctx(t), &ssm.GetParameterInput{Name: aws.String(prefix + "/app/nope")})
	wantCode(t, err, "ParameterNotFound")

	foreign := []string{
		"arn:aws:ssm:us-east-1:999999999999:parameter/app/db", // another account
		"arn:aws:ssm:eu-west-1:123456789012:parameter/app/db", // a region not served
		"arn:aws:secretsmanager:us-east-1:123456789012:secret:app/db",
		arn + ":9",
	}
	out, err := c.ssm.GetParameters(ctx(t), &ssm.GetParametersInput{
		Names:          append([]string{arn, arn + ":stable", plainARN, "/app/db:1"}, foreign...),
		WithDecryption: aws.Bool(true),
	})
	if err != nil {
		t.Fatal(err)
	}
	var params []string
	for _, p := range out.Parameters {
		params = append(params, fmt.Sprintf("%s=%s%s", *p.Name, *p.Value, aws.ToString(p.Selector)))
	}
	if got, want := strings.Join(params, " "), "/app/db=v2 /app/db=v1:stable /app/db=v1:1 plain=p"; got != want {
		t.Errorf("Parameters = %s, want %s", got, want)
	}
	if got, want := strings.Join(out.InvalidParameters, " "), strings.Join(foreign, " "); got != want {
		t.Errorf("InvalidParameters = %s, want %s", got, want)
	}

	// Access is checked against the ARN, whichever way the parameter is named.
	id, secret := s.CreateUser("db-reader", Policy{Allow: []Rule{{Actions: []string{"ssm:GetParameter*"}, Resources: []string{arn}}}})
	rc := newClients(sdkConfig(t, s, id, secret, ""))
	for _, name := range []string{arn, arn + ":1", "/app/db"} {
		if _, err := rc.ssm.GetParameters(ctx(t), &ssm.GetParametersInput{Names: []string{name}}); err != nil {
			t.Errorf("GetParameters(%s) by a reader of %s: %v", name, arn, err)
		}
	}
	_, err = rc.ssm.GetParameters(ctx(t), &ssm.GetParametersInput{Names: []string{arn, plainARN}})
	wantCode(t, err, "AccessDeniedException")
	if !strings.Contains(errorMessage(err), "on resource: "+plainARN+" ") {
		t.Errorf("denial = %q", errorMessage(err))
	}
}

// A top-level parameter is named with or without its leading slash:
// "plain" and "/plain" are one parameter, with one ARN.
func TestTopLevelParameterNames(t *testing.T) {
	s := start(t, Options{})
	c := adminClients(t, s)
	if _, err := s.PutParameter("plain", "String", "p1"); err != nil {
		t.Fatal(err)
	}
	got, err := c.ssm.GetParameter(ctx(t), &ssm.GetParameterInput{Name: aws.String("/plain")})
	if err != nil || *got.Parameter.Name != "/plain" || *got.Parameter.Value != "p1" || *got.Parameter.ARN != "arn:aws:ssm:us-east-1:123456789012:parameter/plain" {
		t.Fatalf("GetParameter(/plain) = %+v, %v", got, err)
	}
	_, err = c.ssm.PutParameter(ctx(t), &ssm.PutParameterInput{Name: aws.String("/plain"), Value: aws.String("p2"), Type: ssmtypes.ParameterTypeString})
	wantCode(t, err, "ParameterAlreadyExists")
	put, err := c.ssm.PutParameter(ctx(t), &ssm.PutParameterInput{Name: aws.String("/plain"), Value: aws.String("p2"), Overwrite: aws.Bool(true)})
	if err != nil || put.Version != 2 {
		t.Fatalf("overwrite through /plain: %+v, %v", put, err)
	}
	// Nothing of the kind for deeper names: /a/b and a/b are not the same.
	if _, err := s.PutParameter("/a/b", "String", "v"); err != nil {
		t.Fatal(err)
	}
	out, err := c.ssm.GetParameters(ctx(t), &ssm.GetParametersInput{Names: []string{"plain:1", "/a/b", "a/b"}})
	if err != nil || len(out.Parameters) != 2 || *out.Parameters[1].Value != "p1" || strings.Join(out.InvalidParameters, ",") != "a/b" {
		t.Fatalf("GetParameters = %+v, %v", out, err)
	}
	if err := s.DeleteParameter("/plain"); err != nil {
		t.Fatal(err)
	}
	_, err = c.ssm.GetParameter(ctx(t), &ssm.GetParameterInput{Name: aws.String("plain")})
	wantCode(t, err, "ParameterNotFound")
}
