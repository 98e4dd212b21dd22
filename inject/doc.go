// Package inject turns template env files into the environment of a
// child process: it parses the files, resolves every secret reference in
// them from AWS Secrets Manager and SSM Parameter Store, and keeps the
// result current as secrets rotate and files change.
//
// Start with [ReadFiles] and [Load]: Load parses the files and resolves
// their references, and returns a [Source] only when every reference
// resolved. [Source.Env] is the child's environment ([Env.Environ] for
// exec), and [Source.Watch] keeps it current, sending a [Change] whenever
// the rendered environment differs. [CheckSize] checks an environment
// against exec's limits before a command starts.
//
// The parts can be used on their own: [Parse] turns files into a
// [Template]; a [Resolver] fetches its [Fetch] list ([Resolver.Fetch],
// or [Resolver.Resolve] to fetch and render) and says beforehand which
// requests it will send ([Resolver.Plan]); [Template.Render] turns the
// fetched [Values] into an [Env], as often as values change. [ParseRef]
// parses one reference.
//
// Env files follow godotenv's grammar (KEY=value, export, quotes, ${VAR}),
// with stricter errors: a key defined twice, a malformed name or ${...},
// text after a closing quote. A single-quoted value is literal; any other
// value whose whole text is a reference (sm://, ssm://, a secret or
// parameter ARN) is replaced by it, and {{ ... }} embeds references, with
// filters, anywhere in a value. ROLESENV_* names are reserved: a file
// cannot set one, ${ROLESENV_...} is refused, and none is inherited.
//
// A value written file:<reference> or file:{{ ... }} is delivered as a
// file: the variable holds the path that [Options.FilePath] gives it, and
// [Env.Files] holds the contents to write there. [TemplateFile]s render
// whole files with the same {{ reference | filter }} placeholders. A
// change of a file's contents alone changes the [Env] (Equal, Changed)
// but not its Environ.
//
// Guarantees:
//
//   - Values are never logged, never in an error and never printed by
//     fmt, encoding/json or log/slog: Env, Value, Values, Template and
//     Setting print "[redacted]", and errors and log lines name files,
//     lines, variables and references. A value comes out only through
//     [Env.Environ] and [Value.Reveal].
//   - It fails closed: Load and Resolve return no environment unless
//     every reference resolved, and report every broken one at once, as
//     [Errors] of [*ResolveError]. A watch keeps the last good environment
//     through any failure.
//   - Each distinct secret and version (and parameter and selector) is
//     fetched once, however many variables and JSON keys use it.
//   - A reference is never built from a resolved value, and resolved
//     values are never scanned, so a secret cannot name another secret.
//
// It does not log globally, exit, read flags or start processes, and it
// keeps values in memory only, in the values it returns.
package inject
