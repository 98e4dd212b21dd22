package main

import (
	"bytes"
	"log/slog"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
)

// TestRunTrimsMemoryOnlyWhenWatching: rolesenv lowers its garbage
// collector's target when it stays to supervise and watch, and only then:
// with --once the command replaces rolesenv at once. A GOGC in the
// environment is kept.
func TestRunTrimsMemoryOnlyWhenWatching(t *testing.T) {
	t.Parallel()
	const line = `msg="memory trimmed for watching"`
	for _, c := range []struct {
		gogc string // "" leaves GOGC unset
		args []string
		want string // "" when the line must not appear
	}{
		{"", []string{"run", "--log-level", "debug", "--", "true"}, "gogc=25"},
		{"80", []string{"run", "--log-level", "debug", "--", "true"}, "gogc=80"},
		{"", []string{"run", "--once", "--log-level", "debug", "--", "true"}, ""},
		{"80", []string{"run", "--once", "--log-level", "debug", "--", "true"}, ""},
	} {
		cmd := rolesenvCmd(t, nil, c.args...)
		cmd.Env = slices.DeleteFunc(cmd.Env, func(kv string) bool { return strings.HasPrefix(kv, "GOGC=") })
		if c.gogc != "" {
			cmd.Env = append(cmd.Env, "GOGC="+c.gogc)
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if code := exitCode(t, cmd); code != 0 {
			t.Fatalf("GOGC=%q rolesenv %s: exit %d, stderr %q", c.gogc, strings.Join(c.args, " "), code, stderr.String())
		}
		var got string
		for _, l := range strings.Split(stderr.String(), "\n") {
			if strings.Contains(l, line) {
				got = l
			}
		}
		switch {
		case c.want == "" && got != "":
			t.Errorf("GOGC=%q rolesenv %s trimmed memory: %q", c.gogc, strings.Join(c.args, " "), got)
		case c.want != "" && !strings.Contains(got, c.want):
			t.Errorf("GOGC=%q rolesenv %s: trim line %q, want one with %s; stderr:\n%s", c.gogc, strings.Join(c.args, " "), got, c.want, stderr.String())
		}
	}
}

// TestTrimForWatching: the garbage collector's target is what the
// function says it sets.
func TestTrimForWatching(t *testing.T) {
	old := debug.SetGCPercent(100)
	defer debug.SetGCPercent(old)
	log := slog.New(slog.DiscardHandler)

	t.Setenv("GOGC", "")
	trimForWatching(log)
	if got := debug.SetGCPercent(100); got != watchGCPercent {
		t.Errorf("GOGC unset: the target is %d after settling, want %d", got, watchGCPercent)
	}
	t.Setenv("GOGC", "80")
	trimForWatching(log)
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GOGC=80: the target is %d after settling, want it left alone (100 here)", got)
	}
}
