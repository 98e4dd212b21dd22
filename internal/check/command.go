package check

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/rolesenv/rolesenv/inject"
)

// Command checks that argv[0] resolves to an executable as run would
// start it: a name with a slash as it is, another on the PATH of env (the
// command's environment), or on ownPATH (rolesenv's) when env has none;
// relative PATH entries are skipped. These are package supervise's rules.
// env is nil when the command's environment could not be rendered; the
// lookup then uses ownPATH and the row says so.
func Command(argv, env []string, ownPATH string) []Row {
	rows := []Row{commandRow(argv[0], env, ownPATH)}
	if env != nil {
		rows = append(rows, size(argv, env))
	}
	return rows
}

func commandRow(command string, env []string, ownPATH string) Row {
	r := Row{Group: Local, Check: "command " + command}
	path, where := ownPATH, "rolesenv's PATH"
	if env == nil {
		where += ", as the command's environment could not be rendered"
	} else if p, ok := lookup(env, "PATH"); ok {
		path, where = p, "the command's PATH"
	}
	found, err := lookPath(command, path)
	switch {
	case err == nil && strings.Contains(command, "/"):
		r.Status, r.Detail = OK, "an executable file"
	case err == nil:
		r.Status, r.Detail = OK, found+" (on "+where+")"
	case errors.Is(err, fs.ErrNotExist):
		r.Status, r.Detail = Fail, "not found"
		if !strings.Contains(command, "/") {
			r.Detail += " on " + where
		}
		r.Hint = "run would exit 127; give the command's full path, or set PATH in the env file"
	default:
		r.Status, r.Detail = Fail, "cannot be executed: "+err.Error()
		r.Hint = "run would exit 126; the file needs an execute bit (chmod +x) and must not be a directory"
	}
	return r
}

// lookPath finds command as a shell would, without running it.
func lookPath(command, path string) (string, error) {
	if strings.Contains(command, "/") {
		return command, executable(command)
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
		if !errors.Is(err, fs.ErrNotExist) && denied == nil {
			denied = fmt.Errorf("%s: %w", p, err)
		}
	}
	if denied != nil {
		return "", denied
	}
	return "", fs.ErrNotExist
}

func executable(p string) error {
	st, err := os.Stat(p)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return pe.Err
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

func lookup(env []string, name string) (string, bool) {
	for i := len(env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(env[i], "="); ok && k == name {
			return v, true
		}
	}
	return "", false
}

// size checks that exec can take the command line and the environment.
func size(argv, env []string) Row {
	r := Row{Group: Local, Check: "environment size", Status: OK}
	total := 0
	for _, kv := range env {
		total += len(kv) + 1
	}
	r.Detail = fmt.Sprintf("%d variables, %d bytes", len(env), total)
	if err := inject.CheckSize(argv, env); err != nil {
		r.Status, r.Detail = Fail, err.Error()
		r.Hint = "move large values into files the command reads"
	}
	return r
}
