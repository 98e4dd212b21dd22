package supervise

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"syscall"
	"time"
)

// loop is the state of one Run. Only Run's goroutine touches it: it
// selects over signals, child status changes, updates, timers and the
// context, and every decision about the child is made there.
type loop struct {
	s      *Supervisor
	cfg    *Config
	log    *slog.Logger
	clock  Clock
	tty    *terminal
	reaper *reaper
	notify *notifier

	child *child
	env   []string // the running child's environment

	pending     []string // the newest environment not applied yet; nil when none
	reasons     []string
	sched       schedule
	apply       Timer // when the pending change is due
	deferLogged bool

	stop     *stopping
	starting *starting // from the moment a child is due until it runs
	restarts int
	updates  int64        // environments received, for EventStarted
	beat     *time.Ticker // Heartbeat and Watchdog; nil without them

	write     WriteFiles // the newest update's files
	writeDue  bool       // write holds files not written yet
	writeErrs int        // writes failed in a row, for the retry's backoff
	reloadRun *reloading // a reload command that runs
	reloads   int
}

type child struct {
	pid, pgid int
	proc      *os.Process
	exited    bool
	status    syscall.WaitStatus
	stopped   bool // by a job control signal
}

// stopping is a stop in progress: the stop signal went to the child's
// group, and Run waits for the group to be gone, with SIGKILL after the
// stop timeout.
type stopping struct {
	began   time.Time
	reason  string
	restart bool     // start a new child with env once the group is gone
	env     []string // for the restart
	end     error    // when not restarting: what Run returns
	timer   Timer
	poll    *time.Ticker
}

func newLoop(s *Supervisor) *loop {
	l := &loop{
		s:      s,
		cfg:    &s.cfg,
		log:    s.log,
		clock:  s.clock,
		notify: newNotifier(s.cfg.NotifySocket, s.log),
		sched: schedule{
			debounce:    s.cfg.Debounce,
			maxRestarts: s.cfg.MaxRestarts,
			window:      s.cfg.RestartWindow,
		},
	}
	if !s.noTerminal {
		l.tty = openTerminal(s.sigs)
	}
	l.reaper = newReaper(s.log)
	l.beat = newBeat(&s.cfg)
	return l
}

func (l *loop) close() {
	if l.beat != nil {
		l.beat.Stop()
	}
	l.stopApplyTimer()
	l.endReload(true)
	if l.stop != nil {
		l.stopTimers(l.stop)
	}
	if l.starting != nil && l.starting.timer != nil {
		l.starting.timer.Stop()
	}
	l.reaper.close()
	l.tty.close()
}

func (l *loop) run(ctx context.Context, env []string, updates <-chan Update) (Result, error) {
	if err := l.launch(&starting{env: env}); err != nil {
		return Result{ExitCode: exitCodeOf(err)}, err
	}
	if l.beat != nil {
		l.turned() // the loop runs from now on
	}
	done := ctx.Done()
	for {
		applyC, stopC, pollC, retryC := l.timers()
		select {
		case <-done:
			done = nil
			l.beginStop(&stopping{reason: "shutting down", end: context.Cause(ctx)})
		case sig := <-l.s.sigs:
			l.signal(sig.(syscall.Signal))
		case <-l.s.chld:
			l.waitChild()
			l.reaper.reap(l.childPid(), l.waitChild)
		case u, ok := <-updates:
			if !ok {
				updates = nil
				continue
			}
			l.update(u)
		case <-applyC:
			l.apply = nil
			l.plan()
		case <-stopC:
			l.stop.timer = nil
			l.killGroup()
		case <-pollC:
		case <-l.beatC():
			l.turned()
		case <-retryC:
			l.starting.timer = nil
			if err := l.launch(l.starting); err != nil {
				return Result{ExitCode: exitCodeOf(err), Restarts: l.restarts}, err
			}
		case err := <-l.reloadDone():
			l.reloaded(l.reloadRun, err)
		}
		if res, end, err := l.settle(); end {
			return res, err
		}
	}
}

// timers returns the channels of the timers that run (nil for the others).
func (l *loop) timers() (applyC, stopC, pollC, retryC <-chan time.Time) {
	if l.apply != nil {
		applyC = l.apply.C()
	}
	if l.starting != nil && l.starting.timer != nil {
		retryC = l.starting.timer.C()
	}
	if l.stop != nil && l.stop.timer != nil {
		stopC = l.stop.timer.C()
	}
	if l.stop != nil && l.stop.poll != nil {
		pollC = l.stop.poll.C
	}
	return applyC, stopC, pollC, retryC
}

