package supervise

import (
	"errors"
	"fmt"
	"syscall"
	"time"
)

// StartError is a command that could not be started. Its exit code is the
// shell's, 127 when the command was not found and 126 when it was found
// but could not be executed, except when the system refused a resource
// (file descriptors, memory, processes): that is a Resource error, 71.
type StartError struct {
	Command string
	Err     error
	// Retried is how long Run kept trying when the system refused a
	// resource.
	Retried time.Duration
}

func (e *StartError) Error() string {
	switch {
	case e.ExitCode() == 127:
		return fmt.Sprintf("%s: command not found", e.Command)
	case e.Resource() && e.Retried > 0:
		return fmt.Sprintf("%s: cannot start: %v (the system refused a resource; gave up after retrying for %s)", e.Command, e.Err, e.Retried.Round(time.Millisecond))
	case e.Resource():
		return fmt.Sprintf("%s: cannot start: %v (the system refused a resource)", e.Command, e.Err)
	}
	return fmt.Sprintf("%s: cannot execute: %v", e.Command, e.Err)
}

func (e *StartError) Unwrap() error { return e.Err }

// ExitCode is 127 for a command that was not found, 71 (EX_OSERR) when
// the system refused a resource, 126 otherwise.
func (e *StartError) ExitCode() int {
	switch {
	case errors.Is(e.Err, errNotFound):
		return 127
	case e.Resource():
		return 71
	}
	return 126
}

// Resource reports a start the system refused for lack of a resource.
func (e *StartError) Resource() bool { return isResource(e.Err) }

// isResource reports the errors of fork and exec that say the system is
// short of something, not that the command is wrong.
func isResource(err error) bool {
	for _, e := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOMEM, syscall.EAGAIN} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// Hint says where the command was looked for, or what ran out.
func (e *StartError) Hint() string {
	if e.ExitCode() == 127 {
		return "a command without a slash is looked up on the PATH of its environment (rolesenv's own PATH if the environment has none)"
	}
	if e.Resource() {
		return "check the limits on open files and processes (ulimit -n, ulimit -u, systemd's LimitNOFILE= and TasksMax=) and the memory available"
	}
	if errors.Is(e.Err, syscall.ENOENT) {
		return "the file exists, so the interpreter named on its #! line is probably missing"
	}
	return ""
}

var errNotFound = errors.New("not found")

// SignalError reports a signal that ended rolesenv on its own: before the
// child started, or during a restart. Its exit code is 128 plus the
// signal's number, as if the signal had ended the process.
type SignalError struct {
	Signal syscall.Signal
	// During is "start-up" or "a restart".
	During string
}

func (e *SignalError) Error() string {
	if e.During == duringRestart {
		return fmt.Sprintf("%s received during a restart; the command was stopped and not started again", SignalName(e.Signal))
	}
	return fmt.Sprintf("%s received before the command started", SignalName(e.Signal))
}

const (
	duringStartUp = "start-up"
	duringRestart = "a restart"
)

func (e *SignalError) ExitCode() int { return 128 + int(e.Signal) }

// ChangeError is how Run ends with OnChangeExit: the environment changed,
// the child was stopped, and a service manager is expected to start
// rolesenv again. It is a temporary failure (exit 75).
type ChangeError struct {
	Reason string
}

func (e *ChangeError) Error() string {
	msg := "the environment changed; the command was stopped (on-change exit)"
	if e.Reason != "" {
		msg += ": " + e.Reason
	}
	return msg
}

func (e *ChangeError) TempFail() bool { return true }
