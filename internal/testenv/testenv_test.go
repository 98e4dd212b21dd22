package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// helperVar makes TestHelperRequireTool call RequireTool for the tool it
// names; the tests below run it in a child test binary.
const helperVar = "TESTENV_HELPER_TOOL"

func TestHelperRequireTool(t *testing.T) {
	name := os.Getenv(helperVar)
	if name == "" {
		t.Skip("a helper for TestRequireTool")
	}
	p := RequireTool(t, name)
	t.Logf("found %s", filepath.Base(p))
}

// TestRequireTool: -short skips the tests that run the aws CLI or
// moto_server but not the others, and a missing tool still fails with
// RequireToolsVar=1, -short or not.
func TestRequireTool(t *testing.T) {
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "aws"), []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	if err := os.Symlink(sh, filepath.Join(bin, "sh")); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		tool    string
		short   bool
		require bool
		want    string
	}{
		{"slow tool, -short", "aws", true, false, "-short: skipping a test that runs aws"},
		{"slow tool, -short, required", "aws", true, true, "-short: skipping a test that runs aws"},
		{"slow tool", "aws", false, true, "found aws"},
		{"other tool, -short", "sh", true, true, "found sh"},
		{"missing slow tool, -short, required", "moto_server", true, true, "moto_server is required (ROLESENV_TEST_REQUIRE_TOOLS=1) but not on the PATH"},
		{"missing slow tool, -short", "moto_server", true, false, "moto_server is not on the PATH"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"-test.run=^TestHelperRequireTool$", "-test.v"}
			if tc.short {
				args = append(args, "-test.short")
			}
			cmd := exec.Command(self, args...)
			cmd.Env = []string{"PATH=" + bin, helperVar + "=" + tc.tool}
			if tc.require {
				cmd.Env = append(cmd.Env, RequireToolsVar+"=1")
			}
			out, _ := cmd.CombinedOutput()
			if !strings.Contains(string(out), tc.want) {
				t.Errorf("RequireTool(%q) said:\n%s\nwant %q", tc.tool, out, tc.want)
			}
			// Lookup, in this process (under this run's -short).
			p, err := lookupIn(t, cmd.Env, tc.tool)
			switch {
			case strings.HasPrefix(tc.want, "found") && !Short(tc.tool) && (p == "" || err != nil):
				t.Errorf("Lookup(%q) = %q, %v; want the path", tc.tool, p, err)
			case strings.Contains(tc.want, "is required") && err == nil:
				t.Errorf("Lookup(%q) = %q, nil; want an error", tc.tool, p)
			}
		})
	}
}

// lookupIn runs Lookup with env as the process environment.
func lookupIn(t *testing.T, env []string, name string) (string, error) {
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	if !strings.Contains(strings.Join(env, "\n"), RequireToolsVar+"=") {
		t.Setenv(RequireToolsVar, "")
	}
	return Lookup(name)
}
