//go:build pkcs11

package main

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"fmt"
	"sync"

	"github.com/rolesenv/rolesenv/internal/pkcs11key"
	"github.com/rolesenv/rolesenv/signer"
)

// pkcs11Built says whether this binary loads PKCS#11 modules.
const pkcs11Built = true

// tokenIdentity fills opts with what the pkcs11: URIs name: the
// certificate and intermediates read from the token, and the key opened
// on it (proved to sign). It returns where the key is (token and
// object, never the PIN), or "" when no key is on a token.
//
// A command that asks twice for the same flags (check) gets the objects
// and the key of the first time: the key is opened once.
func (a *app) tokenIdentity(cf *credFlags, opts *signer.LoadOptions) (string, error) {
	if !cf.usesPKCS11() {
		return "", nil
	}
	tokenOpened.Lock()
	defer tokenOpened.Unlock()
	memo := tokenMemo{cf, a.lazyKeys}
	if r, ok := tokenOpened.m[memo]; ok {
		opts.CertificateData, opts.IntermediatesData = r.opts.CertificateData, r.opts.IntermediatesData
		opts.PrivateKey, opts.Signer, opts.KeyName = r.opts.PrivateKey, r.opts.Signer, r.opts.KeyName
		return r.source, nil
	}
	source, err := a.openTokenIdentity(cf, opts)
	if err == nil {
		tokenOpened.m[memo] = tokenResult{*opts, source}
	}
	return source, err
}

// tokenOpened holds what tokenIdentity read and opened, for the life of
// the process.
var tokenOpened = struct {
	sync.Mutex
	m map[tokenMemo]tokenResult
}{m: map[tokenMemo]tokenResult{}}

type tokenMemo struct {
	cf   *credFlags
	lazy bool
}

type tokenResult struct {
	opts   signer.LoadOptions
	source string
}

// firstPKCS11 is the first pkcs11: URI among the flags, for messages.
func (c *credFlags) firstPKCS11() string {
	for _, v := range []string{c.privateKey, c.certificate, c.intermediates} {
		if isPKCS11(v) {
			return v
		}
	}
	return "pkcs11:"
}

// heldModules are the modules loaded for the life of the process: the
// module is initialised once, not once for each certificate and key.
var heldModules sync.Map

func (a *app) openTokenIdentity(cf *credFlags, opts *signer.LoadOptions) (string, error) {
	module, err := cf.pkcs11Module()
	if err != nil {
		return "", err
	}
	if _, held := heldModules.Load(module); !held {
		if _, err := pkcs11key.Hold(cf.firstPKCS11(), module); err != nil {
			return "", newPKCS11Hinted(err)
		}
		heldModules.Store(module, true)
	}
	pin, err := a.pkcs11PIN(cf)
	if err != nil {
		return "", err
	}
	lazy := false
	defer func() {
		if !lazy {
			clear(pin) // an opened key keeps a copy of its own
		}
	}()
	po := pkcs11key.Options{Module: module, PIN: pin, ReusePIN: cf.reusePIN}
	keyURI := cf.privateKey
	if isPKCS11(cf.certificate) {
		c, err := pkcs11key.Certificate(cf.certificate, po)
		if err != nil {
			return "", newPKCS11Hinted(err)
		}
		opts.CertificateData = c.Certificate
		if keyURI == "" {
			keyURI = c.KeyURI() // the key beside the certificate, as the official helper finds it
		}
	}
	if isPKCS11(cf.intermediates) {
		certs, err := pkcs11key.Certificates(cf.intermediates, po)
		if err != nil {
			return "", newPKCS11Hinted(err)
		}
		opts.IntermediatesData = nil
		for _, c := range certs {
			opts.IntermediatesData = append(opts.IntermediatesData, c.Certificate...)
		}
	}
	if !isPKCS11(keyURI) {
		return "", nil // a key in a file; the signer reads it
	}
	po.Public = certificatePublicKey(opts)
	var obj string
	key, err := a.openKey(opts, func() (crypto.Signer, error) {
		key, err := pkcs11key.Open(keyURI, po)
		if err != nil {
			return nil, newPKCS11Hinted(err)
		}
		obj = key.Object().String()
		a.log.Debug("PKCS#11 key opened", "key", obj, "module", module)
		clear(pin) // opened at its first signature: the PIN is no longer needed here
		return key, nil
	})
	if err != nil {
		return "", err
	}
	lazy = obj == "" // to be opened at its first signature, with the PIN
	opts.PrivateKey, opts.Signer, opts.KeyName = "", key, pkcs11key.Redact(keyURI)
	if obj == "" {
		obj = pkcs11key.Redact(keyURI) + ", opened at its first signature"
	}
	return fmt.Sprintf("%s (module %s)", obj, module), nil
}

