package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rolesenv/rolesenv/inject"
	"github.com/rolesenv/rolesenv/internal/awsdev"
	"github.com/rolesenv/rolesenv/internal/testenv"

	"github.com/rolesenv/rolesenv/internal/exitcode"
)

// sentinel marks every secret value of the render tests: it must never
// reach stdout or stderr unless --reveal asks for it.
const sentinel = "SNTL"

// renderEnv points this process's AWS settings at the emulator with a
// user of policy p, and makes the test's working directory a temporary
// one (env files are written there, so errors name them briefly).
func renderEnv(t *testing.T, p awsdev.Policy) *awsdev.Server {
	t.Helper()
	testenv.IsolateAWS(t)
	s, err := awsdev.Start(awsdev.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	dir := t.TempDir()
	t.Chdir(dir)
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, s.CAPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	id, secret := s.CreateUser("app", p)
	t.Setenv("AWS_ENDPOINT_URL", s.URL())
	t.Setenv("AWS_CA_BUNDLE", ca)
	t.Setenv("AWS_ACCESS_KEY_ID", id)
	t.Setenv("AWS_SECRET_ACCESS_KEY", secret)
	return s
}

// runIn runs the CLI in-process with stdin.
func runIn(stdin string, args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

func mustDo[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// renderCase is one template and its exact outcome.
type renderCase struct {
	name string
	file string // contents of t.env
	args []string
	code int
	// stdout is render's exact output (dotenv, masked) when it succeeds;
	// reveal the values that --reveal --format json shows.
	stdout string
	reveal map[string]string
	// errs are the exact error lines on stderr, without "rolesenv: error: ".
	errs []string
}

// TestRenderTable runs every edge and bad input through the CLI, with
// secret values that carry a sentinel, at --log-level debug: each gives
// its exact outcome, and no sentinel reaches stdout or stderr.
func TestRenderTable(t *testing.T) {
	s := renderEnv(t, awsdev.Policy{Allow: []awsdev.Rule{
		{Actions: []string{"secretsmanager:*"}, Resources: []string{"arn:aws:secretsmanager:*:*:secret:t/*"}},
		{Actions: []string{"ssm:*"}, Resources: []string{"*"}},
	}})
	db := `{"username":"app","password":"SNTL-pw $&+/","port":5432,"nested":{"a":[1,{"b":"SNTL-deep"}]},"/slash":"SNTL-slash","n":null}`
	dbARN := mustDo[string](t)(s.CreateSecret("t/db", db))
	mustDo[string](t)(s.CreateSecret("t/plain", "SNTL-plain"))
	mustDo[string](t)(s.CreateSecret("t/notjson", "SNTL-not-json{"))
	bin := []byte("\x01SNTL-bin\xff")
	mustDo[string](t)(s.CreateBinarySecret("t/bin", bin))
	mustDo[string](t)(s.CreateSecret("t/nul", base64.StdEncoding.EncodeToString([]byte("SNTL\x00nul"))))
	big := strings.Repeat("SNTL-64k-", 64<<10/9+1)[:64<<10]
	mustDo[string](t)(s.CreateSecret("t/big", big))
	pem := "-----BEGIN PRIVATE KEY-----\nSNTL+pem/line1\nSNTL+pem/line2\n-----END PRIVATE KEY-----\n"
	mustDo[string](t)(s.CreateSecret("t/pem", pem))
	mustDo[string](t)(s.CreateSecret("t/rot", "SNTL-old"))
	mustDo[string](t)(s.PutSecretValue("t/rot", "SNTL-new"))
	mustDo[string](t)(s.CreateSecret("t/deleted", "SNTL-deleted"))
	if err := s.DeleteSecret("t/deleted"); err != nil {
		t.Fatal(err)
	}
	deniedARN := mustDo[string](t)(s.CreateSecret("x/denied", "SNTL-denied"))
	mustDo[int64](t)(s.PutParameter("/t/port", "String", "8080"))
	mustDo[int64](t)(s.PutParameter("/t/port", "String", "9090"))
	if err := s.LabelParameterVersion("/t/port", 1, "prod"); err != nil {
		t.Fatal(err)
	}
	mustDo[int64](t)(s.PutParameter("/t/secure", "SecureString", "SNTL-secure"))
	mustDo[int64](t)(s.PutParameter("/t/json", "String", `{"k":"SNTL-k"}`))

	perString := 32 * os.Getpagesize()
	cases := []renderCase{
		// What resolves.
		{name: "whole value with a JSON key", file: "PW=sm://t/db#password\n",
			stdout: "PW=********\n", reveal: map[string]string{"PW": "SNTL-pw $&+/"}},
		{name: "JSON Pointer", file: "DEEP=sm://t/db#/nested/a/1/b\nSLASH=sm://t/db#/~1slash\n",
			stdout: "DEEP=********\nSLASH=********\n", reveal: map[string]string{"DEEP": "SNTL-deep", "SLASH": "SNTL-slash"}},
		{name: "non-string JSON values", file: "PORT=sm://t/db#port\nNESTED=sm://t/db#nested\nN=sm://t/db#n\n",
			stdout: "N=********\nNESTED=********\nPORT=********\n",
			reveal: map[string]string{"PORT": "5432", "NESTED": `{"a":[1,{"b":"SNTL-deep"}]}`, "N": "null"}},
		{name: "inline references with filters",
			file:   "URL=postgres://{{ sm://t/db#username }}:{{ sm://t/db#password | urlquery }}@db:5432/app\n",
			stdout: "URL=********\n", reveal: map[string]string{"URL": "postgres://app:SNTL-pw%20%24%26%2B%2F@db:5432/app"}},
		{name: "SecretBinary is base64", file: "BIN=sm://t/bin\n",
			stdout: "BIN=********\n", reveal: map[string]string{"BIN": base64.StdEncoding.EncodeToString(bin)}},
		{name: "ECS ARN with a key", file: "ECS=" + dbARN + ":password::\n",
			stdout: "ECS=********\n", reveal: map[string]string{"ECS": "SNTL-pw $&+/"}},
		{name: "CloudFormation form", file: "CFN={{resolve:secretsmanager:t/db:SecretString:username}}\n",
			stdout: "CFN=********\n", reveal: map[string]string{"CFN": "app"}},
		{name: "parameters: latest, version, label, SecureString, JSON key",
			file:   "P=ssm:///t/port\nV={{ssm:///t/port?version=1}}\nL=ssm:///t/port?label=prod\nS=ssm:///t/secure\nK=ssm:///t/json#k\n",
			stdout: "K=********\nL=********\nP=********\nS=********\nV=********\n",
			reveal: map[string]string{"P": "9090", "V": "8080", "L": "8080", "S": "SNTL-secure", "K": "SNTL-k"}},
		{name: "Parameter Store bridge", file: "BR=ssm:///aws/reference/secretsmanager/t/plain\n",
			stdout: "BR=********\n", reveal: map[string]string{"BR": "SNTL-plain"}},
		{name: "pinned stage", file: "PREV=sm://t/rot?stage=AWSPREVIOUS\nCUR=sm://t/rot\n",
			stdout: "CUR=********\nPREV=********\n", reveal: map[string]string{"PREV": "SNTL-old", "CUR": "SNTL-new"}},
		{name: "single-quoted ARN is a literal", file: "ARN='" + dbARN + "'\n",
			stdout: "ARN='" + dbARN + "'\n", reveal: map[string]string{"ARN": dbARN}},
		{name: "single-quoted braces are literal", file: "TPL='{{ sm://t/db }} ${HOME}'\n",
			stdout: "TPL='{{ sm://t/db }} ${HOME}'\n", reveal: map[string]string{"TPL": "{{ sm://t/db }} ${HOME}"}},
		{name: "a 64 KiB value", file: "BIG=sm://t/big\n",
			stdout: "BIG=********\n", reveal: map[string]string{"BIG": big}},
		{name: "multi-line PEM secret", file: "PEM=sm://t/pem\n",
			stdout: "PEM=********\n", reveal: map[string]string{"PEM": pem}},
		{name: "multi-line PEM literal", file: "CERT=\"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\"\n",
			stdout: "CERT='-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----'\n",
			reveal: map[string]string{"CERT": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"}},
		{name: "expansion of a secret variable", file: "A=sm://t/plain\nB=${A}-x-$A\nC=lit\n",
			stdout: "A=********\nB=********\nC=lit\n", reveal: map[string]string{"A": "SNTL-plain", "B": "SNTL-plain-x-SNTL-plain", "C": "lit"}},
		{name: "leading zeros and non-ASCII literals", file: "Z=007\nU=héllo wörld\n",
			stdout: "U='héllo wörld'\nZ=007\n", reveal: map[string]string{"Z": "007", "U": "héllo wörld"}},

		// What fails, and how.
		{name: "empty reference", file: "X=sm://\n", code: exitcode.Config,
			errs: []string{"t.env:1: X: sm://: empty secret id"}},
		{name: "unknown scheme inside braces", file: "X=a{{ vault://SNTL }}b\n", code: exitcode.Config,
			errs: []string{"t.env:1: X: unknown reference scheme (want sm://, ssm://, an ARN or resolve:) inside {{ }} (to write {{ literally, single-quote the value)"}},
		{name: "unknown filter", file: "X={{ sm://t/plain | upper }}\n", code: exitcode.Config,
			errs: []string{`t.env:1: X: {{ sm://t/plain | upper }}: unknown filter "upper" (want urlquery, base64, base64decode, json or trim)`}},
		{name: "unknown dynamic reference service", file: "X={{resolve:ssm-param:x}}\n", code: exitcode.Config,
			errs: []string{"t.env:1: X: {{resolve:ssm-param:x}}: unknown dynamic reference service (want secretsmanager, ssm or ssm-secure)"}},
		{name: "missing JSON key", file: "X=sm://t/db#nope\n", code: exitcode.Config,
			errs: []string{`t.env:1: X: sm://t/db#nope: JSON key "nope" not found`}},
		{name: "key on a non-JSON value", file: "X=sm://t/notjson#k\n", code: exitcode.Config,
			errs: []string{`t.env:1: X: sm://t/notjson#k: the value is not a JSON object, so it has no key "k"`}},
		{name: "key on a binary secret", file: "X=sm://t/bin#k\n", code: exitcode.Config,
			errs: []string{"t.env:1: X: sm://t/bin#k: the secret is binary (SecretBinary), so it has no JSON key"}},
		{name: "stage and version both pinned", file: "X=sm://t/db?stage=AWSPREVIOUS&version=abc\n", code: exitcode.Config,
			errs: []string{"t.env:1: X: sm://t/db?stage=AWSPREVIOUS&version=abc: both a stage and a version id are pinned; give one"}},
		{name: "ECS ARN with stage and version", file: "X=" + dbARN + ":password:AWSPREVIOUS:abc\n", code: exitcode.Config,
			errs: []string{"t.env:1: X: " + dbARN + ":password:AWSPREVIOUS:abc: both a stage and a version id are pinned; give one"}},
		{name: "parameter version and label", file: "X=ssm:///t/port?version=1&label=prod\n", code: exitcode.Config,
			errs: []string{"t.env:1: X: ssm:///t/port?version=1&label=prod: both a version and a label are pinned; give one"}},
		{name: "deleted secret", file: "X=sm://t/deleted\n", code: exitcode.Config,
			errs: []string{"t.env:1: X: sm://t/deleted: secretsmanager:GetSecretValue on t/deleted: ResourceNotFoundException: Secrets Manager can't find the specified secret."}},
		{name: "access denied", file: "X=sm://x/denied\n", code: exitcode.NoPerm,
			errs: []string{"t.env:1: X: sm://x/denied: access denied: secretsmanager:GetSecretValue on x/denied: AccessDeniedException: User: arn:aws:iam::123456789012:user/app is not authorized to perform: secretsmanager:GetSecretValue on resource: " + deniedARN + " because no identity-based policy allows the secretsmanager:GetSecretValue action"}},
		{name: "missing parameter", file: "X=ssm:///t/missing\n", code: exitcode.Config,
			errs: []string{"t.env:1: X: ssm:///t/missing: ssm:GetParameters on /t/missing: ParameterNotFound: no such parameter, version or label"}},
		{name: "binary value that decodes to NUL", file: "X={{ sm://t/nul | base64decode }}\n", code: exitcode.Config,
			errs: []string{"t.env:1: X: {{ sm://t/nul | base64decode }}: the value contains a NUL byte, which an environment variable cannot hold"}},
		{name: "base64decode of something else", file: "X={{ sm://t/plain | base64decode }}\n", code: exitcode.Config,
			errs: []string{"t.env:1: X: {{ sm://t/plain | base64decode }}: base64decode: the value is not valid base64"}},
		{name: "unterminated {{", file: "X=SNTL-literal{{ sm://t/plain\n", code: exitcode.Config,
			errs: []string{"t.env:1: X: unterminated {{ at character 13 of the value (to write {{ literally, single-quote the value)"}},
		{name: "duplicate key", file: "X=SNTL-a\nY=1\nX=SNTL-b\n", code: exitcode.Config,
			errs: []string{"t.env:3: X: defined twice in this file (first on line 1)"}},
		{name: "invalid name", file: "OK=1\nSNTL.NAME=1\n", code: exitcode.Config,
			errs: []string{"t.env:2: invalid variable name at column 5: names are ASCII letters, digits and _"}},
		{name: "name starting with a digit", file: "1SNTL=1\n", code: exitcode.Config,
			errs: []string{"t.env:1: invalid variable name: a name cannot start with a digit"}},
		{name: "line without =", file: "SNTL\n", code: exitcode.Config,
			errs: []string{"t.env:1: expected '=' after the variable name at column 5"}},
		{name: "unterminated quote", file: "A=1\nX=\"SNTL-open\nB=2\n", code: exitcode.Config,
			errs: []string{"t.env:2: unterminated quoted value (the quote opened on this line is never closed)"}},
		{name: "text after the closing quote", file: "X=\"a\" SNTL\n", code: exitcode.Config,
			errs: []string{"t.env:1: unexpected text after the closing quote at column 7"}},
		{name: "NUL byte in the file", file: "A=1\nX=a\x00SNTL\n", code: exitcode.Config,
			errs: []string{"t.env:2: NUL byte in file"}},
		{name: "malformed ${", file: "X=${SNTL\n", code: exitcode.Config,
			errs: []string{"t.env:1: X: malformed ${...}: only ${NAME} and $NAME are expanded (write \\$ for a literal $, or single-quote the value)"}},
		{name: "ROLESENV_ name in a file", file: "ROLESENV_REGION=x\n", code: exitcode.Config,
			errs: []string{"t.env:1: ROLESENV_REGION: ROLESENV_* names are reserved for rolesenv's own settings and never reach the command"}},
		{name: "reference built from a secret", file: "A=sm://t/plain\nB={{ sm://${A} }}\n", code: exitcode.Config,
			errs: []string{"t.env:2: B: ${A} inside a reference depends on a secret; a reference is never built from a secret value"}},
		{name: "environment over the size limit", file: "X={{ sm://t/big }}{{ sm://t/big }}{{ sm://t/big }}\n", code: exitcode.Config,
			errs: []string{fmt.Sprintf("the command's environment has variables over the system's limit of %d bytes for one variable: X (%d bytes)", perString, 3*len(big)+3)}},
		{name: "every broken reference in one run; 78 before 77",
			file: "A=sm://x/denied\nB=sm://t/db#nope\nC=ssm:///t/missing\nD=sm://t/plain\n", code: exitcode.Config,
			errs: []string{
				"t.env:1: A: sm://x/denied: access denied: secretsmanager:GetSecretValue on x/denied: AccessDeniedException: User: arn:aws:iam::123456789012:user/app is not authorized to perform: secretsmanager:GetSecretValue on resource: " + deniedARN + " because no identity-based policy allows the secretsmanager:GetSecretValue action",
				`t.env:2: B: sm://t/db#nope: JSON key "nope" not found`,
				"t.env:3: C: ssm:///t/missing: ssm:GetParameters on /t/missing: ParameterNotFound: no such parameter, version or label",
			}},
		{name: "bad format", file: "A=1\n", args: []string{"--format", "yaml"}, code: exitcode.Usage,
			errs: []string{`invalid --format "yaml" (want dotenv, shell or json)`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile("t.env", []byte(tc.file), 0o600); err != nil {
				t.Fatal(err)
			}
			args := append([]string{"render", "--env-file", "t.env", "--clean-env", "--log-level", "debug"}, tc.args...)
			code, stdout, stderr := runIn("", args...)
			for _, out := range []string{stdout, stderr} {
				if strings.Contains(out, sentinel) {
					t.Fatalf("a sentinel value leaked:\nstdout: %s\nstderr: %s", stdout, stderr)
				}
			}
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstderr: %s", code, tc.code, stderr)
			}
			var got []string
			for _, line := range strings.Split(stderr, "\n") {
				if msg, ok := strings.CutPrefix(line, "rolesenv: error: "); ok {
					got = append(got, msg)
				}
			}
			if strings.Join(got, "\n") != strings.Join(tc.errs, "\n") {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.errs, "\n"))
			}
			if code != 0 {
				return
			}
			if stdout != tc.stdout {
				t.Errorf("stdout:\n%s\nwant:\n%s", stdout, tc.stdout)
			}
			code, stdout, stderr = runIn("", append(args, "--reveal", "--format", "json")...)
			if code != 0 {
				t.Fatalf("--reveal: exit %d: %s", code, stderr)
			}
			var vals map[string]string
			if err := json.Unmarshal([]byte(stdout), &vals); err != nil {
				t.Fatal(err)
			}
			if len(vals) != len(tc.reveal) {
				t.Errorf("--reveal: %d variables, want %d", len(vals), len(tc.reveal))
			}
			for k, want := range tc.reveal {
				if vals[k] != want {
					t.Errorf("--reveal: %s = %q, want %q", k, vals[k], want)
				}
			}
		})
	}
}

// roundTripValues are values that quoting gets wrong easily.
func roundTripValues() []string {
	vals := []string{
		"", " ", "a b", "'", `"`, "''", `\`, `\\`, `ends with \`, `\'`, `\"`, "$HOME", "${HOME}", "$(id)", "`id`",
		"$", "$$", "pa$$word", "{{ sm://x }}", "{{", "}}", "sm://x", "ssm:///y", "arn:aws:secretsmanager:us-east-1:123456789012:secret:x",
		"#hash", " # c", "a #b", "line1\nline2", "\n", "x\n", "\r\n", "\r", "a\rb", "007", "0x10", "héllo wörld", "日本語",
		"tab\there", `\n`, `'"mixed"'`, "a=b", "!", "*", "~", ";", "&&", "\x7f", "\x01", "\xff\xfe", " x", "x  ",
		"-----BEGIN CERTIFICATE-----\nMIIB+/=\n-----END CERTIFICATE-----\n", `C:\path\`, "it's \"quoted\" $x {{y}}",
	}
	rng := rand.New(rand.NewPCG(1, 2))
	const alphabet = "ab $'\"\\{}#\n\r\t=:/é\xff!`"
	for range 300 {
		b := make([]byte, rng.IntN(12))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		vals = append(vals, string(b))
	}
	return vals
}

// TestQuoteDotenvRoundTrip: render's dotenv output reads back unchanged
// through rolesenv's own env-file parser.
func TestQuoteDotenvRoundTrip(t *testing.T) {
	for _, v := range roundTripValues() {
		src := "V=" + inject.QuoteDotenv(v) + "\n"
		tm, err := inject.Parse([]inject.File{{Name: "q.env", Data: []byte(src)}}, inject.Options{CleanEnv: true})
		if err != nil {
			t.Errorf("%q quoted as %q: %v", v, src, err)
			continue
		}
		env, err := tm.Render(inject.NewValues())
		if err != nil {
			t.Fatal(err)
		}
		got, _ := env.Lookup("V")
		if got.Reveal() != v {
			t.Errorf("%q quoted as %q reads back as %q", v, src, got.Reveal())
		}
	}
}

// TestQuoteShellRoundTrip: render's shell output, sourced by sh, sets the
// same values.
func TestQuoteShellRoundTrip(t *testing.T) {
	sh := testenv.RequireTool(t, "sh")
	vals := roundTripValues()
	var script strings.Builder
	var names []string
	for i, v := range vals {
		fmt.Fprintf(&script, "export V%d=%s\n", i, quoteShell(v))
		names = append(names, fmt.Sprintf(`"$V%d"`, i))
	}
	path := filepath.Join(t.TempDir(), "env.sh")
	if err := os.WriteFile(path, []byte(script.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	// Each value between two markers, so none can hide in a separator.
	cmd := exec.Command(sh, "-c", `. "$1"; for v in `+strings.Join(names, " ")+`; do printf '<%s>' "$v"; done`, "sh", path)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	for _, v := range vals {
		want.WriteString("<" + v + ">")
	}
	if string(out) != want.String() {
		t.Errorf("sh read back other values:\n%q\nwant\n%q", out, want.String())
	}
}

// TestRenderRoundTrip renders secrets with awkward values with --reveal
// in the dotenv and shell formats; rolesenv reads the first back and sh
// the second, unchanged.
func TestRenderRoundTrip(t *testing.T) {
	s := renderEnv(t, awsdev.AllowAll)
	vals := roundTripValues()[:60]
	var file strings.Builder
	want := map[string]string{}
	for i, v := range vals {
		if !utf8Valid(v) || v == "" {
			continue // a SecretString is UTF-8 and not empty
		}
		name := fmt.Sprintf("rt/v%02d", i)
		mustDo[string](t)(s.CreateSecret(name, v))
		fmt.Fprintf(&file, "V%02d=sm://%s\n", i, name)
		want[fmt.Sprintf("V%02d", i)] = v
	}
	if err := os.WriteFile("t.env", []byte(file.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	code, dotenv, stderr := runIn("", "render", "--env-file", "t.env", "--clean-env", "--reveal")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	// rolesenv reads its own output back, from stdin.
	code, out, stderr := runIn(dotenv, "render", "--env-file", "-", "--clean-env", "--format", "json")
	if code != 0 {
		t.Fatalf("reading the dotenv output back: exit %d: %s", code, stderr)
	}
	var got map[string]string
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("dotenv: %s = %q, want %q", k, got[k], v)
		}
	}
	code, shell, stderr := runIn("", "render", "--env-file", "t.env", "--clean-env", "--reveal", "--format", "shell")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	sh := testenv.RequireTool(t, "sh")
	for k, v := range want {
		cmd := exec.Command(sh, "-c", `eval "$1"; eval "printf '%s' \"\$$2\""`, "sh", shell, k)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
		out, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		if string(out) != v {
			t.Errorf("shell: %s = %q, want %q", k, out, v)
		}
	}
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

// TestRenderLeastPrivilege: credentials allowed to read one of two
// referenced secrets fail with exit 77 and an error naming the denied
// reference, the action and the resource; the allowed one is not
// reported.
func TestRenderLeastPrivilege(t *testing.T) {
	s := renderEnv(t, awsdev.Policy{Allow: []awsdev.Rule{
		{Actions: []string{"secretsmanager:GetSecretValue"}, Resources: []string{"arn:aws:secretsmanager:*:*:secret:lp/allowed-*"}},
	}})
	mustDo[string](t)(s.CreateSecret("lp/allowed", "SNTL-allowed"))
	denied := mustDo[string](t)(s.CreateSecret("lp/denied", `{"key":"SNTL-denied"}`))
	if err := os.WriteFile("t.env", []byte("A=sm://lp/allowed\nB=sm://lp/denied#key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runIn("", "render", "--env-file", "t.env", "--clean-env", "--log-level", "warn")
	if code != exitcode.NoPerm {
		t.Fatalf("exit %d, want %d: %s", code, exitcode.NoPerm, stderr)
	}
	want := "rolesenv: error: t.env:2: B: sm://lp/denied#key: access denied: secretsmanager:GetSecretValue on lp/denied: AccessDeniedException: " +
		"User: arn:aws:iam::123456789012:user/app is not authorized to perform: secretsmanager:GetSecretValue on resource: " + denied +
		" because no identity-based policy allows the secretsmanager:GetSecretValue action\n"
	if stderr != want || stdout != "" {
		t.Errorf("stdout %q\nstderr %q\nwant   %q", stdout, stderr, want)
	}
}

// TestRenderLeastPrivilegeMoto runs against moto with IAM enforcement (it
// checks actions, not resources), users and policies made with the aws
// CLI: without secretsmanager:BatchGetSecretValue everything still
// resolves, through GetSecretValue; without secretsmanager:GetSecretValue
// (and without the batch action) render exits 77.
func TestRenderLeastPrivilegeMoto(t *testing.T) {
	testenv.RequireTool(t, "aws")
	testenv.IsolateAWS(t)
	const secrets = 12 // more than one parallel round: the batch is tried first
	policy := func(actions ...string) string {
		b, _ := json.Marshal(map[string]any{"Version": "2012-10-17", "Statement": []any{
			map[string]any{"Effect": "Allow", "Action": actions, "Resource": "*"}}})
		return string(b)
	}
	var noBatch, noGet string
	var setup []awsCall
	for i := range secrets {
		setup = append(setup, awsCall{args: []string{"secretsmanager", "create-secret", "--name", fmt.Sprintf("lp/s%02d", i), "--secret-string", fmt.Sprintf("SNTL-%02d", i)}})
	}
	setup = append(setup, motoUser("nobatch", policy("secretsmanager:GetSecretValue"), &noBatch)...)
	setup = append(setup, motoUser("noget", policy("secretsmanager:DescribeSecret", "secretsmanager:ListSecrets"), &noGet)...)
	// Every call of the setup is allowed; everything after is checked.
	m := startMotoWith(t, setup)
	var file strings.Builder
	for i := range secrets {
		fmt.Fprintf(&file, "S%02d=sm://lp/s%02d\n", i, i)
	}
	dir := t.TempDir()
	t.Chdir(dir)
	if err := os.WriteFile("t.env", []byte(file.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_ENDPOINT_URL", m.URL)
	use := func(keys string) {
		id, secret, _ := strings.Cut(keys, "\t")
		t.Setenv("AWS_ACCESS_KEY_ID", id)
		t.Setenv("AWS_SECRET_ACCESS_KEY", secret)
	}

	use(noBatch)
	code, stdout, stderr := runIn("", "render", "--env-file", "t.env", "--clean-env", "--log-level", "debug", "--reveal", "--format", "json")
	if code != 0 {
		t.Fatalf("without BatchGetSecretValue: exit %d: %s", code, stderr)
	}
	var got map[string]string
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatal(err)
	}
	for i := range secrets {
		if k, want := fmt.Sprintf("S%02d", i), fmt.Sprintf("SNTL-%02d", i); got[k] != want {
			t.Errorf("%s = %q, want %q", k, got[k], want)
		}
	}
	if !strings.Contains(stderr, "BatchGetSecretValue is not allowed") {
		t.Errorf("the fallback was not logged: %s", stderr)
	}

	use(noGet)
	code, stdout, stderr = runIn("", "render", "--env-file", "t.env", "--clean-env", "--log-level", "debug")
	if code != exitcode.NoPerm {
		t.Fatalf("without GetSecretValue: exit %d, want %d: %s", code, exitcode.NoPerm, stderr)
	}
	if strings.Contains(stdout+stderr, sentinel) {
		t.Fatalf("a sentinel value leaked: %s %s", stdout, stderr)
	}
	want := "rolesenv: error: t.env:1: S00: sm://lp/s00: access denied: secretsmanager:GetSecretValue on lp/s00: "
	if !strings.Contains(stderr, want) {
		t.Errorf("stderr does not name the denied reference, action and resource:\n%s", stderr)
	}
	if n := strings.Count(stderr, "rolesenv: error: "); n != secrets {
		t.Errorf("%d errors, want one per reference (%d):\n%s", n, secrets, stderr)
	}
}

// TestRenderUnavailable: AWS failing after retries is exit 69, and so is
// the start-up deadline.
func TestRenderUnavailable(t *testing.T) {
	s := renderEnv(t, awsdev.AllowAll)
	mustDo[string](t)(s.CreateSecret("u/a", "SNTL-a"))
	if err := os.WriteFile("t.env", []byte("A=sm://u/a\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.SetErrorRate("secretsmanager:GetSecretValue", 1, awsdev.FaultUnavailable)
	code, _, stderr := runIn("", "render", "--env-file", "t.env", "--clean-env", "--log-level", "warn")
	if code != exitcode.Unavailable || !strings.Contains(stderr, "rolesenv: error: t.env:1: A: sm://u/a: AWS unavailable: secretsmanager:GetSecretValue on u/a: ServiceUnavailable") {
		t.Errorf("503s: exit %d: %s", code, stderr)
	}
	if n := s.Calls("secretsmanager:GetSecretValue"); n < 2 {
		t.Errorf("%d calls: no retry", n)
	}
	s.SetErrorRate("secretsmanager:GetSecretValue", 0, awsdev.FaultUnavailable)
	s.SetLatency(time.Minute)
	defer s.SetLatency(0)
	code, _, stderr = runIn("", "render", "--env-file", "t.env", "--clean-env", "--log-level", "warn", "--timeout", "200ms")
	if code != exitcode.Unavailable || !strings.Contains(stderr, "rolesenv: error: t.env:1: A: sm://u/a: AWS unavailable: secretsmanager:GetSecretValue on u/a: the start-up deadline passed before AWS answered") {
		t.Errorf("deadline: exit %d: %s", code, stderr)
	}
}

// TestRenderWithoutAWS: a template without references renders without
// any AWS configuration (a broken one is not even read); the inherited
// environment comes without ROLESENV_* variables and with inherited
// credentials masked; files come from stdin and ROLESENV_ENV_FILE.
func TestRenderWithoutAWS(t *testing.T) {
	testenv.IsolateAWS(t)
	dir := t.TempDir()
	t.Chdir(dir)
	broken := filepath.Join(dir, "config")
	if err := os.WriteFile(broken, []byte("[profile\ngarbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_CONFIG_FILE", broken)
	t.Setenv("AWS_PROFILE", "missing")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "SNTL-inherited")
	t.Setenv("ROLESENV_PRIVATE_KEY_PASSPHRASE", "SNTL-passphrase")
	t.Setenv("RTEST_INHERITED", "inherited")
	for name, data := range map[string]string{"a.env": "A=1\nB=$RTEST_INHERITED\n", "b.env": "A=2\nC=${A}\n"} {
		if err := os.WriteFile(name, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("ROLESENV_ENV_FILE", "a.env:b.env")
	code, stdout, stderr := runIn("D=stdin\n", "render", "--env-file", "a.env", "--env-file", "b.env", "--env-file", "-")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"\nA=2\n", "\nB=inherited\n", "\nC=2\n", "\nD=stdin\n", "\nRTEST_INHERITED=inherited\n", "\nAWS_SECRET_ACCESS_KEY=********\n"} {
		if !strings.Contains("\n"+stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout+stderr, sentinel) || strings.Contains(stdout, "ROLESENV_") {
		t.Errorf("leaked:\n%s\n%s", stdout, stderr)
	}
	// The twin alone.
	code, stdout, stderr = runIn("", "render", "--clean-env", "--format", "json")
	if code != 0 || stdout != "{\n  \"A\": \"2\",\n  \"B\": \"inherited\",\n  \"C\": \"2\"\n}\n" {
		t.Errorf("ROLESENV_ENV_FILE: exit %d: %s %s", code, stdout, stderr)
	}
	// Help.
	code, stdout, _ = runIn("", "render", "--help")
	if code != 0 || !strings.Contains(stdout, "Usage: rolesenv render") || !strings.Contains(stdout, "Examples:") {
		t.Errorf("help: %d %s", code, stdout)
	}
	code, _, stderr = runIn("", "render", "--env-file", "missing.env")
	if code != exitcode.Config || !strings.Contains(stderr, "rolesenv: error: missing.env: no such file or directory") {
		t.Errorf("missing file: %d %s", code, stderr)
	}
	code, _, stderr = runIn("", "render", "extra")
	if code != exitcode.Usage || !strings.Contains(stderr, "render takes no arguments") {
		t.Errorf("extra argument: %d %s", code, stderr)
	}
}
