// Command rolesenv runs a program with secrets from AWS Secrets Manager and
// SSM Parameter Store in its environment, using IAM Roles Anywhere (or the
// standard AWS credential chain) for credentials, and restarts it gracefully
// when a secret it uses is rotated.
//
// This file and its siblings in package main are the CLI only: subcommands,
// flags and their ROLESENV_* twins, wiring, and the mapping from errors to
// exit codes. main is the only function that exits.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/rolesenv/rolesenv/internal/exitcode"
	"github.com/rolesenv/rolesenv/internal/metrics"
	"github.com/rolesenv/rolesenv/internal/procsec"
)

// Set with -ldflags "-X main.version=... -X main.commit=...".
var (
	version = "dev"
	commit  = "unknown"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// app is what every subcommand gets: its streams and its environment.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	environ        []string // rolesenv's own environment, as os.Environ gives it
	log            *slog.Logger
	metrics        *metrics.State // with run --metrics-listen; nil otherwise
	watcher        liveness       // run's watcher, for the watchdog
	lazyKeys       bool           // hardware keys open at their first signature, key files on a cache miss (keys_lazy.go)
	keyFile        *lazyKey       // the key file put off with lazyKeys, if any
}

func (a *app) getenv(name string) string {
	v, _ := a.lookupEnv(name)
	return v
}

func (a *app) lookupEnv(name string) (string, bool) {
	for i := len(a.environ) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(a.environ[i], "="); ok && k == name {
			return v, true
		}
	}
	return "", false
}

type command struct {
	name  string
	short string
	run   func(ctx context.Context, a *app, args []string) error
}

var commands = []command{
	{"run", "resolve secrets, start a command with them, and restart it on rotation", cmdRun},
	{"check", "validate certificates, credentials and every reference without starting anything", cmdCheck},
	{"render", "print the environment the command would get (secrets masked)", cmdRender},
	{"credential-process", "print Roles Anywhere credentials for credential_process", cmdCredentialProcess},
	{"dev", "start a local AWS emulator for trying rolesenv", cmdDev},
	{"pkcs11-list", "list the certificates and keys on PKCS#11 tokens, with their URIs", cmdPKCS11List},
	{"version", "print the version", cmdVersion},
}

// run is main without the exit: it returns the process exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr, environ: os.Environ()}
	a.log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	procsec.Protect(a.log) // before any secret or key is read: no core file of rolesenv
	err := dispatch(ctx, a, args)
	code := exitcode.Of(err)
	if err != nil && !exitcode.Quiet(err) {
		printError(stderr, err)
	}
	return code
}

func dispatch(ctx context.Context, a *app, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(a.stderr, mainUsage)
		return usageErrorf("no command given")
	}
	switch args[0] {
	case "-h", "--help", "help":
		if len(args) > 1 && args[0] == "help" {
			return dispatch(ctx, a, []string{args[1], "--help"})
		}
		fmt.Fprint(a.stdout, mainUsage)
		return nil
	case "-v", "--version":
		return cmdVersion(ctx, a, nil)
	}
	for _, c := range commands {
		if c.name == args[0] {
			return c.run(ctx, a, args[1:])
		}
	}
	return &usageError{msg: fmt.Sprintf("unknown command %q", args[0]), hint: "run 'rolesenv --help' for the list of commands"}
}

func cmdVersion(_ context.Context, a *app, args []string) error {
	if len(args) > 0 && args[0] != "--help" && args[0] != "-h" {
		return usageErrorf("version takes no arguments")
	}
	fmt.Fprintf(a.stdout, "rolesenv %s (commit %s)\n", version, commit)
	return nil
}

// printError writes "rolesenv: error: ..." lines, one per line of the
// message, then the hints the error tree carries.
func printError(w io.Writer, err error) {
	for _, line := range strings.Split(strings.TrimRight(err.Error(), "\n"), "\n") {
		fmt.Fprintf(w, "rolesenv: error: %s\n", line)
	}
	for _, hint := range exitcode.Hints(err) {
		fmt.Fprintf(w, "rolesenv: hint: %s\n", hint)
	}
}

// usageError is a command line mistake: exit 64.
type usageError struct{ msg, hint string }

func (e *usageError) Error() string { return e.msg }
func (e *usageError) Usage() bool   { return true }
func (e *usageError) Hint() string  { return e.hint }

func usageErrorf(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// configError is a configuration mistake found by the CLI itself: exit 78.
type configError struct {
	msg, hint string
	err       error // the cause, if any, for errors.Is and errors.As
}

func (e *configError) Error() string { return e.msg }
func (e *configError) Unwrap() error { return e.err }
func (e *configError) Config() bool  { return true }
func (e *configError) Hint() string  { return e.hint }

// exitStatus carries a status that rolesenv passes through without a
// message of its own (the child's exit status).
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }
func (e exitStatus) ExitCode() int { return int(e) }
func (e exitStatus) Quiet() bool   { return true }
