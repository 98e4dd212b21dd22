// Package procsec keeps rolesenv's memory out of core dumps: a core file
// of rolesenv would hold every secret it resolved and the private key of
// its certificate.
//
// Call [Protect] first thing, before any secret or key is read. On Linux it
// makes the process non-dumpable (prctl PR_SET_DUMPABLE 0: no core file,
// no ptrace attach and no reading of /proc/PID/mem or /proc/PID/environ by
// other processes of the same user without CAP_SYS_PTRACE) and lowers the
// soft RLIMIT_CORE to 0, so that a core is not written even if something
// makes the process dumpable again. The hard limit is kept, so the original
// soft limit can be given back to the command rolesenv runs.
//
// The command's own limits are left as rolesenv found them. execve resets
// the dumpable flag by itself, but a child inherits RLIMIT_CORE, so start
// the command with [StartProcess] (it holds the original soft limit in
// place while the child is created) or replace rolesenv with [Exec] (it
// gives the limit back just before execve). In both cases rolesenv stays
// non-dumpable throughout, so it never writes a core even while its own
// soft limit is the original one.
//
// On other systems Protect does nothing and says so; StartProcess and Exec
// are os.StartProcess and syscall.Exec.
package procsec
