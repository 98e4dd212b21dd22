package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/rolesenv/rolesenv/internal/exitcode"
	"github.com/rolesenv/rolesenv/internal/tpmkey"
	"github.com/rolesenv/rolesenv/internal/tpmkey/swtpmtest"
	"github.com/rolesenv/rolesenv/signer"
)

// TestTPMGoneAtStartup: a TPM that is away when run starts is an error
// that names the TPM and exits 69 before the command starts; once the
// TPM is back (restarted on its state), the same key gets credentials
// with no change.
func TestTPMGoneAtStartup(t *testing.T) {
	t.Parallel() // rolesenv runs as subprocesses with their own environment
	e := newRAEmulator(t)
	tpm := swtpmtest.Start(t)
	ref := tpm.NewKeyFile(t, "k", swtpmtest.KeyOptions{Kind: swtpmtest.ECC256, Parent: "0x81000001"})
	cert, anchor := tpmIdentity(t, e, ref, tpmkey.Options{Device: tpm.Socket, NoPassword: true})
	mustDo[string](t)(e.CreateSecret("tpm/api", "api-1"))
	file := writeEnvFile(t, "API=sm://tpm/api\n")
	flags := append([]string{"--env-file", file}, e.tpmArgs(cert, anchor, ref, tpm.Socket, "--no-tpm-key-password")...)
	child := []string{"--", "rolesenv-testchild", "printvars", "API"}
	args := append(append([]string{"run"}, flags...), child...)

	tpm.Stop()
	cmd := rolesenvCmd(t, e.runEnv(), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if code := exitCode(t, cmd); code != exitcode.Unavailable {
		t.Errorf("run with the TPM away: exit %d, want %d\n%s", code, exitcode.Unavailable, stderr.String())
	}
	for _, want := range []string{"TPM key " + ref, "the TPM cannot be reached", "hint: name the TPM with --tpm-device"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
	if strings.Contains(stdout.String(), "start ") {
		t.Errorf("the command started without credentials: %s", stdout.String())
	}
	if n := e.Calls(opCreateSession); n != 0 {
		t.Errorf("%d CreateSession calls with the TPM away", n)
	}

	tpm.Restart(t)
	cmd = rolesenvCmd(t, e.runEnv(), append([]string{"credential-process"}, e.tpmArgs(cert, anchor, ref, tpm.Socket, "--no-tpm-key-password")...)...)
	if out, err := cmd.Output(); err != nil || !strings.Contains(string(out), `"AccessKeyId"`) {
		t.Errorf("credential-process once the TPM is back: %v", err)
	}
}

// TestTPMLockout: wrong passwords drive a key's TPM into dictionary-attack
// lockout; then even the right password gets the lockout's own error,
// exit 69 (it ends by itself) with the way out in the hint, and nothing
// is sent. Once the lockout is cleared, the key works again.
func TestTPMLockout(t *testing.T) {
	e := startRAEmulator(t)
	tpm := swtpmtest.Start(t)
	const password = "the right one"
	ref := tpm.NewKeyFile(t, "k", swtpmtest.KeyOptions{Kind: swtpmtest.ECC256, Password: password, Parent: "0x81000001"})
	cert, anchor := tpmIdentity(t, e, ref, tpmkey.Options{Device: tpm.Socket, Password: []byte(password)})
	// Two failures lock the TPM out, for ten minutes each.
	tpm.Tool(t, "tpm2_dictionarylockout", "--setup-parameters", "--max-tries=2", "--recovery-time=600", "--lockout-recovery-time=600")
	wrong := writeSecretFile(t, e.dir, "wrong", "SENTINEL-wrong")
	right := writeSecretFile(t, e.dir, "right", password)
	try := func(pwFile string) (int, string) {
		code, stdout, stderr := runCLI(t, append([]string{"credential-process"}, e.tpmArgs(cert, anchor, ref, tpm.Socket, "--tpm-key-password-file", pwFile)...)...)
		if strings.Contains(stdout+stderr, "SENTINEL-wrong") || strings.Contains(stdout+stderr, password) {
			t.Error("a password reached the output")
		}
		return code, stderr
	}
	for i := range 2 {
		if code, stderr := try(wrong); code != exitcode.Config || !strings.Contains(stderr, "refused the key's password") {
			t.Fatalf("wrong password, try %d: exit %d, %s", i+1, code, stderr)
		}
	}
	code, stderr := try(right)
	if code != exitcode.Unavailable {
		t.Errorf("right password during the lockout: exit %d, want %d", code, exitcode.Unavailable)
	}
	for _, want := range []string{"dictionary-attack lockout", "hint: wait for the TPM's lockout recovery time, or clear it with tpm2_dictionarylockout --clear-lockout"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("the lockout's error lacks %q:\n%s", want, stderr)
		}
	}
	if n := e.Calls(opCreateSession); n != 0 {
		t.Errorf("%d CreateSession calls, want none", n)
	}
	tpm.Tool(t, "tpm2_dictionarylockout", "--clear-lockout")
	if code, stderr := try(right); code != 0 {
		t.Errorf("after the lockout was cleared: exit %d, %s", code, stderr)
	}
}

// TestTPMSignErrorExitCode: a TPM that fails during CreateSession (after
// the key was opened) exits 69 when it cannot be reached or is locked
// out, 78 when it refuses, and its error is the key's, not the
// network's.
func TestTPMSignErrorExitCode(t *testing.T) {
	for _, c := range []struct {
		cause error
		code  int
	}{
		{tpmkey.ErrUnreachable, exitcode.Unavailable},
		{tpmkey.ErrLockout, exitcode.Unavailable},
		{tpmkey.ErrWrongPassword, exitcode.Config},
		{tpmkey.ErrNotThisTPM, exitcode.Config},
	} {
		err := error(&signer.SignError{Attempts: 3, Err: &tpmkey.Error{Key: "k.pem", Device: "/dev/tpmrm0", Op: "sign", Err: c.cause}})
		if got := exitcode.Of(err); got != c.code {
			t.Errorf("%v: exit %d, want %d", c.cause, got, c.code)
		}
		var ne *signer.NetworkError
		if errors.As(err, &ne) || strings.Contains(err.Error(), "CreateSession failed") {
			t.Errorf("%v reads as a failed call: %v", c.cause, err)
		}
		for _, h := range exitcode.Hints(err) {
			if strings.Contains(h, "network path") {
				t.Errorf("%v: a network hint: %s", c.cause, h)
			}
		}
	}
}
