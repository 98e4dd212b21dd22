package supervise

import (
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/rolesenv/rolesenv/internal/procsec"
)

func envValue(env []string, name string) (string, bool) {
	for i := len(env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(env[i], "="); ok && k == name {
			return v, true
		}
	}
	return "", false
}

func equalEnv(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	a, b = sortedEnv(a), sortedEnv(b)
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// statusOf converts a wait status to rolesenv's exit code: the child's
// status, or 128+N when it died of signal N.
func statusOf(ws syscall.WaitStatus) (code int, sig syscall.Signal) {
	switch {
	case ws.Exited():
		return ws.ExitStatus(), 0
	case ws.Signaled():
		return 128 + int(ws.Signal()), ws.Signal()
	}
	return 255, 0
}

// Exec replaces rolesenv with the command (execve: the same PID, nothing
// resident, so no signal forwarding, reaping or restarts). It returns only
// on failure: a *SignalError when a signal arrived before, a *StartError
// when the command cannot be executed.
func (s *Supervisor) Exec(env []string) error {
	if err := s.claim(false); err != nil {
		return err
	}
	path, err := LookPath(s.cfg.Command, env)
	if err != nil {
		return err
	}
	if s.cfg.User != nil {
		if err := s.cfg.User.become(); err != nil {
			return fmt.Errorf("failed to switch to user %s: %w", s.cfg.User.Name, err)
		}
	}
	if s.cfg.ParentDeathSignal != 0 {
		s.log.Debug("the parent death signal does not apply with exec in place")
	}
	if err := s.releaseSignals(); err != nil {
		return err
	}
	argv := append([]string{s.cfg.Command}, s.cfg.Args...)
	err = procsec.Exec(path, argv, sortedEnv(env))
	return &StartError{Command: s.cfg.Command, Err: err}
}

// releaseSignals gives back, just before execve, the caught signals
// that end a Go program which does not catch them (see endsUncaught): one
// that arrives from then on ends rolesenv, as it would end the command,
// and HUP and INT are ignored again if rolesenv was started with them
// ignored. It returns a *SignalError for a caught signal that would have
// ended the process. The others stay caught until execve gives them their
// default action: one that comes after this check is lost, as the
// runtime would drop it uncaught, and giving each back would cost a round
// trip to the runtime's signal thread.
func (s *Supervisor) releaseSignals() error {
	var back []os.Signal
	for _, sig := range s.caught {
		if endsUncaught(sig.(syscall.Signal)) {
			back = append(back, sig)
		}
	}
	if len(back) > 0 {
		signal.Reset(back...)
	}
	for {
		select {
		case sig := <-s.sigs:
			if ss := sig.(syscall.Signal); isForwarded(ss) && !ignoredByDefault(ss) && ss != s.cfg.RefreshSignal {
				return &SignalError{Signal: ss, During: duringStartUp}
			}
		default:
			return nil
		}
	}
}
