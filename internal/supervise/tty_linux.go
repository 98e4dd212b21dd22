package supervise

import (
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// setForeground makes pgid the terminal's foreground process group. A
// process outside the foreground group that does this gets SIGTTOU unless
// the signal is blocked or ignored; ignoring it would be inherited by any
// process started meanwhile, so it is blocked, on this OS thread only, for
// the duration of the call.
func (t *terminal) setForeground(pgid int) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var set, old unix.Sigset_t
	sigaddset(&set, syscall.SIGTTOU)
	if err := unix.PthreadSigmask(unix.SIG_BLOCK, &set, &old); err != nil {
		return err
	}
	defer unix.PthreadSigmask(unix.SIG_SETMASK, &old, nil)
	return unix.IoctlSetPointerInt(t.fd(), unix.TIOCSPGRP, pgid)
}

func sigaddset(set *unix.Sigset_t, sig syscall.Signal) {
	n := uint(sig) - 1
	bits := uint(unsafe.Sizeof(set.Val[0])) * 8 // bits per word, 32 or 64
	set.Val[n/bits] |= 1 << (n % bits)
}

// stopSelf stops rolesenv with sig, as a shell job stops, and returns once
// it is continued (or at once, if the kernel discards the stop because
// rolesenv's process group is orphaned). The signal is sent to this very
// thread, which the caller has locked, so the stop happens on the way out
// of tgkill, before any Go code runs; a process-directed kill would leave a
// window in which the re-installed handler caught it instead.
func stopSelf(sig syscall.Signal, sigs chan<- os.Signal) {
	if sig == syscall.SIGTTIN || sig == syscall.SIGTTOU {
		// rolesenv catches these: the default action (stop) is needed.
		signal.Reset(sig)
		defer signal.Notify(sigs, sig)
	}
	_ = unix.Tgkill(unix.Getpid(), unix.Gettid(), sig)
}
