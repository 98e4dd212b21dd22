package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rolesenv/rolesenv/internal/exitcode"
)

// The cache's own rules (which files are refused, which are started anew)
// are tested in internal/credcache; these tests check what the command
// makes of them: exit codes, messages, and no call to AWS for a refusal.

// TestCredentialProcessCacheRefusesOtherFiles: a --cache-file that names a
// user's file is refused with exit 78 and left as it was, byte for byte
// and with its modification time, before any CreateSession. The JSON file
// that starts with {"version": is the one that used to be overwritten.
func TestCredentialProcessCacheRefusesOtherFiles(t *testing.T) {
	e := startRAEmulator(t)
	for _, tc := range []struct {
		name, content, want, hint string
	}{
		{"JSON with a version", `{"version": "2.1", "name": "my app settings"}`, "is not rolesenv's cache; it is left as it is", "a file of its own"},
		{"AWS credentials", "[default]\naws_access_key_id = AKIAPRECIOUS\n", "is not rolesenv's cache", "a file of its own"},
		{"symbolic link", "", "is a symbolic link", "name the cache file itself"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cache := filepath.Join(dir, "cache.json")
			file := cache
			if tc.name == "symbolic link" {
				file = filepath.Join(dir, "precious")
				if err := os.Symlink(file, cache); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(file, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			past := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
			if err := os.Chtimes(file, past, past); err != nil {
				t.Fatal(err)
			}
			e.ResetCalls()
			code, stdout, stderr := runCLI(t, append([]string{"credential-process"}, e.args(t, "--cache-file", cache)...)...)
			if code != exitcode.Config || stdout != "" || !strings.HasPrefix(stderr, "rolesenv: error: cache file "+cache+" ") ||
				!strings.Contains(stderr, tc.want) || !strings.Contains(stderr, "rolesenv: hint: ") || !strings.Contains(stderr, tc.hint) {
				t.Errorf("exit %d, stdout %q, stderr:\n%s", code, stdout, stderr)
			}
			after, _ := os.ReadFile(file)
			st, _ := os.Stat(file)
			if string(after) != tc.content || !st.ModTime().Equal(past) {
				t.Errorf("the file was changed: %q, mtime %v", after, st.ModTime())
			}
			if n := e.Calls(opCreateSession); n != 0 {
				t.Errorf("%d CreateSession calls for a refused cache file", n)
			}
		})
	}
}

// A cache of rolesenv's own that a crash cut short is started anew, with a
// warning; one written by the previous format is still used.
func TestCredentialProcessCacheOwnFiles(t *testing.T) {
	e := startRAEmulator(t)
	cache := filepath.Join(t.TempDir(), "cache.json")
	args := append([]string{"credential-process"}, e.args(t, "--cache-file", cache)...)
	code, first, stderr := runCLI(t, args...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	data, _ := os.ReadFile(cache)

	// The first format: {"version":1,"entries":{KEY:{"Version":1,...}}}.
	var v2 struct{ Entries map[string]map[string]any }
	if err := json.Unmarshal(data, &v2); err != nil || len(v2.Entries) != 1 {
		t.Fatalf("cache %d bytes: %v", len(data), err)
	}
	for _, ent := range v2.Entries {
		ent["Version"] = 1
	}
	v1, _ := json.Marshal(map[string]any{"version": 1, "entries": v2.Entries})
	if err := os.WriteFile(cache, v1, 0o600); err != nil {
		t.Fatal(err)
	}
	e.ResetCalls()
	code, stdout, stderr := runCLI(t, args...)
	if code != 0 || stdout != first || stderr != "" || e.Calls(opCreateSession) != 0 {
		t.Errorf("a cache of the first format: exit %d, same credentials %v, %d CreateSession, stderr %q",
			code, stdout == first, e.Calls(opCreateSession), stderr)
	}

	if err := os.WriteFile(cache, data[:len(data)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = runCLI(t, args...)
	if code != 0 || !strings.Contains(stderr, "cache file is damaged; starting it anew") || !strings.Contains(stdout, "AccessKeyId") {
		t.Fatalf("damaged cache: exit %d: %s", code, stderr)
	}
	if after, _ := os.ReadFile(cache); !strings.HasPrefix(string(after), `{"rolesenv":"credential-cache","version":2,`) {
		t.Errorf("the damaged cache was rewritten as %.50q", after)
	}
}

// While another process holds the cache file's lock, credential-process
// says so (at its default level, warn) and gives up at --timeout with exit
// 69 and an error that says what it waited for.
func TestCredentialProcessCacheLockTimeout(t *testing.T) {
	e := startRAEmulator(t)
	cache := filepath.Join(t.TempDir(), "cache.json")
	f, err := os.OpenFile(cache, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCLI(t, append([]string{"credential-process"}, e.args(t, "--cache-file", cache, "--timeout", "3s")...)...)
	holder := fmt.Sprintf("pid %d", os.Getpid())
	if code != exitcode.Unavailable || stdout != "" {
		t.Errorf("exit %d, want %d; stdout %q", code, exitcode.Unavailable, stdout)
	}
	if !strings.Contains(stderr, `level=WARN msg="waiting for the cache file's lock"`) || !strings.Contains(stderr, holder) {
		t.Errorf("no warning naming the holder while waiting:\n%s", stderr)
	}
	if !strings.Contains(stderr, "rolesenv: error: cache file "+cache+": timed out waiting for the cache lock held by another process ("+holder) ||
		!strings.Contains(stderr, "rolesenv: hint: ") || !strings.Contains(stderr, "--timeout (3s)") {
		t.Errorf("stderr:\n%s", stderr)
	}
	if n := e.Calls(opCreateSession); n != 0 {
		t.Errorf("%d CreateSession calls without the lock", n)
	}
}

// A Roles Anywhere that never answers ends at --timeout (ROLESENV_TIMEOUT
// here) with exit 69, and the cache file is left as it was.
func TestCredentialProcessTimeoutRolesAnywhere(t *testing.T) {
	e := startRAEmulator(t)
	e.SetOperationLatency(opCreateSession, time.Hour)
	t.Setenv("ROLESENV_TIMEOUT", "1s")
	cache := filepath.Join(t.TempDir(), "cache.json")
	for _, extra := range [][]string{nil, {"--cache-file", cache}} {
		code, stdout, stderr := runCLI(t, append([]string{"credential-process"}, e.args(t, extra...)...)...)
		if code != exitcode.Unavailable || stdout != "" ||
			!strings.HasPrefix(stderr, "rolesenv: error: timed out after 1s waiting for Roles Anywhere: ") ||
			!strings.Contains(stderr, "rolesenv: hint: raise --timeout") {
			t.Errorf("%q: exit %d, stdout %q, stderr:\n%s", extra, code, stdout, stderr)
		}
	}
	if st, err := os.Stat(cache); err != nil || st.Size() != 0 {
		t.Errorf("cache file after a failure: %v", err)
	}
	if code, _, stderr := runCLI(t, append([]string{"credential-process"}, e.args(t, "--timeout", "0s")...)...); code != exitcode.Usage {
		t.Errorf("--timeout 0s: exit %d: %s", code, stderr)
	}
}

// A cache file another user created first in a shared directory (as in
// /tmp) is refused with the advice to keep it in a directory of one's own.
func TestCredentialProcessCacheOfAnotherUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to make a file of another user")
	}
	e := startRAEmulator(t)
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o1777); err != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(dir, "cache.json")
	if err := os.WriteFile(cache, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(cache, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCLI(t, append([]string{"credential-process"}, e.args(t, "--cache-file", cache)...)...)
	if code != exitcode.Config || !strings.Contains(stderr, "belongs to another user (uid 65534)") ||
		!strings.Contains(stderr, "hint: another user created it first") || !strings.Contains(stderr, "$XDG_RUNTIME_DIR") {
		t.Errorf("exit %d, stderr:\n%s", code, stderr)
	}
}

// TestCredentialProcessCacheKeyOnMiss: with --cache-file the key file is
// read on a miss only. A hit answers with the key file gone; a miss with a
// key that does not fit, or a wrong passphrase, fails as without a cache
// (exit 78, the flag, the hint) and before any CreateSession.
func TestCredentialProcessCacheKeyOnMiss(t *testing.T) {
	e := startRAEmulator(t)
	cache := filepath.Join(t.TempDir(), "cache.json")
	args := append([]string{"credential-process"}, e.args(t, "--cache-file", cache)...)
	code, first, stderr := runCLI(t, args...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if err := os.Remove(filepath.Join(e.dir, "p256.key")); err != nil {
		t.Fatal(err)
	}
	e.ResetCalls()
	code, stdout, stderr := runCLI(t, args...)
	if code != 0 || stdout != first || e.Calls(opCreateSession) != 0 {
		t.Fatalf("a hit without the key file: exit %d, same credentials %v, %d CreateSession: %s",
			code, stdout == first, e.Calls(opCreateSession), stderr)
	}

	t.Setenv(passphraseEnv, "not the passphrase")
	for _, tc := range []struct {
		name, cert, key, want, hint string
	}{
		{"mismatched key", "p256.pem", "p384.key", "rolesenv: error: --private-key: ", "does not match the certificate"},
		{"wrong passphrase", "rsa2048.pem", "rsa2048.pbkdf2-aes256.pem", "rolesenv: error: --private-key: ", "hint: the passphrase comes from " + passphraseEnv},
	} {
		miss := filepath.Join(t.TempDir(), "cache.json")
		args := append([]string{"credential-process"}, e.args(t, "--certificate", e.fixture(t, tc.cert),
			"--private-key", e.fixture(t, tc.key), "--cache-file", miss)...)
		code, stdout, stderr := runCLI(t, args...)
		if code != exitcode.Config || stdout != "" || !strings.HasPrefix(stderr, tc.want) || !strings.Contains(stderr, tc.hint) {
			t.Errorf("%s on a miss: exit %d, stdout %q, stderr %q; want exit %d, %q and %q",
				tc.name, code, stdout, stderr, exitcode.Config, tc.want, tc.hint)
		}
		if n := e.Calls(opCreateSession); n != 0 {
			t.Errorf("%s on a miss: %d CreateSession calls", tc.name, n)
		}
	}
}
