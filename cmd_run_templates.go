package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// maxTemplate bounds a template's size: a configuration file, not a disk.
const maxTemplate = 1 << 20

// templateSrcError is a --template SRC that rolesenv refuses to read.
type templateSrcError struct {
	src, why string
}

func (e *templateSrcError) Error() string { return "--template " + e.src + ": " + e.why }
func (e *templateSrcError) Config() bool  { return true }
func (e *templateSrcError) Hint() string {
	return "keep templates in a directory that only root (or rolesenv's user) can write to, as regular files of root or rolesenv's user, never of the --user account"
}

// readTemplate reads a --template SRC, which rolesenv reads with its own
// rights (root's, often, with --user) and renders into files for the
// command: SRC is opened without following a symbolic link (relative to
// its directory's descriptor) and must be a regular file that only root or
// rolesenv's user can write, in a directory only they can write to (or a
// sticky one, like /tmp), so that no other account, the --user account
// (userUID; -1 for none) included, can make it read another file.
func readTemplate(src string, userUID int) ([]byte, error) {
	dir, base := filepath.Dir(src), filepath.Base(src)
	dfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &templateSrcError{src: src, why: "cannot open its directory: " + err.Error()}
	}
	defer unix.Close(dfd)
	if why := trusted(dfd, true, userUID); why != "" {
		return nil, &templateSrcError{src: src, why: "its directory " + dir + " is " + why}
	}
	fd, err := unix.Openat(dfd, base, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ELOOP) {
		return nil, &templateSrcError{src: src, why: "it is a symbolic link (give the file it points to)"}
	}
	if err != nil {
		return nil, &templateSrcError{src: src, why: "cannot read it: " + err.Error()}
	}
	f := os.NewFile(uintptr(fd), src)
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, &templateSrcError{src: src, why: "cannot read it: " + err.Error()}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, &templateSrcError{src: src, why: "not a regular file"}
	}
	if why := trusted(fd, false, userUID); why != "" {
		return nil, &templateSrcError{src: src, why: why}
	}
	data, err := io.ReadAll(io.LimitReader(f, maxTemplate+1))
	if err != nil {
		return nil, &templateSrcError{src: src, why: "cannot read it: " + err.Error()}
	}
	if len(data) > maxTemplate {
		return nil, &templateSrcError{src: src, why: fmt.Sprintf("larger than %d bytes", maxTemplate)}
	}
	return data, nil
}

// trusted says why fd is not something only root or this process's user
// can change ("" when it is): owned by another account (the --user
// account userUID among them), or writable by its group or others (for
// a directory, unless it is sticky: then no one else can replace a file
// of root's in it).
func trusted(fd int, dir bool, userUID int) string {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return "unreadable: " + err.Error()
	}
	switch uid := int(st.Uid); {
	case uid == 0 || uid == os.Geteuid():
	case uid == userUID:
		return fmt.Sprintf("owned by the --user account (uid %d)", uid)
	default:
		return fmt.Sprintf("owned by uid %d, not root or rolesenv's user", uid)
	}
	if st.Mode&0o022 != 0 && !(dir && st.Mode&unix.S_ISVTX != 0) {
		return fmt.Sprintf("writable by others than its owner (mode %04o)", st.Mode&0o7777)
	}
	return ""
}
