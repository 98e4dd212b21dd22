package check

import (
	"errors"
	"fmt"
	"strings"

	"github.com/rolesenv/rolesenv/inject"
	"github.com/rolesenv/rolesenv/internal/supervise"
)

// Command checks that argv[0] resolves to an executable as run would
// start it (supervise.LookPath): a name with a slash as it is, another on
// the PATH of env (the command's environment), or on ownPATH (rolesenv's)
// when env has none; relative PATH entries are skipped. env is nil when
// the command's environment could not be rendered; the lookup then uses
// ownPATH and the row says so.
func Command(argv, env []string, ownPATH string) []Row {
	rows := []Row{commandRow(argv[0], env, ownPATH)}
	if env != nil {
		rows = append(rows, size(argv, env))
	}
	return rows
}

func commandRow(command string, env []string, ownPATH string) Row {
	r := Row{Group: Local, Check: "command " + command}
	lookIn, where := env, "the command's PATH"
	if env == nil {
		lookIn, where = []string{"PATH=" + ownPATH}, "rolesenv's PATH, as the command's environment could not be rendered"
	} else if !hasVar(env, "PATH") {
		lookIn, where = []string{"PATH=" + ownPATH}, "rolesenv's PATH"
	}
	found, err := supervise.LookPath(command, lookIn)
	var se *supervise.StartError
	switch {
	case err == nil && strings.Contains(command, "/"):
		r.Status, r.Detail = OK, "an executable file"
	case err == nil:
		r.Status, r.Detail = OK, found+" (on "+where+")"
	case !errors.As(err, &se):
		r.Status, r.Detail = Fail, err.Error()
	case se.ExitCode() == 127:
		r.Status, r.Detail = Fail, "not found"
		if !strings.Contains(command, "/") {
			r.Detail += " on " + where
		}
		r.Hint = "run would exit 127; give the command's full path, or set PATH in the env file"
	default:
		r.Status, r.Detail = Fail, "cannot be executed: "+se.Err.Error()
		r.Hint = "run would exit 126; the file needs an execute bit (chmod +x) and must not be a directory"
	}
	return r
}

func hasVar(env []string, name string) bool {
	for _, kv := range env {
		if k, _, ok := strings.Cut(kv, "="); ok && k == name {
			return true
		}
	}
	return false
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
