package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rolesenv/rolesenv/internal/testenv"
)

// parseEnvSh reads the export lines that rolesenv dev writes.
func parseEnvSh(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	vars := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "export ")
		if !ok {
			continue
		}
		k, v, _ := strings.Cut(line, "=")
		vars[k] = strings.Trim(v, "'")
	}
	return vars
}

func TestDevWritesFilesAndKeepsStateAcrossRestarts(t *testing.T) {
	testenv.IsolateAWS(t)
	dir := filepath.Join(t.TempDir(), "dev")
	d1, err := startDev(devOptions{dir: dir, self: "/usr/local/bin/rolesenv"})
	if err != nil {
		t.Fatal(err)
	}
	first := parseEnvSh(t, filepath.Join(dir, "env.sh"))
	ca1, _ := os.ReadFile(filepath.Join(dir, "ca.pem"))
	d1.srv.Close()

	for _, name := range []string{"ca.pem", "rsa-cert.pem", "rsa-key.pem", "ec-cert.pem", "ec-key.pem", "demo.env", "aws-config", "env.sh"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("rolesenv dev did not write %s: %v", name, err)
		}
	}
	for _, name := range []string{"rsa-key.pem", "ec-key.pem", "ca-key.pem", "aws-config", "env.sh"} {
		if st, err := os.Stat(filepath.Join(dir, name)); err == nil && st.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %v, want no access for group or others", name, st.Mode().Perm())
		}
	}
	for _, k := range []string{"ROLESENV_CERTIFICATE", "ROLESENV_PRIVATE_KEY", "ROLESENV_TRUST_ANCHOR_ARN",
		"ROLESENV_PROFILE_ARN", "ROLESENV_ROLE_ARN", "ROLESENV_ENDPOINT", "AWS_ENDPOINT_URL", "AWS_CA_BUNDLE",
		"AWS_REGION", "AWS_CONFIG_FILE", "AWS_EC2_METADATA_DISABLED"} {
		if first[k] == "" {
			t.Errorf("env.sh does not export %s", k)
		}
	}

	d2, err := startDev(devOptions{dir: dir, self: "/usr/local/bin/rolesenv"})
	if err != nil {
		t.Fatal(err)
	}
	defer d2.srv.Close()
	second := parseEnvSh(t, filepath.Join(dir, "env.sh"))
	ca2, _ := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if string(ca1) != string(ca2) {
		t.Error("the CA changed across a restart")
	}
	for _, k := range []string{"ROLESENV_TRUST_ANCHOR_ARN", "ROLESENV_PROFILE_ARN", "ROLESENV_ROLE_ARN"} {
		if first[k] != second[k] {
			t.Errorf("%s changed across a restart: %s then %s", k, first[k], second[k])
		}
	}
}

// The admin profile of aws-config reads and writes the demo secrets with
// the aws CLI, through the emulator's TLS with AWS_CA_BUNDLE.
func TestDevAdminProfileWithAWSCLI(t *testing.T) {
	testenv.IsolateAWS(t)
	aws := testenv.RequireTool(t, "aws")
	dir := t.TempDir()
	d, err := startDev(devOptions{dir: dir, self: rolesenvBin(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer d.srv.Close()
	vars := parseEnvSh(t, filepath.Join(dir, "env.sh"))
	var extra []string
	for k, v := range vars {
		if strings.HasPrefix(k, "AWS_") {
			extra = append(extra, k+"="+v)
		}
	}
	env := testenv.SafeEnv(t, extra...)
	awsCLI := func(args ...string) string {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, aws, append([]string{"--profile", "admin", "--output", "text"}, args...)...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("aws %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if got := awsCLI("secretsmanager", "get-secret-value", "--secret-id", "demo/api-key", "--query", "SecretString"); got != "demo-api-key-1" {
		t.Errorf("demo/api-key = %q, want demo-api-key-1", got)
	}
	awsCLI("secretsmanager", "put-secret-value", "--secret-id", "demo/api-key", "--secret-string", "demo-api-key-2")
	if got := awsCLI("secretsmanager", "get-secret-value", "--secret-id", "demo/api-key", "--query", "SecretString"); got != "demo-api-key-2" {
		t.Errorf("after put-secret-value demo/api-key = %q, want demo-api-key-2", got)
	}
	if got := awsCLI("ssm", "get-parameter", "--name", "/demo/token", "--with-decryption", "--query", "Parameter.Value"); got != "demo-token-1" {
		t.Errorf("/demo/token = %q", got)
	}
}
