package secretfiles

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// marker is the owner of a directory and the files it wrote: one
// "key value" a line.
type marker struct {
	self    process
	created bool // the directory is rolesenv's: the run that ends removes it
	// files are the files written, each by its identity: a leftover is
	// removed only if its name still holds that very file, never a file
	// that someone else put at a name rolesenv was refused.
	files []markedFile
	// tmps are the temporary names about to be created, recorded before
	// they exist; only these temporary files are removed.
	tmps []string
}

// markedFile is a file of a marker: its name and identity.
type markedFile struct {
	name     string
	dev, ino uint64
	mtime    int64 // nanoseconds
}

// process identifies a process across pid reuse: its pid, its start time
// (in clock ticks since boot), the boot, and its PID namespace (a pid means
// something only there).
type process struct {
	pid   int
	start string
	boot  string
	ns    string
}

func (m marker) encode() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "pid %d\nstart %s\nboot %s\nns %s\n", m.self.pid, m.self.start, m.self.boot, m.self.ns)
	if m.created {
		b.WriteString("created\n")
	}
	for _, f := range m.files {
		fmt.Fprintf(&b, "file %s %d %d %d\n", f.name, f.dev, f.ino, f.mtime)
	}
	for _, t := range m.tmps {
		fmt.Fprintf(&b, "tmp %s\n", t)
	}
	return b.Bytes()
}

func decodeMarker(data []byte) (marker, error) {
	var m marker
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), " ")
		switch k {
		case "pid":
			m.self.pid, _ = strconv.Atoi(v)
		case "start":
			m.self.start = v
		case "boot":
			m.self.boot = v
		case "ns":
			m.self.ns = v
		case "created":
			m.created = true
		case "file":
			if f, ok := decodeFile(v); ok {
				m.files = append(m.files, f)
			}
		case "tmp":
			if isTemp(v) {
				m.tmps = append(m.tmps, v)
			}
		}
	}
	if m.self.pid <= 0 {
		return m, errors.New("malformed marker")
	}
	return m, nil
}

// decodeFile parses "NAME DEV INO MTIME"; a name without an identity is
// not a file to remove.
func decodeFile(v string) (markedFile, bool) {
	f := strings.Fields(v)
	if len(f) != 4 || ValidName(f[0]) != nil {
		return markedFile{}, false
	}
	dev, err1 := strconv.ParseUint(f[1], 10, 64)
	ino, err2 := strconv.ParseUint(f[2], 10, 64)
	mtime, err3 := strconv.ParseInt(f[3], 10, 64)
	return markedFile{name: f[0], dev: dev, ino: ino, mtime: mtime}, err1 == nil && err2 == nil && err3 == nil
}

const tempPrefix = ".tmp-"

func newTemp() string { return tempPrefix + randomHex(8) }

func isTemp(name string) bool {
	return strings.HasPrefix(name, tempPrefix) && ValidName(name[1:]) == nil
}

// mark writes the marker: this process, the files it wrote, extra files
// about to be put in place, and the temporary names tmps about to be
// created. It is root's (or this process's user's), 0600, written
// through a temporary file and renamed.
func (d *Dir) mark(tmps []string, extra []markedFile) error {
	m := marker{self: current(), created: d.created, tmps: tmps}
	for name, w := range d.written {
		m.files = append(m.files, markedFile{name: name, dev: w.dev, ino: w.ino, mtime: w.mtime})
	}
	m.files = append(m.files, extra...)
	tmp := newTemp()
	fd, err := unix.Openat(d.fd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return &os.PathError{Op: "create", Path: d.Join(markerName), Err: err}
	}
	err = writeAll(fd, m.encode())
	if err == nil {
		err = unix.Fsync(fd)
	}
	_ = unix.Close(fd)
	if err == nil {
		err = unix.Renameat(d.fd, tmp, d.fd, markerName)
	}
	if err != nil {
		_ = unix.Unlinkat(d.fd, tmp, 0)
		return &os.PathError{Op: "write", Path: d.Join(markerName), Err: err}
	}
	return nil
}

// readMarker reads the marker of the directory dirfd; ok is false when
// there is none that this process's user wrote.
func readMarker(dirfd int) (m marker, ok bool) {
	fd, err := unix.Openat(dirfd, markerName, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return m, false
	}
	f := os.NewFile(uintptr(fd), markerName)
	defer f.Close()
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG || int(st.Uid) != os.Geteuid() || st.Nlink != 1 || st.Size > 1<<20 {
		return m, false
	}
	data := make([]byte, st.Size)
	if _, err := f.ReadAt(data, 0); err != nil {
		return m, false
	}
	m, err = decodeMarker(data)
	return m, err == nil
}

// cleanLeftovers removes, from a named directory whose lock Dir holds,
// the files of a run that no longer exists; a marker of a process that
// still runs (an exec'd --once command) makes Open fail.
func (d *Dir) cleanLeftovers() error {
	m, ok := readMarker(d.fd)
	if !ok {
		return nil
	}
	if m.self.alive() {
		return &InUseError{Path: d.path, PID: m.self.pid}
	}
	removeListed(d.fd, m)
	// A directory a killed run made is rolesenv's: this run removes it
	// when it ends.
	d.created = m.created
	return nil
}

