package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/rolesenv/rolesenv/internal/awsdev"
	"github.com/rolesenv/rolesenv/internal/testenv"

	"github.com/rolesenv/rolesenv/internal/exitcode"
)

// policyDoc is the part of an IAM policy document the examples use.
type policyDoc struct {
	Version   string
	Statement []struct {
		Sid       string
		Effect    string
		Principal any
		Action    stringList
		Resource  stringList
		Condition map[string]map[string]stringList
	}
}

// stringList is an IAM "string or list of strings".
type stringList []string

func (l *stringList) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*l = []string{one}
		return nil
	}
	var many []string
	err := json.Unmarshal(b, &many)
	*l = many
	return err
}

func readPolicy(t *testing.T, name string) policyDoc {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("examples", "iam", name))
	if err != nil {
		t.Fatal(err)
	}
	var doc policyDoc
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if doc.Version != "2012-10-17" || len(doc.Statement) == 0 {
		t.Fatalf("%s: want Version 2012-10-17 and statements", name)
	}
	for _, st := range doc.Statement {
		if st.Effect != "Allow" || len(st.Action) == 0 {
			t.Errorf("%s: statement %q: want an Allow with actions", name, st.Sid)
		}
	}
	return doc
}

func TestExamplePoliciesParse(t *testing.T) {
	readPolicy(t, "identity-policy.json")
	readPolicy(t, "session-policy.json")
	trust := readPolicy(t, "trust-policy.json")
	st := trust.Statement[0]
	for _, action := range []string{"sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"} {
		if !strings.Contains(strings.Join(st.Action, " "), action) {
			t.Errorf("trust policy does not allow %s, which Roles Anywhere needs", action)
		}
	}
	for _, key := range []string{"aws:PrincipalTag/x509Subject/CN", "aws:PrincipalTag/x509Issuer/CN", "aws:PrincipalTag/x509SAN/DNS", "aws:SourceArn"} {
		found := false
		for _, cond := range st.Condition {
			_, ok := cond[key]
			found = found || ok
		}
		if !found {
			t.Errorf("trust policy has no condition on %s", key)
		}
	}
}

