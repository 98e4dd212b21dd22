package main

import (
	"net/url"
	"strings"

	"github.com/rolesenv/rolesenv/internal/check"
	"github.com/rolesenv/rolesenv/signer"
)

// pkcs11PINEnv holds a PKCS#11 token's user PIN, the twin the refused
// --pkcs11-pin would have.
const pkcs11PINEnv = "ROLESENV_PKCS11_PIN"

// isPKCS11 reports whether a --certificate, --private-key or
// --intermediates value is a pkcs11: URI.
func isPKCS11(s string) bool { return len(s) >= 7 && strings.EqualFold(s[:7], "pkcs11:") }

// usesPKCS11 reports whether any file flag names a token object.
func (c *credFlags) usesPKCS11() bool {
	return isPKCS11(c.certificate) || isPKCS11(c.privateKey) || isPKCS11(c.intermediates)
}

// validatePKCS11 refuses a PIN on the command line, in a flag or a URI,
// and the PKCS#11 flags without a pkcs11: URI.
func (c *credFlags) validatePKCS11(fs *flagSet) error {
	if fs.Changed("pkcs11-pin") {
		return &usageError{msg: "--pkcs11-pin is refused: a PIN on the command line is visible to every user of the machine",
			hint: "set " + pkcs11PINEnv + " or use --pkcs11-pin-file"}
	}
	for _, f := range []struct{ name, value string }{
		{"certificate", c.certificate}, {"private-key", c.privateKey}, {"intermediates", c.intermediates},
	} {
		if !isPKCS11(f.value) {
			continue
		}
		if uriHasPIN(f.value) {
			// Refused whatever its origin, in the path as in the query:
			// the URI is in argv or the environment. The message never
			// quotes the URI.
			return &usageError{msg: "--" + f.name + ": a pin-value in a pkcs11: URI is refused: the URI is visible on the command line and in the environment",
				hint: "remove pin-value from the URI and set " + pkcs11PINEnv + " or use --pkcs11-pin-file"}
		}
	}
	if !c.usesPKCS11() && (c.pkcs11Lib != "" || c.pkcs11PINFile != "" || c.reusePIN) {
		return &usageError{msg: "--pkcs11-lib, --pkcs11-pin-file and --reuse-pin need a pkcs11: URI in --certificate, --private-key or --intermediates",
			hint: "e.g. --private-key 'pkcs11:token=my-token;object=my-key'"}
	}
	return nil
}

// uriHasPIN reports whether a pkcs11: URI has a pin-value attribute
// anywhere, its name percent-encoded or not.
func uriHasPIN(uri string) bool {
	for _, a := range strings.FieldsFunc(uri[7:], func(r rune) bool { return r == ';' || r == '?' || r == '&' }) {
		name, _, _ := strings.Cut(a, "=")
		if d, err := url.PathUnescape(name); err == nil {
			name = d
		}
		if strings.EqualFold(strings.TrimSpace(name), "pin-value") {
			return true
		}
	}
	return false
}

const pkcs11ListUsage = `Usage: rolesenv pkcs11-list [--pkcs11-lib PATH] [--pkcs11-pin-file FILE] [pkcs11:URI]

List the tokens a PKCS#11 module sees and the certificates and keys on
them, each with a URI that names it alone, for --certificate,
--private-key and --intermediates. The URI (default: every token) narrows
the list. Private keys show after a login: the PIN comes from
ROLESENV_PKCS11_PIN or --pkcs11-pin-file, never from the command line.

Flags:
  --pkcs11-lib PATH        the module (default p11-kit's proxy module)
  --pkcs11-pin-file FILE   file holding the token's user PIN

Example:
  ROLESENV_PKCS11_PIN=... rolesenv pkcs11-list --pkcs11-lib /usr/lib/softhsm/libsofthsm2.so 'pkcs11:token=my-token'
`

// tokenObjects reads what the pkcs11: URIs name into files, with a row
// that says where the key is (token and object, never the PIN); false
// after a failure that rules out the identity checks.
func (c *checker) tokenObjects(files *check.IdentityFiles) bool {
	if !c.cf.usesPKCS11() {
		return true
	}
	opts := signer.LoadOptions{Certificate: c.cf.certificate, PrivateKey: c.cf.privateKey, Intermediates: c.cf.intermediates}
	source, err := c.a.tokenIdentity(c.cf, &opts)
	if err != nil {
		c.localFailure(check.Row{Check: "PKCS#11 objects", Detail: err.Error(), Hint: hintOf(err)})
		return false
	}
	files.CertificateData, files.IntermediatesData = opts.CertificateData, opts.IntermediatesData
	if opts.Signer != nil {
		files.Key, files.PrivateKey = opts.Signer, opts.KeyName
		c.add(check.Local, check.Row{Check: "PKCS#11 key", Status: check.OK, Detail: source})
	}
	return true
}

// parsePKCS11List parses pkcs11-list's command line; a nil credFlags
// after --help.
func parsePKCS11List(a *app, args []string) (*credFlags, string, error) {
	fs := newFlagSet("pkcs11-list", pkcs11ListUsage)
	var cf credFlags
	fs.StringVar(&cf.pkcs11Lib, "pkcs11-lib", "", "")
	fs.StringVar(&cf.pkcs11PINFile, "pkcs11-pin-file", "", "")
	if err := fs.parse(a, args); err != nil {
		if err == errHelp {
			return nil, "", nil
		}
		return nil, "", err
	}
	uri := "pkcs11:"
	switch fs.NArg() {
	case 0:
	case 1:
		uri = fs.Arg(0)
	default:
		return nil, "", usageErrorf("pkcs11-list takes at most one pkcs11: URI")
	}
	if !isPKCS11(uri) {
		return nil, "", usageErrorf("pkcs11-list takes a pkcs11: URI, not %q", uri)
	}
	cf.certificate = uri
	return &cf, uri, cf.validatePKCS11(fs)
}
