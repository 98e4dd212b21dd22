package supervise

import (
	"strconv"
	"strings"
	"syscall"
)

const (
	maxSignal = 64
	// sigRTMIN and sigRTMAX as the C libraries and kill -l name them.
	sigRTMIN = 34
	sigRTMAX = 64
	// firstForwardedRT is the lowest realtime signal a Go program can
	// catch: the runtime keeps 32 to 34 (glibc's and musl's own).
	firstForwardedRT = 35
)

func rtForwarded() []syscall.Signal {
	var out []syscall.Signal
	for s := firstForwardedRT; s <= sigRTMAX; s++ {
		out = append(out, syscall.Signal(s))
	}
	return out
}

func isRealtimeForwarded(sig syscall.Signal) bool {
	return sig >= firstForwardedRT && sig <= sigRTMAX
}

// parseRealtime parses RTMIN, RTMIN+n, RTMAX and RTMAX-n (upper case, no
// SIG prefix).
func parseRealtime(name string) (syscall.Signal, bool) {
	base, rest := 0, ""
	switch {
	case strings.HasPrefix(name, "RTMIN"):
		base, rest = sigRTMIN, name[len("RTMIN"):]
	case strings.HasPrefix(name, "RTMAX"):
		base, rest = sigRTMAX, name[len("RTMAX"):]
	default:
		return 0, false
	}
	n := 0
	if rest != "" {
		var err error
		if n, err = strconv.Atoi(rest); err != nil || (rest[0] != '+' && rest[0] != '-') {
			return 0, false
		}
	}
	sig := base + n
	if sig < sigRTMIN || sig > sigRTMAX {
		return 0, false
	}
	return syscall.Signal(sig), true
}

func realtimeName(sig syscall.Signal) (string, bool) {
	switch {
	case sig == sigRTMIN:
		return "SIGRTMIN", true
	case sig == sigRTMAX:
		return "SIGRTMAX", true
	case sig > sigRTMIN && sig < sigRTMAX:
		return "SIGRTMIN+" + strconv.Itoa(int(sig)-sigRTMIN), true
	}
	return "", false
}
