package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rolesenv/rolesenv/inject"
	"github.com/rolesenv/rolesenv/internal/exitcode"
	"github.com/rolesenv/rolesenv/internal/testenv"
)

// TestRenderNoRegionHint: inject says that no region is configured; the
// command adds which flag or variable sets one.
func TestRenderNoRegionHint(t *testing.T) {
	testenv.IsolateAWS(t)
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "not-a-secret")
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"render", "--env-file", "-"}, strings.NewReader("A=sm://a\n"), &out, &errOut)
	if code != exitcode.Config {
		t.Errorf("exit %d, want %d", code, exitcode.Config)
	}
	for _, want := range []string{"rolesenv: error: -:1: A: sm://a: secretsmanager:GetSecretValue on a: no AWS region is configured\n",
		"rolesenv: hint: set --region or AWS_REGION\n"} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut.String())
		}
	}
}

// TestStaleHint: a watch that stopped for staleness is reported with the
// flag that bounds it, in the message and as a hint, and keeps its class;
// other errors pass unchanged.
func TestStaleHint(t *testing.T) {
	err := withFlagNames(&inject.StaleError{MaxStale: time.Minute, Since: 2 * time.Minute, Last: "throttled"})
	if h := exitcode.Hints(err); len(h) != 1 || !strings.Contains(h[0], "--max-stale") {
		t.Errorf("hints %q", h)
	}
	if !strings.Contains(err.Error(), "(--max-stale 1m0s)") {
		t.Errorf("message %q does not name --max-stale", err)
	}
	if exitcode.Of(err) != exitcode.Unavailable {
		t.Errorf("exit %d, want %d", exitcode.Of(err), exitcode.Unavailable)
	}
	other := errors.New("other")
	if withFlagNames(other) != other {
		t.Error("an error that is not stale was wrapped")
	}
}
