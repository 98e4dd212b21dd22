package inject

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/joho/godotenv"
)

// literalEnv parses files and renders them without any fetch.
func literalEnv(t *testing.T, opts Options, files ...string) (map[string]string, error) {
	t.Helper()
	var fs []File
	for i, f := range files {
		fs = append(fs, File{Name: []string{"a.env", "b.env", "c.env"}[i], Data: []byte(f)})
	}
	tm, err := Parse(fs, opts)
	if err != nil {
		return nil, err
	}
	env, err := tm.Render(NewValues())
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, kv := range env.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		out[k] = v
	}
	return out, nil
}

func TestParseValues(t *testing.T) {
	tests := []struct {
		src  string
		want map[string]string
	}{
		{"A=1", map[string]string{"A": "1"}},
		{"A=", map[string]string{"A": ""}},
		{"A=\nB=2\n", map[string]string{"A": "", "B": "2"}},
		{"  # comment\n\n\tA = spaced value  \n", map[string]string{"A": "spaced value"}},
		{"export A=1\nexport\tB=2", map[string]string{"A": "1", "B": "2"}},
		{"export=1", map[string]string{"export": "1"}},
		{"exported=1", map[string]string{"exported": "1"}},
		{"A: yaml", map[string]string{"A": "yaml"}},
		{"A=x # comment", map[string]string{"A": "x"}},
		{"A=x#not", map[string]string{"A": "x#not"}},
		{"A= #hash", map[string]string{"A": "#hash"}},
		{"A=a # b # c", map[string]string{"A": "a"}}, // godotenv: "a # b"
		{`A="x" # comment`, map[string]string{"A": "x"}},
		{`A="x"#comment`, map[string]string{"A": "x"}},
		{`A="a\nb\rc\"d\\e\$f\tg"`, map[string]string{"A": "a\nb\rc\"d\\e$ftg"}},
		{`A="a\\"`, map[string]string{"A": `a\`}}, // godotenv: unterminated
		{`A='a\nb $X ${X} {{ sm://x }}'`, map[string]string{"A": `a\nb $X ${X} {{ sm://x }}`}},
		{`A='it\'s'`, map[string]string{"A": `it\'s`}},
		{"A=\"multi\nline\"\nB='multi\nline'", map[string]string{"A": "multi\nline", "B": "multi\nline"}},
		{"A=crlf\r\nB=\"x\r\ny\"\r\n", map[string]string{"A": "crlf", "B": "x\ny"}},
		{"\xef\xbb\xbfA=bom", map[string]string{"A": "bom"}},
		{`A=unquoted\n\$X`, map[string]string{"A": `unquoted\n$X`}},
		{"A=1\nB=$A ${A} x$A", map[string]string{"A": "1", "B": "1 1 x1"}},
		{"A=1\nB=$Ab", map[string]string{"A": "1", "B": ""}},
		{"A=$ $$ $1 $-", map[string]string{"A": "$ $$ $1 $-"}},
		{`A=1` + "\n" + `B="\$A \${A}"`, map[string]string{"A": "1", "B": "$A ${A}"}},
		{"A=007\nB=héllo", map[string]string{"A": "007", "B": "héllo"}},
		{"A=\xff\xfe raw", map[string]string{"A": "\xff\xfe raw"}},
		{"A=a\u00a0#c", map[string]string{"A": "a"}}, // NBSP is blank, as in godotenv
		{"A='lit'\nB=${A}", map[string]string{"A": "lit", "B": "lit"}},
		{"A={x} }} { y }", map[string]string{"A": "{x} }} { y }"}},
		{"A=arn:aws:iam::123456789012:role/app", map[string]string{"A": "arn:aws:iam::123456789012:role/app"}},
		{"A=arn:aws:ssm:us-east-1:123456789012:document/x", map[string]string{"A": "arn:aws:ssm:us-east-1:123456789012:document/x"}},
	}
	for _, tt := range tests {
		got, err := literalEnv(t, Options{}, tt.src)
		if err != nil {
			t.Errorf("%q: %v", tt.src, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%q:\n got %q\nwant %q", tt.src, got, tt.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ src, want string }{
		{"A=1\nA=2", "a.env:2: A: defined twice in this file (first on line 1)"},
		{"A.B=1", "a.env:1: invalid variable name at column 2: names are ASCII letters, digits and _"},
		{"A-B=1", "a.env:1: invalid variable name at column 2: names are ASCII letters, digits and _"},
		{"Ä=1", "a.env:1: invalid variable name at column 1: names are ASCII letters, digits and _"},
		{"AÄ=1", "a.env:1: invalid variable name at column 2: names are ASCII letters, digits and _"},
		{"9A=1", "a.env:1: invalid variable name: a name cannot start with a digit"},
		{"A B=1", "a.env:1: invalid variable name: a name cannot contain spaces"},
		{"=1", "a.env:1: missing variable name before '='"},
		{"\n\nsecret", "a.env:3: expected '=' after the variable name at column 7"},
		{"export A", "a.env:1: expected '=' after the variable name at column 9"},
		{"A=\"open\nB=2", "a.env:1: unterminated quoted value (the quote opened on this line is never closed)"},
		{"A='open", "a.env:1: unterminated quoted value (the quote opened on this line is never closed)"},
		{"A=\"x\"y", "a.env:1: unexpected text after the closing quote at column 6"},
		{"A=\"x\" B=y", "a.env:1: unexpected text after the closing quote at column 7"},
		{"A=x\x00y", "a.env:1: NUL byte in file"},
		{"A=${", "a.env:1: A: malformed ${...}: only ${NAME} and $NAME are expanded (write \\$ for a literal $, or single-quote the value)"},
		{"A=${x-y}", "a.env:1: A: malformed ${...}: only ${NAME} and $NAME are expanded (write \\$ for a literal $, or single-quote the value)"},
		{"A=${ROLESENV_PRIVATE_KEY_PASSPHRASE}", "a.env:1: A: ${ROLESENV_PRIVATE_KEY_PASSPHRASE} is not expanded: ROLESENV_* variables are rolesenv's own settings and never reach the command"},
		{"ROLESENV_X=1", "a.env:1: ROLESENV_X: ROLESENV_* names are reserved for rolesenv's own settings and never reach the command"},
		{"A={{ sm://x", "a.env:1: A: unterminated {{ at character 1 of the value (to write {{ literally, single-quote the value)"},
		{"A={{}}", "a.env:1: A: unknown reference scheme (want sm://, ssm://, an ARN or resolve:) inside {{ }} (to write {{ literally, single-quote the value)"},
		{"A={{ sm://x | }}", "a.env:1: A: {{ sm://x | }}: empty filter after '|'"},
		{"A={{ sm://x | b a d }}", "a.env:1: A: {{ sm://x | b a d }}: unknown filter (want urlquery, base64, base64decode, json or trim)"},
		{"A={{ sm://{{x}} }}", "a.env:1: A: {{ inside a reference"},
		{"A=sm://x y", "a.env:1: A: sm://x y: invalid character in the secret name (allowed: letters, digits and /_+=.@!-)"},
	}
	for _, tt := range tests {
		_, err := literalEnv(t, Options{}, tt.src)
		if err == nil || err.Error() != tt.want {
			t.Errorf("%q:\n got %v\nwant %s", tt.src, err, tt.want)
		}
		var es Errors
		if err != nil && !errorsAs(err, &es) {
			t.Errorf("%q: %T is not Errors", tt.src, err)
		}
	}
	// Every problem of every file is reported at once.
	_, err := literalEnv(t, Options{}, "A=1\nA=2\nB={{ sm:// }}\n", "C='open", "D=${ROLESENV_X}\nE=sm://")
	want := strings.Join([]string{
		"a.env:2: A: defined twice in this file (first on line 1)",
		"a.env:3: B: {{ sm:// }}: empty secret id",
		"b.env:1: unterminated quoted value (the quote opened on this line is never closed)",
		"c.env:1: D: ${ROLESENV_X} is not expanded: ROLESENV_* variables are rolesenv's own settings and never reach the command",
		"c.env:2: E: sm://: empty secret id",
	}, "\n")
	if err == nil || err.Error() != want {
		t.Errorf("several errors:\n got %v\nwant %s", err, want)
	}
}

// TestParseSharedGrammarSeeds compares the seed files with godotenv, so
// the differential fuzz target starts from inputs that agree.
func TestParseSharedGrammarSeeds(t *testing.T) {
	files, _ := filepath.Glob("../testdata/inject/dotenv/*.env")
	if len(files) == 0 {
		t.Fatal("no seed files")
	}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if !sharedGrammar(data) {
			t.Errorf("%s is not in the shared grammar", name)
			continue
		}
		want, err := godotenv.UnmarshalBytes(data)
		if err != nil {
			t.Fatal(err)
		}
		got, err := literalEnv(t, Options{}, string(data))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %q\nwant %q", name, got, want)
		}
	}
}

func TestExpansionScope(t *testing.T) {
	environ := []string{"HOME=/home/app", "SHARED=env", "ROLESENV_REGION=eu-west-1", "PATH=/bin"}
	got, err := literalEnv(t, Options{Environ: environ},
		"SHARED=a\nFIRST=$SHARED\n",
		"SECOND=${SHARED}\nSHARED=b\nTHIRD=$SHARED:$HOME\nPATH=/opt/bin:$PATH\n")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"HOME": "/home/app", "PATH": "/opt/bin:/bin", // inherited, PATH extended
		"SHARED": "b", // later files win
		"FIRST":  "a", // an earlier key of the same file
		"SECOND": "a", // an earlier file
		"THIRD":  "b:/home/app",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

func TestChildEnvironment(t *testing.T) {
	environ := []string{"HOME=/home/app", "PATH=/bin", "ROLESENV_PRIVATE_KEY_PASSPHRASE=x", "AWS_SECRET_ACCESS_KEY=k", "KEEP=1", "DROP=2"}
	tests := []struct {
		name string
		opts Options
		want map[string]string
	}{
		{"inherit all but ROLESENV_*", Options{Environ: environ},
			map[string]string{"HOME": "/home/app", "PATH": "/bin", "AWS_SECRET_ACCESS_KEY": "k", "KEEP": "1", "DROP": "2", "F": "/home/app"}},
		{"clean", Options{Environ: environ, CleanEnv: true}, map[string]string{"F": "/home/app"}},
		{"clean with keep", Options{Environ: environ, CleanEnv: true, KeepEnv: []string{"KEEP", "PATH", "NOT_SET"}},
			map[string]string{"KEEP": "1", "PATH": "/bin", "F": "/home/app"}},
		{"remove and set", Options{Environ: environ, Remove: []string{"AWS_SECRET_ACCESS_KEY", "F"},
			Set: []Setting{NewSetting("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:1/creds", false), NewSetting("F", "set", false)}},
			map[string]string{"HOME": "/home/app", "PATH": "/bin", "KEEP": "1", "DROP": "2", "F": "set",
				"AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://127.0.0.1:1/creds"}},
	}
	for _, tt := range tests {
		got, err := literalEnv(t, tt.opts, "F=$HOME\n")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s:\n got %q\nwant %q", tt.name, got, tt.want)
		}
	}
	if _, err := literalEnv(t, Options{KeepEnv: []string{"ROLESENV_X"}}); err == nil {
		t.Error("--keep-env ROLESENV_X accepted")
	}
}

func TestFromEnv(t *testing.T) {
	environ := []string{"DB=sm://prod/db#password", "ARN=arn:aws:ssm:us-east-1:123456789012:parameter/app/port", "INLINE=x{{ sm://a }}", "PLAIN=1"}
	tm, err := Parse([]File{{Name: "a.env", Data: []byte("URL=u:${DB}@h\n")}}, Options{Environ: environ, FromEnv: true})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range tm.Fetches() {
		got = append(got, f.String())
	}
	// Whole-value references only; the inline one stays a literal.
	want := []string{"ssm://arn:aws:ssm:us-east-1:123456789012:parameter/app/port", "sm://prod/db"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("fetches %q, want %q", got, want)
	}
	vals := NewValues()
	vals.set(tm.fetches[0], &fetched{val: "8080"})
	vals.set(tm.fetches[1], &fetched{val: `{"password":"pw"}`})
	env, err := tm.Render(vals)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"DB": "pw", "ARN": "8080", "URL": "u:pw@h", "INLINE": "x{{ sm://a }}", "PLAIN": "1"} {
		if v, _ := env.Lookup(name); v.Reveal() != want {
			t.Errorf("%s = %q, want %q", name, v.Reveal(), want)
		}
	}
	// Without --from-env they are plain values.
	tm, err = Parse(nil, Options{Environ: environ})
	if err != nil || len(tm.Fetches()) != 0 {
		t.Errorf("without FromEnv: %v, %d fetches", err, len(tm.Fetches()))
	}
	// A malformed inherited reference is an error naming the variable.
	_, err = Parse(nil, Options{Environ: []string{"BAD=sm://"}, FromEnv: true})
	if err == nil || err.Error() != "environment: BAD: sm://: empty secret id" {
		t.Errorf("malformed inherited reference: %v", err)
	}
}

// TestOnlyNeededFetches: a reference overridden by a later file is not
// fetched; one that an expansion still uses is.
func TestOnlyNeededFetches(t *testing.T) {
	tm, err := Parse([]File{
		{Name: "a.env", Data: []byte("A=sm://a\nB=sm://b\nC=sm://c\nUSE=$C\n")},
		{Name: "b.env", Data: []byte("A=literal\nB=sm://b2\nC=x\n")},
	}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range tm.Fetches() {
		got = append(got, f.ID)
	}
	if want := []string{"b2", "c"}; !reflect.DeepEqual(got, want) {
		t.Errorf("fetches %q, want %q", got, want)
	}
	if tm.References() != 2 {
		t.Errorf("%d references, want 2", tm.References())
	}
}

func TestWarnings(t *testing.T) {
	tm, err := Parse([]File{{Name: "a.env", Data: []byte("A=pa$word\n")}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	w := tm.Warnings()
	if len(w) != 1 || !strings.HasPrefix(w[0], "a.env:1: A: a $ expansion names a variable that is not set") || strings.Contains(w[0], "word") {
		t.Errorf("warnings %q", w)
	}
}

func errorsAs(err error, target any) bool { return errors.As(err, target) }

// TestQuoteDotenv: each value takes the simplest form that reads back as
// itself, and whether a value would be a reference is the parser's call.
func TestQuoteDotenv(t *testing.T) {
	for v, want := range map[string]string{
		"plain-1.2_x/y@z%+,=:":  "plain-1.2_x/y@z%+,=:",
		"arn:aws:iam::1:role/x": "arn:aws:iam::1:role/x", // an ARN the parser takes literally
		"sm:x":                  "sm:x",
		"sm://x":                "'sm://x'",
		"ssm:///p#k":            "'ssm:///p#k'",
		"arn:aws:secretsmanager:us-east-1:1:secret:rds!db-x": "'arn:aws:secretsmanager:us-east-1:1:secret:rds!db-x'",
		"":                              "''",
		"a b":                           "'a b'",
		"${HOME} {{ sm://x }}":          "'${HOME} {{ sm://x }}'",
		"it's":                          `"it's"`,
		`ends\`:                         `"ends\\"`,
		"sm://it's":                     `"\sm://it's"`,
		"arn:aws:ssm:r:1:parameter/p\r": `"\arn:aws:ssm:r:1:parameter/p\r"`,
		"a'$x{{y}}\"\n":                 `"a'\$x\{\{y}}\"\n"`,
	} {
		if got := QuoteDotenv(v); got != want {
			t.Errorf("QuoteDotenv(%q) = %s, want %s", v, got, want)
		}
		checkQuoteDotenv(t, v)
	}
}
