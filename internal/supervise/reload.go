package supervise

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// DefaultReloadTimeout bounds a reload command when Config.ReloadTimeout
// is zero.
const DefaultReloadTimeout = 30 * time.Second

// reloading is a reload command that runs. Its result comes on done; the
// loop applies no other change meanwhile.
type reloading struct {
	began   time.Time
	reason  string
	updates int64 // the updates received when it began, for EventReload
	done    chan error
	cancel  context.CancelFunc // ends the reload command, with its group
}

// reloadEndWait bounds how long Run waits, as it returns, for a reload
// command it has killed: past it, the command is left to its
// parent-death signal.
const reloadEndWait = 3 * time.Second

// WriteFiles is how an Update brings files: called by Run when it applies
// the update (after the debounce and within the budget), never before, it
// writes what the update's environment delivers in files and reports
// whether any of them changed.
type WriteFiles func() (changed bool, err error)

// writeFiles writes the files of the newest update, if any, and reports
// whether they changed; a failure is logged and the old files stay.
func (l *loop) writeFiles() (changed bool, ok bool) {
	if l.write == nil {
		return false, true
	}
	changed, err := l.write()
	if err != nil {
		l.writeErrs++
		l.log.Error("cannot write the secret files; the command keeps the ones it has", "err", err)
		return changed, false
	}
	l.writeDue, l.writeErrs = false, 0
	return changed, true
}

// filesOnly applies a change that leaves the environment as it is: it
// writes the files and, when they changed, reloads (or, for
// OnChangeRestart and OnChangeExit, reports that a stop is due). handled
// is false when that stop is due. A write that fails is tried again
// later (see retryWrite).
func (l *loop) filesOnly(now time.Time, reason string) (handled bool) {
	changed, ok := l.writeFiles()
	if changed && l.cfg.OnChange != OnChangeReload {
		return false // the new child's start writes what failed
	}
	if changed {
		l.reload(now, reason)
	}
	switch {
	case !ok:
		l.retryWrite(reason)
	case !changed:
		l.sched.clear()
		l.log.Info("environment changed back; nothing to restart", "reason", reason)
	}
	return true
}

// retryWrite keeps a change whose files could not all be written
// pending, and applies it again after a backoff (from 100 ms doubling to
// 5 s, jittered), unless a newer change comes first.
func (l *loop) retryWrite(reason string) {
	l.pending, l.reasons = l.env, []string{reason}
	if !l.sched.pending() {
		l.sched.change(l.clock.Now())
	}
	wait := backoff(l.writeErrs)
	l.log.Warn("writing the secret files again later", "in", wait, "failures", l.writeErrs, "reason", reason)
	l.stopApplyTimer()
	l.apply = l.clock.NewTimer(wait)
}

