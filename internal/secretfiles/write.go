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
func (d *Dir) Write(files []File) (changed []string, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, errors.New("secret files: directory closed")
	}
	var errs []error
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
		if err := d.writeOne(f, sum); err != nil {
			errs = append(errs, err)
			continue
		}
		changed = append(changed, f.Name)
	}
	changed = append(changed, d.removeOthers(files)...)
	return changed, errors.Join(errs...)
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

// writeOne writes f through a temporary file and puts it in place.
func (d *Dir) writeOne(f File, sum [sha256.Size]byte) error {
	if !slices.Contains(d.marked, f.Name) {
		// Named in the marker before it exists, so that a run killed from
		// here on leaves nothing the next one does not know about.
		d.marked = append(d.marked, f.Name)
		if err := d.mark(); err != nil {
			return err
		}
	}
	tmp := ".tmp-" + randomHex(8)
	w, err := d.writeTemp(tmp, f)
	if err != nil {
		_ = unix.Unlinkat(d.fd, tmp, 0)
		return err
	}
	w.digest = sum
	if err := d.place(tmp, f.Name); err != nil {
		_ = unix.Unlinkat(d.fd, tmp, 0)
		return err
	}
	d.written[f.Name] = w
	if err := unix.Fsync(d.fd); err != nil {
		return &os.PathError{Op: "sync", Path: d.path, Err: err}
	}
	return nil
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
	for data := f.Data; len(data) > 0; {
		n, err := unix.Write(fd, data)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fail("write", err)
		}
		data = data[n:]
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
	return &written{dev: uint64(st.Dev), ino: st.Ino}, nil
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
