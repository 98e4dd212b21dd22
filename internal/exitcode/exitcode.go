// Package exitcode maps an error to rolesenv's exit code, the table in the
// README's "Exit codes" section.
//
// Errors are classified by behaviour, as [net.Error] is: a library error
// says what kind of failure it is by having one of the methods of the
// interfaces below return true, and this package is the one place that
// knows the interfaces, their precedence and the codes. A library never
// imports this package to classify its errors; it only implements the
// methods.
package exitcode

import (
	"errors"
	"syscall"
)

// The codes rolesenv exits with (sysexits where one fits).
const (
	OK          = 0
	Usage       = 64  // EX_USAGE: a command line mistake
	Unavailable = 69  // EX_UNAVAILABLE: AWS unreachable after retries, --max-stale
	Internal    = 70  // EX_SOFTWARE: anything unclassified
	OSError     = 71  // EX_OSERR: the system refused a resource (fork, file descriptors, memory)
	TempFail    = 75  // EX_TEMPFAIL: --on-change exit
	NoPerm      = 77  // EX_NOPERM: access denied
	Config      = 78  // EX_CONFIG: configuration, template, reference, certificate, key
	NotExec     = 126 // the command is not executable
	NotFound    = 127 // the command was not found
)

// The classes an error can say it belongs to. An error in a tree may
// implement any of them.
type (
	// UsageError is a command line mistake.
	UsageError interface{ Usage() bool }
	// ConfigError is a configuration, template, reference, certificate or
	// key mistake: running again unchanged fails again.
	ConfigError interface{ Config() bool }
	// DeniedError is a refusal by AWS: the identity is not allowed.
	DeniedError interface{ AccessDenied() bool }
	// UnavailableError is a failure to reach AWS, or an answer that never
	// came in time.
	UnavailableError interface{ Unavailable() bool }
	// ResourceError is a resource the operating system refused
	// (EMFILE, ENOMEM, EAGAIN).
	ResourceError interface{ Resource() bool }
	// TempFailError asks a service manager to start rolesenv again.
	TempFailError interface{ TempFail() bool }
	// ExitCoder carries an exact exit code: a child's status, 126, 127.
	ExitCoder interface{ ExitCode() int }
	// Quieter is an error that has been reported already (a child's own
	// status): rolesenv prints no error line for it.
	Quieter interface{ Quiet() bool }
	// Hinter carries a hint for the operator, printed after the error.
	Hinter interface{ Hint() string }
)

// precedence lists the classes from the strongest: when an error tree
// holds several, 64 wins over 78 over 77 over 71 over 69 over 75.
var precedence = []struct {
	code int
	is   func(error) bool
}{
	{Usage, func(e error) bool { m, ok := e.(UsageError); return ok && m.Usage() }},
	{Config, func(e error) bool { m, ok := e.(ConfigError); return ok && m.Config() }},
	{NoPerm, func(e error) bool { m, ok := e.(DeniedError); return ok && m.AccessDenied() }},
	{OSError, func(e error) bool { m, ok := e.(ResourceError); return ok && m.Resource() }},
	{Unavailable, func(e error) bool { m, ok := e.(UnavailableError); return ok && m.Unavailable() }},
	{TempFail, func(e error) bool { m, ok := e.(TempFailError); return ok && m.TempFail() }},
}

// Of returns the exit code for err: 0 for nil; [OSError] when the system
// refused a resource anywhere in the tree (too many open files, no
// memory), whatever the error that carries it says of itself: a file
// that cannot be opened for that reason is not a configuration mistake;
// else the strongest class found in the tree; else the first exact code
// ([ExitCoder]) found depth first; else [Internal].
func Of(err error) int {
	if err == nil {
		return OK
	}
	if c, ok := class(err); ok && c == Usage {
		return c
	}
	if refusedResource(err) {
		return OSError
	}
	if c, ok := class(err); ok {
		return c
	}
	var x ExitCoder
	if errors.As(err, &x) {
		return x.ExitCode()
	}
	return Internal
}

// refusedResource reports an error caused by the system's limits on open
// files or memory. (EAGAIN is left out: a non-blocking read returns it
// too.)
func refusedResource(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) || errors.Is(err, syscall.ENOMEM)
}

// Classified reports whether any error in the tree names a class (an
// exact code does not count).
func Classified(err error) bool {
	_, ok := class(err)
	return ok
}

func class(err error) (int, bool) {
	found := map[int]bool{}
	Walk(err, func(e error) {
		for _, c := range precedence {
			if c.is(e) {
				found[c.code] = true
			}
		}
	})
	for _, c := range precedence {
		if found[c.code] {
			return c.code, true
		}
	}
	return 0, false
}

// Quiet reports an error that has been reported already.
func Quiet(err error) bool {
	var q Quieter
	return errors.As(err, &q) && q.Quiet()
}

// Hints returns the distinct non-empty hints of the tree, depth first.
func Hints(err error) []string {
	var hints []string
	seen := map[string]bool{}
	Walk(err, func(e error) {
		if h, ok := e.(Hinter); ok {
			if s := h.Hint(); s != "" && !seen[s] {
				seen[s] = true
				hints = append(hints, s)
			}
		}
	})
	return hints
}

// Walk calls f on err and every error it wraps, depth first.
func Walk(err error, f func(error)) {
	if err == nil {
		return
	}
	f(err)
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		Walk(u.Unwrap(), f)
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			Walk(e, f)
		}
	}
}
