package main

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/rolesenv/rolesenv/inject"
	"github.com/rolesenv/rolesenv/internal/tpmkey"
	"github.com/rolesenv/rolesenv/signer"
)

// passphraseEnv holds the passphrase of an encrypted key or PKCS#12 bundle.
// It is not a flag's twin: a passphrase never goes in argv.
const passphraseEnv = "ROLESENV_PRIVATE_KEY_PASSPHRASE"

// rolesAnywhereProvider builds the refreshing Roles Anywhere credentials
// provider from the credential flags. The files are loaded and checked
// now (a problem exits 78 before anything starts); credentials are
// fetched on the first request that needs them, and the provider logs the
// identity then.
func (a *app) rolesAnywhereProvider(ctx context.Context, cf *credFlags, cfg aws.Config) (aws.CredentialsProvider, error) {
	client, err := a.rolesAnywhereClient(ctx, cf, cfg.ConfigSources)
	if err != nil {
		return nil, err
	}
	if cfg.Region != "" && cfg.Region != client.Region() {
		a.log.Debug("IAM Roles Anywhere is called in the trust anchor's region; the other services use theirs",
			"rolesanywhere_region", client.Region(), "region", cfg.Region)
	}
	return signer.NewProvider(client, signer.ProviderOptions{Logger: a.log}), nil
}

// rolesAnywhereClient loads the certificate and key the flags name, runs
// the local checks (logging their warnings), and makes a CreateSession
// client. Roles Anywhere is always called in the trust anchor's region, the
// only one where the trust anchor exists; --region applies to the services.
// sources are the SDK's configuration sources, for the FIPS and dual-stack
// settings of the profile (nil: the environment only).
func (a *app) rolesAnywhereClient(ctx context.Context, cf *credFlags, sources []any) (*signer.Client, error) {
	if err := cf.requireRolesAnywhere(); err != nil {
		return nil, err
	}
	pass, err := a.passphrase(cf)
	if err != nil {
		return nil, err
	}
	opts := signer.LoadOptions{
		Certificate:   cf.certificate,
		PrivateKey:    cf.privateKey,
		Intermediates: cf.intermediates,
		Passphrase:    pass,
	}
	hw, err := a.hardwareKey(cf)
	if err != nil {
		return nil, err
	}
	if hw != nil {
		opts.PrivateKey, opts.Signer, opts.KeyName = "", hw, cf.privateKey
	}
	if _, err := a.tokenIdentity(cf, &opts); err != nil {
		return nil, err
	}
	if a.keyFile = a.lazyKeyFile(cf, &opts); a.keyFile != nil {
		opts.PrivateKey, opts.Signer, opts.KeyName = "", a.keyFile, cf.privateKey
	}
	src, err := signer.NewFileIdentity(opts, nil, a.log)
	if err != nil {
		return nil, withPassphraseHint(cf.withFlag(err))
	}
	id, err := src.Current()
	if err != nil {
		return nil, cf.withFlag(err)
	}
	if a.keyFile != nil {
		a.keyFile.pub = id.Certificate.PublicKey
	}
	warns, err := id.Check(time.Now())
	if err != nil {
		return nil, cf.withFlag(err)
	}
	for _, w := range warns {
		a.log.Warn(w.Msg, "file", w.Path)
	}
	caBundle, err := a.caBundle()
	if err != nil {
		return nil, err
	}
	fips, dualStack := a.endpointVariants(ctx, sources)
	client, err := signer.NewClient(src, signer.Config{
		TrustAnchorARN:  cf.trustAnchorARN,
		ProfileARN:      cf.profileARN,
		RoleARN:         cf.roleARN,
		RoleSessionName: cf.roleSessionName,
		Duration:        time.Duration(cf.sessionDuration) * time.Second,
		Endpoint:        a.rolesAnywhereEndpoint(cf),
		UseFIPS:         fips,
		UseDualStack:    dualStack,
		CABundle:        caBundle,
		UserAgent:       "rolesenv/" + version,
		Observe:         a.observeCreateSession(),
		Logger:          a.log,
	})
	if err != nil {
		return nil, cf.withFlag(err)
	}
	a.log.Info("credential source", "source", "rolesanywhere",
		"certificate", id.CertificatePath(), "serial", id.Serial(),
		"role", cf.roleARN, "endpoint", client.Endpoint())
	return client, nil
}

