//go:build !pkcs11

package main

import (
	"context"

	"github.com/rolesenv/rolesenv/signer"
)

// errNoPKCS11 answers a pkcs11: URI in the static build.
var errNoPKCS11 = &usageError{msg: "this rolesenv is the static build, which cannot load a PKCS#11 module (a shared library)",
	hint: "use rolesenv-pkcs11, the build with PKCS#11 (make build-pkcs11, or the release's rolesenv-pkcs11-* binaries)"}

// pkcs11Built says whether this binary loads PKCS#11 modules.
const pkcs11Built = false

// tokenIdentity refuses pkcs11: URIs.
func (a *app) tokenIdentity(cf *credFlags, _ *signer.LoadOptions) (string, error) {
	if cf.usesPKCS11() {
		return "", errNoPKCS11
	}
	return "", nil
}

func cmdPKCS11List(_ context.Context, a *app, args []string) error {
	cf, _, err := parsePKCS11List(a, args)
	if err != nil || cf == nil {
		return err
	}
	return errNoPKCS11
}
