package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// envPrefix starts the environment twin of every flag: --trust-anchor-arn
// is also ROLESENV_TRUST_ANCHOR_ARN. Flags given on the command line win.
const envPrefix = "ROLESENV_"

// noTwin lists the flags that shape output and so have no environment twin.
// --tpm-key-password has none either: it is refused, and its would-be twin
// ROLESENV_TPM_KEY_PASSWORD is where the password comes from instead.
// --pkcs11-pin likewise: ROLESENV_PKCS11_PIN holds the PIN.
var noTwin = map[string]bool{"format": true, "reveal": true, "files": true, "help": true, "tpm-key-password": true, "pkcs11-pin": true}

// envTwin returns the environment variable that sets flag name.
func envTwin(name string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// listSeparators says how a list flag's twin is split: ROLESENV_ENV_FILE is
// a ':'-separated list (like PATH), ROLESENV_KEEP_ENV a ','-separated one.
var listSeparators = map[string]string{"env-file": ":", "keep-env": ",", "template": ","}

// flagSet is a subcommand's flags and usage.
type flagSet struct {
	*pflag.FlagSet
	usage string
	// onCommandLine records the flags given as arguments (not from twins).
	onCommandLine map[string]bool
}

func newFlagSet(name, usage string) *flagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.SortFlags = false
	fs.BoolP("help", "h", false, "show help")
	f := &flagSet{FlagSet: fs, usage: usage}
	if onNewFlagSet != nil {
		onNewFlagSet(f)
	}
	return f
}

// onNewFlagSet lets tests see every command's flags (the README test).
var onNewFlagSet func(*flagSet)

// errHelp means --help was given and answered.
var errHelp = errors.New("help requested")

