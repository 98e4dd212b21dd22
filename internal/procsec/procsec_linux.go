package procsec

import (
	"fmt"
	"log/slog"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

var (
	mu       sync.Mutex // serialises every change of RLIMIT_CORE made here
	original *syscall.Rlimit
)

// Protect makes the process non-dumpable and lowers its soft RLIMIT_CORE
// to 0, remembering the soft limit it had for the children. It is safe to
// call more than once; the limit remembered is the one found the first
// time. A failure is logged as a warning and returned; rolesenv goes on
// without the protection rather than refusing to run.
func Protect(log *slog.Logger) error {
	mu.Lock()
	defer mu.Unlock()
	if err := protect(); err != nil {
		if log != nil {
			log.Warn("core dump protection failed; a core file of rolesenv could hold secrets", "error", err)
		}
		return err
	}
	return nil
}

func protect() error {
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("failed to make the process non-dumpable: %w", err)
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_CORE, &lim); err != nil {
		return fmt.Errorf("failed to read RLIMIT_CORE: %w", err)
	}
	if original == nil {
		saved := lim
		original = &saved
	}
	lim.Cur = 0
	if err := syscall.Setrlimit(syscall.RLIMIT_CORE, &lim); err != nil {
		return fmt.Errorf("failed to lower RLIMIT_CORE: %w", err)
	}
	return nil
}

// OriginalCoreLimit returns the RLIMIT_CORE the process had when Protect
// first ran, and false when Protect has not lowered it.
func OriginalCoreLimit() (syscall.Rlimit, bool) {
	mu.Lock()
	defer mu.Unlock()
	if original == nil {
		return syscall.Rlimit{}, false
	}
	return *original, true
}

// StartProcess is os.StartProcess with the child getting the soft
// RLIMIT_CORE rolesenv had before Protect. The limit is set back to 0 as
// soon as the child exists; meanwhile rolesenv stays non-dumpable.
func StartProcess(name string, argv []string, attr *os.ProcAttr) (*os.Process, error) {
	mu.Lock()
	defer mu.Unlock()
	if original == nil {
		return os.StartProcess(name, argv, attr)
	}
	var lowered syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_CORE, &lowered); err != nil {
		return os.StartProcess(name, argv, attr)
	}
	restored := lowered
	restored.Cur = min(original.Cur, lowered.Max)
	if err := syscall.Setrlimit(syscall.RLIMIT_CORE, &restored); err != nil {
		return os.StartProcess(name, argv, attr) // the child gets 0: no core, the safe side
	}
	defer syscall.Setrlimit(syscall.RLIMIT_CORE, &lowered)
	return os.StartProcess(name, argv, attr)
}

// Exec is syscall.Exec with the soft RLIMIT_CORE rolesenv had before
// Protect given back first. The process stays non-dumpable until execve
// resets the flag for the new program. If execve fails, the limit is
// lowered again.
func Exec(argv0 string, argv, envv []string) error {
	mu.Lock()
	defer mu.Unlock()
	if original == nil {
		return syscall.Exec(argv0, argv, envv)
	}
	var lowered syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_CORE, &lowered); err == nil {
		restored := lowered
		restored.Cur = min(original.Cur, lowered.Max)
		if syscall.Setrlimit(syscall.RLIMIT_CORE, &restored) == nil {
			defer syscall.Setrlimit(syscall.RLIMIT_CORE, &lowered)
		}
	}
	return syscall.Exec(argv0, argv, envv)
}
