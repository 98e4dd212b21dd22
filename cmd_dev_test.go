package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io/fs"
	"log/slog"
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

// TestDevDirChecks: DIR is refused where another user could replace
// env.sh or the keys (a directory on the way writable by every user
// without the sticky bit, DIR writable by others, DIR or a link on the
// way owned by another user), accepted with a warning under a directory
// writable by its group, and accepted quietly in a sticky directory such
// as /tmp.
func TestDevDirChecks(t *testing.T) {
	const nobody = 65534
	asRoot := func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("needs root to give a file to another user")
		}
	}
	mkdir := func(t *testing.T, p string, mode os.FileMode) {
		t.Helper()
		if err := os.Mkdir(p, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // past the umask
			t.Fatal(err)
		}
	}
	tests := []struct {
		name   string
		setup  func(t *testing.T, base string) string // returns DIR
		refuse string
		warn   string
	}{
		{"new, in a private directory", func(t *testing.T, base string) string {
			return filepath.Join(base, "a", "dev")
		}, "", ""},
		{"under a world-writable directory", func(t *testing.T, base string) string {
			mkdir(t, filepath.Join(base, "ww"), 0o777)
			return filepath.Join(base, "ww", "x", "dev")
		}, "ww is writable by every user without the sticky bit", ""},
		{"in a sticky world-writable directory", func(t *testing.T, base string) string {
			mkdir(t, filepath.Join(base, "tmp"), os.ModeSticky|0o777)
			return filepath.Join(base, "tmp", "dev")
		}, "", ""},
		{"DIR world-writable with the sticky bit", func(t *testing.T, base string) string {
			mkdir(t, filepath.Join(base, "dev"), os.ModeSticky|0o777)
			return filepath.Join(base, "dev")
		}, "dev is writable by every user, who could replace env.sh", ""},
		{"under a group-writable directory", func(t *testing.T, base string) string {
			mkdir(t, filepath.Join(base, "grp"), 0o770)
			return filepath.Join(base, "grp", "dev")
		}, "", "grp is writable by its group"},
		{"DIR owned by another user", func(t *testing.T, base string) string {
			asRoot(t)
			mkdir(t, filepath.Join(base, "dev"), 0o700)
			if err := os.Chown(filepath.Join(base, "dev"), nobody, nobody); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(base, "dev")
		}, "dev belongs to another user (uid 65534)", ""},
		{"under a directory owned by another user", func(t *testing.T, base string) string {
			asRoot(t)
			mkdir(t, filepath.Join(base, "theirs"), 0o755)
			if err := os.Chown(filepath.Join(base, "theirs"), nobody, nobody); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(base, "theirs", "dev")
		}, "theirs belongs to another user (uid 65534)", ""},
		{"a link owned by another user", func(t *testing.T, base string) string {
			asRoot(t)
			mkdir(t, filepath.Join(base, "mine"), 0o700)
			if err := os.Symlink(filepath.Join(base, "mine"), filepath.Join(base, "link")); err != nil {
				t.Fatal(err)
			}
			if err := os.Lchown(filepath.Join(base, "link"), nobody, nobody); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(base, "link", "dev")
		}, "link is a symbolic link owned by another user (uid 65534)", ""},
		{"a link to a world-writable directory", func(t *testing.T, base string) string {
			mkdir(t, filepath.Join(base, "ww"), 0o777)
			if err := os.Symlink(filepath.Join(base, "ww"), filepath.Join(base, "link")); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(base, "link", "dev")
		}, "ww is writable by every user without the sticky bit", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := tc.setup(t, t.TempDir())
			warnings, err := checkDevDir(dir)
			switch {
			case tc.refuse == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.refuse != "" && (err == nil || !strings.Contains(err.Error(), tc.refuse)):
				t.Fatalf("got %v, want a refusal with %q", err, tc.refuse)
			}
			got := strings.Join(warnings, "\n")
			if (tc.warn == "") != (got == "") || !strings.Contains(got, tc.warn) {
				t.Errorf("warnings %q, want %q", got, tc.warn)
			}
		})
	}
}

// TestDevDirRefusedOrMade: startDev writes nothing where DIR is refused,
// and makes a new DIR with mode 0700 whatever the umask, warning in its
// log about a group-writable directory above it.
func TestDevDirRefusedOrMade(t *testing.T) {
	testenv.IsolateAWS(t)
	base := t.TempDir()
	ww := filepath.Join(base, "ww")
	if err := os.Mkdir(ww, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(ww, 0o777); err != nil {
		t.Fatal(err)
	}
	_, err := startDev(devOptions{dir: filepath.Join(ww, "dev"), self: "/usr/local/bin/rolesenv"})
	if err == nil || !strings.Contains(err.Error(), "writable by every user") {
		t.Fatalf("startDev under a world-writable directory: %v, want a refusal", err)
	}
	if _, err := os.Stat(filepath.Join(ww, "dev")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the refused DIR was created: %v", err)
	}

	grp := filepath.Join(base, "grp")
	if err := os.Mkdir(grp, 0o770); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(grp, 0o770); err != nil {
		t.Fatal(err)
	}
	var logBuf bytes.Buffer
	dir := filepath.Join(grp, "dev")
	d, err := startDev(devOptions{dir: dir, self: "/usr/local/bin/rolesenv", log: slog.New(slog.NewTextHandler(&logBuf, nil))})
	if err != nil {
		t.Fatal(err)
	}
	d.srv.Close()
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("DIR: %v, %v; want mode 0700", st.Mode().Perm(), err)
	}
	if !strings.Contains(logBuf.String(), "level=WARN") || !strings.Contains(logBuf.String(), grp+" is writable by its group") {
		t.Errorf("no warning about %s in the log:\n%s", grp, logBuf.String())
	}
}