// settle moves on once the child has exited: Run ends, or, during a
// stop, waits for the rest of its process group, then ends or restarts.
// While a start is retried, it ends Run if a signal or the context said so.
func (l *loop) settle() (res Result, end bool, err error) {
	if st := l.starting; st != nil {
		if st.end != nil {
			return Result{ExitCode: exitCodeOf(st.end), Restarts: l.restarts}, true, st.end
		}
		return Result{}, false, nil
	}
	if !l.child.exited {
		return Result{}, false, nil
	}
	if l.stop == nil {
		code, sig := statusOf(l.child.status)
		return Result{ExitCode: code, Signal: sig, Restarts: l.restarts}, true, nil
	}
	if !groupGone(l.child.pgid) {
		if l.stop.poll == nil {
			// Members whose parent is not rolesenv die without a SIGCHLD
			// here; look again now and then.
			l.stop.poll = time.NewTicker(50 * time.Millisecond)
		}
		return Result{}, false, nil
	}
	return l.finishStop()
}

// finishStop ends a stop once the child's group is gone: Run ends, or the
// new child of a restart is launched.
func (l *loop) finishStop() (res Result, end bool, err error) {
	// Signals caught until now belong to the stop: TERM, INT or QUIT
	// still cancel the restart, and nothing is left for the new child.
	l.drainSignals()
	st := l.stop
	l.stopTimers(st)
	l.stop = nil
	took := l.clock.Now().Sub(st.began)
	code, sig := statusOf(l.child.status)
	if !st.restart {
		l.log.Info("child stopped", "reason", st.reason, "status", code, "took", took)
		return Result{ExitCode: code, Signal: sig, Restarts: l.restarts}, true, st.end
	}
	if err := l.launch(&starting{env: st.env, restart: true, reason: st.reason, stopTook: took}); err != nil {
		l.observe(Event{Kind: EventRestart, Reason: ReasonChange, Outcome: OutcomeFailed})
		return Result{ExitCode: exitCodeOf(err), Restarts: l.restarts}, true, err
	}
	return Result{}, false, nil
}

// waitChild collects the child's status changes without blocking.
func (l *loop) waitChild() {
	c := l.child
	for c != nil && !c.exited {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(c.pid, &ws, syscall.WNOHANG|syscall.WUNTRACED|syscall.WCONTINUED, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			// Only a reaper that breaks its promise could do this.
			l.log.Error("lost the child's exit status", "pid", c.pid, "err", err)
			ws = syscall.WaitStatus(255 << 8)
			pid = c.pid
		}
		if pid != c.pid {
			return
		}
		switch {
		case ws.Exited() || ws.Signaled():
			l.exited(ws)
		case ws.Stopped():
			l.stopped(ws.StopSignal())
		case ws.Continued():
			c.stopped = false
		}
	}
}

func (l *loop) exited(ws syscall.WaitStatus) {
	c := l.child
	c.exited, c.status = true, ws
	_ = c.proc.Release() // the status is collected; close its pidfd
	if l.tty != nil && l.tty.holdsForeground(c.pgid) {
		if err := l.tty.setForeground(l.tty.pgrp); err != nil {
			l.log.Debug("cannot take the terminal back", "err", err)
		}
	}
	code, sig := statusOf(ws)
	l.observe(Event{Kind: EventExited, PID: c.pid, ExitCode: code, Signal: sig})
	if sig != 0 {
		l.log.Info("child exited", "pid", c.pid, "status", code, "signal", SignalName(sig))
	} else {
		l.log.Info("child exited", "pid", c.pid, "status", code)
	}
}

// stopped handles a child stopped by a job control signal, as sudo does:
// in a terminal, rolesenv stops itself with the same signal, so that the
// shell sees its job stop, and continues the child when it is continued.
func (l *loop) stopped(sig syscall.Signal) {
	l.child.stopped = true
	l.log.Debug("child stopped", "signal", SignalName(sig))
	if l.tty == nil || l.stop != nil {
		return // no job control without a terminal; a stop continues it itself
	}
	if (sig == syscall.SIGTTIN || sig == syscall.SIGTTOU) && l.tty.ours() {
		// The child wants the terminal, and rolesenv has it: hand it over.
		l.resume()
		return
	}
	stopSelf(sig, l.s.sigs)
	l.resume()
}

// resume gives the terminal to the child when rolesenv has it, and
// continues the child if it is stopped.
func (l *loop) resume() {
	c := l.child
	if c == nil || c.exited {
		return
	}
	if l.tty != nil && l.tty.ours() {
		if err := l.tty.setForeground(c.pgid); err != nil {
			l.log.Debug("cannot give the terminal to the child", "err", err)
		}
	}
	if c.stopped {
		_ = syscall.Kill(-c.pgid, syscall.SIGCONT)
		c.stopped = false
	}
}

