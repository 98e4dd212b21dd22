package secretfiles

import (
	"crypto/sha256"
	"errors"
	"os"
	"slices"
	"strconv"

	"golang.org/x/sys/unix"
)

// Write makes the directory hold files: it writes every file whose
// contents or mode differ from what Dir wrote last, removes the files it
// wrote before that are not among them, and returns the names of both. A
// file it fails to write keeps its old contents; the others are written
// all the same.
//
// The marker follows every step, so that a run killed at any point leaves
// only what the next one can tell apart: the temporary names before they
// exist, then each new file's identity (device and inode) before it is
// put in place, then the files as they are.
func (d *Dir) Write(files []File) (changed []string, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, errors.New("secret files: directory closed")
	}
	var errs []error
	var todo []*pending
	for _, f := range files {
		if f.Mode == 0 {
			f.Mode = 0o400
		}
		if err := ValidName(f.Name); err != nil {
			errs = append(errs, &os.PathError{Op: "write", Path: d.Join(f.Name), Err: err})
			continue
		}
		sum := digest(f)
		if w := d.written[f.Name]; w != nil && w.digest == sum && ours(d.fd, f.Name, w) {
			continue
		}
		todo = append(todo, &pending{f: f, sum: sum, tmp: newTemp()})
	}
	if len(todo) > 0 {
		written, err := d.writeAll(todo)
		if err != nil && len(written) == 0 {
			return nil, err
		}
		if err != nil {
			errs = append(errs, err)
		}
		changed, errs = written, append(errs, pendingErrs(todo)...)
	}
	removed := d.removeOthers(files)
	changed = append(changed, removed...)
	if len(todo) > 0 || len(removed) > 0 {
		if err := d.mark(nil, nil); err != nil {
			errs = append(errs, err)
		}
	}
	return changed, errors.Join(errs...)
}

// pending is a file being written.
type pending struct {
	f   File
	sum [sha256.Size]byte
	tmp string
	w   *written // once its temporary file is written
	err error
}

// writeAll writes the files of todo through their temporary files and
// puts them in place, recording each step in the marker, and returns the
// names written; a file's own failure is in its err. An error means the
// marker could not be written, and nothing was.
func (d *Dir) writeAll(todo []*pending) ([]string, error) {
	tmps := make([]string, len(todo))
	for i, p := range todo {
		tmps[i] = p.tmp
	}
	if err := d.mark(tmps, nil); err != nil {
		return nil, err
	}
	var extra []markedFile
	for _, p := range todo {
		if p.w, p.err = d.writeTemp(p.tmp, p.f); p.err != nil {
			_ = unix.Unlinkat(d.fd, p.tmp, 0)
			continue
		}
		p.w.digest = p.sum
		extra = append(extra, markedFile{name: p.f.Name, dev: p.w.dev, ino: p.w.ino, mtime: p.w.mtime})
	}
	if err := d.mark(tmps, extra); err != nil {
		for _, p := range todo {
			_ = unix.Unlinkat(d.fd, p.tmp, 0)
		}
		return nil, err
	}
	var names []string
	for _, p := range todo {
		if p.err != nil {
			continue
		}
		if p.err = d.place(p.tmp, p.f.Name); p.err != nil {
			_ = unix.Unlinkat(d.fd, p.tmp, 0)
			continue
		}
		d.written[p.f.Name] = p.w
		names = append(names, p.f.Name)
	}
	if err := unix.Fsync(d.fd); err != nil {
		return names, &os.PathError{Op: "sync", Path: d.path, Err: err}
	}
	return names, nil
}

func pendingErrs(todo []*pending) []error {
	var errs []error
	for _, p := range todo {
		if p.err != nil {
			errs = append(errs, p.err)
		}
	}
	return errs
}

// removeOthers removes the files Dir wrote that are not in files, and
// returns their names.
func (d *Dir) removeOthers(files []File) []string {
	var removed []string
	for name, w := range d.written {
		if slices.ContainsFunc(files, func(f File) bool { return f.Name == name }) {
			continue
		}
		if ours(d.fd, name, w) {
			_ = unix.Unlinkat(d.fd, name, 0)
		}
		delete(d.written, name)
		removed = append(removed, name)
	}
	slices.Sort(removed)
	return removed
}

func digest(f File) [sha256.Size]byte {
	h := sha256.New()
	h.Write([]byte(strconv.FormatUint(uint64(f.Mode), 8) + "\x00"))
	h.Write(f.Data)
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

// writeTemp creates tmp (O_EXCL, O_NOFOLLOW), writes f into it with its
// owner and mode, and syncs it.
func (d *Dir) writeTemp(tmp string, f File) (*written, error) {
	fail := func(op string, err error) (*written, error) {
		return nil, &os.PathError{Op: op, Path: d.Join(f.Name), Err: err}
	}
	fd, err := unix.Openat(d.fd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fail("create", err)
	}
	defer unix.Close(fd)
	if err := writeAll(fd, f.Data); err != nil {
		return fail("write", err)
	}
	if d.o.Owner {
		if err := unix.Fchown(fd, d.o.UID, d.o.GID); err != nil {
			return fail("chown", err)
		}
	}
	if err := unix.Fchmod(fd, uint32(f.Mode.Perm())); err != nil {
		return fail("chmod", err)
	}
	if err := unix.Fsync(fd); err != nil {
		return fail("sync", err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fail("stat", err)
	}
	return &written{dev: uint64(st.Dev), ino: st.Ino, mtime: st.Mtim.Nano()}, nil
}

// place moves tmp to name: a link for a new name (which fails if anything
// appeared there), a rename over the file this Dir wrote last, and a
// refusal for anything else.
func (d *Dir) place(tmp, name string) error {
	var st unix.Stat_t
	err := unix.Fstatat(d.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	switch {
	case errors.Is(err, unix.ENOENT):
		if err := unix.Linkat(d.fd, tmp, d.fd, name, 0); err != nil {
			if errors.Is(err, unix.EEXIST) {
				return &ForeignError{Path: d.Join(name), What: "a file rolesenv did not write"}
			}
			return &os.PathError{Op: "link", Path: d.Join(name), Err: err}
		}
		return unix.Unlinkat(d.fd, tmp, 0)
	case err != nil:
		return &os.PathError{Op: "stat", Path: d.Join(name), Err: err}
	}
	if w := d.written[name]; w == nil || !ours(d.fd, name, w) {
		return &ForeignError{Path: d.Join(name), What: describe(uint32(st.Mode))}
	}
	if err := unix.Renameat(d.fd, tmp, d.fd, name); err != nil {
		return &os.PathError{Op: "rename", Path: d.Join(name), Err: err}
	}
	return nil
}

func describe(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFLNK:
		return "a symbolic link"
	case unix.S_IFDIR:
		return "a directory"
	case unix.S_IFREG:
		return "a file rolesenv did not write"
	}
	return "not a regular file"
}

// writeAll writes all of data to fd, past short writes and EINTR.
func writeAll(fd int, data []byte) error {
	for len(data) > 0 {
		n, err := unix.Write(fd, data)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return err
		}
		data = data[n:]
	}
	return nil
}
