package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rolesenv/rolesenv/internal/awsdev"
)

// TestRenderFiles: render shows a delivered variable as its path, and
// --files lists the files run would write (name, mode, size, path) with
// their contents only under --reveal.
func TestRenderFiles(t *testing.T) {
	s := renderEnv(t, awsdev.AllowAll)
	mustDo[string](t)(s.CreateSecret("f/pw", sentinel+"-pw"))
	writeTestFile(t, "app.env", "PW_FILE=file:sm://f/pw\nLIT=file:///etc/app\n", 0o600)
	writeTestFile(t, "conf.tmpl", "password={{ sm://f/pw | base64 }}\n", 0o600)
	dir := filepath.Join(t.TempDir(), "s")
	args := []string{"render", "--env-file", "app.env", "--clean-env", "--template", "conf.tmpl:app.conf:0440", "--secrets-dir", dir}

	code, stdout, stderr := runIn("", args...)
	want := "CREDENTIALS_DIRECTORY=" + dir + "\nLIT=file:///etc/app\nPW_FILE=" + dir + "/PW_FILE\n"
	if code != 0 || stdout != want {
		t.Fatalf("render: exit %d\n%s\nwant\n%s\nstderr: %s", code, stdout, want, stderr)
	}
	code, stdout, stderr = runIn("", append(args, "--files")...)
	want = "PW_FILE mode=0400 size=7 path=" + dir + "/PW_FILE variable=PW_FILE\napp.conf mode=0440 size=22 path=" + dir + "/app.conf\n"
	if code != 0 || stdout != want {
		t.Fatalf("render --files: exit %d\n%s\nwant\n%s\nstderr: %s", code, stdout, want, stderr)
	}
	if strings.Contains(stdout+stderr, sentinel) {
		t.Fatal("a secret value leaked without --reveal")
	}
	code, stdout, _ = runIn("", append(args, "--files", "--reveal", "--format", "json")...)
	var got []map[string]any
	if err := json.Unmarshal([]byte(stdout), &got); code != 0 || err != nil || len(got) != 2 || got[0]["contents"] != sentinel+"-pw" {
		t.Fatalf("render --files --reveal --format json: exit %d, %v: %s", code, err, stdout)
	}
	if _, err := os.Lstat(dir); !os.IsNotExist(err) {
		t.Error("render created the secrets directory")
	}

	// The twins: a ,-separated list of templates, and the directory.
	t.Setenv("ROLESENV_TEMPLATE", "conf.tmpl:a.conf,conf.tmpl:b.conf:0600")
	t.Setenv("ROLESENV_SECRETS_DIR", dir)
	code, stdout, _ = runIn("", "render", "--files")
	want = "a.conf mode=0400 size=22 path=" + dir + "/a.conf\nb.conf mode=0600 size=22 path=" + dir + "/b.conf\n"
	if code != 0 || stdout != want {
		t.Errorf("render --files with ROLESENV_TEMPLATE: exit %d\n%s\nwant\n%s", code, stdout, want)
	}
}