// settingFlags names what sets each setting a signer.ConfigError names:
// the signer is a library and speaks of settings, not of rolesenv's flags.
var settingFlags = map[string]string{
	"certificate":       "--certificate",
	"private key":       "--private-key",
	"trust anchor ARN":  "--trust-anchor-arn",
	"profile ARN":       "--profile-arn",
	"role ARN":          "--role-arn",
	"ARNs":              "--trust-anchor-arn, --profile-arn, --role-arn",
	"session duration":  "--session-duration",
	"role session name": "--role-session-name",
	"endpoint":          "--endpoint",
	"CA bundle":         "AWS_CA_BUNDLE",
}

// withFlag says which flag to change in a signer error about a setting or
// a file; other errors, and a file no flag names, pass unchanged. The
// error keeps the signer's in its tree, for its class, cause and hint.
func (c *credFlags) withFlag(err error) error {
	switch e := err.(type) {
	case *signer.ConfigError:
		if flag, ok := settingFlags[e.Field]; ok {
			return &flagError{msg: flag + ": " + e.Msg, err: err}
		}
	case *signer.FileError:
		if flag := c.fileFlag(e.Path); flag != "" {
			return &flagError{msg: flag + ": " + e.Error(), err: err}
		}
	}
	return err
}

// fileFlag is the flag that named path, or "".
func (c *credFlags) fileFlag(path string) string {
	switch path {
	case "":
		return ""
	case c.certificate:
		return "--certificate"
	case c.privateKey:
		return "--private-key"
	case c.intermediates:
		return "--intermediates"
	}
	return ""
}

type flagError struct {
	msg string
	err error
}

func (e *flagError) Error() string { return e.msg }
func (e *flagError) Unwrap() error { return e.err }

