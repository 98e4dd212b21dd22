package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/rolesenv/rolesenv/internal/exitcode"
	"github.com/rolesenv/rolesenv/internal/tpmkey"
	"github.com/rolesenv/rolesenv/internal/tpmkey/swtpmtest"
)

// TestTPMOfficialHelperForms: each way the official Roles Anywhere
// helper's documentation names a TPM key works as written with
// rolesenv's credential-process; the helper's password on the command
// line is refused with rolesenv's way to give it, which then works.
func TestTPMOfficialHelperForms(t *testing.T) {
	t.Parallel() // the password case runs rolesenv as a subprocess
	e := newRAEmulator(t)
	tpm := swtpmtest.Start(t)
	const password = "SENTINEL-tpm-password"
	// The helper's README: tpm2_create, tpm2_load, tpm2_evictcontrol, then
	// --private-key handle:${CHILD_HANDLE} as tpm2_evictcontrol printed it
	// (swtpm has no resource manager: what each tool leaves is flushed).
	out := tpm.Tool(t, "sh", "-c", `set -e; flush() { tpm2_flushcontext -t; tpm2_flushcontext -s; }
		tpm2_createprimary -C o -G rsa -g sha256 -c parent.ctx >/dev/null; flush
		tpm2_create -C parent.ctx -u child.pub -r child.priv >/dev/null; flush
		tpm2_load -C parent.ctx -u child.pub -r child.priv -c child.ctx >/dev/null; tpm2_flushcontext -s
		tpm2_evictcontrol -c child.ctx | cut -d ' ' -f 2 | head -n 1`)
	handle := strings.TrimSpace(out)
	if !strings.HasPrefix(handle, "0x81") {
		t.Fatalf("tpm2_evictcontrol printed %q", out)
	}
	tpm.NewPersistentKey(t, "0x81000130", swtpmtest.KeyOptions{Kind: swtpmtest.ECC256, Password: password})
	provider := tpm.NewProviderKeyFile(t, "provider", swtpmtest.ECC256)
	tools := tpm.NewKeyFile(t, "tools", swtpmtest.KeyOptions{Kind: swtpmtest.RSA2048})

	cases := []struct {
		name  string
		ref   string
		flags []string
		env   []string // rolesenv's way, where the helper's is refused
		code  int
	}{
		{"handle:0x... as tpm2_evictcontrol printed it", "handle:" + handle, nil, nil, 0},
		{"handle:0x... --no-tpm-key-password", "handle:" + handle, []string{"--no-tpm-key-password"}, nil, 0},
		{"handle: in hexadecimal without 0x", "handle:" + strings.TrimPrefix(handle, "0x"), []string{"--no-tpm-key-password"}, nil, 0},
		{"key file of the TPM2 OpenSSL provider", provider, nil, nil, 0},
		{"key file of tpm2_encodeobject --no-tpm-key-password", tools, []string{"--no-tpm-key-password"}, nil, 0},
		{"--tpm-key-password VALUE", "handle:0x81000130", []string{"--tpm-key-password", password}, nil, exitcode.Usage},
		{"--tpm-key-password=VALUE", "handle:0x81000130", []string{"--tpm-key-password=" + password}, nil, exitcode.Usage},
		{"the password in ROLESENV_TPM_KEY_PASSWORD", "handle:0x81000130", nil, []string{tpmPasswordEnv + "=" + password}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			opts := tpmkey.Options{Device: tpm.Socket, NoPassword: true}
			if c.ref == "handle:0x81000130" {
				opts = tpmkey.Options{Device: tpm.Socket, Password: []byte(password)}
			}
			cert, anchor := tpmIdentity(t, e, c.ref, opts)
			cmd := rolesenvCmd(t, append(e.runEnv(), c.env...),
				append([]string{"credential-process"}, e.tpmArgs(cert, anchor, c.ref, tpm.Socket, c.flags...)...)...)
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			code := exitCode(t, cmd)
			if code != c.code {
				t.Fatalf("exit %d, want %d: %s", code, c.code, stderr.String())
			}
			if strings.Contains(stdout.String()+stderr.String(), password) {
				t.Error("the password reached the output")
			}
			if c.code == exitcode.Usage {
				for _, want := range []string{"--tpm-key-password is refused", tpmPasswordEnv, "--tpm-key-password-file"} {
					if !strings.Contains(stderr.String(), want) {
						t.Errorf("the refusal lacks %q: %s", want, stderr.String())
					}
				}
				return
			}
			var creds struct{ AccessKeyId string }
			if err := json.Unmarshal([]byte(stdout.String()), &creds); err != nil || creds.AccessKeyId == "" {
				t.Errorf("output %q: %v", stdout.String(), err)
			}
		})
	}
}
