package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/rolesenv/rolesenv/internal/credcache"
	"github.com/rolesenv/rolesenv/signer"
)

const credprocUsage = `Usage: rolesenv credential-process [flags]

Print temporary AWS credentials from IAM Roles Anywhere as the JSON that
credential_process in an AWS config file expects, so that every AWS SDK and
the AWS CLI can use a certificate and its key. It takes the flags of the
official Roles Anywhere helper (aws_signing_helper credential-process) for
certificates and keys in files.

Roles Anywhere:
  --certificate FILE         end-entity certificate: PEM or DER, a PEM file that
                             also holds the key, or a PKCS#12 bundle (required)
  --private-key FILE         private key: PKCS#8, PKCS#1 or SEC1, PEM or DER, or
                             encrypted PKCS#8 (required unless --certificate
                             holds the key)
  --intermediates FILE       intermediate CA certificates, sent in the order given
  --trust-anchor-arn ARN     trust anchor (required)
  --profile-arn ARN          profile (required)
  --role-arn ARN             role to assume (required)
  --session-duration SECS    900 to the profile's maximum (default 3600)
  --role-session-name NAME   session name (the profile must accept one)
  --endpoint URL             Roles Anywhere endpoint (default: the trust anchor's
                             region; AWS_ENDPOINT_URL_ROLESANYWHERE and
                             AWS_ENDPOINT_URL are honoured)
  --region REGION            accepted; Roles Anywhere is always called in the
                             trust anchor's region
  --private-key-passphrase-file FILE
                             passphrase of an encrypted key or PKCS#12 bundle;
                             or set ROLESENV_PRIVATE_KEY_PASSPHRASE
  --tpm-device PATH          TPM of a TPM key (--private-key handle:0x81000001
                             or a TSS2 PEM file); default /dev/tpmrm0
  --tpm-key-password-file FILE
                             the TPM key's password; or set
                             ROLESENV_TPM_KEY_PASSWORD
  --no-tpm-key-password      the TPM key has no password

Caching and deadline:
  --cache-file FILE          keep credentials in FILE (created with mode 0600)
                             and reuse them until 5 minutes before they expire,
                             one entry per certificate, trust anchor, profile and
                             role; concurrent callers wait for one another, so a
                             burst of commands makes one CreateSession; the
                             key is read and checked on a miss only. Put it
                             in a directory only you can write, such as
                             $XDG_RUNTIME_DIR or ~/.cache/rolesenv, never /tmp
  --timeout D                give up after D, waiting for the cache file's lock
                             and Roles Anywhere's retries included (default 30s)

Logging (to stderr; warnings only unless asked):
  --log-level LEVEL          debug, info, warn or error (default warn here)
  --log-format FORMAT        text or json
  --debug                    same as --log-level debug

Every flag can also be set with ROLESENV_<NAME>. --with-proxy is accepted and
does nothing (HTTPS_PROXY and NO_PROXY are always honoured); AWS_CA_BUNDLE,
AWS_USE_FIPS_ENDPOINT and AWS_USE_DUALSTACK_ENDPOINT are honoured.
--no-verify-ssl and --pkcs8-password are refused; PKCS#11, TPM and
certificate-store selectors are not supported yet.

Examples:
  # In ~/.aws/config:
  [profile onprem]
  credential_process = rolesenv credential-process --certificate /etc/pki/app.pem --private-key /etc/pki/app.key --trust-anchor-arn arn:aws:rolesanywhere:eu-west-1:111122223333:trust-anchor/TA --profile-arn arn:aws:rolesanywhere:eu-west-1:111122223333:profile/PR --role-arn arn:aws:iam::111122223333:role/app --cache-file /run/user/1000/rolesenv-creds.json

  # Try it by hand:
  rolesenv credential-process --certificate app.p12 --trust-anchor-arn ... \
      --profile-arn ... --role-arn ...    # passphrase from ROLESENV_PRIVATE_KEY_PASSPHRASE

Exit status: 0 on success; 64 usage; 78 certificate, key, cache file or
setting error; 77 access denied; 69 Roles Anywhere unavailable after
retries, or --timeout passed.
`

// processCredentials is the credential_process output, version 1.
type processCredentials struct {
	Version         int    `json:"Version"`
	AccessKeyID     string `json:"AccessKeyId"`
	SecretAccessKey string `json:"SecretAccessKey"`
	SessionToken    string `json:"SessionToken"`
	Expiration      string `json:"Expiration"`
}

// defaultCredprocTimeout bounds a call, as run's --timeout bounds its
// start-up. The AWS CLI waits for credential_process without a limit and
// the AWS SDK for Go kills it after a minute: 30s gives a slow
// CreateSession several retries and still ends with rolesenv's own error.
const defaultCredprocTimeout = 30 * time.Second

