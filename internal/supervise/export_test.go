package supervise

import (
	"os"
	"syscall"
	"testing"
)

// newInProcess returns a Supervisor for a test that runs Run in the test
// process: it catches no signal (the test injects them with inject) and
// leaves the terminal alone.
func newInProcess(t testing.TB, cfg Config) *Supervisor {
	t.Helper()
	s, err := newSupervisor(cfg, false)
	if err != nil {
		t.Fatal(err)
	}
	s.noTerminal = true
	t.Cleanup(s.Close)
	return s
}

// inject delivers sig to the Supervisor as if rolesenv had caught it.
func (s *Supervisor) inject(sig syscall.Signal) { s.sigs <- os.Signal(sig) }
