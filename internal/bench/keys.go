package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/creack/pty"

	"github.com/rolesenv/rolesenv/internal/devpki"
	"github.com/rolesenv/rolesenv/internal/tpmkey"
)

// Keys in hardware: how long one signature takes with a key in memory
// (read from a file), in a software TPM (swtpm) and, for time to
// credentials, in a software PKCS#11 token (SoftHSM 2); and how long
// `credential-process` takes to credentials with each, next to the
// official helper's on the same keys.

// softHSMLib is where Debian's softhsm2 installs its PKCS#11 module.
const softHSMLib = "/usr/lib/softhsm/libsofthsm2.so"

// The SoftHSM token of the benchmark. Its PINs guard nothing but a key
// made for this run, in the run's temporary directory.
const (
	hsmToken = "rolesenv-bench"
	hsmLabel = "bench-key"
	hsmPIN   = "2468"
	hsmSOPIN = "13579"
)

// keysResult is what the section measured.
type keysResult struct {
	sign    []*signRow
	creds   []*credRow
	samples int // time-to-credentials samples per row
	notes   []string
}

// signRow is the latency of crypto.Signer.Sign for one key, in process.
type signRow struct {
	key  string
	lat  sample
	note string // why it was not measured
}

// credRow is time to credentials of one helper with one key.
type credRow struct {
	tool, key string
	argv      []string
	env       []string
	wall, cpu sample
	device    sample // CPU time of the swtpm process, for TPM keys
	note      string // why it was not measured
}

// keyDevices are the keys the section uses, each with its certificate
// (issued by the emulator's trust anchor CA).
type keyDevices struct {
	tpm                *swtpmProc
	tpmP256, tpmRSA    string // TSS2 key files
	tpmCert            string
	tpmErr             error
	hsmConf, hsmCert   string
	hsmErr             error
	fileCert, fileKey  string
	fileSigner, rsaKey crypto.Signer
}

// runKeys measures the section.
func (b *bench) runKeys(ctx context.Context, rep *report) error {
	ca, err := b.raCA()
	if err != nil {
		return err
	}
	dev, err := b.keyDevices(ca)
	if err != nil {
		return err
	}
	if dev.tpm != nil {
		defer dev.tpm.stop()
	}
	res := &keysResult{samples: 10}
	if b.quick {
		res.samples = 4
	}
	b.log("keys: signing latency")
	res.sign = b.measureSigning(dev)
	res.creds = b.credRows(dev)
	b.log("keys: time to credentials, %d samples per row", res.samples)
	if err := b.measureCreds(ctx, res, dev); err != nil {
		return err
	}
	if dev.tpmErr != nil {
		res.notes = append(res.notes, "swtpm: "+dev.tpmErr.Error())
	}
	if dev.hsmErr != nil {
		res.notes = append(res.notes, "SoftHSM: "+dev.hsmErr.Error())
	}
	rep.keys = res
	return nil
}

// raCA loads the CA the emulator's trust anchor trusts, to issue
// certificates for the hardware keys.
func (b *bench) raCA() (*devpki.Cert, error) {
	certPEM, err := os.ReadFile(b.emu.CACertFile)
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(b.emu.CAKeyFile)
	if err != nil {
		return nil, err
	}
	return devpki.Load(certPEM, keyPEM)
}

// keyDevices makes the keys: the emulator's file key, an RSA key in
// memory, keys in a fresh swtpm and in a fresh SoftHSM token. A device
// that cannot be set up is noted, not fatal.
func (b *bench) keyDevices(ca *devpki.Cert) (*keyDevices, error) {
	dev := &keyDevices{fileCert: b.emu.CertFile, fileKey: b.emu.KeyFile}
	keyPEM, err := os.ReadFile(b.emu.KeyFile)
	if err != nil {
		return nil, err
	}
	if dev.fileSigner, err = devpki.ParseKeyPEM(keyPEM); err != nil {
		return nil, err
	}
	if dev.rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		return nil, err
	}
	dev.tpmErr = b.setupTPM(dev, ca)
	dev.hsmErr = b.setupSoftHSM(dev, ca)
	return dev, nil
}

