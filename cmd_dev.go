package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/rolesenv/rolesenv/internal/awsdev"
	"github.com/rolesenv/rolesenv/internal/devpki"
)

const devUsage = `Usage: rolesenv dev [--dir DIR] [--port N] [--http]

Start a local AWS emulator (IAM Roles Anywhere, Secrets Manager, SSM
Parameter Store, STS) on 127.0.0.1 and run until interrupted. It is for
trying rolesenv and for tests; it keeps everything in memory.

DIR keeps what must survive a restart: the CA, the client certificates and
keys, the trust anchor, profile and role ARNs, and the admin access key. The
demo secrets are created afresh at every start. rolesenv dev writes:

  ca.pem          the CA: it signs the emulator's TLS certificate and the
                  client certificates, and is the Roles Anywhere trust anchor
  rsa-cert.pem, rsa-key.pem   an RSA client certificate and key
  ec-cert.pem, ec-key.pem     an EC (P-256) client certificate and key
  demo.env        a template env file using several reference forms
  aws-config      AWS config: profile dev (credential_process = rolesenv
                  credential-process ...), profile admin (static keys that
                  may write secrets)
  env.sh          export lines for ROLESENV_* and AWS_* settings

Flags:
  --dir DIR   state directory (default .rolesenv-dev)
  --port N    listen on 127.0.0.1:N (default: a free port)
  --http      serve plain HTTP instead of HTTPS

Examples:
  rolesenv dev &
  . .rolesenv-dev/env.sh
  rolesenv render --env-file .rolesenv-dev/demo.env
  rolesenv run --env-file .rolesenv-dev/demo.env -- env
  aws --profile admin secretsmanager put-secret-value \
      --secret-id demo/api-key --secret-string new-key
`

