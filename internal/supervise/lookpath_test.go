package supervise

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLookPath(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	other := filepath.Join(dir, "other")
	for _, d := range []string{bin, other, filepath.Join(bin, "adir")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(path string, mode os.FileMode) {
		if err := os.WriteFile(path, []byte("#!/bin/sh\n"), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(bin, "app"), 0o755)
	write(filepath.Join(bin, "plain"), 0o644)
	write(filepath.Join(bin, "only-plain"), 0o644)
	write(filepath.Join(other, "plain"), 0o755)
	write(filepath.Join(other, "elsewhere"), 0o755)
	t.Setenv("PATH", other) // rolesenv's own
	childPATH := []string{"HOME=/", "PATH=relative::" + bin + ":" + other}

	tests := []struct {
		name    string
		command string
		env     []string
		path    string // found
		code    int    // else the StartError's exit code
		err     string // and its Err
	}{
		{"on the command's PATH", "app", childPATH, filepath.Join(bin, "app"), 0, ""},
		{"an unexecutable file does not hide a later one", "plain", childPATH, filepath.Join(other, "plain"), 0, ""},
		{"rolesenv's PATH when the command has none", "elsewhere", []string{"HOME=/"}, filepath.Join(other, "elsewhere"), 0, ""},
		{"rolesenv's PATH without an environment", "elsewhere", nil, filepath.Join(other, "elsewhere"), 0, ""},
		{"the command's PATH wins over rolesenv's", "elsewhere", []string{"PATH=" + bin}, "", 127, "not found"},
		{"an empty PATH is the command's", "elsewhere", []string{"PATH="}, "", 127, "not found"},
		{"the last PATH wins", "app", []string{"PATH=" + other, "PATH=" + bin}, filepath.Join(bin, "app"), 0, ""},
		{"not found", "nothing-here", childPATH, "", 127, "not found"},
		{"relative PATH entries are skipped", "app", []string{"PATH=.:bin:" + other}, "", 127, "not found"},
		{"a path", filepath.Join(bin, "app"), nil, filepath.Join(bin, "app"), 0, ""},
		{"a relative path", "./app", nil, "", 127, "not found"},
		{"a path that is not executable", filepath.Join(bin, "plain"), nil, "", 126, "permission denied"},
		{"a directory", filepath.Join(bin, "adir"), nil, "", 126, "is a directory"},
		{"a path that does not exist", filepath.Join(bin, "gone"), nil, "", 127, "not found"},
		{"a path through a file", filepath.Join(bin, "app", "x"), nil, "", 126, "not a directory"},
		{"only unexecutable matches", "adir", childPATH, "", 126, filepath.Join(bin, "adir") + ": is a directory"},
		// Not found in the first entry, not executable in the second: 126,
		// as a shell says.
		{"a miss before a file that cannot run", "only-plain", []string{"PATH=/nonexistent:" + bin}, "", 126, filepath.Join(bin, "only-plain") + ": permission denied"},
	}
	for _, tt := range tests {
		got, err := LookPath(tt.command, tt.env)
		if tt.code == 0 {
			if err != nil || got != tt.path {
				t.Errorf("%s: LookPath(%q) = %q, %v; want %q", tt.name, tt.command, got, err, tt.path)
			}
			continue
		}
		var se *StartError
		if !errors.As(err, &se) {
			t.Errorf("%s: LookPath(%q) = %q, %v; want a *StartError", tt.name, tt.command, got, err)
			continue
		}
		if got != "" || se.Command != tt.command || se.ExitCode() != tt.code || se.Err.Error() != tt.err {
			t.Errorf("%s: LookPath(%q) = %q, exit %d %q; want exit %d %q", tt.name, tt.command, got, se.ExitCode(), se.Err, tt.code, tt.err)
		}
		if tt.code == 126 && !strings.HasPrefix(se.Error(), tt.command+": cannot execute: ") {
			t.Errorf("%s: %q", tt.name, se.Error())
		}
	}
}