// pkcs11Hinted adds the flags that matter to a PKCS#11 error; the PIN's
// source goes in the error's own hint (one hint per PIN error).
type pkcs11Hinted struct{ error }

func newPKCS11Hinted(err error) pkcs11Hinted {
	var pe *pkcs11key.Error
	if errors.As(err, &pe) {
		pe.PINSource = pkcs11PINEnv + " or --pkcs11-pin-file"
		pe.ModuleFlag = "--pkcs11-lib (or ROLESENV_PKCS11_LIB)"
	}
	return pkcs11Hinted{err}
}

func (e pkcs11Hinted) Unwrap() error { return e.error }
func (e pkcs11Hinted) Hint() string {
	switch {
	case errors.Is(e.error, pkcs11key.ErrContextPIN):
		return "--reuse-pin sends the token's PIN again for the key's own login"
	}
	return ""
}

// cmdPKCS11List lists the tokens a module sees and the certificates and
// keys on them (keys after logging in, with a PIN), with a URI for each,
// as the official helper's read-certificate-data does for certificates.
func cmdPKCS11List(_ context.Context, a *app, args []string) error {
	cf, uri, err := parsePKCS11List(a, args)
	if err != nil || cf == nil {
		return err
	}
	module, err := cf.pkcs11Module()
	if err != nil {
		return err
	}
	pin, err := a.pkcs11PIN(cf)
	if err != nil {
		return err
	}
	ls, err := pkcs11key.List(uri, pkcs11key.Options{Module: module, PIN: pin})
	if err != nil {
		return newPKCS11Hinted(err)
	}
	printListing(a, module, ls, pin != nil)
	return nil
}

func printListing(a *app, module string, ls []pkcs11key.Listing, pin bool) {
	fmt.Fprintf(a.stdout, "module %s\n", module)
	for _, l := range ls {
		fmt.Fprintf(a.stdout, "\n%s\n", l.Token)
		if l.Err != nil {
			fmt.Fprintf(a.stdout, "  cannot list: %v\n", l.Err)
			continue
		}
		for _, o := range l.Objects {
			fmt.Fprintf(a.stdout, "  %-7s label %q, id %s\n          %s\n", o.Class, o.Label, idText(o.ID), o.URI())
			if c, err := o.ParsedCertificate(); o.Class == "cert" && err == nil {
				fmt.Fprintf(a.stdout, "          subject %s, not after %s\n", c.Subject, c.NotAfter.UTC().Format("2006-01-02"))
			}
		}
		if len(l.Objects) == 0 {
			fmt.Fprintln(a.stdout, "  no certificates or keys")
		}
		switch {
		case l.PINNotSent:
			fmt.Fprintln(a.stdout, "  (not logged in: the PIN is sent to one token only; name it with token= or serial= to list its private keys)")
		case !pin:
			fmt.Fprintln(a.stdout, "  (private keys show after a login: set "+pkcs11PINEnv+" or --pkcs11-pin-file)")
		}
	}
}

func idText(id []byte) string {
	if len(id) == 0 {
		return "(none)"
	}
	return fmt.Sprintf("%x", bytes.Clone(id))
}
