package inject

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/joho/godotenv"
)

// maxFuzzInput bounds fuzz inputs: the grammar has no construct whose bugs
// need more.
const maxFuzzInput = 4 << 10

func envSeeds(f *testing.F) {
	files, _ := filepath.Glob("../testdata/inject/dotenv/*.env")
	more, _ := filepath.Glob("../testdata/inject/*.env")
	for _, name := range append(files, more...) {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		"A=1\nB=$A\nC=${A}x\n",
		"A=\"x\\ny\"\n",
		"A='it''s'\n",
		"export A=1 # c\n",
		"A=\"unterminated\n",
		"A=1\nA=2\n",
		"A B=1\n",
		"A.B=1\n",
		"A=\"x\" y\n",
		"A=$\nB=$$\nC=a$-b\n",
		// Values for QuoteDotenv's round trip.
		"sm://x", "ssm:///p", "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!db-x", "it's", `ends\`, "a\rb",
		"${HOME}", "$x", "{{ sm://x }}", " # c", "\"q\" $", "\\sm://x", "rds!db-x",
	} {
		f.Add([]byte(s))
	}
}

// FuzzEnvFile checks the env-file parser: it never panics, and on the
// grammar it shares with godotenv (the reference) it agrees with it:
// whatever rolesenv accepts, godotenv accepts with the same variables and
// values; whatever godotenv accepts with valid names only, rolesenv
// accepts too, or refuses for one of its deliberate reasons. Taken as a
// value, the input quoted by QuoteDotenv reads back as itself.
func FuzzEnvFile(f *testing.F) {
	envSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > maxFuzzInput {
			return
		}
		checkQuoteDotenv(t, string(data))
		tm, err := Parse([]File{{Name: "f.env", Data: data}}, Options{CleanEnv: true})
		if !sharedGrammar(data) {
			return
		}
		want, gerr := godotenv.UnmarshalBytes(data)
		if err == nil {
			if gerr != nil {
				t.Fatalf("rolesenv accepts what godotenv refuses (%v):\n%q", gerr, data)
			}
			if len(tm.Fetches()) != 0 {
				t.Fatalf("references found outside the shared grammar: %q", data)
			}
			env, err := tm.Render(NewValues())
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, kv := range env.Environ() {
				k, v, _ := strings.Cut(kv, "=")
				got[k] = v
			}
			if len(got) != len(want) {
				t.Fatalf("%d variables, godotenv %d:\n%q\ngot  %q\nwant %q", len(got), len(want), data, got, want)
			}
			for k, v := range want {
				if got[k] != v {
					t.Fatalf("%s = %q, godotenv %q:\n%q", k, got[k], v, data)
				}
			}
			return
		}
		if gerr != nil {
			return
		}
		for k := range want {
			if !ValidName(k) {
				return
			}
		}
		msg := err.Error()
		for _, ok := range []string{"defined twice", "after the closing quote", "not set", "cannot contain spaces", "expected '='", "expected a variable name"} {
			if strings.Contains(msg, ok) {
				return
			}
		}
		t.Fatalf("rolesenv refuses what godotenv accepts (%v):\n%q", err, data)
	})
}

// sharedGrammar reports input that uses only the part of the grammar
// where rolesenv means to behave exactly as godotenv. The package
// documentation lists the deliberate differences this excludes.
func sharedGrammar(data []byte) bool {
	if !utf8.Valid(data) || bytes.HasPrefix(data, []byte("\xef\xbb\xbf")) {
		return false
	}
	for _, s := range []string{"{{", "sm://", "ssm://", "arn:", `\\"`, `\\$`, `\""`, `\''`, "\x00"} {
		if bytes.Contains(data, []byte(s)) {
			return false
		}
	}
	for i := 0; i < len(data); i++ {
		if data[i] != '$' || (i > 0 && data[i-1] == '\\') {
			continue
		}
		rest := data[i+1:]
		switch {
		case len(rest) == 0:
		case rest[0] == '{':
			end := bytes.IndexByte(rest, '}')
			if end < 0 || !upperName(rest[1:end]) {
				return false
			}
		case rest[0] == '_' || (rest[0] >= 'A' && rest[0] <= 'Z'):
			j := 0
			for j < len(rest) && (rest[j] == '_' || (rest[j] >= 'A' && rest[j] <= 'Z') || (rest[j] >= '0' && rest[j] <= '9')) {
				j++
			}
			if j < len(rest) && ((rest[j] >= 'a' && rest[j] <= 'z') || rest[j] == '}') {
				return false
			}
		case (rest[0] >= 'a' && rest[0] <= 'z') || (rest[0] >= '0' && rest[0] <= '9') || rest[0] == '(':
			return false
		}
	}
	// godotenv ends an unquoted value at the last " #", rolesenv at the
	// first.
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, maxFuzzInput+1)
	for sc.Scan() {
		line := sc.Text()
		n, prev := 0, rune(-1)
		for _, r := range line {
			if r == '#' && isSpace(prev) {
				n++
			}
			prev = r
		}
		if n > 1 {
			return false
		}
	}
	return true
}

func upperName(b []byte) bool {
	if len(b) == 0 || (b[0] >= '0' && b[0] <= '9') {
		return false
	}
	for _, c := range b {
		if !(c == '_' || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
			return false
		}
	}
	return true
}

func refSeeds(f *testing.F) {
	data, err := os.ReadFile("../testdata/inject/refs.txt")
	if err != nil {
		f.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if line != "" {
			f.Add(line)
		}
	}
}

// FuzzRef checks the reference parser: it never panics, and every
// reference it accepts prints back (String) to one that parses to an
// equivalent reference and prints the same again. The printed form also
// works inside {{ }}.
func FuzzRef(f *testing.F) {
	refSeeds(f)
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > maxFuzzInput {
			return
		}
		r, err := ParseRef(s)
		if err != nil {
			return
		}
		p := r.String()
		r2, err := ParseRef(p)
		if err != nil {
			t.Fatalf("%q printed as %q, which does not parse: %v", s, p, err)
		}
		if !equivalentRefs(r, r2) {
			t.Fatalf("%q printed as %q, which parses to %#v, not %#v", s, p, r2, r)
		}
		if p2 := r2.String(); p2 != p {
			t.Fatalf("%q printed as %q, then as %q", s, p, p2)
		}
		r3, fs, err := parseInline(" " + p + " | trim ")
		if err != nil || len(fs) != 1 || !equivalentRefs(r, r3) {
			t.Fatalf("{{ %s | trim }}: %v %v", p, err, fs)
		}
	})
}

// equivalentRefs: the same fetch and the same part of the value. A
// top-level key that starts with '/' prints as the one-token JSON Pointer
// that selects it.
func equivalentRefs(a, b Ref) bool {
	if a == b {
		return true
	}
	if strings.HasPrefix(a.Key, "/") && a.Pointer == "" && b.Key == "" && b.Pointer == "/"+pointerToken(a.Key) {
		a.Key, a.Pointer = b.Key, b.Pointer
		return a == b
	}
	return false
}

// quoteEnviron gives an expansion something to find, so that one would
// show in the value read back.
var quoteEnviron = []string{"HOME=/home/app", "x=X", "A=a", "_=u"}

// checkQuoteDotenv: K= and QuoteDotenv(v) parse back to v as a literal:
// no reference, no expansion, no warning.
func checkQuoteDotenv(t *testing.T, v string) {
	t.Helper()
	if strings.IndexByte(v, 0) >= 0 {
		return
	}
	src := "K=" + QuoteDotenv(v) + "\n"
	tm, err := Parse([]File{{Name: "q.env", Data: []byte(src)}}, Options{CleanEnv: true, Environ: quoteEnviron})
	if err != nil {
		t.Fatalf("%q quoted as %q: %v", v, src, err)
	}
	if len(tm.Uses()) != 0 || len(tm.Warnings()) != 0 {
		t.Fatalf("%q quoted as %q: %d references, warnings %q", v, src, len(tm.Uses()), tm.Warnings())
	}
	env, err := tm.Render(NewValues())
	if err != nil {
		t.Fatalf("%q quoted as %q: %v", v, src, err)
	}
	if got, _ := env.Lookup("K"); got.Reveal() != v {
		t.Fatalf("%q quoted as %q reads back as %q", v, src, got.Reveal())
	}
}
