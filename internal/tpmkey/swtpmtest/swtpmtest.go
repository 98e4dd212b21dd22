// Package swtpmtest starts a software TPM (swtpm) for tests and makes TPM
// keys in it with tpm2-tools, as a user would. Only tests import it.
//
// Each TPM lives in the test's temporary directory and is stopped at the
// end of the test. swtpm has no resource manager, so after every tool the
// transient objects and sessions the tool left loaded are flushed.
package swtpmtest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rolesenv/rolesenv/internal/testenv"
)

// Tools are the programs the package needs; testenv.RequireTool skips or
// fails a test without them.
var Tools = []string{"swtpm", "tpm2_createprimary", "tpm2_create", "tpm2_encodeobject",
	"tpm2_evictcontrol", "tpm2_flushcontext", "tpm2_load"}

// TPM is a running swtpm.
type TPM struct {
	Socket string // the Unix socket of TPM commands, for --tpm-device
	dir    string
	cmd    *exec.Cmd
	done   chan struct{}
}

// Start requires the tools and starts a TPM in a fresh directory.
func Start(t testing.TB) *TPM {
	t.Helper()
	for _, tool := range Tools {
		testenv.RequireTool(t, tool)
	}
	// Unix socket paths are short: keep the directory near the root.
	dir, err := os.MkdirTemp("", "swtpm")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Mkdir(filepath.Join(dir, "state"), 0o700); err != nil {
		t.Fatal(err)
	}
	tpm := &TPM{Socket: filepath.Join(dir, "tpm.sock"), dir: dir}
	tpm.start(t)
	t.Cleanup(tpm.Stop)
	return tpm
}

