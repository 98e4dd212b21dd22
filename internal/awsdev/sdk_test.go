package awsdev

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

func TestSDKSecretsManagerBasics(t *testing.T) {
	for _, plain := range []bool{false, true} {
		s := start(t, Options{HTTP: plain})
		c := adminClients(t, s)
		created, err := c.sm.CreateSecret(ctx(t), &secretsmanager.CreateSecretInput{Name: aws.String("prod/db"), SecretString: aws.String(`{"password":"one"}`)})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(*created.ARN, "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-") || len(*created.ARN) != len("arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-")+6 {
			t.Errorf("ARN = %s", *created.ARN)
		}
		got, err := c.sm.GetSecretValue(ctx(t), &secretsmanager.GetSecretValueInput{SecretId: aws.String("prod/db")})
		if err != nil {
			t.Fatal(err)
		}
		if *got.SecretString != `{"password":"one"}` || got.VersionStages[0] != "AWSCURRENT" {
			t.Errorf("GetSecretValue = %q %v", *got.SecretString, got.VersionStages)
		}
		put, err := c.sm.PutSecretValue(ctx(t), &secretsmanager.PutSecretValueInput{SecretId: created.ARN, SecretString: aws.String("two")})
		if err != nil {
			t.Fatal(err)
		}
		d, err := c.sm.DescribeSecret(ctx(t), &secretsmanager.DescribeSecretInput{SecretId: aws.String("prod/db")})
		if err != nil {
			t.Fatal(err)
		}
		if st := d.VersionIdsToStages[*put.VersionId]; len(st) != 1 || st[0] != "AWSCURRENT" {
			t.Errorf("stages of new version = %v", st)
		}
		if st := d.VersionIdsToStages[*created.VersionId]; len(st) != 1 || st[0] != "AWSPREVIOUS" {
			t.Errorf("stages of old version = %v", st)
		}
		b, err := c.sm.BatchGetSecretValue(ctx(t), &secretsmanager.BatchGetSecretValueInput{SecretIdList: []string{"prod/db", "missing"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(b.SecretValues) != 1 || *b.SecretValues[0].SecretString != "two" || len(b.Errors) != 1 || *b.Errors[0].ErrorCode != "ResourceNotFoundException" {
			t.Errorf("BatchGetSecretValue = %+v", b)
		}
		_, err = c.sm.GetSecretValue(ctx(t), &secretsmanager.GetSecretValueInput{SecretId: aws.String("missing")})
		wantCode(t, err, "ResourceNotFoundException")
	}
}

func TestSDKSSMAndSTS(t *testing.T) {
	s := start(t, Options{})
	c := adminClients(t, s)
	for _, v := range []string{"a", "b"} {
		if _, err := c.ssm.PutParameter(ctx(t), &ssm.PutParameterInput{Name: aws.String("/app/key"), Value: aws.String(v), Type: "SecureString", Overwrite: aws.Bool(true)}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := c.ssm.GetParameters(ctx(t), &ssm.GetParametersInput{Names: []string{"/app/key", "/app/key:1", "/nope"}, WithDecryption: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Parameters) != 2 || *got.Parameters[0].Value != "b" || *got.Parameters[1].Value != "a" || len(got.InvalidParameters) != 1 {
		t.Errorf("GetParameters = %+v", got)
	}
	id, err := c.sts.GetCallerIdentity(ctx(t), &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatal(err)
	}
	if *id.Arn != "arn:aws:iam::123456789012:user/admin" || *id.Account != "123456789012" {
		t.Errorf("GetCallerIdentity = %s %s", *id.Arn, *id.Account)
	}
}

func TestSDKAuthErrors(t *testing.T) {
	s := start(t, Options{})
	id, secret := s.CreateUser("reader", Policy{Allow: []Rule{{Actions: []string{"ssm:GetParameter*"}, Resources: []string{"*"}}}})
	c := newClients(sdkConfig(t, s, id, secret, ""))
	_, err := c.sm.GetSecretValue(ctx(t), &secretsmanager.GetSecretValueInput{SecretId: aws.String("x")})
	wantCode(t, err, "AccessDeniedException")
	want := "User: arn:aws:iam::123456789012:user/reader is not authorized to perform: secretsmanager:GetSecretValue on resource: arn:aws:secretsmanager:us-east-1:123456789012:secret:x because no identity-based policy allows the secretsmanager:GetSecretValue action"
	if msg := errorMessage(err); msg != want {
		t.Errorf("message = %q", msg)
	}
	bad := newClients(sdkConfig(t, s, id, secret+"x", ""))
	_, err = bad.ssm.GetParameter(ctx(t), &ssm.GetParameterInput{Name: aws.String("/x")})
	wantCode(t, err, "InvalidSignatureException")
	_, err = bad.sts.GetCallerIdentity(ctx(t), &sts.GetCallerIdentityInput{})
	wantCode(t, err, "SignatureDoesNotMatch")
	unknown := newClients(sdkConfig(t, s, "AKIANOTAKEY", secret, ""))
	_, err = unknown.ssm.GetParameter(ctx(t), &ssm.GetParameterInput{Name: aws.String("/x")})
	wantCode(t, err, "UnrecognizedClientException")
	_, err = unknown.sts.GetCallerIdentity(ctx(t), &sts.GetCallerIdentityInput{})
	wantCode(t, err, "InvalidClientTokenId")
}

// The emulator's answers carry its clock in Date, so an SDK whose clock
// is far from it corrects its skew and retries, as it does with AWS.
// Tests that move the emulator's clock rely on this.
func TestSDKCorrectsClockSkewFromDate(t *testing.T) {
	clock := newFakeClock(time.Now().Add(2 * time.Hour))
	s := start(t, Options{Now: clock.Now})
	id, secret := s.CreateUser("admin", AllowAll)
	cfg := sdkConfig(t, s, id, secret, "")
	cfg.Retryer = nil // the SDK's standard retryer
	if _, err := s.CreateSecret("a", "v"); err != nil {
		t.Fatal(err)
	}
	if _, err := secretsmanager.NewFromConfig(cfg).GetSecretValue(ctx(t), &secretsmanager.GetSecretValueInput{SecretId: aws.String("a")}); err != nil {
		t.Fatal(err)
	}
	if n := s.Calls("secretsmanager:GetSecretValue"); n != 2 {
		t.Errorf("calls = %d, want 2 (one refused for its date, one retried)", n)
	}
}

// The debug log names operations and principals, never values, keys or
// tokens.
func TestLogNamesNoSecrets(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	clock := newFakeClock(time.Now().UTC().Truncate(time.Second))
	s := start(t, Options{Logger: log, Now: clock.Now})
	f := raFixtureOn(t, s, clock)
	const sentinel = "SENTINEL-s3cr3t-value"
	id, secret := s.CreateUser("admin", AllowAll)
	c := newClients(sdkConfig(t, s, id, secret, ""))
	if _, err := c.sm.CreateSecret(ctx(t), &secretsmanager.CreateSecretInput{Name: aws.String("x"), SecretString: aws.String(sentinel)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.sm.GetSecretValue(ctx(t), &secretsmanager.GetSecretValueInput{SecretId: aws.String("x")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ssm.PutParameter(ctx(t), &ssm.PutParameterInput{Name: aws.String("/x"), Value: aws.String(sentinel), Type: "SecureString"}); err != nil {
		t.Fatal(err)
	}
	_, _ = newClients(sdkConfig(t, s, id, sentinel, "")).sm.GetSecretValue(ctx(t), &secretsmanager.GetSecretValueInput{SecretId: aws.String("x")})
	a := f.request(f.rsaLeaf).send(t, s)
	cred := a.out.CredentialSet[0].Credentials
	if _, err := newClients(sdkConfig(t, s, cred.AccessKeyID, cred.SecretAccessKey, cred.SessionToken)).sm.GetSecretValue(ctx(t), &secretsmanager.GetSecretValueInput{SecretId: aws.String("app/db")}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.Contains(out, "secretsmanager:GetSecretValue") || !strings.Contains(out, "assumed-role/app/") {
		t.Fatalf("the debug log does not name operations and principals:\n%s", out)
	}
	for _, leak := range []string{sentinel, secret, cred.SecretAccessKey, cred.SessionToken, "s3cr3t"} {
		if strings.Contains(out, leak) {
			t.Errorf("the log contains a secret value, key or token")
		}
	}
}
