package check

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCommand: the row says which PATH was searched, what was found, and
// run's exit code on failure. The lookup itself is supervise.LookPath's
// (tested there).
func TestCommand(t *testing.T) {
	bin, other := t.TempDir(), t.TempDir()
	for path, mode := range map[string]os.FileMode{
		filepath.Join(bin, "app"): 0o755, filepath.Join(bin, "plain"): 0o644, filepath.Join(other, "elsewhere"): 0o755,
	} {
		if err := os.WriteFile(path, []byte("#!/bin/sh\n"), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil { // whatever the umask
			t.Fatal(err)
		}
	}
	childPATH := []string{"HOME=/", "PATH=relative:" + bin}

	tests := []struct {
		name    string
		command string
		env     []string
		own     string
		status  Status
		detail  string
	}{
		{"on the command's PATH", "app", childPATH, other, OK, filepath.Join(bin, "app") + " (on the command's PATH)"},
		{"rolesenv's PATH when the command has none", "elsewhere", []string{"HOME=/"}, other, OK, filepath.Join(other, "elsewhere") + " (on rolesenv's PATH)"},
		{"the command's PATH wins over rolesenv's", "elsewhere", childPATH, other, Fail, "not found on the command's PATH"},
		{"no environment rendered", "app", nil, bin, OK, filepath.Join(bin, "app") + " (on rolesenv's PATH, as the command's environment could not be rendered)"},
		{"a path", filepath.Join(bin, "app"), childPATH, "", OK, "an executable file"},
		{"a path that is not executable", filepath.Join(bin, "plain"), childPATH, "", Fail, "cannot be executed: permission denied"},
		{"a path that does not exist", filepath.Join(bin, "gone"), childPATH, "", Fail, "not found"},
		{"only unexecutable matches", "plain", childPATH, "", Fail, "cannot be executed: " + filepath.Join(bin, "plain") + ": permission denied"},
	}
	for _, tt := range tests {
		rows := Command([]string{tt.command, "--flag"}, tt.env, tt.own)
		r := rows[0]
		if r.Status != tt.status || r.Detail != tt.detail || r.Check != "command "+tt.command {
			t.Errorf("%s: %s %q %q, want %s %q", tt.name, r.Status, r.Check, r.Detail, tt.status, tt.detail)
		}
		wantHint := map[bool]string{true: "exit 127", false: "exit 126"}[strings.HasPrefix(tt.detail, "not found")]
		if r.Status == Fail && !strings.Contains(r.Hint, wantHint) {
			t.Errorf("%s: hint %q does not say %s", tt.name, r.Hint, wantHint)
		}
		if (tt.env != nil) != (len(rows) == 2) {
			t.Errorf("%s: %d rows; the size row comes with an environment", tt.name, len(rows))
		}
	}
}

func TestCommandSize(t *testing.T) {
	rows := Command([]string{"/bin/true"}, []string{"A=1", "B=22"}, "")
	if r := rows[1]; r.Status != OK || r.Detail != "2 variables, 9 bytes" {
		t.Errorf("size row %+v", r)
	}
	huge := []string{"BIG=" + strings.Repeat("x", 4<<20)}
	if r := Command([]string{"/bin/true"}, huge, "")[1]; r.Status != Fail || !strings.Contains(r.Detail, "BIG") || strings.Contains(r.Detail, "xxxx") {
		t.Errorf("size row %+v: want a failure naming BIG, without its value", r)
	}
}
