//go:build !linux

package supervise

import (
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// setForeground makes pgid the terminal's foreground process group. Where
// a thread's signal mask cannot be set from Go, SIGTTOU is ignored for the
// duration of the call; a process started by another goroutine in that
// instant would inherit the ignored disposition.
func (t *terminal) setForeground(pgid int) error {
	if !t.ours() {
		signal.Ignore(syscall.SIGTTOU)
		defer signal.Notify(t.sigs, syscall.SIGTTOU)
	}
	return unix.IoctlSetPointerInt(t.fd(), unix.TIOCSPGRP, pgid)
}

// stopSelf stops rolesenv as a shell job stops. SIGTSTP stands in for
// SIGTTIN and SIGTTOU, which rolesenv catches; it is never caught, so the
// default action applies.
func stopSelf(sig syscall.Signal, _ chan<- os.Signal) {
	if sig == syscall.SIGTTIN || sig == syscall.SIGTTOU {
		sig = syscall.SIGTSTP
	}
	_ = syscall.Kill(syscall.Getpid(), sig)
}
