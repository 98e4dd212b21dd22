package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/rolesenv/rolesenv/inject"
)

const renderUsage = `Usage: rolesenv render [flags]

Print the environment that 'rolesenv run' would give its command: rolesenv's
own environment without any ROLESENV_* variable, plus the variables of the
env files with every reference resolved. Values that came from Secrets
Manager or Parameter Store are masked as ******** unless --reveal is given
(so are inherited AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN); literal
values from the files print as they are. Nothing is started.

Environment:
  --env-file FILE        template env file; repeatable, later files win; - is stdin
                         (ROLESENV_ENV_FILE takes a :-separated list)
  --from-env             also resolve inherited variables whose whole value is a reference
  --clean-env            only the files' variables, and those --keep-env names
  --keep-env NAME,...    with --clean-env, also pass these inherited variables
  --timeout D            give up resolving after D, retries included (default 30s)

Files (as for 'rolesenv run'):
  --template SRC:DEST[:MODE]
                         render SRC to the file DEST of the secrets directory
  --secrets-dir DIR      where run writes files (default: a new directory
                         under /dev/shm, whose name render cannot know)

Output:
  --format FORMAT        dotenv (default), shell or json
  --reveal               print secret values instead of ********
  --files                print the files run would write instead of the
                         environment: name, mode, size and path (json: an
                         array); their contents only with --reveal

  dotenv   NAME=value lines, quoted so that --env-file reads them back unchanged
  shell    export NAME='value' lines for sh, bash and zsh
  json     one JSON object, names sorted

Credentials and logging (as for 'rolesenv run'):
` + credLogUsage + `
Without Roles Anywhere flags, credentials come from the standard AWS chain.
A template without references needs no credentials and makes no request.

Examples:
  rolesenv render --env-file app.env
  rolesenv render --env-file app.env --clean-env --format json
  rolesenv render --env-file base.env --env-file prod.env --keep-env PATH --clean-env
  diff <(rolesenv render --env-file old.env) <(rolesenv render --env-file new.env)

Every flag but --format and --reveal can also be set with ROLESENV_<NAME>
(--env-file is ROLESENV_ENV_FILE); a flag on the command line wins.
`

// mask replaces a secret value in render's output.
const mask = "********"

func cmdRender(ctx context.Context, a *app, args []string) error {
	fs := newFlagSet("render", renderUsage)
	var ef envFlags
	var cf credFlags
	var lf logFlags
	var ff fileFlags
	ff.register(fs, false)
	ef.register(fs)
	cf.register(fs)
	lf.register(fs)
	format := fs.String("format", "dotenv", "dotenv, shell or json")
	reveal := fs.Bool("reveal", false, "print secret values instead of ********")
	listFiles := fs.Bool("files", false, "print the files run would write instead of the environment")
	if err := fs.parse(a, args); err != nil {
		if err == errHelp {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return &usageError{msg: "render takes no arguments", hint: "give env files with --env-file"}
	}
	if err := cf.validate(fs); err != nil {
		return err
	}
	switch *format {
	case "dotenv", "shell", "json":
	default:
		return usageErrorf("invalid --format %q (want dotenv, shell or json)", *format)
	}
	log, err := lf.logger(a.stderr)
	if err != nil {
		return err
	}
	a.log = log

	var opts inject.Options
	if err := a.newFileSink(&ff, nil).fileOptions(&ff, &opts); err != nil {
		return err
	}
	src, err := a.loadEnv(ctx, &ef, opts, func(ctx context.Context) (aws.Config, error) { return a.awsConfig(ctx, &cf) })
	if err != nil {
		return err
	}
	env := src.Env()
	if err := inject.CheckSize(nil, env.Environ()); err != nil {
		return err
	}
	w := bufio.NewWriter(a.stdout)
	switch {
	case *listFiles:
		err = renderFiles(w, env, *format, *reveal)
	case *format == "json":
		err = renderJSON(w, env, *reveal)
	default:
		err = renderLines(a, w, env, *format, *reveal)
	}
	if err != nil {
		return err
	}
	return w.Flush()
}

// loadEnv reads the env files and resolves the child's environment
// within --timeout. opts may carry Remove and Set (the credentials
// endpoint's variables); the flags fill in the rest. config is asked for
// the AWS configuration only when a reference needs it: a template without
// references asks for no configuration and no credentials at all.
func (a *app) loadEnv(ctx context.Context, ef *envFlags, opts inject.Options, config func(context.Context) (aws.Config, error)) (*inject.Source, error) {
	if ef.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, ef.timeout)
		defer cancel()
	}
	files, err := inject.ReadFiles(ef.envFiles, a.stdin)
	if err != nil {
		return nil, err
	}
	opts.Environ, opts.FromEnv, opts.CleanEnv, opts.KeepEnv = a.environ, ef.fromEnv, ef.cleanEnv, ef.keepEnv
	if err := credentialsDirEnv(&opts); err != nil {
		return nil, err
	}
	src, err := inject.Load(ctx, files, inject.LoadOptions{Options: opts, Config: config, Prepare: a.preconnect, Logger: a.log})
	if err != nil {
		return nil, withRegionHint(err)
	}
	if err := checkCredentialsDir(&opts, src.Env()); err != nil {
		return nil, err
	}
	return src, nil
}

// regionHinted adds where a region comes from to an error of a fetch that
// had none.
type regionHinted struct{ error }

func (e regionHinted) Unwrap() error { return e.error }
func (e regionHinted) Hint() string  { return "set --region or AWS_REGION" }

func withRegionHint(err error) error {
	if errors.Is(err, inject.ErrNoRegion) {
		return regionHinted{err}
	}
	return err
}

func renderJSON(w io.Writer, env *inject.Env, reveal bool) error {
	// encoding/json sorts map keys: the output is stable.
	m := make(map[string]string, env.Len())
	for _, name := range env.Names() {
		v, _ := env.Lookup(name)
		m[name] = shown(v, reveal)
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(m)
}

func renderLines(a *app, w io.Writer, env *inject.Env, format string, reveal bool) error {
	for _, name := range env.Names() {
		if !inject.ValidName(name) {
			// An inherited variable such as BASH_FUNC_f%% cannot be
			// written as an env file or shell line.
			a.log.Warn("not printed: not a portable variable name", "variable", name)
			continue
		}
		v, _ := env.Lookup(name)
		val := mask
		if !v.Sensitive() || reveal {
			val = inject.QuoteDotenv(v.Reveal())
			if format == "shell" {
				val = quoteShell(v.Reveal())
			}
		}
		line := name + "=" + val
		if format == "shell" {
			line = "export " + line
		}
		if _, err := io.WriteString(w, line+"\n"); err != nil {
			return err
		}
	}
	return nil
}

func shown(v inject.Value, reveal bool) string {
	if v.Sensitive() && !reveal {
		return mask
	}
	return v.Reveal()
}

// quoteShell quotes s for POSIX sh (render's shell format, dev's env.sh):
// in single quotes, where nothing is special, each quote in s closed,
// escaped with a backslash and reopened. The result is one word, taken
// literally: no expansion, no history ('!'), no globbing.
func quoteShell(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