func (tpm *TPM) start(t testing.TB) {
	t.Helper()
	os.Remove(tpm.Socket)
	os.Remove(tpm.Socket + ".ctrl")
	cmd := exec.Command("swtpm", "socket", "--tpm2",
		"--tpmstate", "dir="+filepath.Join(tpm.dir, "state"),
		"--server", "type=unixio,path="+tpm.Socket,
		// tpm2-tools' swtpm TCTI looks for the control socket here.
		"--ctrl", "type=unixio,path="+tpm.Socket+".ctrl",
		"--flags", "not-need-init,startup-clear",
		"--log", "file="+filepath.Join(tpm.dir, "swtpm.log"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start swtpm: %v", err)
	}
	tpm.cmd, tpm.done = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); close(tpm.done) }()
	// swtpm serves once both its sockets accept (it makes the control
	// socket first); it must do so at all.
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := dialBoth(tpm.Socket+".ctrl", tpm.Socket)
		if err == nil {
			return
		}
		select {
		case <-tpm.done:
			t.Fatalf("swtpm exited: %s", stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("swtpm did not listen on %s within 30s: %v", tpm.Socket, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func dialBoth(paths ...string) error {
	for _, p := range paths {
		c, err := net.Dial("unix", p)
		if err != nil {
			return err
		}
		c.Close()
	}
	return nil
}

// Stop kills the TPM and waits for it; its state stays for Restart.
func (tpm *TPM) Stop() {
	if tpm.cmd == nil {
		return
	}
	_ = tpm.cmd.Process.Kill()
	<-tpm.done
	tpm.cmd = nil
}

// Restart starts the stopped TPM again with its state: its persistent
// keys and seeds are kept.
func (tpm *TPM) Restart(t testing.TB) {
	t.Helper()
	tpm.Stop()
	tpm.start(t)
}

// Path is a file in the TPM's directory.
func (tpm *TPM) Path(name string) string { return filepath.Join(tpm.dir, name) }

// Tool runs a tpm2-tools program against the TPM, then flushes what it
// left loaded. It returns the program's standard output.
func (tpm *TPM) Tool(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := tpm.run(name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
	}
	return out
}

func (tpm *TPM) run(name string, args ...string) (string, error) {
	out, err := tpm.exec(name, args...)
	for _, kind := range []string{"-t", "-l", "-s"} {
		if _, ferr := tpm.exec("tpm2_flushcontext", kind); ferr != nil && err == nil {
			err = ferr
		}
	}
	return out, err
}

func (tpm *TPM) exec(name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "TPM2TOOLS_TCTI=swtpm:path="+tpm.Socket)
	cmd.Dir = tpm.dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%v: %s", err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// Kind is a key algorithm as tpm2_create's -G names it.
type Kind string

const (
	RSA2048 Kind = "rsa2048"
	ECC256  Kind = "ecc256"
	ECC384  Kind = "ecc384"
)

// primaryArgs make the standard ECC storage key (the TCG template H-2),
// the parent a key file with a hierarchy as parent is loaded under.
var primaryArgs = []string{"-C", "o", "-g", "sha256", "-G", "ecc256:null:aes128cfb",
	"-a", "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda|restricted|decrypt"}

// KeyOptions describe a key to make.
type KeyOptions struct {
	Kind     Kind
	Password string // "" for none
	// Parent is a persistent handle ("0x81000001") to make the parent at
	// and record in the key file; "" records the owner hierarchy.
	Parent string
}

// NewKeyFile makes a signing key under the standard storage key and
// writes it in the TSS2 PEM form; it returns the file's path.
func (tpm *TPM) NewKeyFile(t testing.TB, name string, opts KeyOptions) string {
	t.Helper()
	parent := tpm.primary(t, opts.Parent)
	args := []string{"-C", parent, "-G", string(opts.Kind), "-u", name + ".pub", "-r", name + ".priv",
		"-a", "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign"}
	if opts.Password != "" {
		args = append(args, "-p", "file:-")
	}
	tpm.toolStdin(t, opts.Password, "tpm2_create", args...)
	enc := []string{"-C", parent, "-u", name + ".pub", "-r", name + ".priv", "-o", name + ".pem"}
	if opts.Password != "" {
		enc = append(enc, "-p")
	}
	tpm.Tool(t, "tpm2_encodeobject", enc...)
	return tpm.Path(name + ".pem")
}

// NewPersistentKey makes a signing key and makes it persistent at handle
// (e.g. "0x81000010").
func (tpm *TPM) NewPersistentKey(t testing.TB, handle string, opts KeyOptions) {
	t.Helper()
	parent := tpm.primary(t, opts.Parent)
	name := "persistent-" + handle
	args := []string{"-C", parent, "-G", string(opts.Kind), "-u", name + ".pub", "-r", name + ".priv",
		"-a", "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign"}
	if opts.Password != "" {
		args = append(args, "-p", "file:-")
	}
	tpm.toolStdin(t, opts.Password, "tpm2_create", args...)
	// tpm2_load and tpm2_evictcontrol in one TPM state: the loaded key's
	// context file is used before the flush.
	if _, err := tpm.exec("tpm2_load", "-C", parent, "-u", name+".pub", "-r", name+".priv", "-c", name+".ctx"); err != nil {
		t.Fatalf("tpm2_load: %v", err)
	}
	tpm.Tool(t, "tpm2_evictcontrol", "-C", "o", "-c", name+".ctx", handle)
}

// primary makes the standard storage key: persistent at handle, or as a
// context file when handle is "".
func (tpm *TPM) primary(t testing.TB, handle string) string {
	t.Helper()
	if handle != "" {
		if _, err := tpm.exec("tpm2_readpublic", "-c", handle); err == nil {
			return handle
		}
	}
	tpm.Tool(t, "tpm2_createprimary", append(primaryArgs, "-c", "primary.ctx")...)
	if handle == "" {
		return "primary.ctx"
	}
	tpm.Tool(t, "tpm2_evictcontrol", "-C", "o", "-c", "primary.ctx", handle)
	return handle
}

func (tpm *TPM) toolStdin(t testing.TB, stdin, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "TPM2TOOLS_TCTI=swtpm:path="+tpm.Socket)
	cmd.Dir = tpm.dir
	cmd.Stdin = strings.NewReader(stdin)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", name, err, out)
	}
	if _, err := tpm.run("true"); err != nil {
		t.Fatal(err)
	}
}

// NewProviderKeyFile makes a signing key with the TPM2 OpenSSL provider
// (openssl genpkey -provider tpm2), as the official Roles Anywhere
// helper's README suggests: a TSS2 PEM file whose parent is the owner
// hierarchy and that says the key has no password. It returns the
// file's path. The test is skipped, or fails under
// ROLESENV_TEST_REQUIRE_TOOLS=1, without the provider.
func (tpm *TPM) NewProviderKeyFile(t testing.TB, name string, kind Kind) string {
	t.Helper()
	testenv.RequireTool(t, "openssl")
	tcti := "TPM2OPENSSL_TCTI=swtpm:path=" + tpm.Socket
	check := exec.Command("openssl", "list", "-providers", "-provider", "tpm2")
	check.Env = append(os.Environ(), tcti)
	if err := check.Run(); err != nil {
		if os.Getenv(testenv.RequireToolsVar) == "1" {
			t.Fatalf("the TPM2 OpenSSL provider is required (%s=1): %v", testenv.RequireToolsVar, err)
		}
		t.Skipf("the TPM2 OpenSSL provider (Debian tpm2-openssl) is not installed: %v", err)
	}
	args := []string{"genpkey", "-provider", "tpm2", "-provider", "default", "-out", name + ".pem"}
	switch kind {
	case RSA2048:
		args = append(args, "-algorithm", "RSA", "-pkeyopt", "bits:2048")
	case ECC256:
		args = append(args, "-algorithm", "EC", "-pkeyopt", "group:P-256")
	case ECC384:
		args = append(args, "-algorithm", "EC", "-pkeyopt", "group:P-384")
	}
	cmd := exec.Command("openssl", args...)
	cmd.Env = append(os.Environ(), tcti)
	cmd.Dir = tpm.dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("openssl genpkey -provider tpm2: %v: %s", err, out)
	}
	if _, err := tpm.run("true"); err != nil {
		t.Fatal(err)
	}
	return tpm.Path(name + ".pem")
}
