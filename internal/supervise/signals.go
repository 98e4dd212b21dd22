package supervise

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// baseForwarded are the signals forwarded to the child on every platform;
// the realtime signals are added on Linux (rtForwarded).
var baseForwarded = []syscall.Signal{
	syscall.SIGHUP, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGTERM,
	syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH, syscall.SIGALRM,
}

// Forwarded returns the signals a Supervisor forwards to the child:
// HUP, INT, QUIT, TERM, USR1, USR2, WINCH, ALRM and, on Linux, the
// realtime signals a Go program can catch (35 to 64: 32 to 34 are
// reserved by the C libraries and the Go runtime).
func Forwarded() []syscall.Signal {
	return append(append([]syscall.Signal(nil), baseForwarded...), rtForwarded()...)
}

func isForwarded(sig syscall.Signal) bool {
	for _, s := range baseForwarded {
		if s == sig {
			return true
		}
	}
	return isRealtimeForwarded(sig)
}

// toGroup reports whether sig goes to the child's whole process group
// rather than to the child alone. A terminal sends INT and QUIT (Ctrl-C,
// Ctrl-\), HUP (hangup) and WINCH (resize) to its whole foreground process
// group; rolesenv receives them instead of the child's group only when the
// child's group does not hold the terminal, or from kill, so it delivers
// them as the terminal would have. TERM, USR1, USR2, ALRM and the realtime
// signals are addressed to a process (kill PID, docker stop, systemd's
// KillSignal= with KillMode=mixed): the child gets them as it would if it
// ran without rolesenv, and passes them on to its own children if it wants.
func toGroup(sig syscall.Signal) bool {
	switch sig {
	case syscall.SIGINT, syscall.SIGQUIT, syscall.SIGHUP, syscall.SIGWINCH:
		return true
	}
	return false
}

// endsRestart reports whether sig, arriving during a restart, ends
// rolesenv instead of waiting for the new child: the signals that ask a
// service to stop.
func endsRestart(sig syscall.Signal) bool {
	switch sig {
	case syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT:
		return true
	}
	return false
}

// endsUncaught reports the forwarded signals that end a Go program which
// does not catch them: the runtime dies of HUP, INT and TERM, and exits
// after a goroutine dump on QUIT; it drops USR1, USR2, ALRM, WINCH and the
// realtime signals.
func endsUncaught(sig syscall.Signal) bool {
	switch sig {
	case syscall.SIGHUP, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGTERM:
		return true
	}
	return false
}

// ignoredByDefault reports the forwarded signals whose default action is
// to do nothing; before a child exists they are dropped, as they would be
// by a process that does not handle them.
func ignoredByDefault(sig syscall.Signal) bool {
	return sig == syscall.SIGWINCH
}

// ParseSignal parses a signal name or number: "TERM", "SIGTERM", "sigterm",
// "15", and on Linux "RTMIN", "RTMIN+3", "SIGRTMAX-1" (RTMIN is 34 and
// RTMAX 64, as the C library and kill -l number them).
func ParseSignal(s string) (syscall.Signal, error) {
	name := strings.ToUpper(strings.TrimSpace(s))
	if n, err := strconv.Atoi(name); err == nil {
		if n < 1 || n > maxSignal {
			return 0, fmt.Errorf("signal number %d out of range 1-%d", n, maxSignal)
		}
		return syscall.Signal(n), nil
	}
	name = strings.TrimPrefix(name, "SIG")
	if sig, ok := parseRealtime(name); ok {
		return sig, nil
	}
	if sig := unix.SignalNum("SIG" + name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("unknown signal %q", s)
}

// SignalName returns the conventional name of sig: "SIGTERM",
// "SIGRTMIN+3", or "signal 99" for a number without a name.
func SignalName(sig syscall.Signal) string {
	if name, ok := realtimeName(sig); ok {
		return name
	}
	if name := unix.SignalName(sig); name != "" {
		return name
	}
	return "signal " + strconv.Itoa(int(sig))
}

// ValidateStopSignal refuses signals that cannot stop a process: the job
// control signals only suspend or continue it.
func ValidateStopSignal(sig syscall.Signal) error {
	switch sig {
	case syscall.SIGSTOP, syscall.SIGTSTP, syscall.SIGTTIN, syscall.SIGTTOU, syscall.SIGCONT,
		syscall.SIGCHLD, syscall.SIGURG, syscall.SIGWINCH:
		return fmt.Errorf("%s does not stop a process", SignalName(sig))
	}
	return nil
}

// ValidateRefreshSignal accepts the signals rolesenv may keep for itself:
// forwarded ones that do not mean "stop" (HUP, USR1, USR2, WINCH, ALRM and
// the realtime signals).
func ValidateRefreshSignal(sig syscall.Signal) error {
	if !isForwarded(sig) || endsRestart(sig) {
		return fmt.Errorf("%s cannot be the refresh signal (use HUP, USR1, USR2, WINCH, ALRM or a realtime signal)", SignalName(sig))
	}
	return nil
}

func osSignals(sigs []syscall.Signal) []os.Signal {
	out := make([]os.Signal, len(sigs))
	for i, s := range sigs {
		out[i] = s
	}
	return out
}
