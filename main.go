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
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
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
	{"version", "print the version", cmdVersion},
}

// run is main without the exit: it returns the process exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr, environ: os.Environ()}
	a.log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	err := dispatch(ctx, a, args)
	code := exitCodeOf(err)
	if err != nil && !isQuiet(err) {
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
// message, then any hints the error tree carries.
func printError(w io.Writer, err error) {
	for _, line := range strings.Split(strings.TrimRight(err.Error(), "\n"), "\n") {
		fmt.Fprintf(w, "rolesenv: error: %s\n", line)
	}
	seen := map[string]bool{}
	walkErrors(err, func(e error) {
		if h, ok := e.(interface{ Hint() string }); ok {
			if hint := h.Hint(); hint != "" && !seen[hint] {
				seen[hint] = true
				fmt.Fprintf(w, "rolesenv: hint: %s\n", hint)
			}
		}
	})
}

// Exit codes (sysexits where one fits). DESIGN.md "Exit codes".
const (
	exitOK          = 0
	exitUsage       = 64 // EX_USAGE
	exitUnavailable = 69 // EX_UNAVAILABLE: AWS unreachable after retries, --max-stale
	exitInternal    = 70 // EX_SOFTWARE
	exitTempFail    = 75 // EX_TEMPFAIL: --on-change exit
	exitNoPerm      = 77 // EX_NOPERM: access denied
	exitConfig      = 78 // EX_CONFIG: configuration, template, reference, certificate, key
	exitNotExec     = 126
	exitNotFound    = 127
)

// exitCodeOf maps an error to rolesenv's exit code. Library errors are
// classified by behaviour, as net.Error is: an error in the tree may have
// any of these methods returning true:
//
//	Usage() bool        64
//	Config() bool       78  (configuration, template, reference, certificate, key)
//	AccessDenied() bool 77
//	Unavailable() bool  69  (AWS unreachable after retries, --max-stale)
//	TempFail() bool     75  (--on-change exit)
//	ExitCode() int      that code exactly (a child's status, 126, 127)
//
// When several are present, 78 wins over 77 over 69 (DESIGN.md). Anything
// unclassified is an internal error, 70.
func exitCodeOf(err error) int {
	if err == nil {
		return exitOK
	}
	var exact *int
	found := map[int]bool{}
	walkErrors(err, func(e error) {
		if x, ok := e.(interface{ ExitCode() int }); ok && exact == nil {
			c := x.ExitCode()
			exact = &c
		}
		for _, c := range errorClasses {
			if c.is(e) {
				found[c.code] = true
			}
		}
	})
	for _, c := range errorClasses { // in order of precedence
		if found[c.code] {
			return c.code
		}
	}
	if exact != nil {
		return *exact
	}
	return exitInternal
}

// errorClasses in order of precedence.
var errorClasses = []struct {
	code int
	is   func(error) bool
}{
	{exitUsage, func(e error) bool { m, ok := e.(interface{ Usage() bool }); return ok && m.Usage() }},
	{exitConfig, func(e error) bool { m, ok := e.(interface{ Config() bool }); return ok && m.Config() }},
	{exitNoPerm, func(e error) bool { m, ok := e.(interface{ AccessDenied() bool }); return ok && m.AccessDenied() }},
	{exitUnavailable, func(e error) bool { m, ok := e.(interface{ Unavailable() bool }); return ok && m.Unavailable() }},
	{exitTempFail, func(e error) bool { m, ok := e.(interface{ TempFail() bool }); return ok && m.TempFail() }},
}

// walkErrors calls f on err and every error it wraps, depth first.
func walkErrors(err error, f func(error)) {
	if err == nil {
		return
	}
	f(err)
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		walkErrors(u.Unwrap(), f)
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			walkErrors(e, f)
		}
	}
}

// isQuiet reports errors that carry an exit code but have already been
// reported (a child's own exit status).
func isQuiet(err error) bool {
	var q interface{ Quiet() bool }
	return errors.As(err, &q) && q.Quiet()
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
type configError struct{ msg, hint string }

func (e *configError) Error() string { return e.msg }
func (e *configError) Config() bool  { return true }
func (e *configError) Hint() string  { return e.hint }

// exitStatus carries a status that rolesenv passes through without a
// message of its own (the child's exit status).
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }
func (e exitStatus) ExitCode() int { return int(e) }
func (e exitStatus) Quiet() bool   { return true }