// requireRolesAnywhere names every missing required setting at once.
func (c *credFlags) requireRolesAnywhere() error {
	var missing, twins []string
	for _, f := range []struct{ name, value string }{
		{"certificate", c.certificate},
		{"trust-anchor-arn", c.trustAnchorARN},
		{"profile-arn", c.profileARN},
		{"role-arn", c.roleARN},
	} {
		if f.value == "" {
			missing = append(missing, "--"+f.name)
			twins = append(twins, envTwin(f.name))
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return &usageError{
		msg:  "IAM Roles Anywhere needs " + strings.Join(missing, ", "),
		hint: "give them as flags or set " + strings.Join(twins, ", "),
	}
}

// passphrase reads the key's passphrase from --private-key-passphrase-file
// or ROLESENV_PRIVATE_KEY_PASSPHRASE; nil when neither is set.
func (a *app) passphrase(cf *credFlags) ([]byte, error) {
	env := a.getenv(passphraseEnv)
	if cf.passphraseFile == "" {
		if env == "" {
			return nil, nil
		}
		return []byte(env), nil
	}
	if env != "" {
		return nil, &usageError{msg: "both " + passphraseEnv + " and --private-key-passphrase-file are set",
			hint: "set only one of them"}
	}
	data, err := readSmallFile(cf.passphraseFile, 64<<10)
	if err != nil {
		return nil, &configError{msg: fmt.Sprintf("passphrase file %s: %v", cf.passphraseFile, err)}
	}
	// One line ending is the file's, not the passphrase's.
	data = []byte(strings.TrimSuffix(strings.TrimSuffix(string(data), "\n"), "\r"))
	if len(data) == 0 {
		return nil, &configError{msg: fmt.Sprintf("passphrase file %s is empty", cf.passphraseFile)}
	}
	return data, nil
}

// passphraseHinted adds where the passphrase comes from to a signer error
// about it.
type passphraseHinted struct{ error }

func (e passphraseHinted) Unwrap() error { return e.error }
func (e passphraseHinted) Hint() string {
	return "the passphrase comes from " + passphraseEnv + " or --private-key-passphrase-file"
}

func withPassphraseHint(err error) error {
	if errors.Is(err, signer.ErrPassphraseRequired) || errors.Is(err, signer.ErrWrongPassphrase) {
		return passphraseHinted{err}
	}
	return err
}

// tpmPasswordEnv holds the password of a TPM key, the twin the refused
// --tpm-key-password would have.
const tpmPasswordEnv = "ROLESENV_TPM_KEY_PASSWORD"

// hardwareKey opens the TPM key --private-key names (a TSS2 PEM file or
// handle:0x...), proving that it signs; nil for a key in a file.
func (a *app) hardwareKey(cf *credFlags) (crypto.Signer, error) {
	if cf.privateKey == "" || !tpmkey.Recognize(cf.privateKey) {
		if cf.tpmDevice != "" || cf.tpmPasswordFile != "" || cf.noTPMPassword {
			return nil, &usageError{msg: "--tpm-device, --tpm-key-password-file and --no-tpm-key-password need a TPM key in --private-key",
				hint: "name a key file in the TSS2 PEM form, or a persistent key as handle:0x81000001"}
		}
		return nil, nil
	}
	pw, err := a.tpmPassword(cf)
	if err != nil {
		return nil, err
	}
	return a.openKey(&signer.LoadOptions{Certificate: cf.certificate}, func() (crypto.Signer, error) {
		key, err := tpmkey.Open(cf.privateKey, tpmkey.Options{Device: cf.tpmDevice, Password: pw, NoPassword: cf.noTPMPassword})
		if err != nil {
			return nil, tpmHinted{err}
		}
		a.log.Debug("TPM key opened", "key", cf.privateKey, "device", key.Device())
		return key, nil
	})
}

// tpmPassword reads the TPM key's password from --tpm-key-password-file
// or ROLESENV_TPM_KEY_PASSWORD; nil when neither is set.
func (a *app) tpmPassword(cf *credFlags) ([]byte, error) {
	env := a.getenv(tpmPasswordEnv)
	switch {
	case env != "" && cf.tpmPasswordFile != "":
		return nil, &usageError{msg: "both " + tpmPasswordEnv + " and --tpm-key-password-file are set", hint: "set only one of them"}
	case env != "" && cf.noTPMPassword:
		return nil, &usageError{msg: "both " + tpmPasswordEnv + " and --no-tpm-key-password are set", hint: "set only one of them"}
	case env != "":
		return []byte(env), nil
	case cf.tpmPasswordFile == "":
		return nil, nil
	}
	data, err := readSmallFile(cf.tpmPasswordFile, 64<<10)
	if err != nil {
		return nil, &configError{msg: fmt.Sprintf("TPM key password file %s: %v", cf.tpmPasswordFile, err)}
	}
	data = []byte(strings.TrimSuffix(strings.TrimSuffix(string(data), "\n"), "\r"))
	if len(data) == 0 {
		return nil, &configError{msg: fmt.Sprintf("TPM key password file %s is empty", cf.tpmPasswordFile),
			hint: "for a key without a password, use --no-tpm-key-password"}
	}
	return data, nil
}

// tpmHinted adds the flags that matter to a TPM key error.
type tpmHinted struct{ error }

func (e tpmHinted) Unwrap() error { return e.error }
func (e tpmHinted) Hint() string {
	switch {
	case errors.Is(e.error, tpmkey.ErrPasswordRequired), errors.Is(e.error, tpmkey.ErrWrongPassword):
		return "the password comes from " + tpmPasswordEnv + " or --tpm-key-password-file; --no-tpm-key-password says the key has none"
	case errors.Is(e.error, tpmkey.ErrNoDevice), errors.Is(e.error, tpmkey.ErrUnreachable), errors.Is(e.error, fs.ErrPermission):
		return "name the TPM with --tpm-device (or ROLESENV_TPM_DEVICE); the user needs read-write access to it"
	}
	return ""
}

// rolesAnywhereEndpoint is --endpoint, then AWS_ENDPOINT_URL_ROLESANYWHERE,
// then AWS_ENDPOINT_URL (both ignored with
// AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true, as the SDKs do), else "" for
// the region's own endpoint.
func (a *app) rolesAnywhereEndpoint(cf *credFlags) string {
	if cf.endpoint != "" {
		return cf.endpoint
	}
	if strings.EqualFold(a.getenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"), "true") {
		return ""
	}
	if e := a.getenv("AWS_ENDPOINT_URL_ROLESANYWHERE"); e != "" {
		return e
	}
	return a.getenv("AWS_ENDPOINT_URL")
}

// endpointVariants reports the FIPS and dual-stack settings: from the SDK's
// configuration sources (environment, then profile) when given, else from
// AWS_USE_FIPS_ENDPOINT and AWS_USE_DUALSTACK_ENDPOINT.
func (a *app) endpointVariants(ctx context.Context, sources []any) (fips, dualStack bool) {
	type fipsSource interface {
		GetUseFIPSEndpoint(context.Context) (aws.FIPSEndpointState, bool, error)
	}
	type dualStackSource interface {
		GetUseDualStackEndpoint(context.Context) (aws.DualStackEndpointState, bool, error)
	}
	fips = strings.EqualFold(a.getenv("AWS_USE_FIPS_ENDPOINT"), "true")
	dualStack = strings.EqualFold(a.getenv("AWS_USE_DUALSTACK_ENDPOINT"), "true")
	var fipsFound, dualFound bool
	for _, s := range sources {
		if f, ok := s.(fipsSource); ok && !fipsFound {
			if v, found, err := f.GetUseFIPSEndpoint(ctx); err == nil && found {
				fips, fipsFound = v == aws.FIPSEndpointStateEnabled, true
			}
		}
		if d, ok := s.(dualStackSource); ok && !dualFound {
			if v, found, err := d.GetUseDualStackEndpoint(ctx); err == nil && found {
				dualStack, dualFound = v == aws.DualStackEndpointStateEnabled, true
			}
		}
	}
	return fips, dualStack
}

// caBundle reads the file AWS_CA_BUNDLE names, if any.
func (a *app) caBundle() ([]byte, error) {
	p := a.getenv("AWS_CA_BUNDLE")
	if p == "" {
		return nil, nil
	}
	data, err := readSmallFile(p, signer.MaxFileSize)
	if err != nil {
		return nil, &configError{msg: fmt.Sprintf("AWS_CA_BUNDLE %s: %v", p, err)}
	}
	return data, nil
}

// readSmallFile reads at most max bytes of a file, with errors that name
// the cause without repeating the path.
func readSmallFile(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return nil, pe.Err
		}
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("larger than %d bytes", max)
	}
	return data, nil
}

