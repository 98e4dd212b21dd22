package supervise

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"syscall"
	"time"
)

// starting is a child that is due: the first one, or the new one of a
// restart once the old group is gone. It lives until the child runs, across
// the retries of a start the system refused for lack of a resource.
type starting struct {
	env      []string
	restart  bool
	reason   string        // of the restart, for the log
	stopTook time.Duration // of the restart's stop, for the log

	attempts int       // failed so far
	began    time.Time // of the first failure
	timer    Timer     // the next attempt
	end      error     // set by a signal or the context: Run ends with it
}

// Retrying a start: the delay doubles from retryFirst to retryMax, each
// one jittered, until Config.StartRetryLimit has passed since the first
// failure.
const (
	retryFirst        = 100 * time.Millisecond
	retryMax          = 5 * time.Second
	defaultRetryLimit = time.Minute
)

// launch starts the child of st, or, when the system refused a resource,
// arranges for another attempt and returns nil. It returns an error when
// Run must end: the start failed for good, or a signal caught meanwhile
// ends it.
func (l *loop) launch(st *starting) error {
	l.starting = st
	l.drainSignals() // what was caught before the child exists is not for it
	if st.end != nil {
		return st.end
	}
	if l.writeDue {
		// The new child reads the files of its environment: those of the
		// newest update, which may have come during the retries.
		l.writeFiles()
	}
	err := l.start(st.env)
	if err == nil {
		l.starting = nil
		l.started(st)
		return nil
	}
	if !isResource(err) {
		return err
	}
	return l.retry(st, err)
}

// retry schedules the next attempt of st after a failure err, or gives up
// with err once the retry limit has passed.
func (l *loop) retry(st *starting, err error) error {
	now := l.clock.Now()
	if st.attempts == 0 {
		st.began = now
		l.log.Warn("cannot start the command: the system refused a resource; retrying",
			"command", l.cfg.Command, "err", errors.Unwrap(err), "give_up_after", l.cfg.StartRetryLimit)
		l.notify.send(status(fmt.Sprintf("cannot start %s (%v); retrying", l.cfg.Command, errors.Unwrap(err))))
	}
	st.attempts++
	left := st.began.Add(l.cfg.StartRetryLimit).Sub(now)
	if left <= 0 {
		var se *StartError
		if errors.As(err, &se) {
			se.Retried = now.Sub(st.began)
		}
		return err
	}
	st.timer = l.clock.NewTimer(min(backoff(st.attempts), left))
	return nil
}

// backoff is the delay before attempt n+1 (n from 1): retryFirst doubled
// n-1 times, at most retryMax, then drawn from its upper half so that
// supervisors refused at the same moment do not retry in step.
func backoff(n int) time.Duration {
	d := retryMax
	if n < 8 {
		d = min(retryFirst<<(n-1), retryMax)
	}
	return d/2 + rand.N(d/2+1)
}

// started logs a child that runs: after retries, and as a restart.
func (l *loop) started(st *starting) {
	if st.attempts > 0 {
		l.log.Info("command started after the system refused a resource",
			"pid", l.child.pid, "attempts", st.attempts+1, "after", l.clock.Now().Sub(st.began))
	}
	if !st.restart {
		return
	}
	l.restarts++
	l.observe(Event{Kind: EventRestart, PID: l.child.pid, Reason: ReasonChange, Outcome: OutcomeOK})
	l.log.Info("child restarted", "pid", l.child.pid, "reason", st.reason, "stop_took", st.stopTook, "restarts", l.restarts)
	l.notify.send("READY=1", status(fmt.Sprintf("running %s (pid %d), restarted %d times", l.cfg.Command, l.child.pid, l.restarts)))
	l.plan() // a change may have been deferred meanwhile
}

// start starts the child with env.
func (l *loop) start(env []string) error {
	path, err := LookPath(l.cfg.Command, env)
	if err != nil {
		return err
	}
	attr, fg := l.procAttr(env)
	argv := append([]string{l.cfg.Command}, l.cfg.Args...)
	p, err := l.s.startProcess(path, argv, attr)
	if err != nil {
		if fg && !l.tty.ours() {
			_ = l.tty.setForeground(l.tty.pgrp)
		}
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return &StartError{Command: l.cfg.Command, Err: err}
	}
	l.child = &child{pid: p.Pid, pgid: p.Pid, proc: p}
	l.env = env
	l.reaper.learn(p.Pid)
	l.observe(Event{Kind: EventStarted, PID: p.Pid, Updates: l.updates})
	l.log.Info("child started", "pid", p.Pid, "command", l.cfg.Command, "foreground", fg)
	return nil
}

// procAttr is how the child is started: its own process group, the
// terminal's foreground when rolesenv holds it (fg), its user, its
// parent-death signal, the standard streams, and env sorted.
func (l *loop) procAttr(env []string) (attr *os.ProcAttr, fg bool) {
	sys := &syscall.SysProcAttr{Setpgid: true}
	fg = l.tty != nil && l.tty.ours()
	if fg {
		// The child makes its own group the foreground group between fork
		// and exec, with signals blocked, so it never reads the terminal
		// as a background process.
		sys.Foreground = true
		sys.Ctty = l.tty.fd()
	}
	if l.cfg.User != nil {
		sys.Credential = l.cfg.User.credential()
	}
	setParentDeathSignal(sys, l.cfg.ParentDeathSignal, l.log)
	files := []*os.File{orStd(l.cfg.Stdin, os.Stdin), orStd(l.cfg.Stdout, os.Stdout), orStd(l.cfg.Stderr, os.Stderr)}
	return &os.ProcAttr{Env: sortedEnv(env), Files: files, Sys: sys}, fg
}

func orStd(f, std *os.File) *os.File {
	if f != nil {
		return f
	}
	return std
}

// childPid is the pid of the current or last child, or -1 before the
// first one.
func (l *loop) childPid() int {
	if l.child == nil {
		return -1
	}
	return l.child.pid
}
