// Package supervise runs one command for rolesenv: it starts it with an
// explicit environment, forwards signals to it, reaps orphans, restarts it
// gracefully when a new environment arrives, and reports its exit status.
// Exec replaces rolesenv with the command instead (rolesenv run --once).
//
// The package takes the child's environment and a stream of updates from
// its caller; it knows nothing of env files, secrets or AWS, and it never
// logs an environment value (log lines name the command, pids, signals,
// durations, and the reasons the caller gives).
//
// # Starting
//
// The command runs in a process group of its own, with the environment it
// is given, sorted, and nothing else; no shell is involved. A command
// without a slash is looked up on the PATH of that environment (rolesenv's
// own PATH when it has none); relative PATH entries are skipped. A command
// that is not found is a *StartError with exit code 127, one that cannot be
// executed 126, as in a shell. LookPath applies the same rules without
// starting anything. A start the system refuses for lack of a resource
// (EMFILE, ENFILE, ENOMEM, EAGAIN), first or restart, is retried with a
// jittered back-off (100ms doubling to 5s) for Config.StartRetryLimit,
// then fails with a *StartError that is a Resource error (exit 71).
//
// # Signals
//
// From New on, the Supervisor catches HUP, INT, QUIT, TERM, USR1, USR2,
// WINCH, ALRM and, on Linux, the realtime signals 35 to 64 (32 to 34 are
// reserved by the C libraries and by the Go runtime, which cannot catch
// them). Once the child runs, each is forwarded unchanged: INT, QUIT, HUP
// and WINCH to the child's process group, as a terminal delivers them to
// its foreground group; TERM, USR1, USR2, ALRM and the realtime signals to
// the child alone, as kill, docker stop and systemd (KillMode=mixed)
// address a process. SIGCHLD and SIGURG (the Go runtime's preemption
// signal) are never forwarded. After forwarding TERM or INT the Supervisor
// waits for the child: escalation belongs to the caller (docker stop,
// systemd). The refresh signal, if set, is kept and reported on a channel.
//
// A signal that arrives before the child has started ends rolesenv with
// 128+N (see Supervisor.Context); WINCH, whose default action is to do
// nothing, is dropped then. A restart is one step for the child: during
// it, TERM, INT and QUIT end rolesenv (the old child gets the signal too,
// its group is waited for, and no new child starts); any other signal goes
// to the old child while it runs, and is dropped with a log line once it
// has exited, until the new child has started, which therefore never gets
// a signal before it could install its handlers.
//
// # The terminal
//
// When rolesenv has a controlling terminal and is in its foreground
// process group, the child's group becomes the foreground group (set by
// the child between fork and exec), so Ctrl-C reaches the child once, from
// the terminal, and not through rolesenv. Job control works as with sudo:
// when the child is stopped, rolesenv stops itself with the same signal so
// that the shell sees the job stop; when rolesenv is continued it gives the
// terminal back to the child if the shell gave it to rolesenv (fg), and
// continues the child. rolesenv takes the terminal back when the child is
// gone. SIGTTIN and SIGTTOU are caught, never ignored (an ignored
// disposition would be inherited by the child); on Linux the terminal is
// taken back with SIGTTOU blocked on the calling thread only.
//
// # Exit status
//
// Run's Result carries the child's exit status, or 128+N when it died of
// signal N: what a shell reports for the same command. rolesenv exits with
// it as soon as the child has exited; processes the child left behind are
// not waited for.
//
// # Restarts
//
// A new environment is applied after a trailing debounce that never delays
// it by more than four times the debounce. With OnChangeRestart the child
// is stopped (the stop signal to its group, then SIGKILL to the group after
// the stop timeout), rolesenv waits until the group is gone, and starts the
// child again with the newest environment; processes that left the group
// with setsid are not chased. The restart budget (MaxRestarts per
// RestartWindow) defers a change that comes when the budget is spent, logs
// it, and applies it when the window allows. A change back to the running
// environment restarts nothing. OnChangeExit stops the child and returns a
// *ChangeError (exit 75); OnChangeNone only logs. An Update with an error
// stops the child and returns the error.
//
// With systemd (Config.NotifySocket), rolesenv stays the main process, the
// child keeps NOTIFY_SOCKET for its own READY=1 (NotifyAccess=all), and a
// restart is bracketed by RELOADING=1 and READY=1 with STATUS= lines.
//
// # Reaping
//
// On Linux, Run reaps orphans: as PID 1 every orphan of the namespace
// comes to it; otherwise it registers as a child subreaper
// (PR_SET_CHILD_SUBREAPER), so orphans of the child's descendants come to
// it instead of init, and a stop can wait for the whole process group.
//
// The reaper never steals the exit status of a process that rolesenv
// started itself through os.StartProcess or os/exec (the AWS SDK's
// credential_process provider runs one) and has not waited for yet. It
// finds zombies with waitid(WNOWAIT), which does not collect them, and
// leaves alone:
//
//   - a process for which rolesenv holds a pidfd: the os package opens one
//     for every child it starts (Linux 5.4 and later) and closes it only
//     after Wait, so holding one means someone will wait;
//   - when the os package does not use pidfds (older kernels, seccomp),
//     every process in rolesenv's own process group, which os/exec children
//     inherit, while the supervised child and its descendants live in the
//     child's group or groups of their own.
//
// The limits: a process started by rolesenv with Setpgid and no pidfd (no
// such code exists in rolesenv) is not protected; an orphan that stays in
// rolesenv's own process group (a background process left by a
// credential_process command, or one that joins rolesenv's group on
// purpose) is not reaped while the os package runs without pidfds.
//
// # Parent death
//
// The child gets ParentDeathSignal (PR_SET_PDEATHSIG) if rolesenv dies,
// even by SIGKILL. The kernel sends it when the thread that forked the
// child exits, so Run forks from a goroutine locked to its OS thread for
// as long as a child lives.
//
// # Platforms
//
// Linux (amd64, arm64) has everything. On macOS the package builds and
// runs everything but orphan reaping, the subreaper and the parent-death
// signal, which it skips with a debug log line; there, rolesenv stops
// itself with SIGTSTP for a child stopped by SIGTTIN or SIGTTOU, and takes
// the terminal back with SIGTTOU ignored for an instant.
//
// # What it does not do
//
// It does not restart a child that exits on its own (that is the service
// manager's job), chase processes that left the child's process group,
// allocate a pseudo-terminal, or pass file descriptors other than the
// standard streams (so systemd socket activation does not reach the
// child).
package supervise