// parse parses args, prints help for --help, then fills every flag not
// given on the command line from its ROLESENV_ twin.
func (fs *flagSet) parse(a *app, args []string) error {
	if err := fs.Parse(args); err != nil {
		return &usageError{msg: err.Error(), hint: fmt.Sprintf("run 'rolesenv %s --help' for usage", fs.Name())}
	}
	if h, _ := fs.GetBool("help"); h {
		fmt.Fprint(a.stdout, fs.usage)
		return errHelp
	}
	fs.onCommandLine = map[string]bool{}
	fs.Visit(func(f *pflag.Flag) { fs.onCommandLine[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *pflag.Flag) {
		if fs.onCommandLine[f.Name] || noTwin[f.Name] {
			return
		}
		v, ok := a.lookupEnv(envTwin(f.Name))
		if !ok || v == "" {
			return
		}
		values := []string{v}
		if sep, ok := listSeparators[f.Name]; ok {
			values = strings.Split(v, sep)
		}
		for _, v := range values {
			if v == "" {
				continue
			}
			if err := f.Value.Set(v); err != nil {
				// Do not quote the value: a twin may hold something private.
				errs = append(errs, &usageError{msg: fmt.Sprintf("invalid %s: %v", envTwin(f.Name), redactFlagErr(err, v))})
				return
			}
			f.Changed = true
		}
	})
	return errors.Join(errs...)
}

func redactFlagErr(err error, value string) string {
	return strings.ReplaceAll(err.Error(), value, "…")
}

// logFlags are on every subcommand that talks to AWS.
type logFlags struct {
	level  string
	format string
	debug  bool
}

func (l *logFlags) register(fs *flagSet) {
	fs.StringVar(&l.level, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&l.format, "log-format", "text", "text or json")
	fs.BoolVar(&l.debug, "debug", false, "same as --log-level debug")
}

// logger builds the slog logger the flags ask for, writing to w.
func (l *logFlags) logger(w io.Writer) (*slog.Logger, error) {
	level := l.level
	if l.debug {
		level = "debug"
	}
	var lv slog.Level
	switch strings.ToLower(level) {
	case "debug":
		lv = slog.LevelDebug
	case "info":
		lv = slog.LevelInfo
	case "warn", "warning":
		lv = slog.LevelWarn
	case "error":
		lv = slog.LevelError
	default:
		return nil, usageErrorf("invalid --log-level %q (want debug, info, warn or error)", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch l.format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usageErrorf("invalid --log-format %q (want text or json)", l.format)
}

// credFlags select and configure the credential source. The names are the
// official Roles Anywhere helper's, so its command lines carry over.
type credFlags struct {
	certificate     string
	privateKey      string
	intermediates   string
	passphraseFile  string
	tpmDevice       string
	tpmPasswordFile string
	noTPMPassword   bool
	pkcs11Lib       string
	pkcs11PINFile   string
	reusePIN        bool
	trustAnchorARN  string
	profileARN      string
	roleARN         string
	sessionDuration int
	roleSessionName string
	region          string
	endpoint        string
	withProxy       bool

	// Refused: see validate.
	noVerifySSL       bool
	pkcs8Password     string
	certSelector      string
	systemStoreName   string
	useLatestExpiring bool
	tpmKeyPassword    string
	pkcs11PIN         string
}

func (c *credFlags) register(fs *flagSet) {
	fs.StringVar(&c.certificate, "certificate", "", "end-entity certificate (PEM or DER), or a PKCS#12 bundle")
	fs.StringVar(&c.privateKey, "private-key", "", "private key (PKCS#8, PKCS#1 or SEC1; PEM or DER), or a TPM key (TSS2 PEM file, handle:0x81000001)")
	fs.StringVar(&c.intermediates, "intermediates", "", "intermediate certificates (PEM bundle, leaf first)")
	fs.StringVar(&c.passphraseFile, "private-key-passphrase-file", "", "file holding the passphrase of an encrypted key or bundle")
	fs.StringVar(&c.tpmDevice, "tpm-device", "", "TPM character device or software TPM socket (default /dev/tpmrm0)")
	fs.StringVar(&c.tpmPasswordFile, "tpm-key-password-file", "", "file holding the TPM key's password")
	fs.BoolVar(&c.noTPMPassword, "no-tpm-key-password", false, "the TPM key has no password")
	fs.StringVar(&c.pkcs11Lib, "pkcs11-lib", "", "PKCS#11 module for pkcs11: URIs (default p11-kit's proxy module)")
	fs.StringVar(&c.pkcs11PINFile, "pkcs11-pin-file", "", "file holding the PKCS#11 token's user PIN")
	fs.BoolVar(&c.reusePIN, "reuse-pin", false, "send the token's PIN again when the key asks for it before each signature")
	fs.StringVar(&c.trustAnchorARN, "trust-anchor-arn", "", "Roles Anywhere trust anchor ARN")
	fs.StringVar(&c.profileARN, "profile-arn", "", "Roles Anywhere profile ARN")
	fs.StringVar(&c.roleARN, "role-arn", "", "IAM role ARN to assume")
	fs.IntVar(&c.sessionDuration, "session-duration", 3600, "session duration in seconds (900 to the profile's maximum)")
	fs.StringVar(&c.roleSessionName, "role-session-name", "", "role session name")
	fs.StringVar(&c.region, "region", "", "AWS region")
	fs.StringVar(&c.endpoint, "endpoint", "", "Roles Anywhere endpoint URL")
	fs.BoolVar(&c.withProxy, "with-proxy", false, "accepted for compatibility; proxies are always honoured")

	fs.BoolVar(&c.noVerifySSL, "no-verify-ssl", false, "refused")
	fs.StringVar(&c.pkcs8Password, "pkcs8-password", "", "refused")
	fs.StringVar(&c.certSelector, "cert-selector", "", "not supported yet")
	fs.StringVar(&c.systemStoreName, "system-store-name", "", "not supported yet")
	fs.BoolVar(&c.useLatestExpiring, "use-latest-expiring-certificate", false, "not supported yet")
	fs.StringVar(&c.tpmKeyPassword, "tpm-key-password", "", "refused")
	fs.StringVar(&c.pkcs11PIN, "pkcs11-pin", "", "refused")
	for _, name := range []string{"no-verify-ssl", "pkcs8-password", "cert-selector", "system-store-name",
		"use-latest-expiring-certificate", "tpm-key-password", "pkcs11-pin"} {
		_ = fs.MarkHidden(name)
	}
}

// validate refuses the helper's flags that rolesenv does not take.
func (c *credFlags) validate(fs *flagSet) error {
	if fs.Changed("no-verify-ssl") {
		return &usageError{msg: "--no-verify-ssl is refused: rolesenv always verifies TLS",
			hint: "to trust a private CA, point AWS_CA_BUNDLE at its PEM file"}
	}
	if fs.Changed("pkcs8-password") {
		return &usageError{msg: "--pkcs8-password is refused: a passphrase on the command line is visible to every user of the machine",
			hint: "set ROLESENV_PRIVATE_KEY_PASSPHRASE or use --private-key-passphrase-file"}
	}
	if fs.Changed("tpm-key-password") {
		return &usageError{msg: "--tpm-key-password is refused: a password on the command line is visible to every user of the machine",
			hint: "set " + tpmPasswordEnv + " or use --tpm-key-password-file"}
	}
	if c.noTPMPassword && c.tpmPasswordFile != "" {
		return &usageError{msg: "--no-tpm-key-password and --tpm-key-password-file are both given", hint: "give only one of them"}
	}
	for _, name := range []string{"cert-selector", "system-store-name", "use-latest-expiring-certificate"} {
		if fs.Changed(name) {
			return &usageError{msg: fmt.Sprintf("--%s is not supported yet: rolesenv reads certificates and keys from files", name)}
		}
	}
	return c.validatePKCS11(fs)
}

// rolesAnywhere reports whether Roles Anywhere is the credential source:
// any of its settings is given.
func (c *credFlags) rolesAnywhere() bool {
	return c.certificate != "" || c.privateKey != "" || c.trustAnchorARN != "" ||
		c.profileARN != "" || c.roleARN != ""
}

// envFlags choose the template env files and what else the child inherits.
type envFlags struct {
	envFiles []string
	fromEnv  bool
	cleanEnv bool
	keepEnv  []string
	timeout  time.Duration
}

func (e *envFlags) register(fs *flagSet) {
	fs.StringArrayVar(&e.envFiles, "env-file", nil, "template env file (repeatable; later files win; - is stdin)")
	fs.BoolVar(&e.fromEnv, "from-env", false, "also resolve inherited variables whose whole value is a reference")
	fs.BoolVar(&e.cleanEnv, "clean-env", false, "give the command only the files' variables (and --keep-env)")
	fs.StringSliceVar(&e.keepEnv, "keep-env", nil, "with --clean-env, also pass these variables (NAME,...)")
	fs.DurationVar(&e.timeout, "timeout", 30*time.Second, "start-up deadline, retries included")
}

// runFlags are the watching and supervising flags of run.
type runFlags struct {
	once              bool
	interval          time.Duration
	debounce          time.Duration
	onChange          string
	stopSignal        string
	stopTimeout       time.Duration
	maxRestarts       int
	restartWindow     time.Duration
	maxStale          time.Duration
	refreshSignal     string
	parentDeathSignal string
	user              string
	childCredentials  string
	metricsListen     string
	files             fileFlags
}

// watchFlagNames are the flags that make no sense with --once.
var watchFlagNames = []string{"interval", "debounce", "on-change", "stop-signal", "stop-timeout",
	"max-restarts", "restart-window", "max-stale", "refresh-signal", "metrics-listen",
	"reload-signal", "reload-command", "reload-timeout"}

func (r *runFlags) register(fs *flagSet) {
	fs.BoolVar(&r.once, "once", false, "resolve, then exec the command in place of rolesenv (no watching)")
	r.interval = 5 * time.Minute
	fs.Var(intervalValue{&r.interval}, "interval", "how often to check for rotation (jittered)")
	fs.DurationVar(&r.debounce, "debounce", 5*time.Second, "wait this long after a change for more changes")
	fs.StringVar(&r.onChange, "on-change", "restart", "restart, exit (status 75) or none")
	fs.StringVar(&r.stopSignal, "stop-signal", "SIGTERM", "signal that stops the command for a restart")
	fs.DurationVar(&r.stopTimeout, "stop-timeout", 10*time.Second, "wait this long after --stop-signal, then SIGKILL")
	fs.IntVar(&r.maxRestarts, "max-restarts", 5, "restarts allowed per --restart-window")
	fs.DurationVar(&r.restartWindow, "restart-window", 10*time.Minute, "window of the restart budget")
	fs.DurationVar(&r.maxStale, "max-stale", 0, "stop and exit 69 after this long without a successful check (0: never)")
	fs.StringVar(&r.refreshSignal, "refresh-signal", "", "signal that triggers an immediate check instead of being forwarded")
	fs.StringVar(&r.parentDeathSignal, "parent-death-signal", "SIGTERM", "signal the command gets if rolesenv dies")
	fs.StringVar(&r.user, "user", "", "run the command as USER[:GROUP]")
	fs.StringVar(&r.childCredentials, "child-credentials", "none", "none, or endpoint: serve the role's credentials to the command")
	fs.StringVar(&r.metricsListen, "metrics-listen", "", "serve /metrics, /healthz and /readyz on [HOST:]PORT (a bare port: 127.0.0.1)")
	r.files.register(fs, true)
}

// minInterval is the shortest --interval. Each check costs one call per
// secret and one per 10 parameters: an interval of milliseconds (5ms
// typed for 5m) would make hundreds of calls a second from one instance,
// and a fleet would exhaust the account's quotas. A check sooner than
// the schedule is what --refresh-signal is for.
const minInterval = time.Second

// intervalValue is --interval: a duration of at least minInterval.
type intervalValue struct{ d *time.Duration }

func (v intervalValue) String() string {
	if v.d == nil {
		return ""
	}
	return v.d.String()
}

func (v intervalValue) Type() string { return "duration" }

func (v intervalValue) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return errors.New("not a duration (e.g. 5m, 30s, 1h)")
	}
	if d < minInterval {
		return fmt.Errorf("want %v or more: checks more often would flood AWS with calls (m is minutes, ms milliseconds); "+
			"--refresh-signal asks for a check at once", minInterval)
	}
	*v.d = d
	return nil
}