func cmdDev(ctx context.Context, a *app, args []string) error {
	fs := newFlagSet("dev", devUsage)
	dir := fs.String("dir", ".rolesenv-dev", "state directory")
	port := fs.Int("port", 0, "port on 127.0.0.1 (0: a free port)")
	plain := fs.Bool("http", false, "serve plain HTTP")
	var lf logFlags
	lf.register(fs)
	if err := fs.parse(a, args); err != nil {
		if err == errHelp {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return usageErrorf("dev takes no arguments")
	}
	log, err := lf.logger(a.stderr)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("failed to find the rolesenv binary: %w", err)
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	d, err := startDev(devOptions{dir: *dir, port: *port, http: *plain, self: self, log: log})
	if err != nil {
		return err
	}
	defer d.srv.Close()
	log.Info("emulator listening", "url", d.srv.URL(), "dir", d.dir)
	fmt.Fprint(a.stdout, d.instructions())
	<-ctx.Done()
	log.Info("emulator stopped")
	return nil
}

type devOptions struct {
	dir  string
	port int
	http bool
	self string       // the rolesenv binary, for credential_process
	log  *slog.Logger // for warnings about DIR; nil: quiet
}

// devState is what DIR keeps across restarts, besides the PEM files.
type devState struct {
	Region          string `json:"region"`
	AccountID       string `json:"account_id"`
	TrustAnchorID   string `json:"trust_anchor_id"`
	ProfileID       string `json:"profile_id"`
	AdminKeyID      string `json:"admin_access_key_id"`
	AdminSecretKey  string `json:"admin_secret_access_key"`
	TrustAnchorARN  string `json:"trust_anchor_arn"`
	ProfileARN      string `json:"profile_arn"`
	RoleARN         string `json:"role_arn"`
	EndpointURL     string `json:"endpoint_url"`
	EmulatorVersion int    `json:"version"`
}

// devEnv is a running `rolesenv dev`.
type devEnv struct {
	srv   *awsdev.Server
	dir   string
	self  string
	state devState
}

const devRoleName = "rolesenv-demo"

// startDev loads or creates DIR's state, starts the emulator, seeds it and
// writes DIR's files.
func startDev(o devOptions) (*devEnv, error) {
	dir, err := filepath.Abs(o.dir)
	if err != nil {
		return nil, err
	}
	// Checked before DIR is made (a refusal leaves nothing behind) and
	// after (someone else may have made it in between).
	if _, err := checkDevDir(dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, &configError{msg: fmt.Sprintf("failed to create %s: %v", o.dir, err)}
	}
	warnings, err := checkDevDir(dir)
	if err != nil {
		return nil, err
	}
	for _, w := range warnings {
		if o.log != nil {
			o.log.Warn(w)
		}
	}
	ca, err := loadOrCreateCA(dir)
	if err != nil {
		return nil, err
	}
	for _, kt := range []struct {
		name string
		typ  devpki.KeyType
	}{{"rsa", devpki.RSA2048}, {"ec", devpki.P256}} {
		if err := ensureClientCert(dir, kt.name, kt.typ, ca); err != nil {
			return nil, err
		}
	}
	st, err := loadDevState(dir)
	if err != nil {
		return nil, err
	}

	addr := "127.0.0.1:0"
	if o.port != 0 {
		addr = fmt.Sprintf("127.0.0.1:%d", o.port)
	}
	srv, err := awsdev.Start(awsdev.Options{
		Addr:      addr,
		HTTP:      o.http,
		Region:    st.Region,
		AccountID: st.AccountID,
		TLSCACert: ca.CertPEM(),
		TLSCAKey:  ca.KeyPEM(),
	})
	if err != nil {
		return nil, fmt.Errorf("failed to start the emulator: %w", err)
	}
	d := &devEnv{srv: srv, dir: dir, self: o.self, state: st}
	if err := d.seed(ca); err != nil {
		srv.Close()
		return nil, err
	}
	if err := d.writeFiles(o); err != nil {
		srv.Close()
		return nil, err
	}
	return d, nil
}

func loadOrCreateCA(dir string) (*devpki.Cert, error) {
	certPath, keyPath := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem")
	certPEM, err1 := os.ReadFile(certPath)
	keyPEM, err2 := os.ReadFile(keyPath)
	if err1 == nil && err2 == nil {
		ca, err := devpki.Load(certPEM, keyPEM)
		if err != nil {
			return nil, &configError{msg: fmt.Sprintf("failed to load the CA in %s: %v", dir, err),
				hint: "remove the directory to start afresh"}
		}
		return ca, nil
	}
	ca, err := devpki.NewCA(devpki.Options{CommonName: "rolesenv dev CA", Organization: "rolesenv dev", KeyType: devpki.P256})
	if err != nil {
		return nil, err
	}
	if err := writeFile(keyPath, ca.KeyPEM(), 0o600); err != nil {
		return nil, err
	}
	return ca, writeFile(certPath, ca.CertPEM(), 0o644)
}

func ensureClientCert(dir, name string, typ devpki.KeyType, ca *devpki.Cert) error {
	certPath, keyPath := filepath.Join(dir, name+"-cert.pem"), filepath.Join(dir, name+"-key.pem")
	if _, err := os.Stat(certPath); err == nil {
		if _, err := os.Stat(keyPath); err == nil {
			return nil
		}
	}
	leaf, err := ca.Leaf(devpki.Options{
		CommonName: "rolesenv-demo-" + name,
		DNSNames:   []string{name + ".demo.rolesenv.internal"},
		KeyType:    typ,
	})
	if err != nil {
		return err
	}
	if err := writeFile(keyPath, leaf.KeyPEM(), 0o600); err != nil {
		return err
	}
	return writeFile(certPath, leaf.CertPEM(), 0o644)
}

func loadDevState(dir string) (devState, error) {
	st := devState{Region: "us-east-1", AccountID: "123456789012"}
	data, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(data, &st); err != nil {
		return st, &configError{msg: fmt.Sprintf("failed to read %s: %v", filepath.Join(dir, "state.json"), err),
			hint: "remove the directory to start afresh"}
	}
	return st, nil
}

// seed creates the role, trust anchor, profile, admin user and demo data.
func (d *devEnv) seed(ca *devpki.Cert) error {
	s := &d.state
	srv := d.srv
	prefixSM := fmt.Sprintf("arn:aws:secretsmanager:%s:%s:secret:demo/*", s.Region, s.AccountID)
	prefixSSM := fmt.Sprintf("arn:aws:ssm:%s:%s:parameter/demo/*", s.Region, s.AccountID)
	s.RoleARN = srv.CreateRole(devRoleName, awsdev.RoleOptions{Policy: awsdev.Policy{Allow: []awsdev.Rule{
		{Actions: []string{"secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret", "secretsmanager:BatchGetSecretValue"},
			Resources: []string{prefixSM}},
		{Actions: []string{"secretsmanager:BatchGetSecretValue"}, Resources: []string{"*"}},
		{Actions: []string{"ssm:GetParameter", "ssm:GetParameters", "ssm:DescribeParameters"}, Resources: []string{prefixSSM}},
		{Actions: []string{"ssm:DescribeParameters"}, Resources: []string{"*"}},
		{Actions: []string{"sts:GetCallerIdentity"}, Resources: []string{"*"}},
	}}})
	s.TrustAnchorARN = srv.CreateTrustAnchor(ca.Cert, awsdev.TrustAnchorOptions{ID: s.TrustAnchorID})
	s.TrustAnchorID = lastSegment(s.TrustAnchorARN)
	s.ProfileARN = srv.CreateProfile(awsdev.ProfileOptions{ID: s.ProfileID, RoleARNs: []string{s.RoleARN}, DurationSeconds: 3600})
	s.ProfileID = lastSegment(s.ProfileARN)
	if s.AdminKeyID == "" {
		s.AdminKeyID, s.AdminSecretKey = srv.CreateUser("admin", awsdev.AllowAll)
	} else {
		srv.CreateUser("admin", awsdev.AllowAll)
		if err := srv.AddAccessKey("admin", s.AdminKeyID, s.AdminSecretKey); err != nil {
			return err
		}
	}
	s.EndpointURL = srv.URL()

	for _, sec := range []struct{ name, value string }{
		{"demo/db", `{"username":"app","password":"s3cr3t p@ss/word","port":5432}`},
		{"demo/api-key", "demo-api-key-1"},
	} {
		if _, err := srv.CreateSecret(sec.name, sec.value); err != nil {
			return fmt.Errorf("failed to create demo secret %s: %w", sec.name, err)
		}
	}
	for _, p := range []struct{ name, typ, value string }{
		{"/demo/feature-flag", "String", "on"},
		{"/demo/token", "SecureString", "demo-token-1"},
	} {
		if _, err := srv.PutParameter(p.name, p.typ, p.value); err != nil {
			return fmt.Errorf("failed to create demo parameter %s: %w", p.name, err)
		}
	}
	return nil
}

func lastSegment(arn string) string {
	return arn[strings.LastIndex(arn, "/")+1:]
}

const demoEnv = `# rolesenv demo template: every value on the right is what the command gets,
# after rolesenv resolves the references in it.

# A key of a JSON secret in Secrets Manager.
DB_USER=sm://demo/db#username
# Inline references with a filter: the password is percent-encoded for the URL.
DATABASE_URL=postgres://{{ sm://demo/db#username }}:{{ sm://demo/db#password | urlquery }}@localhost:5432/app
# A whole secret.
API_KEY=sm://demo/api-key
# SSM parameters: a plain String and a SecureString (CloudFormation form).
FEATURE_FLAG=ssm:///demo/feature-flag
TOKEN={{resolve:ssm-secure:/demo/token}}
# Literals pass through; single quotes keep a value from being resolved.
GREETING=hello from rolesenv
LOOKS_LIKE_A_REFERENCE='sm://not/resolved'
`

// writeFiles writes state.json, demo.env, aws-config and env.sh.
func (d *devEnv) writeFiles(o devOptions) error {
	st, err := json.MarshalIndent(d.state, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFile(filepath.Join(d.dir, "state.json"), append(st, '\n'), 0o600); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(d.dir, "demo.env"), []byte(demoEnv), 0o644); err != nil {
		return err
	}
	p := func(name string) string { return filepath.Join(d.dir, name) }
	credProc := strings.Join([]string{o.self, "credential-process",
		"--certificate", p("rsa-cert.pem"), "--private-key", p("rsa-key.pem"),
		"--trust-anchor-arn", d.state.TrustAnchorARN, "--profile-arn", d.state.ProfileARN,
		"--role-arn", d.state.RoleARN, "--region", d.state.Region, "--endpoint", d.srv.URL()}, " ")
	awsConfig := fmt.Sprintf(`# Written by rolesenv dev; rewritten at every start.
[profile dev]
region = %s
credential_process = %s

[profile admin]
region = %s
aws_access_key_id = %s
aws_secret_access_key = %s
`, d.state.Region, credProc, d.state.Region, d.state.AdminKeyID, d.state.AdminSecretKey)
	if err := writeFile(p("aws-config"), []byte(awsConfig), 0o600); err != nil {
		return err
	}
	var env strings.Builder
	env.WriteString("# Written by rolesenv dev; rewritten at every start. Use: . " + quoteShell(p("env.sh")) + "\n")
	export := func(k, v string) { fmt.Fprintf(&env, "export %s=%s\n", k, quoteShell(v)) }
	export("ROLESENV_CERTIFICATE", p("rsa-cert.pem"))
	export("ROLESENV_PRIVATE_KEY", p("rsa-key.pem"))
	export("ROLESENV_TRUST_ANCHOR_ARN", d.state.TrustAnchorARN)
	export("ROLESENV_PROFILE_ARN", d.state.ProfileARN)
	export("ROLESENV_ROLE_ARN", d.state.RoleARN)
	export("ROLESENV_ENDPOINT", d.srv.URL())
	export("AWS_ENDPOINT_URL", d.srv.URL())
	if o.http {
		env.WriteString("unset AWS_CA_BUNDLE\n")
	} else {
		export("AWS_CA_BUNDLE", p("ca.pem"))
	}
	export("AWS_REGION", d.state.Region)
	export("AWS_DEFAULT_REGION", d.state.Region) // the aws CLI v1 reads only this one
	export("AWS_CONFIG_FILE", p("aws-config"))
	// Keep the demo away from the real AWS: no instance metadata, and no
	// credentials from the home directory.
	export("AWS_EC2_METADATA_DISABLED", "true")
	export("AWS_SHARED_CREDENTIALS_FILE", p("no-credentials"))
	return writeFile(p("env.sh"), []byte(env.String()), 0o600)
}

// instructions are printed once the emulator is ready.
func (d *devEnv) instructions() string {
	rel := func(name string) string {
		p := filepath.Join(d.dir, name)
		if wd, err := os.Getwd(); err == nil {
			if r, err := filepath.Rel(wd, p); err == nil && !strings.HasPrefix(r, "..") {
				return r
			}
		}
		return p
	}
	cmd := commandName(d.self)
	return fmt.Sprintf(`rolesenv dev: AWS emulator ready at %s
  trust anchor  %s
  profile       %s
  role          %s

In another shell, try:
  . %s
  %s check --env-file %s
  %s render --env-file %s
  %s run --env-file %s -- env
  aws --profile dev sts get-caller-identity
  aws --profile admin secretsmanager put-secret-value --secret-id demo/api-key --secret-string demo-api-key-2

Press Ctrl-C to stop.
`, d.srv.URL(), d.state.TrustAnchorARN, d.state.ProfileARN, d.state.RoleARN,
		rel("env.sh"), cmd, rel("demo.env"), cmd, rel("demo.env"), cmd, rel("demo.env"))
}

// commandName is how the user can type the rolesenv binary at path self:
// "rolesenv" when that is what the PATH finds, else the path itself.
func commandName(self string) string {
	if p, err := exec.LookPath("rolesenv"); err == nil {
		if a, err := filepath.EvalSymlinks(p); err == nil {
			if b, err := filepath.EvalSymlinks(self); err == nil && a == b {
				return "rolesenv"
			}
		}
	}
	if wd, err := os.Getwd(); err == nil {
		if r, err := filepath.Rel(wd, self); err == nil && !strings.HasPrefix(r, "..") {
			return "./" + r
		}
	}
	return self
}

// checkDevDir looks at where DIR is before anything is written there.
// DIR holds a CA key and client keys, and its env.sh is sourced by users:
// whoever can replace a file in it, or DIR itself, runs commands in their
// shells. So DIR is refused when it, or a directory on the way to it, can
// be written by every user without the sticky bit (anyone could rename
// DIR or env.sh away and put their own in place), when DIR itself is
// writable by others at all, or when DIR, or a symbolic link on the way
// to it, belongs to another user (other than root). A directory writable
// by its group only is a warning: with a group per user, the usual
// set-up with umask 002, that group is the user alone.
//
// Both the path as given and the path with its links resolved are looked
// at.
func checkDevDir(dir string) (warnings []string, err error) {
	existing, exists := dir, true
	for p := dir; ; p = filepath.Dir(p) {
		fi, err := os.Lstat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			exists, existing = false, filepath.Dir(p)
		case err != nil:
			return nil, &configError{msg: fmt.Sprintf("failed to look at %s: %v", p, err)}
		default:
			w, err := judgeDevPath(p, fi, p == dir)
			if err != nil {
				return nil, err
			}
			warnings = append(warnings, w...)
		}
		if p == filepath.Dir(p) {
			break
		}
	}
	real, err := filepath.EvalSymlinks(existing)
	if err != nil {
		return nil, &configError{msg: fmt.Sprintf("failed to look at %s: %v", existing, err)}
	}
	if real == existing {
		return warnings, nil
	}
	for p := real; ; p = filepath.Dir(p) {
		fi, err := os.Lstat(p)
		if err != nil {
			return nil, &configError{msg: fmt.Sprintf("failed to look at %s: %v", p, err)}
		}
		w, err := judgeDevPath(p, fi, exists && p == real)
		if err != nil {
			return nil, err
		}
		warnings = append(warnings, w...)
		if p == filepath.Dir(p) {
			return warnings, nil
		}
	}
}

