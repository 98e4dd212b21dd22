package main

import (
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rolesenv/rolesenv/inject"
	"github.com/rolesenv/rolesenv/internal/secretfiles"
	"github.com/rolesenv/rolesenv/internal/supervise"
)

// credentialsDirVar tells the command where the files are, as systemd's
// LoadCredential= does, when templates are given.
const credentialsDirVar = "CREDENTIALS_DIRECTORY"

// fileFlags choose the files delivered beside the environment: templates
// and the directory (run, render, check), and how run reloads the command
// when only they change.
type fileFlags struct {
	templates     []string
	secretsDir    string
	reloadSignal  string
	reloadCommand string
	reloadTimeout time.Duration
}

func (f *fileFlags) register(fs *flagSet, run bool) {
	fs.StringArrayVar(&f.templates, "template", nil, "render SRC to the file DEST of the secrets directory (SRC:DEST[:MODE]; repeatable)")
	fs.StringVar(&f.secretsDir, "secrets-dir", "", "directory for secret files (default: a new one under /dev/shm)")
	if !run {
		return
	}
	fs.StringVar(&f.reloadSignal, "reload-signal", defaultReloadSignal, "with --on-change reload, the signal that tells the command to read its files again")
	fs.StringVar(&f.reloadCommand, "reload-command", "", "with --on-change reload, a command to run instead of the signal")
	fs.DurationVar(&f.reloadTimeout, "reload-timeout", supervise.DefaultReloadTimeout, "kill the reload command after this long")
}

const defaultReloadSignal = "SIGHUP"

// templateSpec is one parsed --template.
type templateSpec struct {
	src, dest string
	mode      fs.FileMode
}

// parseTemplates parses each --template SRC:DEST[:MODE].
func parseTemplates(specs []string) ([]templateSpec, error) {
	var out []templateSpec
	for _, s := range specs {
		f := strings.Split(s, ":")
		if len(f) < 2 || len(f) > 3 || f[0] == "" {
			return nil, usageErrorf("invalid --template %q: want SRC:DEST or SRC:DEST:MODE", s)
		}
		if err := secretfiles.ValidName(f[1]); err != nil {
			return nil, &usageError{msg: fmt.Sprintf("invalid --template %q: DEST is a file name in the secrets directory: %v", s, err),
				hint: "choose where the directory is with --secrets-dir"}
		}
		t := templateSpec{src: f[0], dest: f[1]}
		if len(f) == 3 {
			m, err := strconv.ParseUint(f[2], 8, 32)
			if err != nil || m > 0o777 || m&0o400 == 0 {
				return nil, usageErrorf("invalid --template %q: MODE is an octal mode that its owner can read (0400, 0440, 0600...)", s)
			}
			t.mode = fs.FileMode(m)
		}
		out = append(out, t)
	}
	return out, nil
}

// fileSink is where the files of a run go: a directory planned when its
// path is first needed (to render a file: value or a template, or to
// write), so that a run without files neither looks at /dev/shm nor reads
// a random name, and created when the first file is written.
type fileSink struct {
	a      *app
	o      secretfiles.Options // Dir, or Parent and Name, once path has planned them
	path   func() string       // the directory's path, planned at the first call
	parent string              // of a new directory, once planned; "" with --secrets-dir

	mu  sync.Mutex
	dir *secretfiles.Dir
}

// newFileSink plans the directory: --secrets-dir, or a new name under
// the default parent. user, when set, will own it.
func (a *app) newFileSink(ff *fileFlags, user *supervise.User) *fileSink {
	s := &fileSink{a: a}
	if user != nil {
		s.o.Owner, s.o.UID, s.o.GID = true, int(user.UID), int(user.GID)
	}
	dir := ff.secretsDir
	s.path = sync.OnceValue(func() string {
		if dir != "" {
			s.o.Dir = dir
			return filepath.Clean(dir)
		}
		s.parent, s.o.Name = secretfiles.DefaultParent(), secretfiles.NewName()
		s.o.Parent = s.parent
		return filepath.Join(s.parent, s.o.Name)
	})
	return s
}

// fileOptions adds the templates, and where delivered files go, to opts.
func (s *fileSink) fileOptions(ff *fileFlags, opts *inject.Options) error {
	specs, err := parseTemplates(ff.templates)
	if err != nil {
		return err
	}
	opts.FilePath = func(name string) string { return filepath.Join(s.path(), name) }
	for _, t := range specs {
		data, err := readTemplate(t.src, s.userUID())
		if err != nil {
			return err
		}
		opts.Templates = append(opts.Templates, inject.TemplateFile{Name: t.src, Dest: t.dest, Mode: t.mode, Data: data})
	}
	return nil
}

