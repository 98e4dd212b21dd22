package supervise

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// reaper collects the exit status of orphaned processes that the kernel
// hands to rolesenv: every orphan in the PID namespace when rolesenv is
// PID 1, the orphans of the child's descendants when it is a child
// subreaper (which also lets a stop wait for the whole process group).
//
// It never reaps a process that rolesenv started through os.StartProcess
// or os/exec (the AWS SDK's credential_process provider runs one) and has
// not waited for yet. It finds zombies with waitid(WNOWAIT), which does not
// collect them, and leaves alone:
//
//   - a process for which rolesenv holds a pidfd: the os package opens one
//     for every child it starts (Linux 5.4 and later) and closes it only
//     after Wait, so holding one means someone will wait;
//   - when the os package does not use pidfds (older kernels, seccomp, or
//     a descriptor table that was full when the os package first checked),
//     every process in rolesenv's own process group, which os/exec
//     children inherit, while the supervised child and its descendants
//     live in the child's group or groups of their own.
//
// The limits: a process started by rolesenv with Setpgid and no pidfd is
// not protected; an orphan that stays in rolesenv's own process group is
// not reaped while the os package runs without pidfds.
type reaper struct {
	log  *slog.Logger
	self int
	pgrp int
	// pidfds is 1 once rolesenv has seen that the os package gives every
	// child a pidfd (Linux 5.4 and later, where seccomp allows it), -1
	// when it has seen that it does not, 0 before the first child.
	pidfds      int
	subreaper   bool // rolesenv set PR_SET_CHILD_SUBREAPER itself
	reapedTotal int
}

func newReaper(log *slog.Logger) *reaper {
	r := &reaper{log: log, self: os.Getpid(), pgrp: syscall.Getpgrp()}
	if r.self == 1 {
		log.Debug("running as PID 1: reaping every orphan")
		return r
	}
	if v, err := unix.PrctlRetInt(unix.PR_GET_CHILD_SUBREAPER, 0, 0, 0, 0); err == nil && v != 0 {
		return r // already a subreaper (a test, or an outer supervisor)
	}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		log.Debug("cannot become child subreaper; orphans go to init", "err", err)
		return r
	}
	r.subreaper = true
	return r
}

// close gives up the subreaper role if rolesenv took it.
func (r *reaper) close() {
	if r.subreaper {
		_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
	}
}

// learn records, from a child just started with os.StartProcess, whether
// the os package holds a pidfd for its children.
func (r *reaper) learn(pid int) {
	if r.pidfds != 0 {
		return
	}
	if pidfdOpenFor(pid) {
		r.pidfds = 1
	} else {
		r.pidfds = -1
	}
	r.log.Debug("reaper: learned how os/exec tracks children", "pidfds", r.pidfds == 1)
}

// siginfoChild is the part of the kernel's siginfo_t that waitid fills in
// for a child: the pid follows signo, errno, code and, on 64-bit
// platforms, alignment padding.
type siginfoChild struct {
	Signo, Errno, Code int32
	_                  [unsafe.Sizeof(uintptr(0)) - 4]byte
	Pid                int32
	_                  [128 - 16 - 4]byte
}

// peek returns the pid of a zombie child without reaping it, or 0.
func peek() int {
	var info siginfoChild
	for {
		_, _, e := syscall.Syscall6(syscall.SYS_WAITID, unix.P_ALL, 0, uintptr(unsafe.Pointer(&info)),
			unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, 0, 0)
		if e == syscall.EINTR {
			continue
		}
		if e != 0 {
			return 0
		}
		return int(info.Pid)
	}
}

// reap collects every zombie child except the supervised one (pid child,
// for which it calls onChild: the caller waits for it with its own flags)
// and the protected ones.
func (r *reaper) reap(child int, onChild func()) {
	n := 0
	defer func() {
		r.reapedTotal += n
		if n > 0 {
			r.log.Debug("reaped orphans", "count", n, "total", r.reapedTotal)
		}
	}()
	seenChild := false
	for range 1 << 16 { // bounded: each pass removes a zombie or returns
		pid := peek()
		switch {
		case pid <= 0:
			return
		case pid == child:
			if seenChild {
				return // the caller did not collect it; never take it here
			}
			seenChild = true
			onChild()
			continue
		case r.protected(pid):
			// The oldest zombie belongs to someone else in this process;
			// waitid cannot look past it, so look at every child.
			n += r.sweep(child, onChild)
			return
		}
		if reapPid(pid) {
			n++
		}
	}
}

// sweep reaps every unprotected zombie child found in /proc (it reads
// /proc rather than /proc/self/task/*/children, which not every kernel
// provides).
func (r *reaper) sweep(child int, onChild func()) int {
	n := 0
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, ok := readStat(pid)
		if !ok || st.ppid != r.self || st.state != 'Z' {
			continue
		}
		if pid == child {
			onChild()
			continue
		}
		if !r.protected(pid) && reapPid(pid) {
			n++
		}
	}
	return n
}

// protected reports whether the zombie pid must be left to whoever started
// it inside rolesenv: a child the os package holds a pidfd for (it waits
// through that pidfd), or, when the os package does not use pidfds, any
// process in rolesenv's own process group (os/exec children stay in it,
// while the supervised child and its descendants live in the child's group
// or groups of their own).
func (r *reaper) protected(pid int) bool {
	if pidfdOpenFor(pid) {
		return true
	}
	if r.pidfds == 1 {
		return false
	}
	pgid, err := unix.Getpgid(pid)
	return err == nil && pgid == r.pgrp
}

func reapPid(pid int) bool {
	var ws syscall.WaitStatus
	for {
		got, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		return err == nil && got == pid
	}
}

// pidfdOpenFor reports whether this process holds a pidfd for pid: the
// os package keeps one for each child it started from StartProcess until
// Wait (or Release) is done with it.
func pidfdOpenFor(pid int) bool {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return false
	}
	want := []byte("\nPid:\t" + strconv.Itoa(pid) + "\n")
	for _, e := range ents {
		link, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err != nil || !(link == "anon_inode:[pidfd]" || strings.HasPrefix(link, "pidfd:")) {
			continue
		}
		info, err := os.ReadFile(filepath.Join("/proc/self/fdinfo", e.Name()))
		if err == nil && bytes.Contains(append([]byte("\n"), info...), want) {
			return true
		}
	}
	return false
}

type procStat struct {
	state byte
	ppid  int
	pgrp  int
}

// readStat parses /proc/PID/stat: "pid (comm) state ppid pgrp ...", where
// comm may contain spaces and parentheses (hence the last ')').
func readStat(pid int) (procStat, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 3 || len(f[0]) != 1 {
		return procStat{}, false
	}
	ppid, err1 := strconv.Atoi(f[1])
	pgrp, err2 := strconv.Atoi(f[2])
	if err1 != nil || err2 != nil {
		return procStat{}, false
	}
	return procStat{state: f[0][0], ppid: ppid, pgrp: pgrp}, true
}
