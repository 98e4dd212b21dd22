package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rolesenv/rolesenv/internal/exitcode"
)

// The cache file holds credentials and is rewritten in place: rolesenv
// writes only to a regular file of its own, with one link, that holds its
// cache (or nothing, or a cache damaged by a crash). Anything else is
// refused and left as it was: a --cache-file that names another file, or
// a link someone planted where the cache will be, must never turn into
// credentials written over that file.
func TestCredentialProcessCacheRefusesOtherFiles(t *testing.T) {
	e := startRAEmulator(t)
	const precious = "[default]\naws_access_key_id = AKIAPRECIOUS\n"
	target := filepath.Join(e.dir, "precious")
	write := func(p, content string) {
		t.Helper()
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cacheArgs := func(p string) []string {
		return append([]string{"credential-process"}, e.args(t, "--cache-file", p)...)
	}
	for _, tc := range []struct {
		name  string
		setup func(cache string)
		want  string
	}{
		{"symbolic link", func(cache string) {
			if err := os.Symlink(target, cache); err != nil {
				t.Fatal(err)
			}
		}, "symbolic link"},
		{"dangling symbolic link", func(cache string) {
			os.Remove(target)
			if err := os.Symlink(target, cache); err != nil {
				t.Fatal(err)
			}
		}, "symbolic link"},
		{"hard link", func(cache string) {
			if err := os.Link(target, cache); err != nil {
				t.Fatal(err)
			}
		}, "hard link"},
		{"another file", func(cache string) { write(cache, precious) }, "not rolesenv's cache"},
		{"another JSON file", func(cache string) { write(cache, `{"auths":{}}`) }, "not rolesenv's cache"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			write(target, precious)
			cache := filepath.Join(t.TempDir(), "cache.json")
			tc.setup(cache)
			before, _ := os.ReadFile(cache)
			code, stdout, stderr := runCLI(t, cacheArgs(cache)...)
			if code != exitcode.Config || !strings.Contains(stderr, tc.want) || stdout != "" {
				t.Errorf("exit %d, stdout %q, stderr:\n%s", code, stdout, stderr)
			}
			if tc.name == "dangling symbolic link" {
				if _, err := os.Lstat(target); err == nil {
					t.Errorf("the link's target was created")
				}
				return
			}
			if got, _ := os.ReadFile(target); string(got) != precious {
				t.Errorf("the file was changed: %q", got)
			}
			if after, _ := os.ReadFile(cache); string(after) != string(before) {
				t.Errorf("the cache path was changed: %q", after)
			}
		})
	}
	if n := e.Calls(opCreateSession); n != 0 {
		t.Errorf("%d CreateSession calls for refused cache files", n)
	}

	// A cache cut short by a crash is started anew.
	cache := filepath.Join(t.TempDir(), "cache.json")
	write(cache, `{"version":1,"entries":{"0123`)
	code, stdout, stderr := runCLI(t, cacheArgs(cache)...)
	if code != 0 || !strings.Contains(stderr, "starting it anew") || !strings.Contains(stdout, "AccessKeyId") {
		t.Fatalf("damaged cache: exit %d: %s", code, stderr)
	}
}