// withCredentialLog wraps the SDK default chain's provider so that the
// first credentials it obtains are logged with their source (the chain
// resolves lazily, so the source is known only then). Roles Anywhere's
// provider logs its identity itself.
func (a *app) withCredentialLog(p aws.CredentialsProvider) aws.CredentialsProvider {
	if p == nil {
		return nil
	}
	return &loggedProvider{CredentialsProvider: p, log: a.log}
}

type loggedProvider struct {
	aws.CredentialsProvider
	log  *slog.Logger
	once sync.Once
}

func (l *loggedProvider) Retrieve(ctx context.Context) (aws.Credentials, error) {
	c, err := l.CredentialsProvider.Retrieve(ctx)
	if err != nil {
		return c, &chainError{err: err}
	}
	l.once.Do(func() {
		attrs := []any{"source", "default-chain", "provider", c.Source}
		if c.AccountID != "" {
			attrs = append(attrs, "account", c.AccountID)
		}
		if c.CanExpire {
			attrs = append(attrs, "expires", c.Expires.UTC().Format(time.RFC3339))
		}
		l.log.Info("credentials obtained", attrs...)
	})
	return c, nil
}

// chainError is a failure of the default chain as rolesenv shows it,
// wherever it ends up (an error line, the credentials endpoint's log):
// the credential_process provider quotes the process's output when it
// cannot parse it, and that output may hold credentials, so it is never
// shown. The cause stays in the tree for errors.As.
type chainError struct{ err error }

func (e *chainError) Error() string { return inject.CredentialError(e.err) }
func (e *chainError) Unwrap() error { return e.err }

// Unavailable reports a chain that did not answer before the deadline
// (instance metadata, STS, a credential_process that hangs): AWS could not
// be reached in time, exit 69, as for references.
func (e *chainError) Unavailable() bool { return errors.Is(e.err, context.DeadlineExceeded) }

// Invalidate passes on to the SDK's cache (aws.CredentialsCache), so that
// credentials AWS refused are dropped and the next Retrieve asks the
// chain's source again. Roles Anywhere's provider has its own Invalidate
// and is not wrapped.
func (l *loggedProvider) Invalidate() {
	if i, ok := l.CredentialsProvider.(interface{ Invalidate() }); ok {
		i.Invalidate()
	}
}

// IsCredentialsProvider lets aws.IsCredentialsProvider see the wrapped
// provider's type.
func (l *loggedProvider) IsCredentialsProvider(target aws.CredentialsProvider) bool {
	return aws.IsCredentialsProvider(l.CredentialsProvider, target)
}
