// Package credcache keeps temporary AWS credentials in a file between
// processes: a credential_process is started anew for every AWS command,
// and without a cache each would ask for a new session.
//
// Call [Open] first: it opens the file, checks it and locks it. Then
// [File.Get] returns the credentials of an identity (named by [Key]) while
// they have more than [ReuseMargin] left; otherwise fetch new ones, hand
// them to [File.Put], and [File.Close] the file to let the next caller in.
//
// The file holds secrets, so the package guarantees:
//
//   - it is created with mode 0600, and an existing file that group or
//     others can read is refused;
//   - it is never opened through a symbolic link, and a file with more than
//     one hard link, of another user, or not a regular file is refused;
//   - only its own files are rewritten: an empty file, or one that carries
//     the cache's marker (a top-level "rolesenv":"credential-cache"). Any
//     other file is refused and left byte for byte as it was, so a
//     mistyped path destroys nothing. A file with the marker that cannot be
//     read (cut short by a crash, another format version) is started anew;
//   - callers are serialised by an exclusive lock (flock) held from Open to
//     Close, so concurrent callers make one request between them; waiting
//     for the lock ends with the caller's context;
//   - one entry per identity; expired entries are dropped when it is
//     rewritten;
//   - nothing it logs or returns holds a credential.
//
// It does not choose where the file lives. A directory that other users
// can write (such as /tmp) lets them make every call fail by creating the
// file first, so the errors of that case say where a cache should be: a
// directory only its user can write, such as $XDG_RUNTIME_DIR.
package credcache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/rolesenv/rolesenv/signer"
	"golang.org/x/sys/unix"
)

// ReuseMargin: cached credentials are handed out until this long before
// they expire, so that whoever gets them has time to use them.
const ReuseMargin = 5 * time.Minute

// maxFile bounds what is read of the file; an entry is a few KiB at most.
const maxFile = 4 << 20

// Options configure [Open]. The zero value is ready to use.
type Options struct {
	// Logger receives the warnings (a damaged cache started anew, a long
	// wait for the lock); nil means quiet.
	Logger *slog.Logger
	// Now is the clock entries expire by; nil means time.Now.
	Now func() time.Time
	// WaitNotice is how long Open waits for the lock before it logs a
	// warning naming the holder (default 1s): shorter waits are a burst
	// of callers taking turns, and not news.
	WaitNotice time.Duration
}

// File is an open, locked cache file.
type File struct {
	f       *os.File
	path    string
	opts    Options
	entries map[string]entry
}

// Open opens the cache file at path, creating it with mode 0600, checks
// that it is the cache's own (see the package guarantees), takes its lock,
// waiting for other holders until ctx ends, and reads it. Errors are
// *[FileError] (a file refused or unreadable) or *[LockError].
func Open(ctx context.Context, path string, opts Options) (*File, error) {
	f, err := openChecked(path)
	if err != nil {
		return nil, err
	}
	c := &File{f: f, path: path, opts: opts}
	if err := c.lock(ctx); err != nil {
		f.Close()
		return nil, err
	}
	if err := c.read(); err != nil {
		f.Close()
		return nil, err
	}
	return c, nil
}

// openChecked opens path without following a symbolic link (one planted
// where the cache will be must not turn into credentials written over
// another file) and without blocking (on a FIFO, say), and checks what it
// opened.
func openChecked(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY, 0o600)
	if err != nil {
		return nil, openError(path, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return nil, &FileError{Path: path, Err: err}
	}
	if err := checkStat(path, &st); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// openError explains a failed open. Where the system protects files in
// shared directories (fs.protected_regular), opening another user's file
// there fails with EACCES before rolesenv can see whose file it is.
func openError(path string, err error) error {
	switch {
	case errors.Is(err, unix.ELOOP):
		return &FileError{Path: path, Err: ErrSymlink}
	case errors.Is(err, unix.EISDIR):
		return &FileError{Path: path, Err: ErrNotRegular}
	}
	var st unix.Stat_t
	if errors.Is(err, unix.EACCES) && unix.Lstat(path, &st) == nil && int(st.Uid) != os.Geteuid() {
		return &FileError{Path: path, Err: fmt.Errorf("%w (uid %d)", ErrOtherOwner, st.Uid),
			dirShared: sharedDir(filepath.Dir(path))}
	}
	return &FileError{Path: path, Err: pathCause(err)}
}

// checkStat refuses what the cache must not be written to.
func checkStat(path string, st *unix.Stat_t) error {
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return &FileError{Path: path, Err: ErrNotRegular}
	case int(st.Uid) != os.Geteuid():
		return &FileError{Path: path, Err: fmt.Errorf("%w (uid %d)", ErrOtherOwner, st.Uid),
			dirShared: sharedDir(filepath.Dir(path))}
	case st.Mode&0o077 != 0:
		return &FileError{Path: path, Err: fmt.Errorf("%w (mode %04o)", ErrExposed, st.Mode&0o777)}
	case st.Nlink != 1:
		return &FileError{Path: path, Err: ErrHardLink}
	}
	return nil
}

