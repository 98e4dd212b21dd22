//go:build unix && !linux

package procsec

import (
	"errors"
	"log/slog"
	"os"
	"syscall"
)

// Protect does nothing on this system; it logs that at debug level and
// returns errors.ErrUnsupported.
func Protect(log *slog.Logger) error {
	if log != nil {
		log.Debug("core dump protection is not implemented on this system")
	}
	return errors.ErrUnsupported
}

// OriginalCoreLimit returns false: Protect changes nothing here.
func OriginalCoreLimit() (syscall.Rlimit, bool) { return syscall.Rlimit{}, false }

// StartProcess is os.StartProcess.
func StartProcess(name string, argv []string, attr *os.ProcAttr) (*os.Process, error) {
	return os.StartProcess(name, argv, attr)
}

// Exec is syscall.Exec.
func Exec(argv0 string, argv, envv []string) error { return syscall.Exec(argv0, argv, envv) }
