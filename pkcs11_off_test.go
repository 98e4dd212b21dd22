//go:build !pkcs11

package main

import (
	"strings"
	"testing"

	"github.com/rolesenv/rolesenv/internal/exitcode"
)

// TestPKCS11StaticBuild: the static build answers a pkcs11: URI and
// pkcs11-list with a usage error that names the PKCS#11 build.
func TestPKCS11StaticBuild(t *testing.T) {
	for _, args := range [][]string{
		{"credential-process", "--certificate", "c.pem", "--private-key", "pkcs11:object=k",
			"--trust-anchor-arn", "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/a",
			"--profile-arn", "arn:aws:rolesanywhere:us-east-1:123456789012:profile/p",
			"--role-arn", "arn:aws:iam::123456789012:role/r"},
		{"pkcs11-list"},
	} {
		code, _, stderr := runCLI(t, args...)
		if code != exitcode.Usage || !strings.Contains(stderr, "static build") || !strings.Contains(stderr, "make build-pkcs11") {
			t.Errorf("%q: exit %d, stderr %q", args, code, stderr)
		}
	}
}