// setupTPM starts swtpm and makes a P-256 and an RSA-2048 key in it with
// the TPM2 OpenSSL provider, the tool the official helper's README
// names; key files whose parent is the owner hierarchy and that need no
// password, which both helpers read as written.
func (b *bench) setupTPM(dev *keyDevices, ca *devpki.Cert) error {
	for _, tool := range []string{"swtpm", "openssl"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s is not installed", tool)
		}
	}
	tpm, err := startSWTPM(filepath.Join(b.dir, "swtpm"))
	if err != nil {
		return err
	}
	dev.tpm = tpm
	dev.tpmP256 = filepath.Join(tpm.dir, "p256.pem")
	dev.tpmRSA = filepath.Join(tpm.dir, "rsa2048.pem")
	for path, alg := range map[string][]string{
		dev.tpmP256: {"-algorithm", "EC", "-pkeyopt", "group:P-256"},
		dev.tpmRSA:  {"-algorithm", "RSA", "-pkeyopt", "bits:2048"},
	} {
		cmd := exec.Command("openssl", append([]string{"genpkey", "-provider", "tpm2", "-provider", "default", "-out", path}, alg...)...)
		cmd.Env = append(os.Environ(), "TPM2OPENSSL_TCTI=swtpm:path="+tpm.socket)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("openssl genpkey -provider tpm2 (is tpm2-openssl installed?): %v: %s", err, bytes.TrimSpace(out))
		}
	}
	key, err := tpmkey.Open(dev.tpmP256, tpmkey.Options{Device: tpm.socket})
	if err != nil {
		return err
	}
	dev.tpmCert, err = writeLeaf(ca, key, filepath.Join(tpm.dir, "p256.crt"))
	return err
}

// setupSoftHSM makes a token in a SoftHSM of the run's own (its tokens in
// the run's directory) and imports a fresh P-256 key into it, as
// softhsm2-util does for a key made elsewhere.
func (b *bench) setupSoftHSM(dev *keyDevices, ca *devpki.Cert) error {
	if _, err := exec.LookPath("softhsm2-util"); err != nil {
		return errors.New("softhsm2-util is not installed")
	}
	if _, err := os.Stat(softHSMLib); err != nil {
		return fmt.Errorf("no PKCS#11 module at %s", softHSMLib)
	}
	dir := filepath.Join(b.dir, "softhsm")
	if err := os.MkdirAll(filepath.Join(dir, "tokens"), 0o700); err != nil {
		return err
	}
	dev.hsmConf = filepath.Join(dir, "softhsm2.conf")
	conf := "directories.tokendir = " + filepath.Join(dir, "tokens") + "\nobjectstore.backend = file\nlog.level = ERROR\n"
	if err := os.WriteFile(dev.hsmConf, []byte(conf), 0o600); err != nil {
		return err
	}
	key, err := devpki.NewKey(devpki.P256)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	keyFile := filepath.Join(dir, "import.pk8")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return err
	}
	defer os.Remove(keyFile)
	for _, args := range [][]string{
		{"--init-token", "--free", "--label", hsmToken, "--so-pin", hsmSOPIN, "--pin", hsmPIN},
		{"--import", keyFile, "--token", hsmToken, "--label", hsmLabel, "--id", "01", "--pin", hsmPIN},
	} {
		cmd := exec.Command("softhsm2-util", args...)
		cmd.Env = append(os.Environ(), "SOFTHSM2_CONF="+dev.hsmConf)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("softhsm2-util %s: %v: %s", args[0], err, bytes.TrimSpace(out))
		}
	}
	dev.hsmCert, err = writeLeaf(ca, key, filepath.Join(dir, "hsm.crt"))
	return err
}

// writeLeaf issues a certificate for key's public key and writes it.
func writeLeaf(ca *devpki.Cert, key crypto.Signer, path string) (string, error) {
	leaf, err := ca.Leaf(devpki.Options{CommonName: "rolesenv-bench-hardware", Key: key})
	if err != nil {
		return "", err
	}
	return path, os.WriteFile(path, leaf.CertPEM(), 0o644)
}