// TestCheckFiles: check has a row for each template and one for the
// secrets directory, and fails on a broken template or an unusable
// directory.
func TestCheckFiles(t *testing.T) {
	s := renderEnv(t, awsdev.AllowAll)
	mustDo[string](t)(s.CreateSecret("f/pw", sentinel+"-pw"))
	writeTestFile(t, "app.env", "PW_FILE=file:sm://f/pw\n", 0o600)
	writeTestFile(t, "good.tmpl", "a={{ sm://f/pw }}\n", 0o600)
	writeTestFile(t, "bad.tmpl", "a=1\nb={{ sm://f/pw | nofilter }}\nc={{ sm://f/pw\n", 0o600)
	dir := t.TempDir()
	code, stdout, stderr := runIn("", "check", "--env-file", "app.env", "--template", "good.tmpl:good", "--secrets-dir", dir)
	if code != 0 || !strings.Contains(stdout, "template good.tmpl") || !strings.Contains(stdout, "secrets directory") {
		t.Fatalf("check: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = runIn("", "check", "--env-file", "app.env", "--template", "bad.tmpl:bad", "--secrets-dir", dir, "--format", "json")
	for _, want := range []string{`"check": "template bad.tmpl"`, `unterminated {{`, `unknown filter \"nofilter\"`, `others can write to`} {
		if !strings.Contains(stdout, want) {
			t.Errorf("check output lacks %q:\n%s", want, stdout)
		}
	}
	if code != 1 || strings.Contains(stdout+stderr, sentinel) {
		t.Errorf("check: exit %d (want 1), or a value leaked:\n%s\n%s", code, stdout, stderr)
	}
	code, stdout, _ = runIn("", "check", "--template", "nocolon")
	if code != 1 || !strings.Contains(stdout, "want SRC:DEST") {
		t.Errorf("a malformed --template: exit %d, %s", code, stdout)
	}
}

// TestTemplateSource: a --template SRC that another account could make
// point elsewhere is refused (exit 78), and nothing of what it would have
// read is printed: a symbolic link (to a file only root reads), a file
// writable by its group, and, as root, a file in a directory of another
// account (say the --user one) or below one, or a file of that account.
func TestTemplateSource(t *testing.T) {
	renderEnv(t, awsdev.AllowAll)
	writeTestFile(t, "root-only", sentinel+"-shadow\n", 0o600)
	if err := os.Symlink("root-only", "link.tmpl"); err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, "group.tmpl", "a=1\n", 0o660)
	cases := map[string]string{"link.tmpl": "symbolic link", "group.tmpl": "writable by others"}
	if os.Geteuid() == 0 {
		if err := os.Mkdir("app", 0o755); err != nil {
			t.Fatal(err)
		}
		writeTestFile(t, "app/in-app-dir.tmpl", "a=1\n", 0o644)
		if err := os.Mkdir("app/root", 0o755); err != nil {
			t.Fatal(err)
		}
		writeTestFile(t, "app/root/below.tmpl", "a=1\n", 0o644)
		writeTestFile(t, "theirs.tmpl", "a=1\n", 0o644)
		for _, p := range []string{"app", "theirs.tmpl"} {
			if err := os.Chown(p, 65534, 65534); err != nil {
				t.Fatal(err)
			}
		}
		cases["app/in-app-dir.tmpl"] = "/app is owned by uid 65534"
		// The app account could swap its root-owned subdirectory.
		cases["app/root/below.tmpl"] = "/app is owned by uid 65534"
		cases["theirs.tmpl"] = "owned by uid 65534"
	}
	for src, want := range cases {
		code, stdout, stderr := runIn("", "render", "--clean-env", "--template", src+":out", "--files", "--reveal")
		if code != 78 || !strings.Contains(stderr, want) || !strings.Contains(stderr, "hint:") {
			t.Errorf("%s: exit %d (want 78), stderr lacks %q:\n%s", src, code, want, stderr)
		}
		if strings.Contains(stdout+stderr, sentinel) {
			t.Errorf("%s: the file behind the template was read:\n%s", src, stdout)
		}
	}
	writeTestFile(t, "ok.tmpl", "a=1\n", 0o644)
	if code, stdout, stderr := runIn("", "render", "--clean-env", "--template", "ok.tmpl:out", "--files", "--reveal"); code != 0 || !strings.Contains(stdout, "a=1") {
		t.Errorf("a template of root's in a directory of root's: exit %d\n%s\n%s", code, stdout, stderr)
	}
}

// TestCredentialsDirectory: with templates, the command's
// CREDENTIALS_DIRECTORY is the secrets directory, decided on the
// command's own environment: an inherited value that --clean-env drops
// does not matter, one the command would get is an error (exit 78), as is
// an env file that sets another; ${CREDENTIALS_DIRECTORY} in an env file
// is the directory.
func TestCredentialsDirectory(t *testing.T) {
	renderEnv(t, awsdev.AllowAll)
	writeTestFile(t, "conf.tmpl", "a=1\n", 0o600)
	writeTestFile(t, "app.env", "CONF=${CREDENTIALS_DIRECTORY}/app.conf\n", 0o600)
	writeTestFile(t, "other.env", "CREDENTIALS_DIRECTORY=/elsewhere\n", 0o600)
	dir := filepath.Join(t.TempDir(), "s")
	base := []string{"render", "--template", "conf.tmpl:app.conf", "--secrets-dir", dir}

	code, stdout, stderr := runIn("", append(base, "--clean-env", "--env-file", "app.env")...)
	want := "CONF=" + dir + "/app.conf\nCREDENTIALS_DIRECTORY=" + dir + "\n"
	if code != 0 || stdout != want {
		t.Errorf("--clean-env: exit %d\n%s\nwant\n%s\nstderr: %s", code, stdout, want, stderr)
	}
	code, _, stderr = runIn("", append(base, "--clean-env", "--env-file", "app.env", "--env-file", "other.env")...)
	if code != 78 || !strings.Contains(stderr, "an env file sets CREDENTIALS_DIRECTORY") {
		t.Errorf("an env file's CREDENTIALS_DIRECTORY: exit %d (want 78)\n%s", code, stderr)
	}

	t.Setenv("CREDENTIALS_DIRECTORY", "/run/credentials/app.service")
	code, stdout, stderr = runIn("", append(base, "--clean-env", "--env-file", "app.env")...)
	if code != 0 || stdout != want {
		t.Errorf("--clean-env with an inherited value: exit %d\n%s\nwant\n%s\nstderr: %s", code, stdout, want, stderr)
	}
	code, _, stderr = runIn("", append(base, "--env-file", "app.env")...)
	if code != 78 || !strings.Contains(stderr, "would inherit CREDENTIALS_DIRECTORY=/run/credentials/app.service") || !strings.Contains(stderr, "hint:") {
		t.Errorf("an inherited value the command would get: exit %d (want 78)\n%s", code, stderr)
	}
	code, stdout, stderr = runIn("", "render", "--template", "conf.tmpl:app.conf", "--secrets-dir", "/run/credentials/app.service", "--env-file", "app.env")
	if code != 0 || !strings.Contains(stdout, "CONF=/run/credentials/app.service/app.conf\n") {
		t.Errorf("--secrets-dir the inherited directory: exit %d\n%s\n%s", code, stdout, stderr)
	}
}
