// Package awsdev is a local, in-memory AWS emulator for rolesenv's tests,
// benchmarks and the `rolesenv dev` command: IAM Roles Anywhere
// CreateSession, Secrets Manager, SSM Parameter Store and STS
// GetCallerIdentity, on one loopback listener, over HTTPS with its own CA or
// plain HTTP.
//
// # What it does
//
// One listener serves every service, routed as the AWS front ends route:
// POST /sessions is Roles Anywhere (restJson1), X-Amz-Target
// "secretsmanager.*" and "AmazonSSM.*" are Secrets Manager and SSM (JSON
// 1.1), and a form with Action= is STS (query protocol, XML answers).
// Clients point every service at [Server.URL] and trust [Server.CAPEM]
// (AWS_CA_BUNDLE).
//
// Every Secrets Manager, SSM and STS request is verified as AWS Signature
// Version 4 against static user keys ([Server.CreateUser],
// [Server.AddAccessKey]) or session credentials issued by CreateSession,
// with each service's error types: UnrecognizedClientException /
// InvalidClientTokenId for an unknown key or token,
// InvalidSignatureException / SignatureDoesNotMatch for a bad signature, a
// date more than 15 minutes off or a wrong scope, ExpiredTokenException /
// ExpiredToken for expired session credentials. Then the caller's identity
// policy (and a profile's session policy) must allow the IAM action on the
// resource ARN; otherwise the answer is AccessDeniedException in AWS's
// words ("User: arn:... is not authorized to perform: ACTION on resource:
// ARN because no identity-based policy allows the ACTION action").
// GetCallerIdentity needs no permission, as in AWS.
//
// CreateSession verifies the X.509 request signature from the Roles
// Anywhere documentation: AWS4-X509-RSA-SHA256 (PKCS #1 v1.5) or
// AWS4-X509-ECDSA-SHA256 (ASN.1) over SHA-256 of the SigV4 string to
// sign; X-Amz-Date within 5 minutes; the credential is the leaf's serial
// number in decimal and the scope's date, region and service match; the
// leaf is X.509 v3, not a CA, has the digital signature key usage and a
// SHA-256 or stronger signature; it chains to the trust anchor's CA
// through the X-Amz-X509-Chain intermediates, every certificate valid on
// the server's clock; the trust anchor, profile and role exist, are
// enabled and belong together; durationSeconds is 900 to the profile's
// maximum (default 3600); and the role's conditions on the certificate
// (x509Subject/CN, x509Issuer/CN, x509SAN/DNS, x509SAN/URI, x509SAN/Name,
// the first SAN of each kind as Roles Anywhere maps them) hold. Failures
// are 403 AccessDeniedException, 400 ValidationException or 404
// ResourceNotFoundException. Success is 201 with a credentialSet of
// random credentials for arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION,
// where SESSION is the certificate's serial number in hex unless
// roleSessionName is given; they expire after the duration and never
// after the certificate.
//
// # Regions
//
// The emulator serves its home region (Options.Region, default us-east-1)
// and the regions in Options.Regions, all on the one URL. A request goes
// to the region its credential scope names (the SDK's configured region),
// as it would reach that region's endpoint; the Host header plays no
// part. Each region has its own secrets, parameters, trust anchors and
// profiles, and its ARNs name it: the same secret name in two regions is
// two secrets. IAM users, roles and policies, and STS (session
// credentials, GetCallerIdentity) are global. A request scoped to a
// region the server does not serve fails authentication
// (InvalidSignatureException / SignatureDoesNotMatch "Credential should
// be scoped to a valid region", AccessDeniedException for CreateSession).
// The Server's data methods act in the home region; [Server.InRegion]
// returns a [Region] whose identical methods act in another:
//
//	s, _ := awsdev.Start(awsdev.Options{Regions: []string{"eu-west-1"}})
//	arn, _ := s.InRegion("eu-west-1").CreateSecret("app/db", value)
//
// Operations: Secrets Manager CreateSecret, GetSecretValue,
// BatchGetSecretValue, DescribeSecret, PutSecretValue,
// UpdateSecretVersionStage, ListSecretVersionIds, ListSecrets,
// DeleteSecret, RestoreSecret; SSM PutParameter, GetParameter,
// GetParameters, DescribeParameters, LabelParameterVersion,
// DeleteParameter; STS GetCallerIdentity; Roles Anywhere CreateSession.
// Any other operation answers UnknownOperationException (InvalidAction
// for STS). GetParameter and GetParameters take a name or a parameter ARN
// (arn:aws:ssm:REGION:ACCOUNT:parameter/NAME, where NAME has no leading
// slash: parameter/app/db is /app/db), each with an optional ":version"
// or ":label"; asked by ARN they answer the parameter's own name in Name,
// as AWS does, and list an ARN they cannot find verbatim in
// InvalidParameters. A top-level name is one parameter with or without its
// leading slash ("x" and "/x"), as in Parameter Store; asked by name, Name
// echoes the name as asked.
//
// # Time
//
// Every time decision (signature dates, certificate validity, credential
// expiry, deletion windows, quota refills) uses Options.Now. Answers carry
// that clock in their Date header, so an SDK whose clock is off corrects
// its skew and retries once, as it does with AWS. Latency is real time.
//
// # Test controls
//
// From Go: [Server.SetLatency], [Server.SetOperationLatency],
// [Server.FailNext], [Server.SetErrorRate], [Server.SetQuota],
// [Server.SetAWSQuotas], [Server.Calls], [Server.Throttled],
// [Server.CallCounts], [Server.ResetCalls], [Server.SetCredentialLifetime],
// [Server.ExpireCredentials], [Server.SetRolePolicy],
// [Server.SetUserPolicy], [Server.SetEnabled], and [Region.Calls] for
// one region's counts. Operations are IAM action names
// ("secretsmanager:GetSecretValue"); "*" means every operation in
// FailNext and SetErrorRate. Every call the emulator can route to an
// operation is counted before anything else, so counts include failed,
// throttled and denied calls; a call is also counted in the region its
// credential scope names, if the server serves it. Latency and faults
// apply to an operation in every region; a quota gives each region its
// own bucket, as AWS quotas are per account and region. Faults come before
// authentication: an injected fault needs no credentials.
//
// The same controls are an HTTP API on the emulator's own listener under
// /_awsdev/, with JSON bodies, for `rolesenv dev` users. With the URL and
// CA that `rolesenv dev` prints:
//
//	# Counters: every operation's calls, the same by region, and how many
//	# a quota throttled.
//	curl --cacert ca.pem https://127.0.0.1:PORT/_awsdev/calls
//	curl --cacert ca.pem -X POST https://127.0.0.1:PORT/_awsdev/calls/reset
//
//	# Latency for every answer, or for one operation (a Go duration).
//	curl --cacert ca.pem -d '{"duration":"200ms"}' https://127.0.0.1:PORT/_awsdev/latency
//	curl --cacert ca.pem -d '{"op":"secretsmanager:GetSecretValue","duration":"2s"}' https://127.0.0.1:PORT/_awsdev/latency
//
//	# Fail the next N calls; faults: internal, throttle, unavailable, reset.
//	curl --cacert ca.pem -d '{"op":"ssm:GetParameters","n":3,"fault":"throttle"}' https://127.0.0.1:PORT/_awsdev/fail-next
//
//	# Fail a fraction of calls (0 turns it off).
//	curl --cacert ca.pem -d '{"op":"*","rate":0.2,"fault":"internal"}' https://127.0.0.1:PORT/_awsdev/error-rate
//
//	# A request-rate quota on one operation (0 removes it), or AWS's defaults.
//	curl --cacert ca.pem -d '{"op":"secretsmanager:BatchGetSecretValue","tps":5}' https://127.0.0.1:PORT/_awsdev/quota
//	curl --cacert ca.pem -d '{"createSessionTPS":10}' https://127.0.0.1:PORT/_awsdev/aws-quotas
//
//	# Session credentials issued from now on last 30 s ("0s" restores);
//	# expire every session issued so far.
//	curl --cacert ca.pem -d '{"duration":"30s"}' https://127.0.0.1:PORT/_awsdev/credential-lifetime
//	curl --cacert ca.pem -X POST https://127.0.0.1:PORT/_awsdev/expire-credentials
//
//	# Replace a role's policy (revoked access applies to live sessions).
//	curl --cacert ca.pem -d '{"role":"rolesenv-demo","policy":{"Allow":[{"Actions":["ssm:*"],"Resources":["*"]}]}}' https://127.0.0.1:PORT/_awsdev/role-policy
//
// Mutations are POST and reads GET; unknown fields, faults or paths are
// errors (400, 404 or 405 with {"error": "..."}), never silently ignored.
//
// # What it does not do
//
// It is not AWS: no persistence, no KMS (a SecureString read without
// WithDecryption is a random stand-in for the ciphertext), no resource
// policies, no explicit Deny, no IAM condition keys besides the
// certificate conditions of a role, no tags on sessions, no presigned
// (query-string) SigV4, no chunked payload signing, no rotation Lambdas,
// no replication, one account (nothing is shared with it: an ARN of
// another account is never found, and DescribeParameters with Shared
// lists nothing), no tags on parameters (PutParameter ignores Tags, and
// DescribeParameters refuses a tag: filter), no parameter policies or
// GetParametersByPath, and only the operations listed above. Known
// differences from AWS, where AWS's behaviour is not documented precisely
// enough to copy:
//
//   - Roles Anywhere: the error types and messages of authentication
//     failures are the emulator's choice within the documented types
//     (AccessDeniedException "Invalid signature", "Untrusted Signing
//     Certificate", ...); x-amz-date, x-amz-x509 and, when sent,
//     x-amz-x509-chain must be signed headers; a durationSeconds above the
//     profile's maximum is refused rather than capped; roleSessionName is
//     accepted unless ProfileOptions.RejectRoleSessionName (AWS refuses it
//     unless the profile sets acceptRoleSessionName); the expiration is
//     RFC 3339 with whole seconds; only the default attribute mapping
//     exists; trust policies are RoleOptions.Conditions (StringLike).
//   - Secrets Manager: a secret that does not exist is authorised against
//     its ARN without the random suffix; BatchGetSecretValue is authorised
//     on "*"; VersionId with a VersionStage the version lacks is
//     InvalidRequestException; deprecated versions are pruned beyond 100;
//     the messages of InvalidParameterException are the emulator's own;
//     ListSecrets, and BatchGetSecretValue with Filters, list secrets by
//     name and ignore SortOrder; an ARN of another region is not found
//     (ResourceNotFoundException).
//   - SSM: the shared standard-throughput quota is one bucket per
//     operation (and region); the older DescribeParameters Filters match
//     by prefix; the /aws/reference/secretsmanager/ bridge takes
//     ":<version id>" or ":<staging label>" selectors and returns Version
//     0; AllowedPattern is kept and described, not enforced; GetParameter
//     and GetParameters do not check names (one that PutParameter refuses
//     is not found, where AWS's GetParameter answers ValidationException);
//     a parameter ARN of another region is not found.
//   - STS: only GetCallerIdentity; a user's UserId is a random AIDA id.
//   - Session credentials are remembered for a day after they expire, so
//     that using them answers ExpiredToken; later they are unknown keys.
//
// moto_server, the independent emulator the tests compare against,
// departs from AWS where the tests follow AWS: it overwrites a version
// when PutSecretValue reuses a ClientRequestToken with another value, it
// lists versions without staging labels in DescribeSecret and
// ListSecretVersionIds, it does not return Parameter.Selector, and after
// UpdateSecretVersionStage its GetSecretValue without a VersionStage (and
// the AWSPREVIOUS bookkeeping of the next PutSecretValue) still follows
// the old current version.
//
// # Security
//
// It is a test tool. Everything lives in memory and is lost on Close,
// which closes idle connections and those that never sent a request at
// once, and waits at most 10 s for the requests in flight. It
// listens on 127.0.0.1 unless told otherwise, and the control API is
// unauthenticated: anyone who can reach the port can read counters and
// change the emulator's behaviour (not read secrets). Its CA key is
// generated at start (or handed in by `rolesenv dev`) and signs only the
// TLS server certificate. Signatures are verified for real, with code
// written from the AWS documentation, independent of rolesenv's signer;
// comparisons of signatures and tokens take constant time. It never logs
// secret values, keys or tokens: the debug log names the operation, the
// status, the principal ARN and the request id.
package awsdev