// The example identity policy is enough for the example template, and no
// more than it needs: the template resolves with exactly the policy's
// Allow statements (conditions aside) in the emulator, and fails once any
// statement that names resources is dropped.
func TestExampleTemplateResolvesWithExamplePolicy(t *testing.T) {
	doc := readPolicy(t, "identity-policy.json")
	var full awsdev.Policy
	for _, st := range doc.Statement {
		if strings.HasPrefix(st.Action[0], "kms:") {
			continue // the emulator has no KMS: values are not encrypted there
		}
		full.Allow = append(full.Allow, awsdev.Rule{Actions: st.Action, Resources: st.Resource})
	}

	seed := func(t *testing.T, p awsdev.Policy) *awsdev.Server {
		testenv.IsolateAWS(t)
		s, err := awsdev.Start(awsdev.Options{Region: "eu-west-1"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		ca := filepath.Join(t.TempDir(), "ca.pem")
		if err := os.WriteFile(ca, s.CAPEM(), 0o600); err != nil {
			t.Fatal(err)
		}
		id, secret := s.CreateUser("app", p)
		t.Setenv("AWS_REGION", "eu-west-1")
		t.Setenv("AWS_ENDPOINT_URL", s.URL())
		t.Setenv("AWS_CA_BUNDLE", ca)
		t.Setenv("AWS_ACCESS_KEY_ID", id)
		t.Setenv("AWS_SECRET_ACCESS_KEY", secret)
		for name, value := range map[string]string{
			"prod/app/db":      `{"username":"app","password":"pa ss/word"}`,
			"prod/app/api-key": "key-2",
			"prod/app/tls":     `{"key":"-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n"}`,
		} {
			if _, err := s.CreateSecret(name, value); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.PutSecretValue("prod/app/api-key", "key-3"); err != nil {
			t.Fatal(err)
		}
		for name, value := range map[string]string{"/prod/app/feature-flags": "a,b", "/prod/app/signing-salt": "salt"} {
			typ := "String"
			if strings.Contains(name, "salt") {
				typ = "SecureString"
			}
			if _, err := s.PutParameter(name, typ, value); err != nil {
				t.Fatal(err)
			}
		}
		return s
	}

	t.Run("sufficient", func(t *testing.T) {
		seed(t, full)
		code, out, stderr := runCLI(t, "render", "--env-file", "examples/app.env", "--clean-env", "--reveal", "--format", "json")
		if code != 0 {
			t.Fatalf("render examples/app.env: exit %d\n%s", code, stderr)
		}
		var env map[string]string
		if err := json.Unmarshal([]byte(out), &env); err != nil {
			t.Fatalf("render output is not JSON: %v", err)
		}
		want := map[string]string{
			"DB_USER":          "app",
			"DATABASE_URL":     "postgres://app:pa%20ss%2Fword@db.internal:5432/app",
			"API_KEY":          "key-3",
			"API_KEY_PREVIOUS": "key-2",
			"FEATURE_FLAGS":    "a,b",
			"SIGNING_SALT":     "salt",
			"LOG_LEVEL":        "info",
		}
		for k, v := range want {
			if env[k] != v {
				t.Errorf("%s = %q, want %q", k, env[k], v)
			}
		}
		if !strings.HasPrefix(env["UPLOAD_SECRET_ARN"], "arn:aws:secretsmanager:") {
			t.Errorf("the single-quoted ARN was not kept literally: %q", env["UPLOAD_SECRET_ARN"])
		}
		if !strings.Contains(env["TLS_KEY"], "\n") {
			t.Errorf("TLS_KEY lost its line breaks")
		}
	})

	for i, rule := range full.Allow {
		if rule.Resources[0] == "*" {
			continue
		}
		t.Run("without statement "+doc.Statement[i].Sid, func(t *testing.T) {
			less := awsdev.Policy{Allow: append(append([]awsdev.Rule{}, full.Allow[:i]...), full.Allow[i+1:]...)}
			seed(t, less)
			code, _, stderr := runCLI(t, "render", "--env-file", "examples/app.env", "--clean-env")
			if code != exitcode.NoPerm {
				t.Errorf("exit %d, want %d (access denied)\n%s", code, exitcode.NoPerm, stderr)
			}
		})
	}
}

// The Dockerfile is checked statically: there is no Docker engine here.
func TestExampleDockerfile(t *testing.T) {
	data, err := os.ReadFile("examples/docker/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var entrypoint []string
	var stages, copies int
	for _, line := range strings.Split(string(data), "\n") {
		instr, rest, _ := strings.Cut(strings.TrimSpace(line), " ")
		switch instr {
		case "FROM":
			stages++
		case "COPY":
			copies++
		case "ENTRYPOINT":
			if err := json.Unmarshal([]byte(rest), &entrypoint); err != nil {
				t.Fatalf("ENTRYPOINT is not the JSON exec form (a shell would sit between rolesenv and the signals): %v", err)
			}
		case "ENV", "ARG":
			if regexp.MustCompile(`AWS_SECRET_ACCESS_KEY|AWS_SESSION_TOKEN|PASSPHRASE`).MatchString(rest) {
				t.Errorf("the Dockerfile puts a credential in the image: %s", line)
			}
		}
	}
	if len(entrypoint) < 3 || entrypoint[0] != "rolesenv" || entrypoint[1] != "run" || entrypoint[len(entrypoint)-1] != "--" {
		t.Errorf("ENTRYPOINT = %q, want [rolesenv run ... --]", entrypoint)
	}
	if stages < 2 || copies == 0 {
		t.Errorf("want a multi-stage build that copies rolesenv in (FROM %d, COPY %d)", stages, copies)
	}
	// The entry point's flags are rolesenv's own.
	code, _, stderr := runCLI(t, append(append([]string{}, entrypoint[1:len(entrypoint)-1]...), "--help")...)
	if code != 0 {
		t.Errorf("rolesenv %q --help: exit %d\n%s", entrypoint[1:], code, stderr)
	}
}