// reload tells the running child to read its files again: the reload
// signal, or the reload command.
func (l *loop) reload(now time.Time, reason string) {
	l.sched.restarted(now)
	l.notify.send("RELOADING=1", "MONOTONIC_USEC="+monotonicUsec(), status("secret files changed; reloading "+l.cfg.Command))
	c := l.child
	if len(l.cfg.ReloadCommand) == 0 {
		err := syscall.Kill(c.pid, l.cfg.ReloadSignal)
		l.log.Info("secret files changed; reloading the child", "pid", c.pid, "signal", SignalName(l.cfg.ReloadSignal), "reason", reason)
		l.reloaded(&reloading{began: now, reason: reason, updates: l.updates}, err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.cfg.ReloadTimeout)
	r := &reloading{began: now, reason: reason, updates: l.updates, done: make(chan error, 1), cancel: cancel}
	l.reloadRun = r
	l.log.Info("secret files changed; running the reload command", "pid", c.pid, "command", l.cfg.ReloadCommand[0], "reason", reason)
	cfg, env, ownGroup := *l.cfg, l.env, l.reaper.pidfds > 0
	go func() { r.done <- runReloadCommand(ctx, &cfg, env, ownGroup) }()
}

// runReloadCommand runs the reload command with the child's environment
// and account until it exits or ctx ends (the reload timeout, or a stop of
// the command): then SIGKILL goes to its process group, so that nothing it
// started outlives it. It runs in a process group of its own when the
// reaper can tell it from an orphan (ownGroup: the os package holds a
// pidfd for it), else in rolesenv's, where only the command itself is
// killed. It gets SIGKILL if rolesenv dies: it is started from a thread
// locked for as long as it runs.
func runReloadCommand(ctx context.Context, cfg *Config, env []string, ownGroup bool) error {
	argv := cfg.ReloadCommand
	path, err := LookPath(argv[0], env)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, path, argv[1:]...)
	cmd.Args[0] = argv[0]
	cmd.Env = sortedEnv(env)
	cmd.Stdout, cmd.Stderr = orStd(cfg.Stdout, os.Stdout), orStd(cfg.Stderr, os.Stderr)
	cmd.WaitDelay = time.Second
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: ownGroup, Pdeathsig: syscall.SIGKILL}
	if cfg.User != nil {
		cmd.SysProcAttr.Credential = cfg.User.credential()
	}
	cmd.Cancel = func() error {
		if ownGroup {
			return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
		return cmd.Process.Kill()
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	err = cmd.Run()
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("timed out after %v", cfg.ReloadTimeout)
	case ctx.Err() != nil:
		return errors.New("killed: the command is stopping")
	}
	return err
}

// endReload kills the reload command that runs, if any, as the command
// stops; wait, as Run returns, waits for it (at most reloadEndWait).
func (l *loop) endReload(wait bool) {
	r := l.reloadRun
	if r == nil || r.cancel == nil {
		return
	}
	r.cancel()
	if !wait {
		return
	}
	t := time.NewTimer(reloadEndWait)
	defer t.Stop()
	select {
	case err := <-r.done:
		r.done <- err
	case <-t.C:
		l.log.Warn("the reload command has not ended; leaving it", "command", l.cfg.ReloadCommand[0])
	}
}

// reloadDone is the channel of the reload command that runs, or nil.
func (l *loop) reloadDone() <-chan error {
	if l.reloadRun == nil {
		return nil
	}
	return l.reloadRun.done
}

// reloaded logs the end of a reload and tells systemd.
func (l *loop) reloaded(r *reloading, err error) {
	l.reloadRun = nil
	if r.cancel != nil {
		r.cancel()
	}
	took := l.clock.Now().Sub(r.began)
	if err != nil {
		status := -1
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			status = ee.ExitCode()
		}
		l.observe(Event{Kind: EventReload, PID: l.child.pid, Reason: ReasonChange, Outcome: OutcomeFailed})
		l.log.Error("reload failed; the command runs on with what it had read", "err", err, "status", status, "took", took, "reason", r.reason)
		if l.stop == nil { // else systemd has heard STOPPING=1, or will
			l.notify.send("READY=1", statusLine("reload failed: "+err.Error()))
		}
	} else {
		l.reloads++
		l.observe(Event{Kind: EventReload, PID: l.child.pid, Reason: ReasonChange, Outcome: OutcomeOK, Updates: r.updates})
		l.log.Info("child reloaded", "pid", l.child.pid, "took", took, "reloads", l.reloads, "reason", r.reason)
		if l.stop == nil {
			l.notify.send("READY=1", statusLine(fmt.Sprintf("running %s (pid %d), reloaded %d times", l.cfg.Command, l.child.pid, l.reloads)))
		}
	}
	l.plan() // a change may have come meanwhile
}

func statusLine(s string) string { return status(strings.TrimSpace(s)) }

// restartForEnv logs why a change under OnChangeReload restarts: it
// touches the environment, which a running process cannot take in.
func (l *loop) restartForEnv(reason string) {
	if l.cfg.OnChange == OnChangeReload {
		l.log.Info("environment variables changed; restarting (a reload cannot change a running process's environment)", "reason", reason)
	}
}