// judgeDevPath applies checkDevDir's rules to one path: DIR itself when
// isDir, else a directory or link on the way to it.
func judgeDevPath(p string, fi fs.FileInfo, isDir bool) (warnings []string, err error) {
	refuse := func(format string, args ...any) error {
		return &configError{msg: fmt.Sprintf(format, args...),
			hint: "use a directory that only you can write to, under directories that only root or you can write to (the default .rolesenv-dev in your project, or one under your home directory)"}
	}
	mode := fi.Mode()
	sticky := mode&fs.ModeSticky != 0
	switch {
	case mode&fs.ModeSymlink != 0:
		if !trustedOwner(fi) {
			return nil, refuse("%s is a symbolic link owned by another user (uid %d), who can point it elsewhere", p, ownerOf(fi))
		}
	case !trustedOwner(fi):
		// A directory on the way counts too: its owner can rename DIR
		// away and put another in its place.
		return nil, refuse("%s belongs to another user (uid %d), who can replace env.sh and the keys in it", p, ownerOf(fi))
	case isDir && mode&0o002 != 0:
		return nil, refuse("%s is writable by every user, who could replace env.sh and the keys in it", p)
	case mode&0o002 != 0 && !sticky:
		return nil, refuse("%s is writable by every user without the sticky bit: anyone can replace what is under it", p)
	case mode&0o020 != 0 && !sticky:
		return []string{fmt.Sprintf("%s is writable by its group (gid %d), whose members can replace what is under it", p, groupOf(fi))}, nil
	}
	return nil, nil
}

// trustedOwner reports whether fi belongs to rolesenv's user or to root.
func trustedOwner(fi fs.FileInfo) bool {
	uid := ownerOf(fi)
	return uid == 0 || uid == os.Geteuid()
}

func ownerOf(fi fs.FileInfo) int {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid)
	}
	return os.Geteuid() // no owner to compare: nothing to refuse on
}

func groupOf(fi fs.FileInfo) int {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Gid)
	}
	return -1
}

// writeFile writes data with mode perm through a temporary file of its
// own (created with that mode, never through a link), so a reader never
// sees half a file and a key never sits in a wider mode.
func writeFile(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("failed to write %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after the rename, nothing is left to remove
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return fmt.Errorf("failed to write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("failed to write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("failed to write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("failed to write %s: %w", path, err)
	}
	return nil
}
