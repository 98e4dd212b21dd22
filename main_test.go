package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
	"github.com/spf13/pflag"

	"github.com/rolesenv/rolesenv/internal/exitcode"
)

// TestMain makes the test binary three programs: the tests; "rolesenv"
// itself (so tests and testscript scripts run the real CLI as a separate
// process, found on the PATH); and "rolesenv-testchild", a helper child
// whose modes are registered in testChildModes.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"rolesenv":           main,
		"rolesenv-testchild": testChildMain,
	})
}

// testChildModes are the modes of rolesenv-testchild, registered by the
// test files that need them: "rolesenv-testchild MODE ARGS...".
var testChildModes = map[string]func(args []string) int{
	// exit N: exit with status N.
	"exit": func(args []string) int {
		var n int
		fmt.Sscan(args[0], &n)
		return n
	},
	// printenv: print the environment, one NAME=value a line, and exit.
	"printenv": func([]string) int {
		for _, kv := range os.Environ() {
			fmt.Println(kv)
		}
		return 0
	},
}

func testChildMain() {
	if len(os.Args) < 2 || testChildModes[os.Args[1]] == nil {
		fmt.Fprintf(os.Stderr, "rolesenv-testchild: unknown mode %q\n", os.Args[1:])
		os.Exit(2)
	}
	os.Exit(testChildModes[os.Args[1]](os.Args[2:]))
}

// rolesenvBin is the path of the test binary acting as rolesenv.
func rolesenvBin(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("rolesenv")
	if err != nil {
		t.Fatalf("rolesenv is not on the PATH that TestMain set up: %v", err)
	}
	return p
}

// runCLI runs the CLI in-process and returns its exit code and output.
func runCLI(t testing.TB, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestExitCodes(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want string
	}{
		{nil, exitcode.Usage, "rolesenv: error: no command given"},
		{[]string{"frobnicate"}, exitcode.Usage, "rolesenv: hint: run 'rolesenv --help'"},
		{[]string{"version", "extra"}, exitcode.Usage, "takes no arguments"},
		{[]string{"run", "--no-such-flag"}, exitcode.Usage, "unknown flag: --no-such-flag"},
		{[]string{"version"}, exitcode.OK, ""},
		{[]string{"--help"}, exitcode.OK, ""},
	}
	for _, tt := range tests {
		code, _, stderr := runCLI(t, tt.args...)
		if code != tt.code {
			t.Errorf("rolesenv %q: exit %d, want %d (stderr %q)", tt.args, code, tt.code, stderr)
		}
		if !strings.Contains(stderr, tt.want) {
			t.Errorf("rolesenv %q: stderr %q does not contain %q", tt.args, stderr, tt.want)
		}
	}
}

// classified is an error with every classification method, for testing
// exitcode.Of's precedence.
type classified struct{ usage, config, denied, unavailable bool }

func (e classified) Error() string      { return "classified" }
func (e classified) Usage() bool        { return e.usage }
func (e classified) Config() bool       { return e.config }
func (e classified) AccessDenied() bool { return e.denied }
func (e classified) Unavailable() bool  { return e.unavailable }