func cmdCredentialProcess(ctx context.Context, a *app, args []string) error {
	f, err := parseCredprocFlags(a, args)
	if err != nil {
		if err == errHelp {
			return nil
		}
		return err
	}
	log, err := f.log.logger(a.stderr)
	if err != nil {
		return err
	}
	a.log = log
	pauseGC() // until the exit
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	if f.cacheFile == "" && a.rolesAnywhereTLS(&f.cred) {
		// CreateSession's handshake will verify against the system's
		// roots: load them while the key and certificate are read. A
		// cached session needs no connection, so a run with a cache
		// loads them only when the cache misses.
		a.warmRoots("rolesanywhere")
	}
	// With a cache, a key in hardware is opened and a key file read on a
	// miss only (no login or touch, no key parsing, for an answer from the
	// cache).
	a.lazyKeys = f.cacheFile != ""
	client, err := a.rolesAnywhereClient(ctx, &f.cred, nil)
	if err != nil {
		return err
	}
	var creds *signer.Credentials
	if f.cacheFile != "" {
		creds, err = a.cachedSession(ctx, client, &f.cred, f.cacheFile)
	} else {
		creds, err = client.CreateSession(ctx)
	}
	if err != nil {
		return timedOut(err, f.timeout)
	}
	if creds.AssumedRoleARN != "" { // a new session, not one from the cache
		a.log.Info("credentials obtained", "source", "rolesanywhere", "identity", creds.AssumedRoleARN,
			"expires", creds.Expiration.UTC().Format(time.RFC3339))
	}
	return writeProcessCredentials(a.stdout, creds)
}

// credprocFlags are credential-process's flags.
type credprocFlags struct {
	cred      credFlags
	log       logFlags
	cacheFile string
	timeout   time.Duration
}

func parseCredprocFlags(a *app, args []string) (*credprocFlags, error) {
	fs := newFlagSet("credential-process", credprocUsage)
	var f credprocFlags
	f.cred.register(fs)
	f.log.register(fs)
	fs.StringVar(&f.cacheFile, "cache-file", "", "keep credentials in this file and reuse them")
	fs.DurationVar(&f.timeout, "timeout", defaultCredprocTimeout, "deadline, lock wait and retries included")
	if err := fs.parse(a, args); err != nil {
		return nil, err
	}
	if err := f.cred.validate(fs); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, &usageError{msg: fmt.Sprintf("credential-process takes no arguments, got %q", fs.Arg(0)),
			hint: "run 'rolesenv credential-process --help' for usage"}
	}
	if f.timeout <= 0 {
		return nil, &usageError{msg: fmt.Sprintf("invalid --timeout %s: want more than 0", f.timeout),
			hint: "whatever runs credential_process waits for it: it needs a deadline"}
	}
	// Whatever runs credential_process shows its stderr: only warnings by
	// default.
	if !fs.Changed("log-level") && !f.log.debug {
		f.log.level = "warn"
	}
	return &f, nil
}

func writeProcessCredentials(w io.Writer, c *signer.Credentials) error {
	out, err := json.Marshal(processCredentials{
		Version:         1,
		AccessKeyID:     c.AccessKeyID,
		SecretAccessKey: c.SecretAccessKey,
		SessionToken:    c.SessionToken,
		Expiration:      c.Expiration.UTC().Format(time.RFC3339),
	})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", out)
	return err
}

// cacheKey names the identity a session belongs to: the certificate (by
// fingerprint), the ARNs, the session's name and duration, and where it
// comes from.
func cacheKey(client *signer.Client, cf *credFlags, fingerprint string) string {
	return credcache.Key(fingerprint, cf.trustAnchorARN, cf.profileARN, cf.roleARN,
		cf.roleSessionName, fmt.Sprint(cf.sessionDuration), client.Endpoint())
}

// cachedSession returns the identity's credentials from the cache file
// while they have more than credcache.ReuseMargin left, else from
// CreateSession, which it stores. The file is locked for the whole
// exchange, so concurrent callers make one CreateSession between them.
func (a *app) cachedSession(ctx context.Context, client *signer.Client, cf *credFlags, path string) (*signer.Credentials, error) {
	cache, err := credcache.Open(ctx, path, credcache.Options{Logger: a.log, Now: client.Now})
	if err != nil {
		return nil, err
	}
	defer cache.Close()
	src, err := client.Identity()
	if err != nil {
		return nil, err
	}
	key := cacheKey(client, cf, src.Fingerprint())
	if creds, ok := cache.Get(key); ok {
		a.log.Debug("credentials from the cache file", "file", path,
			"expires", creds.Expiration.UTC().Format(time.RFC3339))
		return creds, nil
	}
	if err := a.loadKeyFile(); err != nil {
		return nil, err
	}
	creds, err := client.CreateSession(ctx)
	if err != nil {
		return nil, err
	}
	if err := cache.Put(key, creds); err != nil {
		a.log.Warn("failed to write the cache file", "file", path, "error", err.Error())
	}
	return creds, nil
}

// timedOut says what the --timeout deadline interrupted: the wait for
// another process's cache lock, or for Roles Anywhere. Other errors pass.
func timedOut(err error, timeout time.Duration) error {
	var lockErr *credcache.LockError
	switch {
	case errors.As(err, &lockErr) && lockErr.Timeout():
		return &timeoutError{err: err,
			hint: fmt.Sprintf("the holder may itself be waiting for Roles Anywhere; each caller gives up after --timeout (%s)", timeout)}
	case errors.Is(err, context.DeadlineExceeded):
		return &timeoutError{err: fmt.Errorf("timed out after %s waiting for Roles Anywhere: %w", timeout, err),
			hint: "raise --timeout (ROLESENV_TIMEOUT) if Roles Anywhere is slow to answer"}
	}
	return err
}

// timeoutError is the --timeout deadline passed: exit 69.
type timeoutError struct {
	err  error
	hint string
}

func (e *timeoutError) Error() string     { return e.err.Error() }
func (e *timeoutError) Unwrap() error     { return e.err }
func (e *timeoutError) Unavailable() bool { return true }
func (e *timeoutError) Hint() string      { return e.hint }
