package supervise

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// LookPath finds command as the Supervisor starts it, without running
// it: a name with a slash is used as it is; another is looked up on the
// PATH of env (the command's environment), or on rolesenv's own PATH when
// env has none. Relative PATH entries (including empty ones, which mean
// the current directory) are skipped, as os/exec refuses them. A match
// must be a regular file with an execute bit; an earlier match that is
// not does not hide a later one that is.
//
// The error is a *StartError: exit code 127 when nothing was found, 126
// when only files that cannot be executed were (its Err names the first
// of them when it was found on the PATH).
func LookPath(command string, env []string) (string, error) {
	if strings.Contains(command, "/") {
		if err := executable(command); err != nil {
			return "", &StartError{Command: command, Err: err}
		}
		return command, nil
	}
	path, ok := envValue(env, "PATH")
	if !ok {
		path = os.Getenv("PATH")
	}
	var denied error
	for _, dir := range filepath.SplitList(path) {
		if !filepath.IsAbs(dir) {
			continue
		}
		p := filepath.Join(dir, command)
		err := executable(p)
		if err == nil {
			return p, nil
		}
		if !errors.Is(err, errNotFound) && denied == nil {
			denied = fmt.Errorf("%s: %w", p, err)
		}
	}
	if denied != nil {
		return "", &StartError{Command: command, Err: denied}
	}
	return "", &StartError{Command: command, Err: errNotFound}
}

// executable checks that p is a regular file with an execute bit.
func executable(p string) error {
	st, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return errNotFound
		}
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return pe.Err // the StartError names the command already
		}
		return err
	}
	if st.IsDir() {
		return errors.New("is a directory")
	}
	if st.Mode()&0o111 == 0 {
		return fs.ErrPermission
	}
	return nil
}