// measureSigning times crypto.Signer.Sign of a SHA-256 digest, as
// CreateSession makes it, one call at a time in this process.
func (b *bench) measureSigning(dev *keyDevices) []*signRow {
	nMem, nTPM := 300, 60
	if b.quick {
		nMem, nTPM = 50, 15
	}
	rows := []*signRow{
		timeSign("file, ECDSA P-256 (Go, in memory)", dev.fileSigner, nil, nMem),
		timeSign("file, RSA-2048 PKCS#1 v1.5 (Go, in memory)", dev.rsaKey, nil, nMem),
	}
	for _, k := range []struct{ name, path string }{
		{"swtpm, ECDSA P-256 (key file, owner hierarchy parent)", dev.tpmP256},
		{"swtpm, RSA-2048 PKCS#1 v1.5 (key file, owner hierarchy parent)", dev.tpmRSA},
	} {
		if dev.tpmErr != nil {
			rows = append(rows, &signRow{key: k.name, note: "not measured: swtpm could not be set up"})
			continue
		}
		key, err := tpmkey.Open(k.path, tpmkey.Options{Device: dev.tpm.socket})
		rows = append(rows, timeSign(k.name, key, err, nTPM))
	}
	return rows
}

func timeSign(name string, key crypto.Signer, openErr error, n int) *signRow {
	row := &signRow{key: name}
	if openErr != nil {
		row.note = "not measured: " + openErr.Error()
		return row
	}
	digest := sha256.Sum256([]byte(name))
	for i := range n + 3 {
		t := time.Now()
		if _, err := key.Sign(rand.Reader, digest[:], crypto.SHA256); err != nil {
			row.note, row.lat = "failed: "+err.Error(), nil
			return row
		}
		if i >= 3 { // the first signatures warm caches and connections
			row.lat = append(row.lat, time.Since(t))
		}
	}
	return row
}

// credRows lists rolesenv's and the official helper's credential-process
// with each key.
func (b *bench) credRows(dev *keyDevices) []*credRow {
	common := []string{"--trust-anchor-arn", b.emu.TrustAnchorARN, "--profile-arn", b.emu.ProfileARN,
		"--role-arn", b.emu.RoleARN, "--endpoint", b.proxies.ra.url}
	env := []string{"PATH=/usr/bin:/bin", "HOME=" + b.dir, "AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=" + filepath.Join(b.dir, "aws-config"), "AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(b.dir, "aws-credentials"),
		"SSL_CERT_FILE=" + b.rootsFile}
	hsmURI := "pkcs11:token=" + hsmToken + ";object=" + hsmLabel
	var rows []*credRow
	for _, k := range []struct {
		key, cert, priv string
		err             error
	}{
		{"file, ECDSA P-256", dev.fileCert, dev.fileKey, nil},
		{"swtpm, ECDSA P-256 key file", dev.tpmCert, dev.tpmP256, dev.tpmErr},
		{"SoftHSM 2, ECDSA P-256", dev.hsmCert, hsmURI, dev.hsmErr},
	} {
		for _, tool := range []string{"rolesenv", "official helper"} {
			row := &credRow{tool: tool, key: k.key}
			rows = append(rows, row)
			if k.err != nil {
				row.note = "not measured: the device could not be set up"
				continue
			}
			row.argv, row.env = b.credCommand(tool, k.key, k.cert, k.priv, common, env, dev, row)
		}
	}
	return rows
}

