// Package testenv holds what rolesenv's tests share: an AWS environment
// that cannot reach the real AWS, tools that must be present on CI,
// moto_server as an independent AWS emulator, and Toxiproxy in the test
// process for faults of the network in front of it.
//
// Only tests import it.
package testenv

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// RequireToolsVar, when set to 1 (as .ci/run does), turns a missing tool
// from a skip into a failure, so CI never skips silently.
const RequireToolsVar = "ROLESENV_TEST_REQUIRE_TOOLS"

// slowTools start a process per call or a server of their own: the aws
// CLI (a Python interpreter per call) and moto_server. Tests that need
// them are skipped under -short, which is for development; make test and
// CI never pass -short.
var slowTools = map[string]bool{"aws": true, "moto_server": true}

// RequireTool skips the test when name is not on the PATH, or fails it when
// RequireToolsVar is 1. Under -short it also skips the tests that run the
// aws CLI or moto_server (after the check for a missing tool, so a
// machine that lacks one still fails with RequireToolsVar=1). It returns
// the tool's path.
func RequireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv(RequireToolsVar) == "1" {
			t.Fatalf("%s is required (%s=1) but not on the PATH", name, RequireToolsVar)
		}
		t.Skipf("%s is not on the PATH; install it to run this test (CI requires it)", name)
	}
	if Short(name) {
		t.Skipf("-short: skipping a test that runs %s (make test runs it)", name)
	}
	return p
}

// Short reports whether the tests that need the tool name are skipped
// because of -short.
func Short(name string) bool { return testing.Short() && slowTools[name] }

// Lookup is RequireTool for callers without a testing.TB (testscript
// conditions): the tool's path, or "" when a test should go without it
// (not on the PATH, or skipped under -short), or an error when it is
// missing and RequireToolsVar is 1.
func Lookup(name string) (string, error) {
	p, err := exec.LookPath(name)
	switch {
	case err != nil && os.Getenv(RequireToolsVar) == "1":
		return "", fmt.Errorf("%s is required (%s=1) but not on the PATH", name, RequireToolsVar)
	case err != nil, Short(name):
		return "", nil
	}
	return p, nil
}

// IsolateAWS points every AWS setting of this process at nothing: no
// instance metadata, empty temporary config and credentials files, no
// inherited keys, profile or endpoints. Tests then set what they need.
// It uses t.Setenv, so the test must not be parallel.
func IsolateAWS(t testing.TB) {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config")
	creds := filepath.Join(dir, "credentials")
	for _, f := range []string{cfg, creds} {
		if err := os.WriteFile(f, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if (strings.HasPrefix(k, "AWS_") || strings.HasPrefix(k, "ROLESENV_")) && k != RequireToolsVar {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", cfg)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", creds)
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_DEFAULT_REGION", "us-east-1")
	t.Setenv("HTTPS_PROXY", "")
	t.Setenv("HTTP_PROXY", "")
	t.Setenv("NO_PROXY", "127.0.0.1,localhost")
}

// SafeEnv returns a child-process environment with the same isolation as
// IsolateAWS, for running the aws CLI or rolesenv itself: base plus these
// settings, every inherited AWS_* and ROLESENV_* variable dropped.
func SafeEnv(t testing.TB, extra ...string) []string {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config")
	creds := filepath.Join(dir, "credentials")
	for _, f := range []string{cfg, creds} {
		if err := os.WriteFile(f, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "AWS_") || (strings.HasPrefix(k, "ROLESENV_") && k != RequireToolsVar) ||
			k == "HTTPS_PROXY" || k == "HTTP_PROXY" || k == "https_proxy" || k == "http_proxy" {
			continue
		}
		env = append(env, kv)
	}
	env = append(env,
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE="+cfg,
		"AWS_SHARED_CREDENTIALS_FILE="+creds,
		"AWS_REGION=us-east-1",
		"AWS_DEFAULT_REGION=us-east-1", // the aws CLI v1 reads only this one
		"AWS_PAGER=",
		"NO_PROXY=127.0.0.1,localhost",
	)
	return append(env, extra...)
}

// Moto is a running moto_server.
type Moto struct {
	URL string // http://127.0.0.1:PORT
	cmd *exec.Cmd
}

// StartMoto starts moto_server on a free loopback port and waits until it
// says it is listening. extraEnv is added to its environment (for example
// INITIAL_NO_AUTH_ACTION_COUNT=N to enforce IAM after N calls). It is
// stopped when the test ends.
func StartMoto(t testing.TB, extraEnv ...string) *Moto {
	t.Helper()
	bin := RequireTool(t, "moto_server")
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "-H", "127.0.0.1", "-p", fmt.Sprint(port))
	cmd.Env = append(SafeEnv(t), extraEnv...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = cmd.Stderr
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("failed to start moto_server: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
	})
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		var seen []string
		for sc.Scan() {
			line := sc.Text()
			if strings.Contains(line, "Running on http://") {
				ready <- nil
				for sc.Scan() { // keep draining so moto never blocks on a full pipe
				}
				return
			}
			seen = append(seen, line)
		}
		ready <- fmt.Errorf("moto_server exited before listening: %s", strings.Join(seen, " | "))
	}()
	select {
	case err := <-ready:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("moto_server did not start listening within 60s")
	}
	return &Moto{URL: fmt.Sprintf("http://127.0.0.1:%d", port), cmd: cmd}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
