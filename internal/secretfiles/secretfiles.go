// Package secretfiles writes secret values to files in a private
// directory, for applications that read a secret from a file rather than
// from their environment.
//
// [Open] creates (or adopts) the directory and cleans what a killed run
// left in it; [Dir.Write] writes a set of files and [Dir.Close] removes
// them, and the directory when Open created it.
//
// Guarantees:
//
//   - A new directory is mode 0700, on a memory file system by default
//     (/dev/shm), owned by the account given in [Options]; [Dir.Memory]
//     says whether it is tmpfs or ramfs. It is made relative to its
//     parent's descriptor and checked after it is opened (this user's,
//     empty).
//   - An existing directory is never changed (no chmod, no chown): it is
//     used only if it is a directory (not a link), owned by this process's
//     user or the owner, writable by no one else, and empty or holding a
//     marker of rolesenv's; anything else is a [ForeignError].
//   - Each file is written whole or not at all: a temporary file in the
//     same directory, written, given its owner and mode (0400 unless told
//     otherwise), synced, then renamed over the old one. A reader sees the
//     old contents or the new, never part of either.
//   - Nothing it did not create is followed or overwritten: every file is
//     opened relative to the directory's descriptor with O_NOFOLLOW and
//     O_EXCL, a new name is linked into place (which fails if anything is
//     there), and an existing name is replaced only if it is the file this
//     Dir wrote last ([ForeignError] otherwise).
//   - The Dir holds a lock (flock) on the directory for as long as it is
//     open, which the kernel lets go of when the process dies, however it
//     dies; and a marker file in the directory names the files and the
//     process that owns them (pid, start time, boot and PID namespace),
//     written before a file exists: the temporary names before they are
//     created, each file's identity (device, inode, modification time)
//     before it is put in place. The next Open, or [Clean] of the parent,
//     removes what a killed run left (the lock is free and the process is
//     gone): the files that are still the ones it wrote, and the
//     temporary files it recorded, never a file by its name alone, and
//     never what a running one uses (the lock is held, or the process
//     still runs).
//
// It does not log, read flags or keep values beyond a digest of what it
// wrote.
package secretfiles

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"
)

// Prefix starts the name of every directory that Open creates.
const Prefix = "rolesenv-"

// markerName is the marker file in a directory: who owns it, and which
// files it wrote.
const markerName = ".rolesenv-owner"

// Options say where the directory is and who owns it.
type Options struct {
	// Dir is the directory to write to; it is created (mode 0700) if it
	// does not exist. "" creates a new directory under Parent, named
	// rolesenv-<random>.
	Dir string
	// Parent is where a new directory is created; "" means DefaultParent.
	Parent string
	// Name is the new directory's name (see NewName); "" picks one.
	Name string
	// With Owner, UID and GID own the directory and the files; without,
	// they belong to the current process's user.
	Owner    bool
	UID, GID int
}

// NewName returns a name for a new directory: rolesenv-<random>. A
// caller that must know the path before Open (to give it to a program)
// passes it as Options.Name.
func NewName() string { return Prefix + randomHex(8) }

// DefaultParent is /dev/shm, a memory file system on Linux, when it is a
// directory, else the system's temporary directory.
func DefaultParent() string {
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		return "/dev/shm"
	}
	return os.TempDir()
}

// File is one file to write: a name in the directory, a mode and the
// contents.
type File struct {
	Name string
	Mode fs.FileMode // 0 means 0400
	Data []byte
}

// ForeignError is a destination that holds something Dir did not write,
// or a directory that is not Dir's to use (Dir set).
type ForeignError struct {
	Path string
	What string // "a symbolic link", "a directory", "a file rolesenv did not write"
	Dir  bool
}

func (e *ForeignError) Error() string {
	if e.Dir {
		return fmt.Sprintf("refusing to use %s: it is %s", e.Path, e.What)
	}
	return fmt.Sprintf("refusing to replace %s: it is %s", e.Path, e.What)
}

// Config reports a setup mistake, not a failure of the system.
func (e *ForeignError) Config() bool { return true }

// InUseError is a directory that a running process owns.
type InUseError struct {
	Path string
	PID  int
}

func (e *InUseError) Error() string {
	if e.PID <= 0 {
		return e.Path + " is in use by another process"
	}
	return fmt.Sprintf("%s is in use by process %d", e.Path, e.PID)
}

func (e *InUseError) Config() bool { return true }

// Dir is an open directory of secret files.
type Dir struct {
	path     string
	fd       int
	parentFd int // for removing a directory Open created; -1 otherwise
	created  bool
	o        Options
	memory   bool

	mu      sync.Mutex
	written map[string]*written
	closed  bool
}

// written is what Dir knows of a file it wrote: its identity and a
// digest of its contents and mode.
type written struct {
	dev, ino uint64
	mtime    int64 // in nanoseconds: the marker's identity adds it, as an inode number is reused
	digest   [sha256.Size]byte
}

