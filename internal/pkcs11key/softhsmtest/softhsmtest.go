// Package softhsmtest makes SoftHSM 2 tokens for tests, with keys and
// certificates in them, using softhsm2-util and OpenSC's pkcs11-tool as a
// user would. Only tests import it.
//
// Each HSM is a configuration file and a token directory in the test's
// temporary directory; SoftHSM reads the file that SOFTHSM2_CONF names
// when the module is initialised, so a test gives Env to the processes it
// starts (or sets it in its own environment).
package softhsmtest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rolesenv/rolesenv/internal/testenv"
)

// Tools are the programs the package needs.
var Tools = []string{"softhsm2-util", "pkcs11-tool"}

// Module is where Debian installs SoftHSM's PKCS#11 module.
const Module = "/usr/lib/softhsm/libsofthsm2.so"

// HSM is a SoftHSM configuration with its own token directory.
type HSM struct {
	Conf string // the configuration file, for SOFTHSM2_CONF
	dir  string
}

// Start requires the tools and the module and makes an empty HSM.
func Start(t testing.TB) *HSM {
	t.Helper()
	for _, tool := range Tools {
		testenv.RequireTool(t, tool)
	}
	if _, err := os.Stat(Module); err != nil {
		if os.Getenv(testenv.RequireToolsVar) == "1" {
			t.Fatalf("the SoftHSM module is required: %v", err)
		}
		t.Skipf("the SoftHSM module is not installed (%v); install softhsm2 to run this test", err)
	}
	dir := t.TempDir()
	h := &HSM{Conf: filepath.Join(dir, "softhsm2.conf"), dir: dir}
	if err := os.Mkdir(filepath.Join(dir, "tokens"), 0o700); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf("directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n", filepath.Join(dir, "tokens"))
	if err := os.WriteFile(h.Conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return h
}

// Env is the environment that points SoftHSM at this HSM.
func (h *HSM) Env() []string { return []string{"SOFTHSM2_CONF=" + h.Conf} }

// TokenDir is the directory that holds the tokens.
func (h *HSM) TokenDir() string { return filepath.Join(h.dir, "tokens") }

func (h *HSM) run(t testing.TB, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), h.Env()...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

// NewToken initialises a token in the first free slot.
func (h *HSM) NewToken(t testing.TB, label, pin string) {
	t.Helper()
	h.run(t, "softhsm2-util", "--init-token", "--free", "--label", label, "--pin", pin, "--so-pin", "so-"+pin)
}

// NewKey makes a key pair on the token: kind is pkcs11-tool's key type,
// e.g. EC:prime256v1 or rsa:2048; id is hexadecimal.
func (h *HSM) NewKey(t testing.TB, token, pin, kind, label, id string) {
	t.Helper()
	h.run(t, "pkcs11-tool", "--module", Module, "--token-label", token, "--login", "--pin", pin,
		"--keypairgen", "--key-type", kind, "--label", label, "--id", id)
}

// WriteCertificate writes a DER certificate to the token.
func (h *HSM) WriteCertificate(t testing.TB, token, pin string, der []byte, label, id string) {
	t.Helper()
	p := filepath.Join(h.dir, "cert-"+id+".der")
	if err := os.WriteFile(p, der, 0o600); err != nil {
		t.Fatal(err)
	}
	h.run(t, "pkcs11-tool", "--module", Module, "--token-label", token, "--login", "--pin", pin,
		"--write-object", p, "--type", "cert", "--label", label, "--id", id)
}

// Run runs pkcs11-tool on the token, for what the helpers above do not do.
func (h *HSM) Run(t testing.TB, args ...string) string {
	t.Helper()
	return h.run(t, "pkcs11-tool", append([]string{"--module", Module}, args...)...)
}
