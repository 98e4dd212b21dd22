package check

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/rolesenv/rolesenv/inject"
	"github.com/rolesenv/rolesenv/internal/awsdev"
	"github.com/rolesenv/rolesenv/internal/testenv"
)

// emulator is awsdev over plain HTTP with a user of policy p, and the SDK
// configuration that reaches it as that user.
func emulator(t *testing.T, p awsdev.Policy) (*awsdev.Server, aws.Config) {
	t.Helper()
	testenv.IsolateAWS(t)
	srv, err := awsdev.Start(awsdev.Options{HTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	id, secret := srv.CreateUser("u", p)
	return srv, aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL()),
		Credentials: credentials.NewStaticCredentialsProvider(id, secret, "")}
}

func parse(t *testing.T, environ []string, fromEnv bool, files ...string) *inject.Template {
	t.Helper()
	var fs []inject.File
	for i, f := range files {
		fs = append(fs, inject.File{Name: []string{"a.env", "b.env"}[i], Data: []byte(f)})
	}
	tm, err := inject.Parse(fs, inject.Options{Environ: environ, FromEnv: fromEnv})
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

// TestFetchPinsDownParameterDenials: Parameter Store denies a whole
// GetParameters call for one denied name; check reports only that one.
func TestFetchPinsDownParameterDenials(t *testing.T) {
	srv, cfg := emulator(t, awsdev.Policy{Allow: []awsdev.Rule{
		{Actions: []string{"ssm:GetParameters"}, Resources: []string{"arn:aws:ssm:*:*:parameter/ok/*"}}}})
	for _, name := range []string{"/ok/a", "/ok/b", "/no/c"} {
		if _, err := srv.PutParameter(name, "String", "v"); err != nil {
			t.Fatal(err)
		}
	}
	tm := parse(t, nil, false, "A=ssm:///ok/a\nB=ssm:///ok/b\nC=ssm:///no/c\n")
	uses := tm.Uses()
	vals := Fetch(context.Background(), &inject.Resolver{Config: cfg}, tm.Fetches())
	rows := Resolved(tm, uses, vals, Principal{ARN: "arn:aws:iam::123456789012:user/u", Region: "us-east-1"})
	st := map[string]Row{}
	for _, r := range rows {
		st[r.Variable] = r
	}
	if st["A"].Status != OK || st["B"].Status != OK || st["C"].Status != Fail {
		t.Fatalf("statuses A %s, B %s, C %s; want ok, ok, fail", st["A"].Status, st["B"].Status, st["C"].Status)
	}
	c := st["C"]
	want := `{"Effect":"Allow","Action":"ssm:GetParameters","Resource":"arn:aws:ssm:us-east-1:123456789012:parameter/no/c"}`
	if c.Statement == nil || c.Statement.JSON() != want || c.Code != "AccessDeniedException" {
		t.Errorf("C row %+v, want the statement %s", c, want)
	}
	if st["A"].Version != "1" || st["A"].Detail != "ssm:///ok/a: version 1" {
		t.Errorf("A row %+v", st["A"])
	}
}

func TestDescribe(t *testing.T) {
	srv, cfg := emulator(t, awsdev.Policy{Allow: []awsdev.Rule{
		{Actions: []string{"secretsmanager:DescribeSecret"}, Resources: []string{"*"}},
		{Actions: []string{"secretsmanager:ListSecretVersionIds"}, Resources: []string{"arn:aws:secretsmanager:*:*:secret:listable-*"}},
		{Actions: []string{"ssm:DescribeParameters"}, Resources: []string{"*"}},
	}})
	for _, name := range []string{"listable", "unlistable", "doomed"} {
		if _, err := srv.CreateSecret(name, "v1"); err != nil {
			t.Fatal(err)
		}
	}
	versions, err := srv.SecretVersions("listable")
	if err != nil {
		t.Fatal(err)
	}
	first := versions[0].VersionID
	unlistable, err := srv.SecretVersions("unlistable")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"listable", "unlistable"} {
		for _, v := range []string{"v2", "v3"} { // the first version loses every stage
			if _, err := srv.PutSecretValue(name, v); err != nil {
				t.Fatal(err)
			}
		}
	}
	admin, secret := srv.CreateUser("admin", awsdev.AllowAll)
	adminCfg := cfg.Copy()
	adminCfg.Credentials = credentials.NewStaticCredentialsProvider(admin, secret, "")
	if _, err := secretsmanager.NewFromConfig(adminCfg).DeleteSecret(context.Background(), &secretsmanager.DeleteSecretInput{
		SecretId: aws.String("doomed"), RecoveryWindowInDays: aws.Int64(7)}); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.PutParameter("/app/p", "String", "x"); err != nil {
		t.Fatal(err)
	}
	const paramARN = "arn:aws:ssm:us-east-1:123456789012:parameter/app/p"

	tm := parse(t, nil, false, strings.Join([]string{
		"DEPRECATED=sm://listable?version=" + first,
		"GONE_VERSION=sm://listable?version=00000000-0000-0000-0000-000000000000",
		"UNLISTABLE=sm://unlistable?version=" + unlistable[0].VersionID,
		"DOOMED=sm://doomed",
		"PREVIOUS=sm://listable?stage=AWSPREVIOUS#k",
		"BY_ARN=" + paramARN,
		"OTHER_ACCOUNT=arn:aws:ssm:us-east-1:999999999999:parameter/shared",
	}, "\n")+"\n")
	srv.ResetCalls()
	rows := Describe(context.Background(), cfg, tm.Uses(), Principal{ARN: "arn:aws:iam::123456789012:user/u", Region: "us-east-1"})
	want := map[string]struct {
		status Status
		detail string
	}{
		"DEPRECATED":    {OK, "(deprecated: it has no stage)"},
		"GONE_VERSION":  {Fail, "the secret has no version 00000000-0000-0000-0000-000000000000"},
		"UNLISTABLE":    {Warn, "not verified: DescribeSecret does not list the version"},
		"DOOMED":        {Fail, "the secret is scheduled for deletion on "},
		"PREVIOUS":      {OK, "(AWSPREVIOUS)"},
		"BY_ARN":        {OK, "exists: version 1"},
		"OTHER_ACCOUNT": {Warn, "lists the parameters of the caller's account only"},
	}
	for _, r := range rows {
		w := want[r.Variable]
		if r.Status != w.status || !strings.Contains(r.Detail, w.detail) {
			t.Errorf("%s: %s %q, want %s and %q", r.Variable, r.Status, r.Detail, w.status, w.detail)
		}
	}
	if len(rows) != len(want) {
		t.Errorf("%d rows, want %d", len(rows), len(want))
	}
	for op, n := range srv.CallCounts() {
		if n > 0 && !strings.Contains(op, "Describe") && op != "secretsmanager:ListSecretVersionIds" {
			t.Errorf("--describe-only called %s", op)
		}
	}
	if n := srv.Calls("secretsmanager:DescribeSecret"); n != 3 {
		t.Errorf("%d DescribeSecret calls, want 3 (one per secret)", n)
	}
	if n := srv.Calls("ssm:DescribeParameters"); n != 1 {
		t.Errorf("%d DescribeParameters calls, want 1 (one per region)", n)
	}
}

func TestDescribeDenialsAndRegions(t *testing.T) {
	_, cfg := emulator(t, awsdev.Policy{})
	cfg.Region = ""
	tm := parse(t, nil, false, "P=ssm:///app/p\nS=sm://app/s\nR=arn:aws:ssm:us-east-1:123456789012:parameter/app/q\n")
	rows := Describe(context.Background(), cfg, tm.Uses(), Principal{ARN: "arn:aws:iam::123456789012:user/u"})
	by := map[string]Row{}
	for _, r := range rows {
		by[r.Variable] = r
	}
	if r := by["P"]; r.Status != Fail || !strings.Contains(r.Detail, "no AWS region") {
		t.Errorf("P %+v", r)
	}
	r := by["R"] // an ARN names its region
	want := `{"Effect":"Allow","Action":"ssm:DescribeParameters","Resource":"*"}`
	if r.Status != Fail || r.Statement == nil || r.Statement.JSON() != want {
		t.Errorf("R %+v, want the statement %s", r, want)
	}
}