// sharedDir reports whether other users may create files in dir.
func sharedDir(dir string) bool {
	var st unix.Stat_t
	if unix.Stat(dir, &st) != nil {
		return false
	}
	return st.Mode&0o022 != 0 || int(st.Uid) != os.Geteuid()
}

// read loads the entries; a damaged file of the cache's own is started
// anew, anything else not its own is refused.
func (c *File) read() error {
	data, err := io.ReadAll(io.LimitReader(c.f, maxFile+1))
	if err != nil {
		return &FileError{Path: c.path, Err: err}
	}
	entries, err := decode(data)
	var damaged *damagedError
	switch {
	case errors.As(err, &damaged):
		c.logger().Warn("cache file is damaged; starting it anew", "file", c.path, "reason", damaged.reason)
		entries = map[string]entry{}
	case err != nil:
		return &FileError{Path: c.path, Err: err}
	}
	c.entries = entries
	return nil
}

// Get returns the credentials cached under key if they have more than
// [ReuseMargin] left.
func (c *File) Get(key string) (*signer.Credentials, bool) {
	e, ok := c.entries[key]
	if !ok {
		return nil, false
	}
	exp, err := time.Parse(time.RFC3339, e.Expiration)
	if err != nil || !c.now().Add(ReuseMargin).Before(exp) {
		return nil, false
	}
	return &signer.Credentials{AccessKeyID: e.AccessKeyID, SecretAccessKey: e.SecretAccessKey,
		SessionToken: e.SessionToken, Expiration: exp}, true
}

// Put stores creds under key, drops the expired entries, and rewrites the
// file. The file is rewritten in place, under the lock: a rename would
// hand the lock's waiters a file nobody writes any more. It is written
// before it is cut to length, so a crash leaves a file that starts with
// the marker, which the next caller starts anew.
func (c *File) Put(key string, creds *signer.Credentials) error {
	now := c.now()
	for k, e := range c.entries {
		if exp, err := time.Parse(time.RFC3339, e.Expiration); err != nil || !now.Before(exp) {
			delete(c.entries, k)
		}
	}
	c.entries[key] = entry{AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey,
		SessionToken: creds.SessionToken, Expiration: creds.Expiration.UTC().Format(time.RFC3339)}
	data, err := encode(c.entries)
	if err != nil {
		return err
	}
	if _, err := c.f.WriteAt(data, 0); err != nil {
		return fmt.Errorf("failed to write the cache file: %w", pathCause(err))
	}
	if err := c.f.Truncate(int64(len(data))); err != nil {
		return fmt.Errorf("failed to write the cache file: %w", pathCause(err))
	}
	if err := c.f.Sync(); err != nil {
		return fmt.Errorf("failed to write the cache file: %w", pathCause(err))
	}
	return nil
}

// Close releases the lock and the file.
func (c *File) Close() error { return c.f.Close() }

// Key names an identity by what its session depends on (the certificate's
// fingerprint, the ARNs, the session's name and duration, the endpoint):
// the SHA-256 of the parts, in hex.
func Key(parts ...string) string {
	h := sha256.New()
	for _, s := range parts {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

func (c *File) now() time.Time {
	if c.opts.Now != nil {
		return c.opts.Now()
	}
	return time.Now()
}

func (c *File) logger() *slog.Logger {
	if c.opts.Logger != nil {
		return c.opts.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// pathCause drops the path from an os error: messages name it already.
func pathCause(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}