// credCommand is the command line and environment of one row; on a
// problem it sets the row's note and returns nils.
func (b *bench) credCommand(tool, key, cert, priv string, common, env []string, dev *keyDevices, row *credRow) ([]string, []string) {
	bin := b.rolesenv
	if tool == "official helper" {
		p, err := b.officialHelper()
		if err != nil {
			row.note = "not measured: the official helper could not be built here"
			return nil, nil
		}
		bin = p
	}
	var extra []string
	env = append([]string(nil), env...)
	switch {
	case strings.HasPrefix(key, "swtpm") && tool == "rolesenv":
		extra = []string{"--tpm-device", dev.tpm.socket}
	case strings.HasPrefix(key, "swtpm"):
		env = append(env, "TPM_DEVICE="+dev.tpm.socket) // the official helper's way to name a TPM
	case strings.HasPrefix(key, "SoftHSM") && tool == "rolesenv":
		p, err := b.rolesenvPKCS11()
		if err != nil {
			row.note = "not measured: " + err.Error()
			return nil, nil
		}
		bin = p
		extra = []string{"--pkcs11-lib", softHSMLib}
		env = append(env, "SOFTHSM2_CONF="+dev.hsmConf, "ROLESENV_PKCS11_PIN="+hsmPIN)
	case strings.HasPrefix(key, "SoftHSM"):
		// The official helper takes the PIN in the URI (or at a prompt).
		priv += "?pin-value=" + hsmPIN
		extra = []string{"--pkcs11-lib", softHSMLib}
		env = append(env, "SOFTHSM2_CONF="+dev.hsmConf)
	}
	args := append(append([]string{bin, "credential-process", "--certificate", cert, "--private-key", priv}, common...), extra...)
	return args, env
}

var pkcs11Build struct {
	once sync.Once
	path string
	err  error
}

// rolesenvPKCS11 builds the PKCS#11 build of rolesenv (make build-pkcs11)
// once per run: the static build under test has no PKCS#11.
func (b *bench) rolesenvPKCS11() (string, error) {
	pkcs11Build.once.Do(func() {
		b.log("building rolesenv with -tags pkcs11")
		pkcs11Build.path, pkcs11Build.err = buildRolesenv(b.dir, "pkcs11")
	})
	return pkcs11Build.path, pkcs11Build.err
}

// measureCreds runs every row once to warm up, then samples times each,
// taking turns.
func (b *bench) measureCreds(ctx context.Context, res *keysResult, dev *keyDevices) error {
	for i := -1; i < res.samples; i++ {
		for _, row := range res.creds {
			if row.argv == nil {
				continue
			}
			wall, cpu, device, err := runCredentialProcess(ctx, row, dev.tpm)
			if err != nil {
				row.note = "failed: " + err.Error()
				row.argv, row.wall, row.cpu, row.device = nil, nil, nil, nil
				b.log("keys: %s with %s: %v", row.tool, row.key, err)
				continue
			}
			if i >= 0 {
				row.wall, row.cpu = append(row.wall, wall), append(row.cpu, cpu)
				if strings.HasPrefix(row.key, "swtpm") {
					row.device = append(row.device, device)
				}
			}
		}
	}
	return ctx.Err()
}

// runCredentialProcess runs one credential-process to its exit and
// checks that it printed credentials. It returns the wall time, the
// process's CPU time (user and system) and the CPU time swtpm spent
// meanwhile.
func runCredentialProcess(ctx context.Context, row *credRow, tpm *swtpmProc) (wall, cpu, device time.Duration, err error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, row.argv[0], row.argv[1:]...)
	cmd.Env = row.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// A terminal of its own as standard input and controlling terminal:
	// the official helper opens /dev/tty before every TPM signature, even
	// for a key without a password, and fails without one.
	ptmx, tty, err := pty.Open()
	if err != nil {
		return 0, 0, 0, err
	}
	defer ptmx.Close()
	defer tty.Close()
	cmd.Stdin = tty
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	tpmBefore := tpm.cpu()
	t := time.Now()
	err = cmd.Run()
	wall = time.Since(t)
	device = tpm.cpu() - tpmBefore
	if err != nil {
		return 0, 0, 0, fmt.Errorf("%v: %s", err, lastLine(stderr.String()))
	}
	if !bytes.Contains(stdout.Bytes(), []byte(`"AccessKeyId"`)) {
		return 0, 0, 0, errors.New("no credentials in the output")
	}
	return wall, cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), device, nil
}

// swtpmProc is a software TPM on a Unix socket, with its state in dir.
type swtpmProc struct {
	dir, socket string
	cmd         *exec.Cmd
	done        chan struct{}
}

