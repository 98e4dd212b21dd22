package credcache

import (
	"context"
	"errors"
	"fmt"
)

// Why a file is refused; a *[FileError] wraps one of them.
var (
	ErrSymlink    = errors.New("is a symbolic link, which is not followed")
	ErrNotRegular = errors.New("is not a regular file")
	ErrOtherOwner = errors.New("belongs to another user")
	ErrExposed    = errors.New("is accessible by group or others")
	ErrHardLink   = errors.New("has another hard link")
	ErrNotCache   = errors.New("is not rolesenv's cache; it is left as it is")
)

// FileError is a cache file refused, or one that could not be opened or
// read. Running again unchanged fails again.
type FileError struct {
	Path string
	Err  error
	// dirShared: the file's directory is writable by other users.
	dirShared bool
}

func (e *FileError) Error() string {
	for _, r := range []error{ErrSymlink, ErrNotRegular, ErrOtherOwner, ErrExposed, ErrHardLink, ErrNotCache} {
		if errors.Is(e.Err, r) {
			return fmt.Sprintf("cache file %s %v", e.Path, e.Err)
		}
	}
	return fmt.Sprintf("cache file %s: %v", e.Path, e.Err)
}

func (e *FileError) Unwrap() error { return e.Err }

// Config reports a setting to change (rolesenv exits 78).
func (e *FileError) Config() bool { return true }

// Hint says what to do about a refused file.
func (e *FileError) Hint() string {
	const ownDir = "keep the cache in a directory only you can write, such as $XDG_RUNTIME_DIR or ~/.cache/rolesenv"
	switch {
	case errors.Is(e.Err, ErrSymlink):
		return "name the cache file itself"
	case errors.Is(e.Err, ErrOtherOwner) && e.dirShared:
		return "another user created it first in a directory shared with others: " + ownDir + ", never /tmp"
	case errors.Is(e.Err, ErrOtherOwner):
		return ownDir
	case errors.Is(e.Err, ErrExposed):
		return "it holds credentials: chmod 600 it, or remove it and let rolesenv create it"
	case errors.Is(e.Err, ErrHardLink):
		return "the cache is rewritten in place: give it a file of its own"
	case errors.Is(e.Err, ErrNotCache):
		return "the cache needs a file of its own: name a new one, or remove this one if it is not needed"
	}
	return ""
}

// LockError is a wait for the cache file's lock that ended with the
// caller's context.
type LockError struct {
	Path   string
	Holder Holder // who held the lock, as far as the system tells
	Err    error  // the context's
}

func (e *LockError) Error() string {
	verb := "gave up"
	if e.Timeout() {
		verb = "timed out"
	}
	return fmt.Sprintf("cache file %s: %s waiting for the cache lock held by %s", e.Path, verb, e.Holder)
}

func (e *LockError) Unwrap() error { return e.Err }

// Timeout reports that the caller's deadline passed.
func (e *LockError) Timeout() bool { return errors.Is(e.Err, context.DeadlineExceeded) }

// Unavailable reports a deadline passed while another process held the
// lock (rolesenv exits 69): running again later may succeed.
func (e *LockError) Unavailable() bool { return e.Timeout() }