// signal handles a signal rolesenv caught.
func (l *loop) signal(sig syscall.Signal) {
	switch {
	case sig == l.cfg.RefreshSignal:
		l.s.refresh()
		return
	case sig == syscall.SIGCONT:
		l.resume()
		return
	case sig == syscall.SIGTTIN || sig == syscall.SIGTTOU:
		return // caught only so that the child does not inherit an ignored disposition
	}
	switch {
	case l.starting != nil:
		l.signalStarting(sig)
	case l.stop != nil && l.stop.restart:
		l.signalRestart(sig)
	default:
		l.forward(sig)
	}
}

// signalRestart handles a signal while the old child stops for a restart.
// TERM, INT and QUIT cancel the restart; any other signal goes to the old
// child while it runs and is dropped once it is gone: the new child starts
// with a fresh configuration and must not get a signal before it could
// install its handlers.
func (l *loop) signalRestart(sig syscall.Signal) {
	switch {
	case endsRestart(sig):
		l.log.Info("signal during a restart: not starting the command again", "signal", SignalName(sig))
		l.stop.restart = false
		l.stop.end = &SignalError{Signal: sig, During: duringRestart}
		l.forward(sig)
	case l.child.exited:
		l.dropped(sig)
	default:
		l.forward(sig)
	}
}

// signalStarting handles a signal while no child runs and one is due: the
// first start (a signal that would end a process ends Run, as before
// Run), or a restart (TERM, INT and QUIT end Run, any other is dropped).
func (l *loop) signalStarting(sig syscall.Signal) {
	st := l.starting
	switch {
	case st.end != nil:
	case st.restart && endsRestart(sig):
		l.log.Info("signal during a restart: not starting the command again", "signal", SignalName(sig))
		st.end = &SignalError{Signal: sig, During: duringRestart}
	case st.restart:
		l.dropped(sig)
	case isForwarded(sig) && !ignoredByDefault(sig):
		l.log.Info("signal before the command started", "signal", SignalName(sig))
		st.end = &SignalError{Signal: sig, During: duringStartUp}
	default:
		l.log.Debug("signal before the command started: dropped", "signal", SignalName(sig))
	}
}

func (l *loop) dropped(sig syscall.Signal) {
	l.log.Info("signal during a restart: dropped; the new command starts with a fresh configuration", "signal", SignalName(sig))
}

// drainSignals handles the signals caught so far without waiting.
func (l *loop) drainSignals() {
	for {
		select {
		case sig := <-l.s.sigs:
			l.signal(sig.(syscall.Signal))
		default:
			return
		}
	}
}

// forward delivers sig to the child, or to its process group (toGroup).
func (l *loop) forward(sig syscall.Signal) {
	c := l.child
	if c == nil || c.exited {
		return
	}
	target, to := c.pid, "process"
	if toGroup(sig) {
		target, to = -c.pgid, "process group"
	}
	if err := syscall.Kill(target, sig); err != nil {
		l.log.Debug("cannot forward signal", "signal", SignalName(sig), "err", err)
		return
	}
	l.log.Debug("forwarded signal", "signal", SignalName(sig), "to", to, "pid", c.pid)
}

// update takes a new environment, or a fatal error, from the watcher.
func (l *loop) update(u Update) {
	if u.Err != nil {
		l.log.Error("stopping the command", "err", u.Err)
		l.beginStop(&stopping{reason: "watching failed", end: u.Err})
		return
	}
	l.updates++
	if l.cfg.OnChange == OnChangeNone {
		l.log.Info("environment changed; not restarting (on-change none)", "reason", u.Reason)
		return
	}
	if u.Files != nil {
		l.write, l.writeDue = u.Files, true
	}
	if l.stop != nil {
		if l.stop.restart {
			l.stop.env = u.Env // the restart in progress takes the newest
			l.stop.reason = joinReasons(l.stop.reason, u.Reason)
		}
		return
	}
	if st := l.starting; st != nil {
		st.env = u.Env // so does a start being retried
		st.reason = joinReasons(st.reason, u.Reason)
		return
	}
	l.pending = u.Env
	if u.Reason != "" {
		l.reasons = append(l.reasons, u.Reason)
	}
	l.sched.change(l.clock.Now())
	l.plan()
	l.log.Debug("environment update planned", "reason", u.Reason)
}