// credentialsDirEnv makes the secrets directory the command's
// CREDENTIALS_DIRECTORY when templates are given, once opts has the
// environment and the flags that shape the command's: it replaces
// rolesenv's own value before the env files are read (so that
// ${CREDENTIALS_DIRECTORY} in them is the directory) and passes it
// through --clean-env. A value the command would inherit that names
// another directory (systemd's LoadCredential=, for one) is a
// configuration error rather than a silent choice.
func credentialsDirEnv(opts *inject.Options) error {
	dir, ok := templatesDir(opts)
	if !ok {
		return nil
	}
	reaches := !opts.CleanEnv || slices.Contains(opts.KeepEnv, credentialsDirVar)
	env := make([]string, 0, len(opts.Environ)+1)
	for _, kv := range opts.Environ {
		v, found := strings.CutPrefix(kv, credentialsDirVar+"=")
		if !found {
			env = append(env, kv)
			continue
		}
		if reaches && filepath.Clean(v) != dir {
			return &configError{
				msg:  fmt.Sprintf("the command would inherit %s=%s, but the templates are written to %s", credentialsDirVar, v, dir),
				hint: "unset " + credentialsDirVar + " for rolesenv (or use --clean-env), or give --secrets-dir that directory",
			}
		}
	}
	opts.Environ = append(env, credentialsDirVar+"="+dir)
	if opts.CleanEnv && !slices.Contains(opts.KeepEnv, credentialsDirVar) {
		opts.KeepEnv = append(slices.Clip(opts.KeepEnv), credentialsDirVar)
	}
	return nil
}

// checkCredentialsDir refuses an environment whose CREDENTIALS_DIRECTORY,
// set by an env file, is not where the templates are written.
func checkCredentialsDir(opts *inject.Options, env *inject.Env) error {
	dir, ok := templatesDir(opts)
	if !ok {
		return nil
	}
	if v, ok := env.Lookup(credentialsDirVar); ok && v.Reveal() == dir {
		return nil
	}
	return &configError{
		msg:  fmt.Sprintf("an env file sets %s to another directory than the one the templates are written to (%s)", credentialsDirVar, dir),
		hint: "drop that line: rolesenv sets " + credentialsDirVar + " for the command, and ${" + credentialsDirVar + "} expands to it",
	}
}

// templatesDir is the directory templates are written to, if any are.
func templatesDir(opts *inject.Options) (string, bool) {
	if len(opts.Templates) == 0 || opts.FilePath == nil {
		return "", false
	}
	return filepath.Dir(opts.FilePath(credentialsDirVar)), true
}

// write writes the files env delivers, creating the directory first if
// needed, and reports whether any changed.
func (s *fileSink) write(env *inject.Env) (bool, error) {
	if s == nil {
		return false, nil
	}
	files := env.Files()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(files) == 0 && s.dir == nil {
		return false, nil // none yet, and none to remove
	}
	if err := s.open(); err != nil {
		return false, err
	}
	out := make([]secretfiles.File, len(files))
	for i, f := range files {
		out[i] = secretfiles.File{Name: f.Name, Mode: f.Mode, Data: []byte(f.Value.Reveal())}
	}
	changed, err := s.dir.Write(out)
	if len(changed) > 0 {
		s.a.log.Debug("secret files written", "dir", s.path(), "files", changed)
	}
	return len(changed) > 0, err
}

// open creates the directory, after removing what killed runs left in
// the default parent, and warns when it is not in memory.
func (s *fileSink) open() error {
	if s.dir != nil {
		return nil
	}
	path := s.path()
	if s.parent != "" {
		cleaned, err := secretfiles.Clean(s.parent, s.userUID())
		if err != nil {
			s.a.log.Warn("cannot look for the secret files of earlier runs", "err", err)
		}
		for _, c := range cleaned {
			s.a.log.Info("removed the secret files of a run that ended without cleaning up", "dir", c)
		}
	}
	d, err := secretfiles.Open(s.o)
	if err != nil {
		return &secretsDirError{err: err}
	}
	s.dir = d
	if !d.Memory() {
		s.a.log.Warn("the secrets directory is not on a memory file system (tmpfs or ramfs): secret files may reach a disk", "dir", path)
	}
	s.a.log.Info("secret files directory ready", "dir", path)
	return nil
}

// userUID is the --user account's uid, or -1.
func (s *fileSink) userUID() int {
	if !s.o.Owner {
		return -1
	}
	return s.o.UID
}

// updateFiles is the Files of the supervisor's Update for env.
func (s *fileSink) updateFiles(env *inject.Env) supervise.WriteFiles {
	if s == nil {
		return nil
	}
	return func() (bool, error) { return s.write(env) }
}