func TestExitCodePrecedence(t *testing.T) {
	join := func(errs ...error) error { return fmt.Errorf("wrapped: %w", joinErrors(errs)) }
	tests := []struct {
		err  error
		want int
	}{
		{nil, 0},
		{fmt.Errorf("plain"), exitcode.Internal},
		{classified{unavailable: true}, exitcode.Unavailable},
		{join(classified{unavailable: true}, classified{denied: true}), exitcode.NoPerm},
		{join(classified{denied: true}, classified{config: true}, classified{unavailable: true}), exitcode.Config},
		{join(exitStatus(3)), 3},
		{join(exitStatus(3), classified{config: true}), exitcode.Config},
		{classified{}, exitcode.Internal},
	}
	for _, tt := range tests {
		if got := exitcode.Of(tt.err); got != tt.want {
			t.Errorf("exitcode.Of(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}

type multi []error

func (m multi) Error() string   { return "multi" }
func (m multi) Unwrap() []error { return m }

func joinErrors(errs []error) error { return multi(errs) }

func TestEnvTwins(t *testing.T) {
	a := &app{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}, environ: []string{
		"ROLESENV_REGION=eu-west-1",
		"ROLESENV_ENV_FILE=a.env:b.env",
		"ROLESENV_KEEP_ENV=HOME,PATH",
		"ROLESENV_FORMAT=json", // no twin for output-shaping flags
		"ROLESENV_TIMEOUT=5s",
	}}
	fs := newFlagSet("test", "")
	var cf credFlags
	var ef envFlags
	cf.register(fs)
	ef.register(fs)
	format := fs.String("format", "text", "")
	if err := fs.parse(a, []string{"--timeout", "7s"}); err != nil {
		t.Fatal(err)
	}
	if cf.region != "eu-west-1" {
		t.Errorf("region = %q, want the twin's eu-west-1", cf.region)
	}
	if got := strings.Join(ef.envFiles, ","); got != "a.env,b.env" {
		t.Errorf("env files = %q, want a.env,b.env", got)
	}
	if got := strings.Join(ef.keepEnv, ","); got != "HOME,PATH" {
		t.Errorf("keep-env = %q", got)
	}
	if *format != "text" {
		t.Errorf("format = %q: ROLESENV_FORMAT must not apply", *format)
	}
	if ef.timeout.String() != "7s" {
		t.Errorf("timeout = %v: the flag must win over ROLESENV_TIMEOUT", ef.timeout)
	}
	if !fs.onCommandLine["timeout"] || fs.onCommandLine["region"] {
		t.Errorf("onCommandLine = %v, want timeout only", fs.onCommandLine)
	}
}

func TestEnvTwinErrorDoesNotQuoteValue(t *testing.T) {
	a := &app{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}, environ: []string{"ROLESENV_TIMEOUT=hunter2-not-a-duration"}}
	fs := newFlagSet("test", "")
	var ef envFlags
	ef.register(fs)
	err := fs.parse(a, nil)
	if err == nil || strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "ROLESENV_TIMEOUT") {
		t.Fatalf("error = %v, want one naming ROLESENV_TIMEOUT without its value", err)
	}
	if exitcode.Of(err) != exitcode.Usage {
		t.Errorf("exit %d, want %d", exitcode.Of(err), exitcode.Usage)
	}
}

func TestRefusedHelperFlags(t *testing.T) {
	for _, args := range [][]string{
		{"credential-process", "--no-verify-ssl"},
		{"credential-process", "--pkcs8-password", "x"},
		{"credential-process", "--tpm-key-password", "x"},
		{"credential-process", "--cert-selector", "x"},
	} {
		code, _, stderr := runCLI(t, args...)
		if code != exitcode.Usage {
			t.Errorf("%q: exit %d, want %d; stderr %q", args, code, exitcode.Usage, stderr)
		}
	}
}

// Every flag of every command is in the README, with its ROLESENV_ twin
// where it has one (hidden flags are the refused ones of the official
// helper, listed in their own table).
func TestREADMEListsEveryFlag(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	var sets []*flagSet
	onNewFlagSet = func(fs *flagSet) { sets = append(sets, fs) }
	defer func() { onNewFlagSet = nil }()
	for _, c := range commands {
		runCLI(t, c.name, "--help")
	}
	if len(sets) < len(commands)-1 {
		t.Fatalf("saw %d flag sets for %d commands", len(sets), len(commands))
	}
	for _, fs := range sets {
		fs.VisitAll(func(f *pflag.Flag) {
			if f.Name == "help" {
				return
			}
			if !strings.Contains(string(readme), "`--"+f.Name) {
				t.Errorf("rolesenv %s --%s is not in the README", fs.Name(), f.Name)
			}
			if !f.Hidden && !noTwin[f.Name] && !strings.Contains(string(readme), "`"+envTwin(f.Name)+"`") {
				t.Errorf("rolesenv %s --%s: its twin %s is not in the README", fs.Name(), f.Name, envTwin(f.Name))
			}
		})
	}
}
