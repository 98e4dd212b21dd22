// Package signer turns an X.509 certificate and its private key into
// temporary AWS credentials with IAM Roles Anywhere, for any program of
// the AWS SDK for Go v2:
//
//	id, err := signer.LoadFiles(signer.LoadOptions{Certificate: "leaf.pem", PrivateKey: "leaf.key"})
//	...
//	client, err := signer.NewClient(id, signer.Config{TrustAnchorARN: ta, ProfileARN: prof, RoleARN: role})
//	...
//	cfg, err := config.LoadDefaultConfig(ctx, config.WithCredentialsProvider(signer.NewProvider(client, signer.ProviderOptions{})))
//
// It does four things, each usable alone:
//
//   - Loading (LoadFiles, ParseCertificate, ParseCertificates,
//     ParsePrivateKey, ParsePKCS12): the certificate in PEM or DER; an
//     intermediates bundle, order kept; the key as PKCS#8, PKCS#1 or SEC1,
//     PEM or DER, or encrypted PKCS#8 (PBES2: PBKDF2 or scrypt, AES-CBC);
//     PKCS#12 bundles, modern (AES, PBKDF2) and legacy (3DES); one PEM file
//     holding key and certificate. Keys are RSA of 2048 to 4096 bits or
//     ECDSA on P-256, P-384 or P-521, the types Roles Anywhere accepts.
//   - Local checks (Identity.Check, CheckConfig), run before every request:
//     the key matches the certificate; the certificate is an end-entity
//     one, may sign, is signed with SHA-256 or stronger and is within its
//     validity period; the ARNs are well formed and agree on partition,
//     account and region.
//   - Signing (Identity.SignRequest): SigV4's canonical request and string
//     to sign, signed through crypto.Signer with the certificate's key
//     (AWS4-X509-RSA-SHA256, PKCS#1 v1.5; AWS4-X509-ECDSA-SHA256, ASN.1
//     DER), the certificate and chain in X-Amz-X509 and X-Amz-X509-Chain.
//   - CreateSession (Client) with retries on throttling, 5xx and network
//     errors, and a refreshing aws.CredentialsProvider (Provider).
//
// # What it does not do
//
// Keys come from files or from a crypto.Signer given to NewIdentity; there
// is no PKCS#11, TPM or operating-system certificate store support yet.
// NewIdentity is the seam for them: the signing scheme only ever calls
// Sign(rand, SHA-256 digest, crypto.SHA256). It reads no environment
// variable and no flag: endpoints, proxies and the CA bundle come in
// through Config, so the caller decides their precedence. It never logs
// globally (a *slog.Logger comes in, nil is quiet), never exits and never
// prompts.
//
// # Security properties
//
//   - Keys are parsed once, kept behind crypto.Signer, and never printed:
//     an Identity prints its certificate's subject and serial number.
//   - Credentials print as [redacted] with every fmt verb, in slog and in
//     JSON and text marshalling; no log line of this package holds a key,
//     a passphrase, a secret access key or a session token.
//   - Errors name the file and the cause in one line, never file content
//     or decrypted bytes.
//   - Local problems are found before anything is sent: a request leaves
//     the process only with a key that matches a certificate valid now.
//   - TLS is always verified (against the system's roots, or
//     Config.CABundle alone, as the AWS SDKs treat AWS_CA_BUNDLE);
//     key derivation costs of encrypted keys are bounded, so a hostile
//     file cannot take minutes or gigabytes.
//   - Provider never returns expired credentials.
package signer
