package inject

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"strings"
)

// ReadFiles reads env files by name; "-" reads stdin (once). Only regular
// files are read: a named pipe, a device, a directory or a socket is
// refused (see readFileLimited).
func ReadFiles(names []string, stdin io.Reader) ([]File, error) {
	var files []File
	var errs []error
	stdinRead := false
	for _, name := range names {
		var data []byte
		var err error
		if name == "-" {
			if stdinRead {
				errs = append(errs, configErr(name, 0, "", "", "standard input can be given once"))
				continue
			}
			stdinRead = true
			if stdin == nil {
				stdin = strings.NewReader("")
			}
			data, err = io.ReadAll(io.LimitReader(stdin, MaxFileSize+1))
		} else {
			data, _, err = readFileLimited(name)
		}
		if err != nil {
			errs = append(errs, &ResolveError{File: name, Err: err, class: classConfig})
			continue
		}
		files = append(files, File{Name: name, Data: data})
	}
	return files, join(errs)
}

// readFileLimited reads a regular file, at most MaxFileSize and one byte
// (Parse refuses more), and returns what it read with the file's
// information as it was opened. Anything but a regular file is refused
// before it is read: a named pipe would block the reader until a writer
// comes (or hand it whatever the writer sends), /dev/zero never ends, and
// a terminal or a socket waits for input. The file is opened without
// blocking (a named pipe opens at once) and without becoming a
// controlling terminal, and checked again once open, so that a file
// replaced between the look and the open is refused too.
func readFileLimited(name string) ([]byte, os.FileInfo, error) {
	info, err := os.Stat(name)
	if err != nil {
		return nil, nil, pathError(err)
	}
	if err := regular(info); err != nil {
		return nil, nil, err
	}
	f, err := os.OpenFile(name, os.O_RDONLY|openFlags, 0)
	if err != nil {
		return nil, nil, pathError(err)
	}
	defer f.Close()
	if info, err = f.Stat(); err != nil {
		return nil, nil, pathError(err)
	}
	if err := regular(info); err != nil {
		return nil, nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, nil, pathError(err)
	}
	return data, info, nil
}

// errNotRegular is the error of an env file that is not a regular file.
var errNotRegular = errors.New("not a regular file")

// regular refuses anything but a regular file, saying what it is.
func regular(info os.FileInfo) error {
	m := info.Mode()
	if m.IsRegular() {
		return nil
	}
	what := "a special file"
	switch {
	case m.IsDir():
		what = "a directory"
	case m&fs.ModeNamedPipe != 0:
		return &notRegularError{what: "a named pipe", hint: "; give - to read the template from standard input"}
	case m&fs.ModeSocket != 0:
		what = "a socket"
	case m&fs.ModeCharDevice != 0:
		what = "a character device"
	case m&fs.ModeDevice != 0:
		what = "a block device"
	}
	return &notRegularError{what: what}
}

type notRegularError struct{ what, hint string }

func (e *notRegularError) Error() string {
	return "not a regular file (" + e.what + "): only regular files are read" + e.hint
}

func (e *notRegularError) Is(target error) bool { return target == errNotRegular }

// pathError drops the path an *os.PathError repeats (the ResolveError
// names the file already).
func pathError(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

// fileLook is what one look at a watched env file found: its content, or
// that it did not change since the look before (unchanged), or why it
// could not be read.
type fileLook struct {
	wf        *watchedFile
	info      os.FileInfo
	data      []byte
	unchanged bool
	err       error
}

// lookAt looks at an env file: prev is what the last good look saw (nil
// reads it whatever its state). It runs off the watch loop: on a hung
// network file system even a stat may never return.
func lookAt(name string, prev os.FileInfo) fileLook {
	if prev != nil {
		info, err := os.Stat(name)
		if err != nil {
			return fileLook{err: pathError(err)}
		}
		if sameFile(prev, info) {
			return fileLook{info: info, unchanged: true}
		}
	}
	data, info, err := readFileLimited(name)
	if err != nil {
		return fileLook{err: err}
	}
	return fileLook{info: info, data: data}
}

// sameFile reports whether two looks at a path saw the same file, unchanged.
func sameFile(a, b os.FileInfo) bool {
	return os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime()) && a.Mode() == b.Mode()
}