// startSWTPM starts swtpm and waits until both its sockets accept.
func startSWTPM(dir string) (*swtpmProc, error) {
	if err := os.MkdirAll(filepath.Join(dir, "state"), 0o700); err != nil {
		return nil, err
	}
	t := &swtpmProc{dir: dir, socket: filepath.Join(dir, "tpm.sock"), done: make(chan struct{})}
	t.cmd = exec.Command("swtpm", "socket", "--tpm2",
		"--tpmstate", "dir="+filepath.Join(dir, "state"),
		"--server", "type=unixio,path="+t.socket,
		"--ctrl", "type=unixio,path="+t.socket+".ctrl",
		"--flags", "not-need-init,startup-clear")
	if err := t.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { _ = t.cmd.Wait(); close(t.done) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := dialUnix(t.socket+".ctrl", t.socket)
		if err == nil {
			return t, nil
		}
		select {
		case <-t.done:
			return nil, errors.New("swtpm exited at start")
		default:
		}
		if time.Now().After(deadline) {
			t.stop()
			return nil, fmt.Errorf("swtpm did not listen within 30 s: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func dialUnix(paths ...string) error {
	for _, p := range paths {
		c, err := net.Dial("unix", p)
		if err != nil {
			return err
		}
		c.Close()
	}
	return nil
}

// cpu is the CPU time swtpm has used so far; 0 without a TPM.
func (t *swtpmProc) cpu() time.Duration {
	if t == nil {
		return 0
	}
	st, err := readProc(t.cmd.Process.Pid)
	if err != nil {
		return 0
	}
	return st.cpu
}

func (t *swtpmProc) stop() {
	_ = t.cmd.Process.Kill()
	<-t.done
}

// writeKeys is the section of the report.
func (r *report) writeKeys(p printer) {
	k := r.keys
	if k == nil {
		return
	}
	p("## 7. Keys in hardware\n\n")
	p("Signing latency: `crypto.Signer.Sign` of a SHA-256 digest (what a CreateSession signature costs), one call at a time in the harness's process, after 3 warm-up calls. A TPM key is rolesenv's `internal/tpmkey`: each signature connects to swtpm's socket, makes the parent from the owner hierarchy's standard template, loads the key under it, signs, and flushes both; nothing stays loaded between signatures. swtpm runs on this machine's CPU: a hardware TPM is much slower (tens to hundreds of milliseconds for RSA, and for making a parent).\n\n")
	p("| key | samples | median ms | p90 ms | spread |\n| --- | --- | --- | --- | --- |\n")
	for _, s := range k.sign {
		if s.note != "" {
			p("| %s | | %s | | |\n", s.key, s.note)
			continue
		}
		p("| %s | %d | %s | %s | %s |\n", s.key, len(s.lat), ms(s.lat.median()), ms(s.lat.p90()), pct(s.lat.spread()))
	}
	p("\nTime to credentials: `credential-process` from exec to exit with credentials on standard output, against the emulator through its Roles Anywhere proxy (no added latency), %d samples a row after one warm-up, the rows taking turns. CPU is the process's user and system time; swtpm's is the TPM process's own CPU time meanwhile (the signatures' work, which the helper's CPU time does not include). rolesenv opens a hardware key once at start and proves that it signs (one signature more than the request's). The official helper is %s built with cgo; it names the TPM by `TPM_DEVICE` and takes the token's PIN as `pin-value` in the URI, which rolesenv refuses (its PIN comes from `ROLESENV_PKCS11_PIN` or a file). Every process gets a terminal of its own as standard input: the official helper opens `/dev/tty` before every TPM signature, even for a key without a password, and fails without one (under a service manager, say).\n\n",
		k.samples, "`"+officialHelperModule+"`")
	p("| helper | key | wall median ms | wall p90 ms | CPU median ms | swtpm CPU median ms |\n| --- | --- | --- | --- | --- | --- |\n")
	for _, c := range k.creds {
		if c.note != "" {
			p("| %s | %s | %s | | | |\n", c.tool, c.key, c.note)
			continue
		}
		dev := ""
		if len(c.device) > 0 {
			dev = ms(c.device.median())
		}
		p("| %s | %s | %s | %s | %s | %s |\n", c.tool, c.key, ms(c.wall.median()), ms(c.wall.p90()), ms(c.cpu.median()), dev)
	}
	for _, n := range k.notes {
		p("\n- %s", n)
	}
	p("\n\n")
}