// removeListed removes the files a marker lists that are still the files
// it wrote (same device and inode), the temporary files it recorded, and
// the marker. Nothing is removed by name alone.
func removeListed(dirfd int, m marker) {
	for _, f := range m.files {
		var st unix.Stat_t
		if unix.Fstatat(dirfd, f.name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFREG &&
			uint64(st.Dev) == f.dev && st.Ino == f.ino && st.Mtim.Nano() == f.mtime {
			_ = unix.Unlinkat(dirfd, f.name, 0)
		}
	}
	for _, name := range m.tmps {
		var st unix.Stat_t
		if unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFREG {
			_ = unix.Unlinkat(dirfd, name, 0)
		}
	}
	_ = unix.Unlinkat(dirfd, markerName, 0)
}

func dupOrNeg(fd int) int {
	nfd, err := unix.Dup(fd)
	if err != nil {
		return -1
	}
	return nfd
}

// Clean removes, under parent, the directories that Open created for runs
// that no longer exist (rolesenv-*, owned by this user or by owner, the
// account a run gave its directory to (-1: none), with a marker this user
// wrote), opening at most maxClean of them a call, and returns their
// paths. A directory that holds something else stays; one of another
// account is not even opened.
func Clean(parent string, owner int) ([]string, error) {
	if parent == "" {
		parent = DefaultParent()
	}
	pfd, err := unix.Open(parent, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: parent, Err: err}
	}
	defer unix.Close(pfd)
	f := os.NewFile(uintptr(dupOrNeg(pfd)), parent)
	if f == nil {
		return nil, errors.New("cannot read " + parent)
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return nil, &os.PathError{Op: "readdir", Path: parent, Err: err}
	}
	var cleaned []string
	tried := 0
	for _, n := range names {
		if !strings.HasPrefix(n, Prefix) || !ownedDir(pfd, n, owner) {
			continue
		}
		if tried++; tried > maxClean {
			break // the rest waits for the next run
		}
		if cleanOne(pfd, n) {
			cleaned = append(cleaned, filepath.Join(parent, n))
		}
	}
	return cleaned, nil
}

// maxClean bounds how many directories of this user one Clean opens, so
// that a parent full of them does not hold a start back.
const maxClean = 64

// ownedDir reports whether name in pfd is a directory (not a link to
// one) of this process's user or of owner.
func ownedDir(pfd int, name string, owner int) bool {
	var st unix.Stat_t
	return unix.Fstatat(pfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil &&
		st.Mode&unix.S_IFMT == unix.S_IFDIR && (int(st.Uid) == os.Geteuid() || owner >= 0 && int(st.Uid) == owner)
}

// cleanOne removes one leftover directory of parent pfd, if it is one.
func cleanOne(pfd int, name string) bool {
	dfd, err := openDir(pfd, name)
	if err != nil {
		return false
	}
	m, ok := readMarker(dfd)
	if !ok || !locked(dfd) || m.self.alive() {
		unix.Close(dfd)
		return false
	}
	removeListed(dfd, m)
	unix.Close(dfd)
	return unix.Unlinkat(pfd, name, unix.AT_REMOVEDIR) == nil
}

// locked takes the lock of the directory dirfd, which its owner holds
// for as long as it runs (and the kernel lets go of when it dies, in
// any PID namespace); false when another process holds it.
func locked(dirfd int) bool {
	return unix.Flock(dirfd, unix.LOCK_EX|unix.LOCK_NB) == nil
}

// alive reports whether the process p names still runs: the same pid,
// started at the same time, in the same boot. It is asked once the lock
// is free: a process that was exec'd (--once) no longer holds it. A
// process of another PID namespace cannot be looked up, and is taken as
// gone.
func (p process) alive() bool {
	now := current()
	if p.boot != now.boot || p.ns != now.ns {
		return false
	}
	if p.pid == now.pid {
		return p.start == now.start
	}
	if err := unix.Kill(p.pid, 0); errors.Is(err, unix.ESRCH) {
		return false
	}
	start := startTime(p.pid)
	return start == "" || p.start == "" || start == p.start
}

func current() process {
	pid := os.Getpid()
	return process{pid: pid, start: startTime(pid), boot: bootID(), ns: pidNamespace()}
}

// Inspect checks, without changing anything, that Open could use the
// directory o names: an existing one is a directory (not a link), writable
// by no one else, owned by this user or the owner (any account, for root
// without an owner: the run's --user may own it), empty or holding
// rolesenv's marker, and not in use by a process its marker names that
// runs; a new one's parent is a directory. memory reports a memory file
// system where the files would be. It takes no lock, so that a run that
// starts meanwhile never finds the directory in use; a run in another PID
// namespace is therefore seen only by Open.
func Inspect(o Options) (path string, memory bool, err error) {
	if o.Dir == "" {
		path = o.Parent
		if path == "" {
			path = DefaultParent()
		}
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return path, false, &os.PathError{Op: "open", Path: path, Err: err}
		}
		defer unix.Close(fd)
		return path, onMemory(fd), unix.Faccessat(fd, ".", unix.W_OK, unix.AT_EACCESS)
	}
	path = filepath.Clean(o.Dir)
	d := &Dir{o: o, path: path, fd: -1, parentFd: -1}
	defer d.closeFds()
	if d.fd, err = openDir(unix.AT_FDCWD, path); errors.Is(err, unix.ENOENT) {
		parent := filepath.Dir(path)
		if d.fd, err = openDir(unix.AT_FDCWD, parent); err != nil {
			return path, false, &os.PathError{Op: "open", Path: parent, Err: err}
		}
		return path, onMemory(d.fd), nil
	}
	if err != nil {
		return path, false, &ForeignError{Path: path, What: "not a directory (or a symbolic link)", Dir: true}
	}
	if err := d.checkExisting(!o.Owner && os.Geteuid() == 0); err != nil {
		return path, false, err
	}
	if m, ok := readMarker(d.fd); ok && m.self.alive() {
		return path, onMemory(d.fd), &InUseError{Path: path, PID: m.self.pid}
	}
	return path, onMemory(d.fd), nil
}
