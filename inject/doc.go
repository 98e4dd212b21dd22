// Package inject turns template env files into the environment of a
// child process: it parses the files, resolves every secret reference in
// them from AWS Secrets Manager and SSM Parameter Store, and renders the
// result, again whenever fetched values change.
//
// # What it does
//
// Parse reads env files (later files win) over rolesenv's own environment
// and returns a Template: every variable as a list of literal text,
// references and expansions of other variables, plus the distinct fetches
// (Fetch) the child's variables need. A Resolver fetches them (Fetch, or
// Resolve to fetch and render at once) into Values, which keep for every
// fetch what identifies the answer (Version: the secret's ARN, version id
// and stages, or the parameter's version). Template.Render turns Values
// into an Env, without parsing anything again, so a watcher can fetch a
// rotated secret, swap it into the Values and render again; Env.Equal
// compares two renderings by a digest computed once, and Env.Changed names
// the variables that differ. CheckSize checks an environment and argv
// against exec's limits before a command is started.
//
// # Env files
//
// The grammar is godotenv's (github.com/joho/godotenv v1.5.1, the
// reference): KEY=value, "export KEY=value", KEY: value, comments, single
// and double quotes, quoted values over several lines, escapes \n and \r
// in double quotes, ${VAR} and $VAR. rolesenv's parser is its own, because
// godotenv returns a map without lines, lets a duplicate key win silently
// and quotes file content in its errors. A fuzz target (FuzzEnvFile) checks
// that the two agree on the grammar they share. The deliberate differences
// are:
//
//   - Errors: a key defined twice in one file; a name that is not ASCII
//     letters, digits and _ (or starts with a digit); text after a closing
//     quote (godotenv starts a new statement there); a malformed ${...}.
//     Errors give file, line and column, never the text.
//   - An unquoted value ends at the first " #" (godotenv: the last).
//   - In double quotes an escaped backslash is one character, so "a\\" is
//     a\ (godotenv finds no closing quote) and "\\$X" is a backslash
//     followed by X's value.
//   - An escaped quote right before the closing one is kept ("a\"" is a")
//     where godotenv drops it.
//   - $name and ${name} expand lower-case names too (godotenv: [A-Z0-9_]
//     only); $1, $( and a $ before anything but a name are literal; the
//     brace of $X} stays (godotenv drops it).
//   - ${VAR} looks at earlier keys of the same file, then earlier files,
//     then rolesenv's environment; an unset variable expands to nothing,
//     with a warning. ${ROLESENV_...} is refused: those are rolesenv's own
//     settings, a key passphrase among them.
//   - Bytes that are not UTF-8 are kept as they are (godotenv replaces
//     them with U+FFFD); a UTF-8 byte order mark is skipped; a NUL byte is
//     an error.
//
// A single-quoted value is literal: no expansion, no reference. Double-
// quoted and unquoted values are scanned for references; \{ in double
// quotes is a literal brace.
//
// # References
//
// A whole value that starts with sm:// or ssm://, or is a Secrets Manager
// secret ARN or an SSM parameter ARN (ECS valueFrom, empty fields
// included), is a reference; {{ ... }} anywhere in a value holds one
// (CloudFormation's {{resolve:...}} forms included) with optional filters:
// urlquery, base64, base64decode, json, trim. ParseRef parses one and
// Ref.String prints it back in a canonical form that parses to an
// equivalent reference (FuzzRef checks it). A JSON key or JSON Pointer
// selects part of a JSON value; a value that is not a JSON string is
// injected as its compact JSON text; a SecretBinary as base64. A value
// that would hold a NUL byte is an error. ${VAR} inside a reference is
// expanded only from variables that do not depend on a secret: a
// reference is never built from a secret value, and resolved values are
// never scanned again.
//
// Parameter Store's /aws/reference/secretsmanager/<id> names are fetched
// from Secrets Manager directly (a label selects the stage, a version the
// version id). That needs only secretsmanager:GetSecretValue (the bridge
// needs it too, and ssm:GetParameters besides), shares one fetch with the
// sm:// references to the same secret, and lets a watcher poll the secret
// with DescribeSecret (Parameter Store's DescribeParameters does not list
// the bridge's names). An ARN in
// another region is fetched in that region, with a client built from the
// same configuration.
//
// # Resolution and the batch choice
//
// Each distinct (secret, version selector) and (parameter, selector) is
// fetched once, however many variables and JSON keys use it. Parameters
// are fetched with GetParameters, 10 names a call, WithDecryption, never
// two selectors of one parameter in one call. Secrets pinned to a stage or
// version use GetSecretValue. For AWSCURRENT secrets there are two ways:
// BatchGetSecretValue, 20 ids a call, or GetSecretValue for each, in
// parallel (at most DefaultParallel requests in flight, the SDK's idle
// connections per host). BenchmarkResolve measured start-up resolution of
// n secrets against the emulator with latency added to every answer, each
// run with new connections (2-core machine):
//
//	latency  n    batch (calls)   parallel GetSecretValue (calls)
//	0 ms     1    1.6 ms (1)      1.3 ms (1)
//	0 ms     10   1.4 ms (1)      7.1 ms (10)
//	0 ms     50   2.9 ms (3)      22 ms (50)
//	0 ms     200  9.3 ms (10)     66 ms (200)
//	20 ms    1    22 ms (1)       22 ms (1)
//	20 ms    10   22 ms (1)       30 ms (10)
//	20 ms    50   25 ms (3)       117 ms (50)
//	20 ms    200  42 ms (10)      447 ms (200)
//	100 ms   1    103 ms (1)      102 ms (1)
//	100 ms   10   102 ms (1)      111 ms (10)
//	100 ms   50   104 ms (3)      519 ms (50)
//	100 ms   200  116 ms (10)     3041 ms (200)
//
// Batches answer in one round trip for any n; parallel GetSecretValue
// needs ceil(n/10) round trips (and n TLS handshakes, the few milliseconds
// seen at 0 ms). Up to 10 secrets both take one round trip.
//
// Quotas decide the rest. They are per account and region, shared by every
// process of every service in the account: BatchGetSecretValue 100 calls
// a second, GetSecretValue 10,000. A batch carries at most 20 secrets, so
// the batch quota moves at most 2,000 secrets a second against 10,000 for
// GetSecretValue; and a process needing 1 to 10 secrets spends one call of
// the small quota per start with a batch, against 1 to 10 calls of a quota
// 100 times larger. A fleet start of 1,000 processes with 10 secrets each
// is 1,000 batch calls (10 seconds of the whole account's batch quota,
// throttling every other user of it) or 10,000 GetSecretValue calls (one
// second of a quota that is rarely the limit).
//
// So the default (BatchAuto) is: parallel GetSecretValue when a region has
// at most DefaultParallel AWSCURRENT secrets to fetch, where it costs no
// extra round trip; BatchGetSecretValue beyond that, where it saves
// ceil(n/10)-1 round trips (400 ms for 50 secrets at 100 ms). A batch call
// is made without SDK retries: when it is throttled or fails, its secrets
// are fetched at once with GetSecretValue (retried as usual), so a fleet
// start that exhausts the batch quota moves onto the larger one instead of
// failing. BenchmarkFleetStart starts 150 processes of 20 secrets at once
// under the documented quotas: about 65 of the 150 batches were throttled
// and fell back, every process started, with 1,440 calls against 3,000
// for GetSecretValue only. When BatchGetSecretValue is denied by policy
// (it needs its own action as well as GetSecretValue on every secret), the
// resolver falls back to GetSecretValue, logs it once, and does not try a
// batch again. Batch and BatchNever/BatchAlways override the choice.
//
// Every broken reference is reported in one run, as Errors of
// *ResolveError, each naming the file, line, variable and reference and,
// when AWS answered, the action, resource and AWS error code. They classify
// themselves for rolesenv's exit codes: Config (template, reference,
// missing secret or key), AccessDenied (IAM, KMS, refused credentials, and
// an HTTP 403 whose body is not the service's JSON, as moto answers),
// Unavailable (5xx, throttling or network failures after the SDK's
// retries, and the start-up deadline of the caller's context). A credential
// source's own classified error (Roles Anywhere's) is kept in the chain and
// decides.
//
// # The child's environment
//
// rolesenv's own environment minus every ROLESENV_* variable, plus the
// files' variables; with Options.CleanEnv only the files' variables and
// those named by KeepEnv. Options.FromEnv also resolves inherited variables
// whose whole value is a reference. Options.Remove and Options.Set are for
// the container-credentials endpoint (it replaces the AWS credential
// variables of the child); a file cannot define a ROLESENV_* name.
//
// # Watching
//
// A Watcher keeps the environment current after start-up: DescribeSecret
// per secret (the version id holding each referenced stage), GetParameters
// without decryption per 10 parameters (the Version), and a fetch only of
// what moved; references pinned to a version are never polled; env files
// are re-read when they change on disk. It reports a Change only when the
// rendered environment differs, and keeps the last good environment
// through any failure, with one warning per episode and a back-off. See
// Watcher for the schedule, its jitter and the choices behind the calls.
//
// # What it deliberately does not do
//
// It does not log globally, exit, read flags or start processes; it does
// not cache values on disk or anywhere outside the Values it returns; it
// does not put values in rolesenv's own environment; it does not restart
// anything (a Watcher reports changes, the caller acts); it does not
// expand shell syntax beyond $NAME and ${NAME} (no defaults, no commands).
//
// # Security properties
//
//   - Values never appear in an error, a log line or a panic message:
//     errors name files, lines, columns, variables and references; logs add
//     counts, durations and short version ids. JSON errors, which quote
//     the input, are replaced by our own messages; the text of a {{ }}
//     that is not a reference, and a name after $, are never shown (they
//     may be part of a literal password); credential_process output, which
//     the SDK quotes when it cannot parse it, is not shown.
//   - Env, Value, Values, Template and Setting print "[redacted]" through
//     fmt (every verb; their data sits behind pointers, which fmt does not
//     follow when it falls back to printing fields), encoding/json,
//     encoding.TextMarshaler and log/slog. The values come out only through
//     Env.Environ (for exec) and Value.Reveal.
//   - Start-up fails closed: Resolve returns no environment unless every
//     reference resolved.
//   - A reference is never built from a resolved value and resolved values
//     are never scanned, so a secret cannot name another secret or inject
//     a reference.
//   - ROLESENV_* variables never reach the child, through inheritance,
//     --keep-env, a file key or an expansion.
package inject
