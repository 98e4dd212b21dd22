package awsdev

import (
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
	if err != nil || len(out.Parameters) != 2 || *out.Parameters[0].Value != "a,b" || *out.Parameters[1].Value == "hidden" {
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
}
