package credcache

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// maxPoll caps the back-off between attempts to take a held lock.
const maxPoll = 100 * time.Millisecond

// lock takes the file's exclusive lock. flock cannot be interrupted by a
// context, so a held lock is tried again (LOCK_NB) with a back-off from
// 1ms to maxPoll until ctx ends; after WaitNotice it logs who holds it.
func (c *File) lock(ctx context.Context) error {
	notice := time.NewTimer(c.waitNotice())
	defer notice.Stop()
	poll := time.NewTimer(maxPoll) // reset before each wait
	defer poll.Stop()
	for delay := time.Millisecond; ; delay = min(2*delay, maxPoll) {
		err := unix.Flock(int(c.f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return nil
		}
		if err != unix.EWOULDBLOCK && err != unix.EINTR {
			return &FileError{Path: c.path, Err: fmt.Errorf("failed to lock: %w", err)}
		}
		poll.Reset(delay)
		if err := c.wait(ctx, notice.C, poll.C); err != nil {
			return err
		}
	}
}

// wait returns when poll fires, or with a *LockError when ctx ends;
// meanwhile it logs the wait once when notice fires (also when both are
// due at once: a long wait is always logged).
func (c *File) wait(ctx context.Context, notice, poll <-chan time.Time) error {
	for {
		select {
		case <-ctx.Done():
			select {
			case <-notice:
				c.logWait()
			default:
			}
			return &LockError{Path: c.path, Holder: c.holder(), Err: ctx.Err()}
		case <-notice:
			c.logWait()
		case <-poll:
			return nil
		}
	}
}

func (c *File) logWait() {
	c.logger().Warn("waiting for the cache file's lock", "file", c.path, "held_by", c.holder().String())
}

func (c *File) waitNotice() time.Duration {
	if c.opts.WaitNotice > 0 {
		return c.opts.WaitNotice
	}
	return time.Second
}

// Holder is a process that holds a lock. The zero value is one the system
// did not name.
type Holder struct {
	PID  int
	Name string // the program's name (comm), never its arguments
}

func (h Holder) String() string {
	switch {
	case h.PID == 0:
		return "another process"
	case h.Name == "":
		return fmt.Sprintf("another process (pid %d)", h.PID)
	}
	return fmt.Sprintf("another process (pid %d, %s)", h.PID, h.Name)
}

// holder names the process holding the file's flock, from /proc/locks
// (Linux); the zero Holder where that says nothing.
func (c *File) holder() Holder {
	var st unix.Stat_t
	if unix.Fstat(int(c.f.Fd()), &st) != nil {
		return Holder{}
	}
	locks, err := os.Open("/proc/locks")
	if err != nil {
		return Holder{}
	}
	defer locks.Close()
	return findHolder(bufio.NewScanner(locks),
		fmt.Sprintf("%02x:%02x:%d", unix.Major(uint64(st.Dev)), unix.Minor(uint64(st.Dev)), st.Ino))
}

// findHolder reads /proc/locks lines ("1: FLOCK ADVISORY WRITE PID
// MAJ:MIN:INODE 0 EOF"; waiters' lines have "->" after the number) for
// the flock on the file id names.
func findHolder(lines *bufio.Scanner, id string) Holder {
	for lines.Scan() {
		f := strings.Fields(lines.Text())
		if len(f) < 6 || f[1] != "FLOCK" || f[5] != id {
			continue
		}
		pid, err := strconv.Atoi(f[4])
		if err != nil || pid <= 0 {
			return Holder{}
		}
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		return Holder{PID: pid, Name: strings.TrimSpace(string(comm))}
	}
	return Holder{}
}
