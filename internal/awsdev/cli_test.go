package awsdev

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rolesenv/rolesenv/internal/testenv"
)

// awsCLI runs the aws CLI (botocore signs, independently of the Go SDK)
// against one emulator with one set of credentials.
type awsCLI struct {
	t   *testing.T
	bin string
	url string
	env []string
}

func newAWSCLI(t *testing.T, s *Server, keyID, secret string) *awsCLI {
	t.Helper()
	bin := testenv.RequireTool(t, "aws")
	env := testenv.SafeEnv(t, "AWS_DEFAULT_REGION="+s.Region(), "AWS_ACCESS_KEY_ID="+keyID, "AWS_SECRET_ACCESS_KEY="+secret)
	if ca := s.CAPEM(); ca != nil {
		f := filepath.Join(t.TempDir(), "ca.pem")
		if err := os.WriteFile(f, ca, 0o600); err != nil {
			t.Fatal(err)
		}
		env = append(env, "AWS_CA_BUNDLE="+f)
	}
	return &awsCLI{t: t, bin: bin, url: s.URL(), env: env}
}

// run runs one command and returns its stdout, stderr and whether it succeeded.
func (a *awsCLI) run(args ...string) (stdout, stderr string, ok bool) {
	a.t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(c, a.bin, append([]string{"--endpoint-url", a.url, "--output", "json"}, args...)...)
	cmd.Env = a.env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err == nil
}

// json runs a command that must succeed and decodes its output.
func (a *awsCLI) json(v any, args ...string) {
	a.t.Helper()
	out, stderr, ok := a.run(args...)
	if !ok {
		a.t.Fatalf("aws %s failed: %s", strings.Join(args, " "), stderr)
	}
	if v != nil {
		if err := json.Unmarshal([]byte(out), v); err != nil {
			a.t.Fatalf("aws %s: bad JSON output: %v", strings.Join(args, " "), err)
		}
	}
}

// fails runs a command that must fail with AWS error code.
func (a *awsCLI) fails(code string, args ...string) string {
	a.t.Helper()
	_, stderr, ok := a.run(args...)
	if ok {
		a.t.Fatalf("aws %s succeeded, want %s", strings.Join(args, " "), code)
	}
	if !strings.Contains(stderr, "An error occurred ("+code+")") {
		a.t.Fatalf("aws %s: stderr %q does not name %s", strings.Join(args, " "), stderr, code)
	}
	return stderr
}