// Open creates or adopts the directory, removes the files that a run
// which no longer exists left in it, and records this process as its
// owner.
func Open(o Options) (*Dir, error) {
	if !o.Owner {
		o.UID, o.GID = -1, -1
	}
	d := &Dir{o: o, fd: -1, parentFd: -1, written: map[string]*written{}}
	var err error
	if o.Dir == "" {
		err = d.create()
	} else {
		err = d.adopt(o.Dir)
	}
	if err != nil {
		d.closeFds()
		return nil, err
	}
	d.memory = onMemory(d.fd)
	if err := d.mark(nil, nil); err != nil {
		_ = d.Close()
		return nil, err
	}
	return d, nil
}

// create makes a new directory rolesenv-<random> under the parent.
func (d *Dir) create() error {
	parent := d.o.Parent
	if parent == "" {
		parent = DefaultParent()
	}
	pfd, err := unix.Open(parent, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: parent, Err: err}
	}
	d.parentFd = pfd
	for range 10 {
		name := d.o.Name
		if name == "" {
			name = NewName()
		}
		err = unix.Mkdirat(pfd, name, 0o700)
		if errors.Is(err, unix.EEXIST) && d.o.Name == "" {
			continue
		}
		if err != nil {
			return &os.PathError{Op: "mkdir", Path: filepath.Join(parent, name), Err: err}
		}
		d.path, d.created = filepath.Join(parent, name), true
		return d.openCreated(name)
	}
	return fmt.Errorf("cannot create a directory in %s: every name tried exists", parent)
}

// adopt opens a directory that was named, creating it if needed. An
// existing one is used as it is, never changed: it must be a directory
// (not a link to one), owned by this process's user or the owner,
// writable by no one else, and empty or holding a marker of rolesenv's.
func (d *Dir) adopt(path string) error {
	path = filepath.Clean(path)
	d.path = path
	parent, name := filepath.Dir(path), filepath.Base(path)
	pfd, err := unix.Open(parent, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: parent, Err: err}
	}
	d.parentFd = pfd
	err = unix.Mkdirat(pfd, name, 0o700)
	if err == nil {
		d.created = true
		return d.openCreated(name)
	}
	if !errors.Is(err, unix.EEXIST) {
		return &os.PathError{Op: "mkdir", Path: path, Err: err}
	}
	if d.fd, err = openDir(pfd, name); err != nil {
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
			return &ForeignError{Path: path, What: "not a directory (or a symbolic link)", Dir: true}
		}
		return &os.PathError{Op: "open", Path: path, Err: err}
	}
	if !locked(d.fd) {
		m, _ := readMarker(d.fd)
		return &InUseError{Path: path, PID: m.self.pid}
	}
	if err := d.checkExisting(false); err != nil {
		return err
	}
	return d.cleanLeftovers()
}