// plan applies the pending change when it is due, or sets a timer for
// when it will be.
func (l *loop) plan() {
	l.stopApplyTimer()
	if !l.sched.pending() || l.stop != nil || l.starting != nil || l.reloadRun != nil {
		return
	}
	now := l.clock.Now()
	wait, deferred := l.sched.next(now, l.cfg.OnChange == OnChangeRestart || l.cfg.OnChange == OnChangeReload)
	if wait > 0 {
		if deferred && !l.deferLogged {
			l.logDeferred(now, wait)
		}
		l.apply = l.clock.NewTimer(wait)
		return
	}
	l.applyPending(now)
}

// logDeferred says, once per deferral, that the restart budget holds the
// pending change back for wait.
func (l *loop) logDeferred(now time.Time, wait time.Duration) {
	l.deferLogged = true
	l.observe(Event{Kind: EventRestart, Reason: ReasonChange, Outcome: OutcomeDeferred})
	l.log.Warn("restart deferred: restart budget spent",
		"until", now.Add(wait).Format(time.RFC3339), "max_restarts", l.cfg.MaxRestarts,
		"window", l.cfg.RestartWindow, "reason", strings.Join(l.reasons, "; "))
	l.notify.send(status(fmt.Sprintf("environment changed; restart deferred for %s (restart budget spent)", wait.Round(time.Second))))
}

// applyPending applies the pending change now: nothing when it leads back
// to the running environment, else a stop that ends Run or restarts.
func (l *loop) applyPending(now time.Time) {
	env, reason := l.pending, strings.Join(l.reasons, "; ")
	l.pending, l.reasons, l.deferLogged = nil, nil, false
	if equalEnv(env, l.env) && (l.write == nil || l.filesOnly(now, reason)) {
		if l.write == nil {
			l.sched.clear()
			l.log.Info("environment changed back; nothing to restart", "reason", reason)
		}
		return
	}
	if l.cfg.OnChange == OnChangeExit {
		l.sched.clear()
		l.notify.send("STOPPING=1", status("environment changed; stopping (on-change exit)"))
		l.beginStop(&stopping{reason: reason, end: &ChangeError{Reason: reason}})
		return
	}
	l.sched.restarted(now)
	l.restartForEnv(reason)
	l.notify.send("RELOADING=1", "MONOTONIC_USEC="+monotonicUsec(), status("environment changed; restarting "+l.cfg.Command))
	l.beginStop(&stopping{reason: reason, restart: true, env: env})
}

func joinReasons(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "; " + b
}

func (l *loop) stopApplyTimer() {
	if l.apply != nil {
		l.apply.Stop()
		l.apply = nil
	}
}

// beginStop sends the stop signal to the child's process group and starts
// the stop timeout. A stop already in progress keeps going; a final one
// replaces a restart.
func (l *loop) beginStop(st *stopping) {
	if l.starting != nil {
		if l.starting.end == nil {
			l.starting.end = st.end // no child runs: nothing to stop
		}
		return
	}
	if l.stop != nil {
		if !st.restart && l.stop.restart {
			l.stop.restart, l.stop.end = false, st.end
		}
		return
	}
	l.stopApplyTimer()
	l.endReload(false)
	st.began = l.clock.Now()
	l.stop = st
	c := l.child
	l.log.Info("stopping child", "pid", c.pid, "reason", st.reason, "signal", SignalName(l.cfg.StopSignal), "timeout", l.cfg.StopTimeout)
	if !c.exited || !groupGone(c.pgid) {
		_ = syscall.Kill(-c.pgid, l.cfg.StopSignal)
		// A stopped process acts on the stop signal only once continued.
		_ = syscall.Kill(-c.pgid, syscall.SIGCONT)
	}
	st.timer = l.clock.NewTimer(l.cfg.StopTimeout)
}

// killGroup ends the stop timeout: SIGKILL to whatever is left of the
// child's process group.
func (l *loop) killGroup() {
	c := l.child
	if groupGone(c.pgid) {
		return
	}
	l.log.Warn("child did not stop in time; killing its process group", "pgid", c.pgid, "timeout", l.cfg.StopTimeout)
	_ = syscall.Kill(-c.pgid, syscall.SIGKILL)
}

func (l *loop) stopTimers(st *stopping) {
	if st.timer != nil {
		st.timer.Stop()
		st.timer = nil
	}
	if st.poll != nil {
		st.poll.Stop()
		st.poll = nil
	}
}

// groupGone reports whether no process is left in process group pgid. The
// group's number cannot be reused while any member, zombies included,
// exists, so a signal to -pgid before this says true reaches only the
// child's group.
func groupGone(pgid int) bool {
	return errors.Is(syscall.Kill(-pgid, 0), syscall.ESRCH)
}

func exitCodeOf(err error) int {
	var e interface{ ExitCode() int }
	if errors.As(err, &e) {
		return e.ExitCode()
	}
	return 1
}
