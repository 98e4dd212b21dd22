package supervise

import (
	"os"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
)

func TestParseSignal(t *testing.T) {
	cases := map[string]syscall.Signal{
		"TERM": syscall.SIGTERM, "SIGTERM": syscall.SIGTERM, "sigterm": syscall.SIGTERM,
		"15": syscall.SIGTERM, " hup ": syscall.SIGHUP, "SIGKILL": syscall.SIGKILL, "winch": syscall.SIGWINCH,
	}
	if runtime.GOOS == "linux" {
		cases["RTMIN"] = 34
		cases["SIGRTMIN+1"] = 35
		cases["rtmin+30"] = 64
		cases["RTMAX"] = 64
		cases["RTMAX-2"] = 62
		cases["64"] = 64
	}
	for in, want := range cases {
		got, err := ParseSignal(in)
		if err != nil || got != want {
			t.Errorf("ParseSignal(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "0", "65", "-1", "NOPE", "RTMIN+31", "RTMAX+1", "RTMIN3", "SIG"} {
		if sig, err := ParseSignal(bad); err == nil {
			t.Errorf("ParseSignal(%q) = %v, want an error", bad, sig)
		}
	}
}

func TestSignalNameRoundTrip(t *testing.T) {
	for _, sig := range append(Forwarded(), syscall.SIGKILL, syscall.SIGSEGV) {
		name := SignalName(sig)
		back, err := ParseSignal(name)
		if err != nil || back != sig {
			t.Errorf("%d -> %q -> %v, %v", sig, name, back, err)
		}
	}
}

func TestValidateSignals(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGSTOP, syscall.SIGCONT, syscall.SIGTSTP, syscall.SIGCHLD} {
		if ValidateStopSignal(sig) == nil {
			t.Errorf("%s accepted as a stop signal", SignalName(sig))
		}
	}
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGKILL, syscall.SIGCHLD, syscall.SIGURG} {
		if ValidateRefreshSignal(sig) == nil {
			t.Errorf("%s accepted as the refresh signal", SignalName(sig))
		}
	}
	for _, sig := range []syscall.Signal{syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2} {
		if err := ValidateRefreshSignal(sig); err != nil {
			t.Errorf("%s refused as the refresh signal: %v", SignalName(sig), err)
		}
	}
}

// TestCaughtInPlace: before Exec, a Supervisor catches every forwarded
// signal that ends a start-up, and the refresh signal; WINCH, which does
// not, and the job control signals only Run needs, are left alone.
func TestCaughtInPlace(t *testing.T) {
	has := func(sigs []os.Signal, sig syscall.Signal) bool { return slices.Contains(sigs, os.Signal(sig)) }
	got := caught(&Config{InPlace: true})
	for _, sig := range Forwarded() {
		if want := sig != syscall.SIGWINCH; has(got, sig) != want {
			t.Errorf("in place, %s caught: %v, want %v", SignalName(sig), !want, want)
		}
	}
	for _, sig := range []syscall.Signal{syscall.SIGCONT, syscall.SIGTTIN, syscall.SIGTTOU, syscall.SIGCHLD} {
		if has(got, sig) {
			t.Errorf("in place, %s caught", SignalName(sig))
		}
		if want := sig != syscall.SIGCHLD; has(caught(&Config{}), sig) != want {
			t.Errorf("for Run, %s caught: %v, want %v", SignalName(sig), !want, want)
		}
	}
	if !has(caught(&Config{InPlace: true, RefreshSignal: syscall.SIGWINCH}), syscall.SIGWINCH) {
		t.Error("in place, the refresh signal WINCH is not caught")
	}
}

// FuzzParseSignal: any input either fails or gives a signal in range
// whose name parses back to it.
func FuzzParseSignal(f *testing.F) {
	for _, s := range []string{"TERM", "sigterm", "15", "RTMIN+3", "SIGRTMAX-1", "0", "65", "RTMIN+-1", "+15", "SIG", " int "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 64 {
			return
		}
		sig, err := ParseSignal(s)
		if err != nil {
			return
		}
		if sig < 1 || sig > maxSignal {
			t.Fatalf("ParseSignal(%q) = %d, out of range", s, sig)
		}
		if back, err := ParseSignal(SignalName(sig)); err != nil && !strings.HasPrefix(SignalName(sig), "signal ") || err == nil && back != sig {
			t.Fatalf("ParseSignal(%q) = %d, whose name %q parses to %d, %v", s, sig, SignalName(sig), back, err)
		}
	})
}