// openCreated opens the directory name of the parent that Open has just
// made, checks that it is still the one made (this user's, empty: no one
// replaced it in between), locks it, and gives it its mode and owner.
func (d *Dir) openCreated(name string) error {
	var err error
	if d.fd, err = openDir(d.parentFd, name); err != nil {
		return &os.PathError{Op: "open", Path: d.path, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(d.fd, &st); err != nil {
		return &os.PathError{Op: "stat", Path: d.path, Err: err}
	}
	if int(st.Uid) != os.Geteuid() {
		return &ForeignError{Path: d.path, What: fmt.Sprintf("a directory owned by uid %d, replaced after it was created", st.Uid), Dir: true}
	}
	if names, err := d.entries(); err != nil || len(names) > 0 {
		return &ForeignError{Path: d.path, What: "a directory that filled up as it was created", Dir: true}
	}
	if !locked(d.fd) {
		return &InUseError{Path: d.path}
	}
	return d.own()
}

// checkExisting refuses an existing directory that others could write to,
// that belongs to another account (unless anyOwner), or that holds files
// without a marker of rolesenv's: a directory of something else, which
// rolesenv must neither take over nor clean.
func (d *Dir) checkExisting(anyOwner bool) error {
	var st unix.Stat_t
	if err := unix.Fstat(d.fd, &st); err != nil {
		return &os.PathError{Op: "stat", Path: d.path, Err: err}
	}
	if st.Mode&0o022 != 0 {
		return &ForeignError{Path: d.path, What: fmt.Sprintf("a directory others can write to (mode %04o); want 0700", st.Mode&0o7777), Dir: true}
	}
	if !anyOwner && int(st.Uid) != os.Geteuid() && (!d.o.Owner || int(st.Uid) != d.o.UID) {
		return &ForeignError{Path: d.path, What: fmt.Sprintf("a directory owned by uid %d", st.Uid), Dir: true}
	}
	if !anyOwner && d.o.Owner && int(st.Uid) != d.o.UID && !enterable(&st, d.o.GID) {
		return &ForeignError{Path: d.path, What: fmt.Sprintf("a directory that the owner of the files (uid %d) cannot enter (mode %04o): chown it to that account", d.o.UID, st.Mode&0o7777), Dir: true}
	}
	names, err := d.entries()
	if err != nil {
		return &os.PathError{Op: "readdir", Path: d.path, Err: err}
	}
	if len(names) == 0 {
		return nil
	}
	if _, ok := readMarker(d.fd); !ok {
		return &ForeignError{Path: d.path, What: "a directory that is not empty and that rolesenv did not set up (no marker of its own)", Dir: true}
	}
	return nil
}

// enterable reports whether a directory of another account lets the
// account of group gid (or everyone) search it.
func enterable(st *unix.Stat_t, gid int) bool {
	return st.Mode&0o001 != 0 || st.Mode&0o010 != 0 && int(st.Gid) == gid
}

// entries lists the directory's names.
func (d *Dir) entries() ([]string, error) {
	f := os.NewFile(uintptr(dupOrNeg(d.fd)), d.path)
	if f == nil {
		return nil, errors.New("cannot read " + d.path)
	}
	defer f.Close()
	// The copy shares the offset of d.fd, which an earlier listing moved.
	if _, err := f.Seek(0, 0); err != nil {
		return nil, err
	}
	return f.Readdirnames(-1)
}

// own gives a directory Open created its mode and owner; an existing
// one is never changed.
func (d *Dir) own() error {
	if err := unix.Fchmod(d.fd, 0o700); err != nil {
		return &os.PathError{Op: "chmod", Path: d.path, Err: err}
	}
	if d.o.Owner {
		if err := unix.Fchown(d.fd, d.o.UID, d.o.GID); err != nil {
			return &os.PathError{Op: "chown", Path: d.path, Err: err}
		}
	}
	return nil
}

// Path is the directory's path.
func (d *Dir) Path() string { return d.path }

// Join is the path of a file of the directory.
func (d *Dir) Join(name string) string { return filepath.Join(d.path, name) }

// Memory reports a directory on tmpfs or ramfs: its files never reach a
// disk (swap aside).
func (d *Dir) Memory() bool { return d.memory }

// Created reports a directory that Open made, and that Close removes.
func (d *Dir) Created() bool { return d.created }

// ValidName checks a file name: letters, digits, '.', '-' and '_', not
// starting with '.', at most 255 bytes. No path: files live in the
// directory itself.
func ValidName(name string) error {
	if name == "" || len(name) > 255 || name[0] == '.' {
		return errors.New("a file name is letters, digits, '.', '-' and '_', not starting with '.'")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			return errors.New("a file name is letters, digits, '.', '-' and '_', not starting with '.'")
		}
	}
	return nil
}

func openDir(at int, path string) (int, error) {
	return unix.Openat(at, path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (d *Dir) closeFds() {
	if d.fd >= 0 {
		_ = unix.Close(d.fd)
		d.fd = -1
	}
	if d.parentFd >= 0 {
		_ = unix.Close(d.parentFd)
		d.parentFd = -1
	}
}

// Release lets go of the directory and leaves its files in place, for a
// process that is about to exec the program that reads them: the marker
// still names this process (its pid carries over exec), so no other run
// removes them while it lives.
func (d *Dir) Release() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	d.closeFds()
}

// KeepLockOnExec makes the directory's descriptor, which holds its lock,
// survive an exec, for a process about to become the program that reads
// the files (--once): the lock then lasts as long as that program, which
// inherits the descriptor, and no other run, in any PID namespace, takes
// the directory while it runs.
func (d *Dir) KeepLockOnExec() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed || d.fd < 0 {
		return errors.New("secret files: directory closed")
	}
	flags, err := unix.FcntlInt(uintptr(d.fd), unix.F_GETFD, 0)
	if err == nil {
		_, err = unix.FcntlInt(uintptr(d.fd), unix.F_SETFD, flags&^unix.FD_CLOEXEC)
	}
	if err != nil {
		return &os.PathError{Op: "fcntl", Path: d.path, Err: err}
	}
	return nil
}

// Close removes the files Dir wrote, the marker, and the directory if
// Open created it. A file that is no longer the one Dir wrote stays.
func (d *Dir) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	defer d.closeFds()
	var errs []error
	for name, w := range d.written {
		if ours(d.fd, name, w) {
			if err := unix.Unlinkat(d.fd, name, 0); err != nil && !errors.Is(err, unix.ENOENT) {
				errs = append(errs, &os.PathError{Op: "remove", Path: d.Join(name), Err: err})
			}
		}
	}
	if err := unix.Unlinkat(d.fd, markerName, 0); err != nil && !errors.Is(err, unix.ENOENT) {
		errs = append(errs, &os.PathError{Op: "remove", Path: d.Join(markerName), Err: err})
	}
	if d.created && d.parentFd >= 0 {
		if err := unix.Unlinkat(d.parentFd, filepath.Base(d.path), unix.AT_REMOVEDIR); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, &os.PathError{Op: "remove", Path: d.path, Err: err})
		}
	}
	return errors.Join(errs...)
}

// ours reports whether name in dirfd is still the file w describes.
func ours(dirfd int, name string, w *written) bool {
	var st unix.Stat_t
	if unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) != nil {
		return false
	}
	return st.Mode&unix.S_IFMT == unix.S_IFREG && uint64(st.Dev) == w.dev && st.Ino == w.ino
}
