package supervise

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
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
}

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
		l.log.Error("cannot write the secret files; the command keeps the ones it has", "err", err)
		return changed, false
	}
	return changed, true
}

// filesOnly applies a change that leaves the environment as it is: it
// writes the files and, when they changed, reloads (or, for
// OnChangeRestart and OnChangeExit, reports that a stop is due). handled
// is false when that stop is due.
func (l *loop) filesOnly(now time.Time, reason string) (handled bool) {
	changed, ok := l.writeFiles()
	if !changed || !ok {
		l.sched.clear()
		if ok {
			l.log.Info("environment changed back; nothing to restart", "reason", reason)
		}
		return true
	}
	if l.cfg.OnChange != OnChangeReload {
		return false
	}
	l.reload(now, reason)
	return true
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
	r := &reloading{began: now, reason: reason, updates: l.updates, done: make(chan error, 1)}
	l.reloadRun = r
	l.log.Info("secret files changed; running the reload command", "pid", c.pid, "command", l.cfg.ReloadCommand[0], "reason", reason)
	cfg, env := *l.cfg, l.env
	go func() { r.done <- runReloadCommand(&cfg, env) }()
}

// runReloadCommand runs the reload command with the child's environment
// and account, within the reload timeout. It stays in rolesenv's process
// group, where the reaper never takes its status.
func runReloadCommand(cfg *Config, env []string) error {
	ctx, cancel := context.WithTimeout(context.Background(), cfg.ReloadTimeout)
	defer cancel()
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
	if cfg.User != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cfg.User.credential()}
	}
	err = cmd.Run()
	if ctx.Err() != nil {
		return fmt.Errorf("timed out after %v", cfg.ReloadTimeout)
	}
	return err
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
	took := l.clock.Now().Sub(r.began)
	if err != nil {
		status := -1
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			status = ee.ExitCode()
		}
		l.observe(Event{Kind: EventReload, PID: l.child.pid, Reason: ReasonChange, Outcome: OutcomeFailed})
		l.log.Error("reload failed; the command runs on with what it had read", "err", err, "status", status, "took", took, "reason", r.reason)
		l.notify.send("READY=1", statusLine("reload failed: "+err.Error()))
	} else {
		l.reloads++
		l.observe(Event{Kind: EventReload, PID: l.child.pid, Reason: ReasonChange, Outcome: OutcomeOK, Updates: r.updates})
		l.log.Info("child reloaded", "pid", l.child.pid, "took", took, "reloads", l.reloads, "reason", r.reason)
		l.notify.send("READY=1", statusLine(fmt.Sprintf("running %s (pid %d), reloaded %d times", l.cfg.Command, l.child.pid, l.reloads)))
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
