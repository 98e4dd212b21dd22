package check

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCommand(t *testing.T) {
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
	write(filepath.Join(other, "plain"), 0o755) // later on the PATH: the earlier, unexecutable one does not hide it
	write(filepath.Join(other, "elsewhere"), 0o755)
	childPATH := []string{"HOME=/", "PATH=relative:" + bin + ":" + other}

	tests := []struct {
		name    string
		command string
		env     []string
		own     string
		status  Status
		detail  string
	}{
		{"on the command's PATH", "app", childPATH, "/nonexistent", OK, filepath.Join(bin, "app") + " (on the command's PATH)"},
		{"an unexecutable file earlier on the PATH", "plain", childPATH, "", OK, filepath.Join(other, "plain") + " (on the command's PATH)"},
		{"rolesenv's PATH when the command has none", "elsewhere", []string{"HOME=/"}, other, OK, filepath.Join(other, "elsewhere") + " (on rolesenv's PATH)"},
		{"the command's PATH wins over rolesenv's", "elsewhere", []string{"PATH=" + bin}, other, Fail, "not found on the command's PATH"},
		{"no environment rendered", "app", nil, bin, OK, filepath.Join(bin, "app") + " (on rolesenv's PATH, as the command's environment could not be rendered)"},
		{"not found", "nothing-here", childPATH, "", Fail, "not found on the command's PATH"},
		{"relative PATH entries are skipped", "app", []string{"PATH=bin"}, "", Fail, "not found on the command's PATH"},
		{"a path", filepath.Join(bin, "app"), childPATH, "", OK, "an executable file"},
		{"a path that is not executable", filepath.Join(bin, "plain"), childPATH, "", Fail, "cannot be executed: permission denied"},
		{"a directory", filepath.Join(bin, "adir"), childPATH, "", Fail, "cannot be executed: is a directory"},
		{"a path that does not exist", filepath.Join(bin, "gone"), childPATH, "", Fail, "not found"},
		{"only unexecutable matches", "adir", childPATH, "", Fail, "cannot be executed: " + filepath.Join(bin, "adir") + ": is a directory"},
	}
	for _, tt := range tests {
		rows := Command([]string{tt.command, "--flag"}, tt.env, tt.own)
		r := rows[0]
		if r.Status != tt.status || r.Detail != tt.detail || r.Check != "command "+tt.command {
			t.Errorf("%s: %s %q %q, want %s %q", tt.name, r.Status, r.Check, r.Detail, tt.status, tt.detail)
		}
		if r.Status == Fail && !strings.Contains(r.Hint, "exit 12") {
			t.Errorf("%s: hint %q does not say run's exit code", tt.name, r.Hint)
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
