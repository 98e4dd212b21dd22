package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/processcreds"

	"github.com/rolesenv/rolesenv/internal/exitcode"
)

// failingProvider fails as the SDK's credential_process provider does when
// the process prints something that is not its JSON: the error quotes the
// output, which may hold credentials.
type failingProvider struct{ out string }

func (p failingProvider) Retrieve(context.Context) (aws.Credentials, error) {
	return aws.Credentials{}, &processcreds.ProviderError{Err: fmt.Errorf("parse failed of process output: %s, error: unexpected end of JSON input", p.out)}
}

// TestWithCredentialLogHidesProcessOutput: an error of the default chain,
// however a caller prints it, never shows credential_process's output, and
// still says what failed.
func TestWithCredentialLogHidesProcessOutput(t *testing.T) {
	a, logs := testApp(0)
	p := a.withCredentialLog(failingProvider{out: `{"SecretAccessKey":"SNTLSECRET"`})
	_, err := p.Retrieve(context.Background())
	if err == nil {
		t.Fatal("no error")
	}
	for _, s := range []string{err.Error(), fmt.Sprintf("%v", err), fmt.Sprintf("%+v", err), logs.String()} {
		if strings.Contains(s, "SNTL") {
			t.Errorf("the process's output shows: %s", s)
		}
	}
	if !strings.Contains(err.Error(), "credential_process failed") {
		t.Errorf("error %q does not say what failed", err)
	}
	var pe *processcreds.ProviderError
	if !errors.As(err, &pe) {
		t.Error("the provider's error is not in the tree")
	}
}

// TestRunEndpointHidesProcessOutput: rolesenv run --child-credentials
// endpoint with a credential_process that prints half a credentials
// document fails without printing it.
func TestRunEndpointHidesProcessOutput(t *testing.T) {
	t.Parallel() // rolesenv runs as a subprocess with its own environment
	dir := t.TempDir()
	script := filepath.Join(dir, "creds.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho '{\"Version\":1,\"AccessKeyId\":\"AKIASNTL\",\"SecretAccessKey\":\"SNTLSECRET\",'\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(dir, "config")
	if err := os.WriteFile(config, []byte("[default]\nregion = us-east-1\ncredential_process = "+script+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := rolesenvCmd(t, []string{"AWS_CONFIG_FILE=" + config, "AWS_ENDPOINT_URL=http://127.0.0.1:9"},
		"run", "--child-credentials", "endpoint", "--log-level", "debug", "--", "rolesenv-testchild", "exit", "0")
	out, _ := cmd.CombinedOutput()
	if strings.Contains(string(out), "SNTL") {
		t.Errorf("the process's output shows:\n%s", out)
	}
	if code := cmd.ProcessState.ExitCode(); code == 0 || !strings.Contains(string(out), "credential_process failed") {
		t.Errorf("exit %d, output:\n%s", code, out)
	}
}

// deadlineProvider waits for the caller's deadline, as the default chain
// does when the instance metadata service or STS does not answer.
type deadlineProvider struct{}

func (deadlineProvider) Retrieve(ctx context.Context) (aws.Credentials, error) {
	<-ctx.Done()
	return aws.Credentials{}, fmt.Errorf("failed to refresh cached credentials, request canceled, %w", ctx.Err())
}

// No credentials before the start-up deadline means AWS could not be
// reached in time: exit 69, as for references, not 78 (a configuration
// error, which the shipped systemd units do not restart).
func TestCredentialDeadlineIsUnavailable(t *testing.T) {
	a, _ := testApp(0)
	p := a.withCredentialLog(deadlineProvider{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	_, err := p.Retrieve(ctx)
	if code := exitcode.Of(fmt.Errorf("--child-credentials endpoint: %w", err)); code != exitcode.Unavailable {
		t.Errorf("%v: exit %d, want %d", err, code, exitcode.Unavailable)
	}
	if code := exitcode.Of(fmt.Errorf("x: %w", (&chainError{err: errors.New("no EC2 IMDS role found")}))); code != exitcode.Internal {
		t.Errorf("a failure that is not a deadline: exit %d, want %d", code, exitcode.Internal)
	}
}
