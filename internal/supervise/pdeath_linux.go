package supervise

import (
	"log/slog"
	"syscall"
)

// setParentDeathSignal asks the kernel to send sig to the child when the
// thread that created it exits (prctl PR_SET_PDEATHSIG, set in the child
// after fork and after the switch of user). That is a thread, not the
// process: Run creates every child from its own goroutine locked to one OS
// thread, which lives until Run returns, so the signal fires only when
// rolesenv itself dies.
func setParentDeathSignal(sys *syscall.SysProcAttr, sig syscall.Signal, _ *slog.Logger) {
	sys.Pdeathsig = sig
}
