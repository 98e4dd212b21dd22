package supervise

import (
	"errors"
	"fmt"
	"syscall"
)

// StartError is a command that could not be started. Its exit code is the
// shell's: 127 when the command was not found, 126 when it was found but
// could not be executed.
type StartError struct {
	Command string
	Err     error
}

func (e *StartError) Error() string {
	if e.ExitCode() == 127 {
		return fmt.Sprintf("%s: command not found", e.Command)
	}
	return fmt.Sprintf("%s: cannot execute: %v", e.Command, e.Err)
}

func (e *StartError) Unwrap() error { return e.Err }

// ExitCode is 127 for a command that was not found, 126 otherwise.
func (e *StartError) ExitCode() int {
	if errors.Is(e.Err, errNotFound) {
		return 127
	}
	return 126
}

// Hint says where the command was looked for.
func (e *StartError) Hint() string {
	if e.ExitCode() == 127 {
		return "a command without a slash is looked up on the PATH of its environment (rolesenv's own PATH if the environment has none)"
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