func TestAWSCLI(t *testing.T) {
	s := start(t, Options{})
	id, secret := s.CreateUser("admin", AllowAll)
	cli := newAWSCLI(t, s, id, secret)

	var created struct{ ARN, Name, VersionId string }
	cli.json(&created, "secretsmanager", "create-secret", "--name", "app/db", "--secret-string", `{"user":"u","password":"p1"}`)
	cli.json(nil, "secretsmanager", "create-secret", "--name", "app/api", "--secret-string", "k1")

	var got struct {
		SecretString  string
		VersionId     string
		VersionStages []string
	}
	cli.json(&got, "secretsmanager", "get-secret-value", "--secret-id", created.ARN)
	if got.SecretString != `{"user":"u","password":"p1"}` || got.VersionId != created.VersionId {
		t.Fatalf("get-secret-value = %+v", got)
	}

	// Rotate: a pending version, then promote it.
	var pending struct{ VersionId string }
	cli.json(&pending, "secretsmanager", "put-secret-value", "--secret-id", "app/db", "--secret-string", `{"user":"u","password":"p2"}`, "--version-stages", "AWSPENDING")
	cli.json(&got, "secretsmanager", "get-secret-value", "--secret-id", "app/db")
	if got.VersionId != created.VersionId {
		t.Fatalf("AWSPENDING moved AWSCURRENT: %+v", got)
	}
	cli.fails("InvalidParameterException", "secretsmanager", "update-secret-version-stage", "--secret-id", "app/db", "--version-stage", "AWSCURRENT", "--move-to-version-id", pending.VersionId)
	cli.json(nil, "secretsmanager", "update-secret-version-stage", "--secret-id", "app/db", "--version-stage", "AWSCURRENT", "--move-to-version-id", pending.VersionId, "--remove-from-version-id", created.VersionId)
	var desc struct{ VersionIdsToStages map[string][]string }
	cli.json(&desc, "secretsmanager", "describe-secret", "--secret-id", "app/db")
	if st := strings.Join(desc.VersionIdsToStages[pending.VersionId], ","); !strings.Contains(st, "AWSCURRENT") || !strings.Contains(st, "AWSPENDING") {
		t.Errorf("stages of the promoted version = %s", st)
	}
	if st := strings.Join(desc.VersionIdsToStages[created.VersionId], ","); st != "AWSPREVIOUS" {
		t.Errorf("stages of the old version = %s", st)
	}
	cli.json(&got, "secretsmanager", "get-secret-value", "--secret-id", "app/db", "--version-stage", "AWSPREVIOUS")
	if got.VersionId != created.VersionId {
		t.Errorf("AWSPREVIOUS = %s, want %s", got.VersionId, created.VersionId)
	}

	var batch struct {
		SecretValues []struct{ Name, SecretString string }
		Errors       []struct{ SecretId, ErrorCode string }
	}
	cli.json(&batch, "secretsmanager", "batch-get-secret-value", "--secret-id-list", "app/db", "app/api", "app/missing")
	if len(batch.SecretValues) != 2 || batch.SecretValues[1].SecretString != "k1" || len(batch.Errors) != 1 || batch.Errors[0].ErrorCode != "ResourceNotFoundException" {
		t.Errorf("batch-get-secret-value = %+v", batch)
	}

	// SSM with selectors.
	cli.json(nil, "ssm", "put-parameter", "--name", "/app/flag", "--type", "String", "--value", "v1")
	cli.json(nil, "ssm", "put-parameter", "--name", "/app/flag", "--type", "String", "--value", "v2", "--overwrite")
	cli.json(nil, "ssm", "label-parameter-version", "--name", "/app/flag", "--parameter-version", "1", "--labels", "stable")
	var params struct {
		Parameters []struct {
			Name, Value, Selector string
			Version               int
		}
		InvalidParameters []string
	}
	cli.json(&params, "ssm", "get-parameters", "--names", "/app/flag", "/app/flag:1", "/app/flag:stable", "/app/flag:9", "--with-decryption")
	if len(params.Parameters) != 3 || params.Parameters[0].Value != "v2" || params.Parameters[1].Value != "v1" || params.Parameters[2].Selector != ":stable" ||
		len(params.InvalidParameters) != 1 || params.InvalidParameters[0] != "/app/flag:9" {
		t.Errorf("get-parameters = %+v", params)
	}
	var one struct{ Parameter struct{ Value string } }
	cli.json(&one, "ssm", "get-parameter", "--name", "/aws/reference/secretsmanager/app/api", "--with-decryption")
	if one.Parameter.Value != "k1" {
		t.Errorf("reference parameter = %+v", one)
	}

	var who struct{ Arn string }
	cli.json(&who, "sts", "get-caller-identity")
	if who.Arn != "arn:aws:iam::123456789012:user/admin" {
		t.Errorf("get-caller-identity = %+v", who)
	}

	// A tampered secret key, an unknown key and a denied action.
	tampered := secret[:len(secret)-1] + "x"
	if strings.HasSuffix(secret, "x") { // else the "tampered" key is the key
		tampered = secret[:len(secret)-1] + "y"
	}
	bad := newAWSCLI(t, s, id, tampered)
	bad.fails("InvalidSignatureException", "secretsmanager", "get-secret-value", "--secret-id", "app/db")
	bad.fails("SignatureDoesNotMatch", "sts", "get-caller-identity")
	unknown := newAWSCLI(t, s, "AKIAUNKNOWNUNKNOWN00", secret)
	unknown.fails("UnrecognizedClientException", "ssm", "get-parameter", "--name", "/app/flag")
	rid, rsecret := s.CreateUser("reader", Policy{Allow: []Rule{{Actions: []string{"secretsmanager:GetSecretValue"}, Resources: []string{created.ARN}}}})
	reader := newAWSCLI(t, s, rid, rsecret)
	reader.json(nil, "secretsmanager", "get-secret-value", "--secret-id", "app/db")
	stderr := reader.fails("AccessDeniedException", "secretsmanager", "put-secret-value", "--secret-id", "app/db", "--secret-string", "x")
	if !strings.Contains(stderr, "is not authorized to perform: secretsmanager:PutSecretValue on resource: "+created.ARN) {
		t.Errorf("denial does not name the action and resource: %s", stderr)
	}
	if strings.Contains(stderr, "p1") || strings.Contains(stderr, "p2") {
		t.Errorf("an error shows a secret value: %s", stderr)
	}
}
