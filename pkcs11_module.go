//go:build pkcs11

package main

import (
	"bytes"
	"fmt"
	"net/url"
	"os"
	"strings"
)

// p11KitProxies are where distributions install p11-kit's proxy module,
// which loads every module registered with p11-kit: the default module,
// as for the official helper.
var p11KitProxies = []string{
	"/usr/lib/x86_64-linux-gnu/p11-kit-proxy.so",
	"/usr/lib/aarch64-linux-gnu/p11-kit-proxy.so",
	"/usr/lib/arm-linux-gnueabihf/p11-kit-proxy.so",
	"/usr/lib64/p11-kit-proxy.so",
	"/usr/lib/p11-kit-proxy.so",
	"/usr/local/lib/p11-kit-proxy.so",
	"/opt/homebrew/lib/p11-kit-proxy.dylib",
	"/usr/local/lib/p11-kit-proxy.dylib",
}

// pkcs11Module is the module to load: --pkcs11-lib, else a module-path in
// a URI, else p11-kit's proxy module where it is installed.
func (c *credFlags) pkcs11Module() (string, error) {
	if c.pkcs11Lib != "" {
		return c.pkcs11Lib, nil
	}
	for _, v := range []string{c.privateKey, c.certificate, c.intermediates} {
		if p := uriQuery(v, "module-path"); isPKCS11(v) && p != "" {
			return p, nil
		}
	}
	for _, p := range p11KitProxies {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", &usageError{msg: "a pkcs11: URI needs a PKCS#11 module, and p11-kit's proxy module is not installed",
		hint: "name the token's module with --pkcs11-lib (or ROLESENV_PKCS11_LIB), e.g. /usr/lib/softhsm/libsofthsm2.so"}
}

// uriQuery is a query attribute of a pkcs11: URI, decoded, or "".
func uriQuery(uri, name string) string {
	_, query, _ := strings.Cut(uri, "?")
	for _, a := range strings.Split(query, "&") {
		if n, v, _ := strings.Cut(a, "="); strings.EqualFold(n, name) {
			if d, err := url.PathUnescape(v); err == nil {
				return d
			}
		}
	}
	return ""
}

// pkcs11PIN reads the token's PIN from ROLESENV_PKCS11_PIN, or
// --pkcs11-pin-file, or a pin-source=file: in a URI; nil when none is
// set (an empty ROLESENV_PKCS11_PIN is none). ROLESENV_PKCS11_PIN is
// removed from the environment once read, so that no command started
// later inherits it. The caller clears the PIN after use.
func (a *app) pkcs11PIN(cf *credFlags) ([]byte, error) {
	env := a.getenv(pkcs11PINEnv)
	a.dropEnv(pkcs11PINEnv)
	file, err := pinFile(cf)
	if err != nil {
		return nil, err
	}
	switch {
	case env != "" && file != "":
		return nil, &usageError{msg: "both " + pkcs11PINEnv + " and a PIN file (--pkcs11-pin-file or pin-source) are set", hint: "set only one of them"}
	case env != "":
		return []byte(env), nil
	case file == "":
		return nil, nil
	}
	data, err := readSmallFile(file, 4<<10)
	if err != nil {
		return nil, &configError{msg: fmt.Sprintf("PKCS#11 PIN file %s: %v", file, err)}
	}
	pin := bytes.TrimSuffix(bytes.TrimSuffix(data, []byte("\n")), []byte("\r"))
	if len(pin) == 0 {
		return nil, &configError{msg: fmt.Sprintf("PKCS#11 PIN file %s is empty", file)}
	}
	return pin, nil
}

// pinFile is --pkcs11-pin-file or the file of the URIs' pin-source; two
// different sources, or a pin-source that is not a file, are refused.
func pinFile(cf *credFlags) (string, error) {
	file, from := cf.pkcs11PINFile, "--pkcs11-pin-file"
	for _, v := range []string{cf.privateKey, cf.certificate, cf.intermediates} {
		src := uriQuery(v, "pin-source")
		if !isPKCS11(v) || src == "" {
			continue
		}
		path := strings.TrimPrefix(src, "file:")
		if scheme, _, ok := strings.Cut(path, ":"); strings.HasPrefix(path, "|") || ok && !strings.Contains(scheme, "/") {
			// A command ("|prog", as GnuTLS reads it) or another scheme.
			return "", &usageError{msg: "a pin-source in a pkcs11: URI must be a file (pin-source=file:PATH)",
				hint: "set " + pkcs11PINEnv + " or use --pkcs11-pin-file"}
		}
		if file != "" && file != path {
			return "", &usageError{msg: "two PIN files are named: " + from + " and a pin-source",
				hint: "name the PIN file once"}
		}
		file, from = path, "a pin-source"
	}
	return file, nil
}

// dropEnv removes name from rolesenv's environment and the process's.
func (a *app) dropEnv(name string) {
	if _, ok := a.lookupEnv(name); !ok {
		return
	}
	_ = os.Unsetenv(name)
	kept := make([]string, 0, len(a.environ))
	for _, kv := range a.environ {
		if k, _, _ := strings.Cut(kv, "="); k != name {
			kept = append(kept, kv)
		}
	}
	a.environ = kept
}
