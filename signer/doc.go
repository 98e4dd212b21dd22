// Package signer turns an X.509 certificate and its private key into
// temporary AWS credentials with IAM Roles Anywhere, for any program of
// the AWS SDK for Go v2.
//
// Call [LoadFiles] (or [NewFileIdentity], which loads the files again when
// a renewed certificate lands on disk) for an [Identity]; [NewClient] with
// the trust anchor, profile and role ARNs in a [Config]; then
// [NewProvider] for an aws.CredentialsProvider to put in aws.Config. Each
// step is usable alone: [ParseCertificate], [ParsePrivateKey] and
// [ParsePKCS12] parse, [Identity.Check] and [CheckConfig] run the local
// checks, [Identity.SignRequest] signs, [Client.CreateSession] fetches one
// session.
//
// Keys come from files (PEM or DER; PKCS#8, PKCS#1, SEC1, encrypted
// PKCS#8 with PBKDF2 or scrypt; PKCS#12) or from any crypto.Signer given
// to [NewIdentity], the seam for PKCS#11 or a TPM, which this package
// does not provide. It reads no environment variable and no flag:
// endpoints, proxies and the CA bundle come in through [Config]. It never
// logs globally (a *slog.Logger comes in, nil is quiet), exits or prompts.
//
// # Security properties
//
//   - Keys are parsed once, kept behind crypto.Signer, and never printed.
//     [Credentials] print as [redacted] with every fmt verb, in slog and in
//     JSON and text marshalling; no log line holds a key, a passphrase, a
//     secret access key or a session token. Errors name the file and the
//     cause in one line, never the file's content.
//   - A request leaves the process only after the local checks passed: the
//     key matches a certificate that is valid now and may sign.
//   - TLS is always verified, against the system's roots or
//     [Config.CABundle] alone; the key derivation cost of an encrypted key
//     is bounded, so a hostile file cannot take minutes or gigabytes.
//   - [Provider] never hands out expired credentials, nor credentials
//     dropped with [Provider.Invalidate]; concurrent callers share one
//     CreateSession.
package signer