// keepForExec keeps the directory's lock across the exec of --once, so
// that it lasts as long as the command.
func (s *fileSink) keepForExec() error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dir == nil {
		return nil
	}
	return s.dir.KeepLockOnExec()
}

// close removes the files and the directory it created.
func (s *fileSink) close() {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dir == nil {
		return
	}
	if err := s.dir.Close(); err != nil {
		s.a.log.Warn("cannot remove every secret file", "err", err)
	} else {
		s.a.log.Debug("secret files removed", "dir", s.path())
	}
	s.dir = nil
}

// reloadConfig checks --reload-signal, --reload-command and
// --reload-timeout, which need --on-change reload.
func reloadConfig(fs *flagSet, ff *fileFlags, cfg *supervise.Config) error {
	if cfg.OnChange != supervise.OnChangeReload {
		for _, name := range []string{"reload-signal", "reload-command", "reload-timeout"} {
			if fs.onCommandLine[name] {
				return &usageError{msg: "--" + name + " needs --on-change reload"}
			}
		}
		return nil
	}
	if ff.reloadCommand != "" && (fs.onCommandLine["reload-signal"] || ff.reloadSignal != defaultReloadSignal) {
		return &usageError{msg: "--reload-signal and --reload-command are alternatives: the command runs instead of the signal",
			hint: "keep one; a reload command can send the signal itself (kill -HUP ...)"}
	}
	sig, err := parseSignalFlag(fs, "reload-signal", ff.reloadSignal)
	if err != nil {
		return err
	}
	// The signals that may be a refresh signal are those that do not mean
	// "stop": the same rule makes a reload signal.
	if supervise.ValidateRefreshSignal(sig) != nil {
		return usageErrorf("invalid --reload-signal: %s means stop, not reload (use HUP, USR1, USR2, WINCH, ALRM or a realtime signal)", supervise.SignalName(sig))
	}
	cfg.ReloadSignal = sig
	// Split on white space, no quoting: a command that needs an argument
	// with a space, or a shell, is a script of its own.
	cfg.ReloadCommand = strings.Fields(ff.reloadCommand)
	if ff.reloadTimeout <= 0 {
		return usageErrorf("invalid --reload-timeout %v: want more than zero", ff.reloadTimeout)
	}
	cfg.ReloadTimeout = ff.reloadTimeout
	return nil
}

// renderFiles prints the files run would write: name, mode, size and
// path, one line each (json: an array), and their contents only with
// reveal.
func renderFiles(w io.Writer, env *inject.Env, format string, reveal bool) error {
	type entry struct {
		Name     string  `json:"name"`
		Variable string  `json:"variable,omitempty"`
		Path     string  `json:"path"`
		Mode     string  `json:"mode"`
		Size     int     `json:"size"`
		Contents *string `json:"contents,omitempty"`
	}
	files := env.Files()
	out := make([]entry, 0, len(files))
	for _, f := range files {
		v := f.Value.Reveal()
		e := entry{Name: f.Name, Variable: f.Var, Path: f.Path, Mode: fmt.Sprintf("%04o", uint32(f.Mode.Perm())), Size: len(v)}
		if reveal {
			e.Contents = &v
		}
		out = append(out, e)
	}
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	for _, e := range out {
		line := fmt.Sprintf("%s mode=%s size=%d path=%s", e.Name, e.Mode, e.Size, e.Path)
		if e.Variable != "" {
			line += " variable=" + e.Variable
		}
		if _, err := io.WriteString(w, line+"\n"); err != nil {
			return err
		}
		if e.Contents != nil {
			if _, err := io.WriteString(w, *e.Contents+"\n"); err != nil {
				return err
			}
		}
	}
	return nil
}

// warnNoFiles says when --on-change reload can never reload: nothing is
// delivered in files, so every change is one of the environment.
func (s *fileSink) warnNoFiles(onChange supervise.OnChange, env *inject.Env) {
	if onChange == supervise.OnChangeReload && len(env.Files()) == 0 {
		s.a.log.Warn("--on-change reload: no value is delivered in a file (file: or --template), so every change restarts the command")
	}
}

// secretsDirError is a secrets directory that cannot be used: a mistake
// of the configuration (a path that cannot be created, a foreign file, a
// directory in use), unless the system ran out of a resource, which
// exitcode sees in the chain first.
type secretsDirError struct{ err error }

func (e *secretsDirError) Error() string { return "secrets directory: " + e.err.Error() }
func (e *secretsDirError) Unwrap() error { return e.err }
func (e *secretsDirError) Config() bool  { return true }
func (e *secretsDirError) Hint() string {
	return "give --secrets-dir a path that does not exist yet (rolesenv creates it 0700) or an empty directory of rolesenv's user (or --user's) that only it can write to; rolesenv never changes an existing one. Or leave it out for a new one under /dev/shm"
}
