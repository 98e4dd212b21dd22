// Package supervise runs one command for rolesenv: it starts it with an
// explicit environment, forwards signals to it, reaps orphans, restarts it
// gracefully when a new environment arrives, and reports its exit status.
// It knows nothing of env files, secrets or AWS, and never logs an
// environment value: log lines name the command, pids, signals, durations
// and the reasons the caller gives.
//
// Call [New] first, as early as possible: the [Supervisor] catches signals
// from then on, and [Supervisor.Context] ends when one arrives before the
// command starts (rolesenv then exits 128+N). Prepare the environment under
// that context, then call [Supervisor.Run], which starts the command and
// supervises it until it exits, taking new environments from a channel of
// [Update]; or [Supervisor.Exec], which replaces rolesenv with it (with
// [Config.InPlace], New sets up only what Exec needs). [Result]
// carries the command's status, or 128+N when it died of signal N, as a
// shell reports it. Close the Supervisor when done.
//
// Guarantees:
//
//   - The command runs in a process group of its own with the environment
//     it is given, sorted, and nothing else; no shell is involved. A name
//     without a slash is looked up on the PATH of that environment
//     ([LookPath]). A command not found is a [*StartError] with exit code
//     127, one that cannot be executed 126. A start the system refuses for
//     lack of a resource (EMFILE, ENFILE, ENOMEM, EAGAIN), first or
//     restart, is retried with a jittered back-off (100ms doubling to 5s)
//     for [Config.StartRetryLimit], then is a *StartError that is a
//     Resource error (exit 71).
//   - The signals of [Forwarded] reach the command unchanged: INT, QUIT,
//     HUP and WINCH its process group, as a terminal sends them, the
//     others the command alone, as kill and docker stop do. SIGCHLD and
//     SIGURG never do. [Config.RefreshSignal] is kept and reported.
//   - A restart is one step for the command. A new environment is applied
//     after the debounce and within the restart budget; the old command's
//     group gets [Config.StopSignal], then SIGKILL after the stop timeout,
//     and the new command starts once the group is gone. During a restart
//     TERM, INT and QUIT end Run (no new command starts); any other
//     signal goes to the old command while it runs, and is dropped with a
//     log line once it has exited, so the new command never gets a signal
//     before it could install its handlers.
//   - With [OnChangeReload], a change that leaves the environment as it
//     is but changes a file ([Update.Files]) reloads instead: the files
//     are written, then the command gets [Config.ReloadSignal] or
//     [Config.ReloadCommand] runs; a change of the environment restarts.
//     Files are written only when a change is applied (after the
//     debounce, within the budget, which a reload counts against), before
//     the signal, or, for a change of the environment, before the new
//     command of a restart starts (every attempt of a start that is
//     retried writes the newest files until a write succeeds); a change
//     of files only is written while the old command still runs, under
//     OnChangeRestart and OnChangeExit too. A write that fails is tried
//     again after a backoff. The reload command runs in a process group
//     of its own (when the reaper can tell it from an orphan), which is
//     killed at its timeout, when a stop begins, and if rolesenv dies; no
//     READY=1 goes out once a stop has begun.
//   - With a terminal, the command's group is the foreground group, and
//     job control works as with sudo.
//   - On Linux, Run reaps orphans (as PID 1, or as a child subreaper)
//     without ever taking the status of a process rolesenv started through
//     os/exec, and the command gets [Config.ParentDeathSignal] if rolesenv
//     dies, even by SIGKILL. macOS has neither.
//   - With systemd ([Config.NotifySocket]), a restart or a reload is
//     bracketed by RELOADING=1 and READY=1; the command keeps NOTIFY_SOCKET. With
//     [Config.Watchdog], WATCHDOG=1 goes out every half of it from the
//     loop itself: a loop that stops turning, or [Config.Alive] answering
//     false, stops the pings. Before Run, start-up pings for at most
//     [Config.StartUpLimit].
//   - [Config.Observe] hears of starts, exits, restarts and reloads
//     ([Event]) on the loop; [Config.Heartbeat] makes the loop turn, and
//     say so, at least that often.
//
// It does not restart a command that exits on its own (that is the
// service manager's job), chase processes that left the command's process
// group, allocate a pseudo-terminal, or pass file descriptors other than
// the standard streams.
package supervise
