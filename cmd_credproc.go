package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/rolesenv/rolesenv/signer"
	"golang.org/x/sys/unix"
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

Caching:
  --cache-file FILE          keep credentials in FILE (created with mode 0600)
                             and reuse them until 5 minutes before they expire,
                             one entry per certificate, trust anchor, profile and
                             role; concurrent callers wait for one another, so a
                             burst of commands makes one CreateSession

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

Exit status: 0 on success; 64 usage; 78 certificate, key or setting error;
77 access denied; 69 Roles Anywhere unavailable after retries.
`

// processCredentials is the credential_process output, version 1.
type processCredentials struct {
	Version         int    `json:"Version"`
	AccessKeyID     string `json:"AccessKeyId"`
	SecretAccessKey string `json:"SecretAccessKey"`
	SessionToken    string `json:"SessionToken"`
	Expiration      string `json:"Expiration"`
}

func cmdCredentialProcess(ctx context.Context, a *app, args []string) error {
	fs := newFlagSet("credential-process", credprocUsage)
	var cf credFlags
	var lf logFlags
	cf.register(fs)
	lf.register(fs)
	cacheFile := fs.String("cache-file", "", "keep credentials in this file and reuse them")
	if err := fs.parse(a, args); err != nil {
		if err == errHelp {
			return nil
		}
		return err
	}
	if err := cf.validate(fs); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return &usageError{msg: fmt.Sprintf("credential-process takes no arguments, got %q", fs.Arg(0)),
			hint: "run 'rolesenv credential-process --help' for usage"}
	}
	// Whatever runs credential_process shows its stderr: only warnings by
	// default.
	if !fs.Changed("log-level") && !lf.debug {
		lf.level = "warn"
	}
	log, err := lf.logger(a.stderr)
	if err != nil {
		return err
	}
	a.log = log

	client, err := a.rolesAnywhereClient(ctx, &cf, nil)
	if err != nil {
		return err
	}
	var creds *signer.Credentials
	if *cacheFile != "" {
		creds, err = cachedSession(ctx, a, client, &cf, *cacheFile)
	} else {
		creds, err = client.CreateSession(ctx)
	}
	if err != nil {
		return err
	}
	if creds.AssumedRoleARN != "" { // a new session, not one from the cache
		a.log.Info("credentials obtained", "source", "rolesanywhere", "identity", creds.AssumedRoleARN,
			"expires", creds.Expiration.UTC().Format(time.RFC3339))
	}
	return writeProcessCredentials(a.stdout, creds)
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

// cacheReuseMargin: cached credentials are handed out until this long
// before they expire.
const cacheReuseMargin = 5 * time.Minute

// credCache is the cache file: entries by identity key.
type credCache struct {
	Version int                           `json:"version"`
	Entries map[string]processCredentials `json:"entries"`
}

// cacheKey identifies what a session depends on: the certificate (by
// fingerprint), the ARNs, the session's name and duration, and where it
// comes from.
func cacheKey(client *signer.Client, cf *credFlags, fingerprint string) string {
	h := sha256.New()
	for _, s := range []string{fingerprint, cf.trustAnchorARN, cf.profileARN, cf.roleARN,
		cf.roleSessionName, fmt.Sprint(cf.sessionDuration), client.Endpoint()} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// cacheMagic starts every cache file rolesenv writes (json.Marshal of a
// credCache), and so also one that a crash cut short.
const cacheMagic = `{"version":`

// maxCacheFile bounds the cache file read.
const maxCacheFile = 4 << 20

// cachedSession returns credentials from the cache file while they have
// more than cacheReuseMargin left, else from CreateSession, which it
// stores. The file is locked (flock) for the whole exchange, so concurrent
// callers make one CreateSession between them.
//
// The file holds secrets and is rewritten in place, so rolesenv writes
// only to a regular file that it owns, that nobody else may read, that has
// one link, and that is empty or holds its cache (whole, or cut short by a
// crash). A symbolic link is not followed: one planted where the cache
// will be (in a shared directory) must not turn into credentials written
// over another file of the user's. Anything else is refused and left as
// it is.
func cachedSession(ctx context.Context, a *app, client *signer.Client, cf *credFlags, path string) (*signer.Credentials, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			return nil, &configError{msg: fmt.Sprintf("cache file %s is a symbolic link, which rolesenv does not follow", path),
				hint: "name the cache file itself"}
		}
		return nil, &configError{msg: fmt.Sprintf("cache file %s: %v", path, pathCause(err))}
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return nil, &configError{msg: fmt.Sprintf("cache file %s: %v", path, err)}
	}
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return nil, &configError{msg: fmt.Sprintf("cache file %s is not a regular file", path)}
	case int(st.Uid) != os.Geteuid():
		return nil, &configError{msg: fmt.Sprintf("cache file %s belongs to another user", path)}
	case st.Mode&0o077 != 0:
		return nil, &configError{msg: fmt.Sprintf("cache file %s is accessible by group or others (mode %04o)", path, st.Mode&0o777),
			hint: "it holds credentials: chmod 600 it, or remove it and let rolesenv create it"}
	case st.Nlink != 1:
		return nil, &configError{msg: fmt.Sprintf("cache file %s has another hard link", path),
			hint: "the cache is rewritten in place: give it a file of its own"}
	}
	if err := flock(ctx, f); err != nil {
		return nil, &configError{msg: fmt.Sprintf("cache file %s: failed to lock: %v", path, err)}
	}

	src, err := client.Identity()
	if err != nil {
		return nil, err
	}
	key := cacheKey(client, cf, src.Fingerprint())
	data, err := io.ReadAll(io.LimitReader(f, maxCacheFile))
	if err != nil {
		return nil, &configError{msg: fmt.Sprintf("cache file %s: %v", path, err)}
	}
	var cache credCache
	switch {
	case len(bytes.TrimSpace(data)) == 0:
		cache = credCache{Version: 1, Entries: map[string]processCredentials{}}
	case json.Unmarshal(data, &cache) == nil && cache.Version == 1 && cache.Entries != nil:
	case bytes.HasPrefix(data, []byte(cacheMagic)):
		a.log.Warn("cache file is damaged; starting it anew", "file", path)
		cache = credCache{Version: 1, Entries: map[string]processCredentials{}}
	default:
		return nil, &configError{msg: fmt.Sprintf("cache file %s is not rolesenv's cache; it is left as it is", path),
			hint: "--cache-file needs a file of its own: name a new one, or remove this one if it is not needed"}
	}
	now := client.Now()
	if e, ok := cache.Entries[key]; ok {
		if exp, err := time.Parse(time.RFC3339, e.Expiration); err == nil && now.Add(cacheReuseMargin).Before(exp) {
			a.log.Debug("credentials from the cache file", "file", path, "expires", e.Expiration)
			return &signer.Credentials{AccessKeyID: e.AccessKeyID, SecretAccessKey: e.SecretAccessKey,
				SessionToken: e.SessionToken, Expiration: exp}, nil
		}
	}
	creds, err := client.CreateSession(ctx)
	if err != nil {
		return nil, err
	}
	for k, e := range cache.Entries {
		if exp, err := time.Parse(time.RFC3339, e.Expiration); err != nil || !now.Before(exp) {
			delete(cache.Entries, k)
		}
	}
	cache.Entries[key] = processCredentials{Version: 1, AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey,
		SessionToken: creds.SessionToken, Expiration: creds.Expiration.UTC().Format(time.RFC3339)}
	data, err = json.Marshal(cache)
	if err != nil {
		return nil, err
	}
	// Rewritten in place, under the lock: a rename would hand the lock's
	// waiters a file nobody writes any more. A torn write (a crash) leaves
	// a file that is started anew next time.
	err = f.Truncate(0)
	if err == nil {
		if _, err = f.WriteAt(data, 0); err == nil {
			err = f.Sync()
		}
	}
	if err != nil {
		a.log.Warn("failed to write the cache file", "file", path, "error", pathCause(err).Error())
	}
	return creds, nil
}

// flock takes an exclusive lock on f, waiting for other holders until ctx
// ends.
func flock(ctx context.Context, f *os.File) error {
	for delay := time.Millisecond; ; delay = min(2*delay, 100*time.Millisecond) {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err != unix.EWOULDBLOCK && err != unix.EINTR {
			return err
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// pathCause drops the path from an os error: messages name it already.
func pathCause(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}
