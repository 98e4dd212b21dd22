package supervise

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// terminal is rolesenv's controlling terminal, when it has one. When
// rolesenv is in its foreground process group, the child's group becomes
// the foreground group (set by the child between fork and exec), so Ctrl-C
// reaches the child once, from the terminal. When the child is stopped,
// rolesenv stops itself with the same signal so that the shell sees the
// job stop; continued, it gives the terminal back to the child if the
// shell gave it to rolesenv (fg), and continues the child. It takes the
// terminal back when the child is gone. SIGTTIN and SIGTTOU are caught,
// never ignored, since an ignored disposition would be inherited by the
// child.
type terminal struct {
	f    *os.File
	pgrp int              // rolesenv's own process group
	sigs chan<- os.Signal // where the Supervisor catches signals
}

// openTerminal opens the controlling terminal (/dev/tty), or returns nil
// when there is none. It is opened rather than taken from stdin because the
// standard streams may be redirected while the terminal still controls the
// job.
func openTerminal(sigs chan<- os.Signal) *terminal {
	f, err := os.OpenFile("/dev/tty", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil
	}
	return &terminal{f: f, pgrp: syscall.Getpgrp(), sigs: sigs}
}

func (t *terminal) fd() int { return int(t.f.Fd()) }

// foreground returns the terminal's foreground process group.
func (t *terminal) foreground() (int, error) {
	return unix.IoctlGetInt(t.fd(), unix.TIOCGPGRP)
}

// ours reports whether rolesenv's process group is the foreground group.
func (t *terminal) ours() bool {
	fg, err := t.foreground()
	return err == nil && fg == t.pgrp
}

// holdsForeground reports whether pgid is the terminal's foreground group.
func (t *terminal) holdsForeground(pgid int) bool {
	fg, err := t.foreground()
	return err == nil && fg == pgid
}

func (t *terminal) close() {
	if t != nil {
		t.f.Close()
	}
}
