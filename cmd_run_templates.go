package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

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
	return "keep templates as regular files of root (or rolesenv's user), in directories that only they can write to all the way from /, never the --user account's"
}

// readTemplate reads a --template SRC, which rolesenv reads with its own
// rights (root's, often, with --user) and renders into files for the
// command. As ssh's StrictModes does, it refuses a SRC that an account
// other than root or rolesenv's user (the --user account, userUID, -1 for
// none, among them) could make it read another file: SRC is a regular
// file, not a symbolic link, that only they can write, and every
// directory on its way from / (symbolic links resolved first, then
// walked without following any) is theirs and writable by no one else,
// or sticky, like /tmp.
func readTemplate(src string, userUID int) ([]byte, error) {
	dfd, err := openTrustedDir(src, userUID)
	if err != nil {
		return nil, err
	}
	defer unix.Close(dfd)
	fd, err := unix.Openat(dfd, filepath.Base(src), unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
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

// openTrustedDir opens the directory of src (O_PATH), walking from / one
// component at a time without following links, and checks each directory
// on the way.
func openTrustedDir(src string, userUID int) (int, error) {
	abs, err := filepath.Abs(src)
	if err == nil {
		abs, err = filepath.EvalSymlinks(filepath.Dir(abs))
	}
	if err != nil {
		why := err.Error()
		if inner := errors.Unwrap(err); inner != nil { // the cause without the path, which the error names already
			why = inner.Error()
		}
		return -1, &templateSrcError{src: src, why: "cannot open its directory: " + why}
	}
	const flags = unix.O_PATH | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	fd, err := unix.Open("/", flags, 0)
	if err != nil {
		return -1, &templateSrcError{src: src, why: "cannot open /: " + err.Error()}
	}
	at := "/"
	for _, name := range strings.Split(strings.TrimPrefix(abs, "/"), "/") {
		if why := trusted(fd, true, userUID); why != "" {
			unix.Close(fd)
			return -1, &templateSrcError{src: src, why: "its directory " + at + " is " + why}
		}
		if name == "" {
			continue
		}
		next, err := unix.Openat(fd, name, flags, 0)
		unix.Close(fd)
		if err != nil {
			return -1, &templateSrcError{src: src, why: "cannot open its directory: " + err.Error()}
		}
		fd, at = next, filepath.Join(at, name)
	}
	if why := trusted(fd, true, userUID); why != "" {
		unix.Close(fd)
		return -1, &templateSrcError{src: src, why: "its directory " + at + " is " + why}
	}
	return fd, nil
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
