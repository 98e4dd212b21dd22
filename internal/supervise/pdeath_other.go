//go:build !linux

package supervise

import (
	"log/slog"
	"syscall"
)

func setParentDeathSignal(_ *syscall.SysProcAttr, sig syscall.Signal, log *slog.Logger) {
	if sig != 0 {
		log.Debug("the parent death signal is Linux-only; skipped")
	}
}
