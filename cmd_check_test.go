package main

import (
	"crypto/x509"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rolesenv/rolesenv/internal/awsdev"
	"github.com/rolesenv/rolesenv/internal/check"
	"github.com/rolesenv/rolesenv/internal/devpki"
	"github.com/rolesenv/rolesenv/internal/testenv"
	"software.sslmate.com/src/go-pkcs12"

	"github.com/rolesenv/rolesenv/internal/exitcode"
)

// update rewrites the golden files of package main's tests.
var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// checkFixture is the emulator with a Roles Anywhere trust anchor, a role
// "app" and a profile, and the test's working directory (a temporary one,
// so that the files check names print the same in every run).
type checkFixture struct {
	srv                   *awsdev.Server
	root                  *devpki.Cert
	anchor, profile, role string
}

// appPolicy allows what app.env needs and nothing of other/*.
var appPolicy = awsdev.Policy{Allow: []awsdev.Rule{
	{Actions: []string{"secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret", "secretsmanager:ListSecretVersionIds"},
		Resources: []string{"arn:aws:secretsmanager:*:*:secret:prod/*"}},
	{Actions: []string{"ssm:GetParameters"}, Resources: []string{"arn:aws:ssm:*:*:parameter/prod/*"}},
	{Actions: []string{"ssm:DescribeParameters"}, Resources: []string{"*"}},
}}

func newCheckFixture(t *testing.T) *checkFixture {
	t.Helper()
	testenv.IsolateAWS(t)
	srv, err := awsdev.Start(awsdev.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	t.Chdir(t.TempDir())
	writeTestFile(t, "aws-ca.pem", string(srv.CAPEM()), 0o644)
	t.Setenv("AWS_CA_BUNDLE", "aws-ca.pem")
	t.Setenv("AWS_ENDPOINT_URL", srv.URL())
	root, err := devpki.NewCA(devpki.Options{CommonName: "check root CA"})
	if err != nil {
		t.Fatal(err)
	}
	f := &checkFixture{srv: srv, root: root}
	f.role = srv.CreateRole("app", awsdev.RoleOptions{Policy: appPolicy})
	f.anchor = srv.CreateTrustAnchor(root.Cert, awsdev.TrustAnchorOptions{ID: "anchor"})
	f.profile = srv.CreateProfile(awsdev.ProfileOptions{ID: "profile", RoleARNs: []string{f.role}})
	writeTestFile(t, "root.pem", string(root.CertPEM()), 0o644)

	db := `{"username":"app","password":"SNTL-db-password"}`
	for name, value := range map[string]string{"prod/db": db, "prod/api": "SNTL-api-token", "other/token": "SNTL-other"} {
		if _, err := srv.CreateSecret(name, value); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := srv.PutParameter("/prod/port", "String", "8080"); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.PutParameter("/prod/dsn", "SecureString", "SNTL-dsn"); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.PutParameter("/other/param", "SecureString", "SNTL-other-param"); err != nil {
		t.Fatal(err)
	}
	return f
}

func writeTestFile(t *testing.T, name, data string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(name, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(name, mode); err != nil { // whatever the umask
		t.Fatal(err)
	}
}

// leaf issues a certificate from issuer (the fixture's root when nil) and
// writes NAME.pem and NAME.key (mode 0600).
func (f *checkFixture) leaf(t *testing.T, name string, opts devpki.Options, issuer *devpki.Cert) (cert, key string) {
	t.Helper()
	if issuer == nil {
		issuer = f.root
	}
	if opts.CommonName == "" {
		opts.CommonName = "app.example.test"
	}
	c, err := issuer.Leaf(opts)
	if err != nil {
		t.Fatal(err)
	}
	cert, key = name+".pem", name+".key"
	writeTestFile(t, cert, string(c.CertPEM()), 0o644)
	writeTestFile(t, key, string(c.KeyPEM()), 0o600)
	return cert, key
}

// args are check's Roles Anywhere flags for a certificate and key.
func (f *checkFixture) args(cert, key string, extra ...string) []string {
	return append([]string{"check", "--certificate", cert, "--private-key", key,
		"--trust-anchor-arn", f.anchor, "--profile-arn", f.profile, "--role-arn", f.role}, extra...)
}

const appEnv = `# app.env: what the service gets
DB_USER=sm://prod/db#username
DATABASE_URL=postgres://{{ sm://prod/db#username }}:{{ sm://prod/db#password | urlquery }}@db/app
API_TOKEN=sm://prod/api
PORT=ssm:///prod/port
DSN=ssm:///prod/dsn
LOG_LEVEL=info
`

// brokenEnv adds a JSON key that the secret lacks and a secret the role
// may not read.
const brokenEnv = appEnv + `DB_HOST=sm://prod/db#host
OTHER_TOKEN=sm://other/token
OTHER_PARAM=ssm:///other/param
`

// longValidity keeps "N days left" the same in every run.
var longValidity = devpki.Options{NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(400*24*time.Hour + 12*time.Hour)}

// expiring is a certificate that expires in two days: a warning.
var expiring = devpki.Options{NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(50 * time.Hour)}

// normalise replaces what changes from run to run in check's text output.
func normalise(s string) string {
	for _, r := range []struct{ re, with string }{
		{`https://127\.0\.0\.1:\d+`, "https://127.0.0.1:PORT"},
		{`(:secret:[A-Za-z0-9/_+=.@-]+?)-[A-Za-z0-9]{6}\b`, "${1}-XXXXXX"},
		{`serial \d+`, "serial SERIAL"},
		{`assumed-role/app/[0-9a-f]+`, "assumed-role/app/SESSION"},
		{`version [0-9a-f]{8}\b`, "version VERSIONID"},
		{`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ`, "DATE"},
		{`request id [^),]+`, "request id ID"},
	} {
		s = regexp.MustCompile(r.re).ReplaceAllString(s, r.with)
	}
	return s
}

// golden compares check's text output, normalised, with a file under
// testdata/check; -update rewrites it.
func golden(t *testing.T, name, got string) {
	t.Helper()
	got = normalise(got)
	path := filepath.Join(repoDir, "testdata", "check", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (run with -update to accept):\n--- got\n%s--- want\n%s", path, got, want)
	}
}

// repoDir is where the package's sources are: tests chdir elsewhere.
var repoDir, _ = os.Getwd()

// report is check's JSON document.
type report struct {
	Checks  []check.Row   `json:"checks"`
	Summary check.Summary `json:"summary"`
}

func runCheckJSON(t *testing.T, args ...string) (int, report, string) {
	t.Helper()
	code, stdout, stderr := runCLI(t, append([]string{args[0], "--format", "json"}, args[1:]...)...)
	var r report
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("check --format json printed no JSON (%v):\n%s\nstderr:\n%s", err, stdout, stderr)
	}
	return code, r, stderr
}

// documentedFields are the JSON fields the README documents: a row never
// has another, and the first four are always there.
var documentedFields = map[string]bool{
	"group": true, "check": true, "status": true, "detail": true, "hint": true, "file": true, "line": true,
	"variable": true, "reference": true, "version": true, "note": true, "code": true, "action": true,
	"resource": true, "statement": true,
}

func checkDocumentedFields(t *testing.T, args []string) {
	t.Helper()
	_, stdout, _ := runCLI(t, append([]string{args[0], "--format", "json"}, args[1:]...)...)
	var doc map[string]json.RawMessage
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil || len(doc) != 2 || doc["checks"] == nil || doc["summary"] == nil {
		t.Fatalf("document %s: want exactly checks and summary (%v)", stdout, err)
	}
	var rows []map[string]any
	if err := json.Unmarshal(doc["checks"], &rows); err != nil {
		t.Fatal(err)
	}
	for _, row := range rows {
		for k := range row {
			if !documentedFields[k] {
				t.Errorf("row %v has the undocumented field %q", row["check"], k)
			}
		}
		for _, k := range []string{"group", "check", "status", "detail"} {
			if _, ok := row[k].(string); !ok {
				t.Errorf("row %v lacks %q", row["check"], k)
			}
		}
		if st := row["status"]; st != "ok" && st != "warn" && st != "fail" && st != "not_run" {
			t.Errorf("row %v has status %v", row["check"], st)
		}
		if s, ok := row["statement"].(map[string]any); ok && (s["Effect"] != "Allow" || s["Action"] == nil || s["Resource"] == nil || len(s) != 3) {
			t.Errorf("statement %v", s)
		}
	}
	var sum map[string]any
	if err := json.Unmarshal(doc["summary"], &sum); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"ok", "warn", "fail", "not_run", "exit_code"} {
		if _, ok := sum[k].(float64); !ok {
			t.Errorf("summary lacks the number %q: %v", k, sum)
		}
	}
	if len(sum) != 5 {
		t.Errorf("summary %v has undocumented fields", sum)
	}
}

// row finds the row whose check starts with prefix (and whose reference
// is ref, when given).
func (r report) row(t *testing.T, prefix, ref string) check.Row {
	t.Helper()
	for _, row := range r.Checks {
		if strings.HasPrefix(row.Check, prefix) && (ref == "" || row.Reference == ref) {
			return row
		}
	}
	t.Fatalf("no row %q %q in %s", prefix, ref, dump(r))
	return check.Row{}
}

func dump(r report) string {
	var b strings.Builder
	for _, row := range r.Checks {
		b.WriteString("\n  " + row.Status.String() + "  " + row.Check + "  " + row.Detail)
	}
	return b.String()
}

// statuses counts the rows of each status.
func (r report) statuses() map[check.Status]int {
	m := map[check.Status]int{}
	for _, row := range r.Checks {
		m[row.Status]++
	}
	return m
}

func TestCheckHealthy(t *testing.T) {
	f := newCheckFixture(t)
	cert, key := f.leaf(t, "app", longValidity, nil)
	writeTestFile(t, "app.env", appEnv, 0o644)
	writeTestFile(t, "app", "#!/bin/sh\nexit 0\n", 0o755)
	// --clean-env: the command's environment, and so its size, is the same in every run.
	args := f.args(cert, key, "--env-file", "app.env", "--ca", "root.pem", "--clean-env", "--", "./app", "--port", "8080")

	code, stdout, stderr := runCLI(t, args...)
	if code != 0 {
		t.Fatalf("exit %d, want 0:\n%s%s", code, stdout, stderr)
	}
	golden(t, "healthy.txt", stdout)

	code, r, _ := runCheckJSON(t, args...)
	if code != 0 || r.Summary.ExitCode != 0 {
		t.Fatalf("json: exit %d, summary %+v", code, r.Summary)
	}
	if got := r.statuses(); got[check.OK] != len(r.Checks) || r.Summary.OK != len(r.Checks) {
		t.Errorf("want every row ok: %v%s", got, dump(r))
	}
	if row := r.row(t, "credentials", ""); !strings.Contains(row.Detail, "assumed-role/app/") {
		t.Errorf("credentials row %q does not name the session", row.Detail)
	}
	row := r.row(t, "reference PORT", "")
	if row.Version != "1" || row.File != "app.env" || row.Line != 5 || row.Variable != "PORT" || row.Reference != "ssm:///prod/port" {
		t.Errorf("PORT row = %+v", row)
	}
}

// TestCheckBroken is a setup with every kind of problem check can find
// after the credentials: one run lists them all, with exit 1.
func TestCheckBroken(t *testing.T) {
	f := newCheckFixture(t)
	cert, key := f.leaf(t, "app", expiring, nil)
	if err := os.Chmod(key, 0o640); err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, "app.env", brokenEnv, 0o644)
	args := f.args(cert, key, "--env-file", "app.env", "--", "no-such-command-anywhere")

	code, stdout, stderr := runCLI(t, args...)
	if code != 1 {
		t.Fatalf("exit %d, want 1:\n%s%s", code, stdout, stderr)
	}
	golden(t, "broken.txt", stdout)

	_, r, _ := runCheckJSON(t, args...)
	checkDocumentedFields(t, args)
	want := map[string]check.Status{
		"certificate validity":  check.Warn,
		"key file permissions":  check.Warn,
		"credentials":           check.OK,
		"reference DB_HOST":     check.Fail,
		"reference OTHER_TOKEN": check.Fail,
		"reference OTHER_PARAM": check.Fail,
		"reference DB_USER":     check.OK,
		"reference PORT":        check.OK,
		"command":               check.Fail,
	}
	for prefix, st := range want {
		if row := r.row(t, prefix, ""); row.Status != st {
			t.Errorf("%s: %s (%s), want %s", prefix, row.Status, row.Detail, st)
		}
	}
	denied := r.row(t, "reference OTHER_TOKEN", "")
	if denied.Action != "secretsmanager:GetSecretValue" || !strings.Contains(denied.Resource, ":secret:other/token-") ||
		denied.Code != "AccessDeniedException" || denied.Statement == nil {
		t.Fatalf("denied row = %+v", denied)
	}
	if got, want := denied.Statement.JSON(), `{"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"`+denied.Resource+`"}`; got != want {
		t.Errorf("statement %s, want %s", got, want)
	}
	if !strings.Contains(denied.Hint, f.role) {
		t.Errorf("hint %q does not name the role %s", denied.Hint, f.role)
	}
	if row := r.row(t, "reference DB_HOST", ""); !strings.Contains(row.Detail, "host") || row.Statement != nil {
		t.Errorf("missing key row = %+v", row)
	}
	s := r.Summary
	if s.Fail != 4 || s.Warn != 2 || s.NotRun != 0 || s.ExitCode != 1 {
		t.Errorf("summary %+v, want 4 fail, 2 warn", s)
	}
	// Parameter Store refused the whole GetParameters call for one name:
	// only that name is reported denied, with its own statement.
	if row := r.row(t, "reference OTHER_PARAM", ""); row.Statement == nil ||
		row.Statement.JSON() != `{"Effect":"Allow","Action":"ssm:GetParameters","Resource":"arn:aws:ssm:us-east-1:123456789012:parameter/other/param"}` {
		t.Errorf("OTHER_PARAM row = %+v", row)
	}
}

// TestCheckWrongCA: a certificate the trust anchor does not trust passes
// every local check, fails CreateSession, and leaves the references not
// run; with --ca the chain check says why before the service does.
func TestCheckWrongCA(t *testing.T) {
	f := newCheckFixture(t)
	other, err := devpki.NewCA(devpki.Options{CommonName: "some other CA"})
	if err != nil {
		t.Fatal(err)
	}
	cert, key := f.leaf(t, "app", longValidity, other)
	writeTestFile(t, "app.env", appEnv, 0o644)
	args := f.args(cert, key, "--env-file", "app.env")

	code, stdout, stderr := runCLI(t, args...)
	if code != 1 {
		t.Fatalf("exit %d, want 1:\n%s%s", code, stdout, stderr)
	}
	golden(t, "wrong-ca.txt", stdout)

	_, r, _ := runCheckJSON(t, append(args, "--ca", "root.pem")...)
	if row := r.row(t, "chain to root.pem", ""); row.Status != check.Fail {
		t.Errorf("chain row %s: %s", row.Status, row.Detail)
	}
	cred := r.row(t, "credentials", "")
	if cred.Status != check.Fail || cred.Code != "AccessDeniedException" || cred.Statement != nil ||
		!strings.Contains(cred.Hint, "trust policy") || !strings.Contains(cred.Hint, "trust anchor's CA") {
		t.Errorf("credentials row = %+v", cred)
	}
	refs := 0
	for _, row := range r.Checks {
		if row.Group == check.Reference {
			refs++
			if row.Status != check.NotRun {
				t.Errorf("%s: %s, want not run", row.Check, row.Status)
			}
		}
	}
	if refs != 6 { // DB_USER, DATABASE_URL twice, API_TOKEN, PORT, DSN
		t.Errorf("%d reference rows, want 6%s", refs, dump(r))
	}
	if f.srv.Calls("secretsmanager:GetSecretValue")+f.srv.Calls("ssm:GetParameters") != 0 {
		t.Error("references were fetched without credentials")
	}
}

// TestCheckWarnOnly: warnings do not fail check.
func TestCheckWarnOnly(t *testing.T) {
	f := newCheckFixture(t)
	cert, key := f.leaf(t, "app", expiring, nil)
	writeTestFile(t, "app.env", appEnv, 0o644)
	code, r, stderr := runCheckJSON(t, f.args(cert, key, "--env-file", "app.env")...)
	if code != 0 || r.Summary.Warn != 1 || r.Summary.Fail != 0 || r.Summary.NotRun != 0 {
		t.Fatalf("exit %d, summary %+v, want 0 and one warning%s\n%s", code, r.Summary, dump(r), stderr)
	}
	code, stdout, _ := runCLI(t, f.args(cert, key, "--env-file", "app.env")...)
	if code != 0 || !strings.Contains(stdout, "result: ok with warnings (") {
		t.Errorf("exit %d:\n%s", code, stdout)
	}
}

// TestCheckDescribeOnly reads metadata only: the emulator's counters show
// that no call that returns a value was made.
func TestCheckDescribeOnly(t *testing.T) {
	f := newCheckFixture(t)
	cert, key := f.leaf(t, "app", longValidity, nil)
	if _, err := f.srv.PutParameter("/prod/port", "String", "9090"); err != nil {
		t.Fatal(err)
	}
	env := brokenEnv + `PREVIOUS=sm://prod/api?stage=AWSPREVIOUS
OLD_PORT=ssm:///prod/port?version=1
NO_PORT=ssm:///prod/port?version=7
LABELLED=ssm:///prod/port?label=blue
MISSING=sm://prod/missing
`
	writeTestFile(t, "app.env", env, 0o644)
	args := f.args(cert, key, "--env-file", "app.env", "--describe-only")
	f.srv.ResetCalls()
	code, stdout, stderr := runCLI(t, args...)
	if code != 1 {
		t.Fatalf("exit %d, want 1:\n%s%s", code, stdout, stderr)
	}
	golden(t, "describe-only.txt", stdout)
	for _, op := range []string{"secretsmanager:GetSecretValue", "secretsmanager:BatchGetSecretValue", "ssm:GetParameters", "ssm:GetParameter"} {
		if n := f.srv.Calls(op); n != 0 {
			t.Errorf("--describe-only made %d %s calls", n, op)
		}
	}
	if f.srv.Calls("secretsmanager:DescribeSecret") == 0 || f.srv.Calls("ssm:DescribeParameters") == 0 {
		t.Errorf("no describe calls: %v", f.srv.CallCounts())
	}

	_, r, _ := runCheckJSON(t, args...)
	want := []struct {
		prefix string
		status check.Status
		code   string
		note   bool
	}{
		{"reference DB_USER", check.OK, "", true},    // a key cannot be verified without the value
		{"reference DB_HOST", check.OK, "", true},    // ... even a missing one
		{"reference API_TOKEN", check.OK, "", false}, // nothing left unverified
		{"reference PORT", check.OK, "", false},
		{"reference PREVIOUS", check.Fail, "ResourceNotFoundException", false}, // no AWSPREVIOUS yet
		{"reference OLD_PORT", check.OK, "", false},
		{"reference NO_PORT", check.Fail, "ParameterVersionNotFound", false},
		{"reference LABELLED", check.OK, "", true},
		{"reference MISSING", check.Fail, "ResourceNotFoundException", false},
		{"reference OTHER_TOKEN", check.Fail, "AccessDeniedException", false},
	}
	for _, w := range want {
		row := r.row(t, w.prefix, "")
		if row.Status != w.status || row.Code != w.code || (row.Note != "") != w.note {
			t.Errorf("%s: status %s code %q note %q (%s), want %s %q note %v", w.prefix, row.Status, row.Code, row.Note, row.Detail, w.status, w.code, w.note)
		}
	}
	denied := r.row(t, "reference OTHER_TOKEN", "")
	if denied.Action != "secretsmanager:DescribeSecret" || denied.Statement == nil || denied.Statement.Action != "secretsmanager:DescribeSecret" {
		t.Errorf("denied row = %+v", denied)
	}
}

// TestCheckDefaultChain: without Roles Anywhere flags the credentials row
// names the default chain's source and the caller's ARN, and a denial
// names the user's policy.
func TestCheckDefaultChain(t *testing.T) {
	f := newCheckFixture(t)
	id, secret := f.srv.CreateUser("deploy", appPolicy)
	t.Setenv("AWS_ACCESS_KEY_ID", id)
	t.Setenv("AWS_SECRET_ACCESS_KEY", secret)
	writeTestFile(t, "app.env", brokenEnv, 0o644)
	code, r, _ := runCheckJSON(t, "check", "--env-file", "app.env")
	if code != 1 {
		t.Fatalf("exit %d%s", code, dump(r))
	}
	cred := r.row(t, "credentials", "")
	if cred.Status != check.OK || !strings.Contains(cred.Detail, "EnvConfigCredentials") ||
		!strings.Contains(cred.Detail, "arn:aws:iam::123456789012:user/deploy") {
		t.Errorf("credentials row = %+v", cred)
	}
	if row := r.row(t, "reference OTHER_TOKEN", ""); !strings.Contains(row.Hint, "user/deploy") {
		t.Errorf("denial hint %q does not name the user", row.Hint)
	}

	// Keys AWS does not know: credentials fail, references are not run.
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAUNKNOWNKEY000000")
	code, r, _ = runCheckJSON(t, "check", "--env-file", "app.env")
	if cred := r.row(t, "credentials", ""); code != 1 || cred.Status != check.Fail || !strings.Contains(cred.Detail, "InvalidClientTokenId") {
		t.Errorf("exit %d, credentials row = %+v", code, cred)
	}
	if row := r.row(t, "reference DB_USER", ""); row.Status != check.NotRun {
		t.Errorf("DB_USER: %s", row.Status)
	}
}

// TestCheckLocalFailures: problems found without the network, each in
// its own row, and what cannot run says why.
func TestCheckLocalFailures(t *testing.T) {
	f := newCheckFixture(t)
	cert, _ := f.leaf(t, "app", longValidity, nil)
	_, otherKey := f.leaf(t, "other", longValidity, nil)
	writeTestFile(t, "bad.env", "GOOD=1\nBROKEN='unterminated SNTL-in-file\n", 0o644)
	args := f.args(cert, otherKey, "--env-file", "bad.env", "--env-file", "missing.env", "--session-duration", "60",
		"--ca", "root.pem", "--", "./app.env")
	writeTestFile(t, "app.env", appEnv, 0o644) // exists, not executable

	code, stdout, stderr := runCLI(t, args...)
	if code != 1 {
		t.Fatalf("exit %d, want 1:\n%s%s", code, stdout, stderr)
	}
	golden(t, "local-failures.txt", stdout)
	_, r, _ := runCheckJSON(t, args...)
	for prefix, st := range map[string]check.Status{
		"env file bad.env":        check.Fail,
		"env file missing.env":    check.Fail,
		"session duration":        check.Fail,
		"key matches certificate": check.Fail,
		"certificate validity":    check.OK,
		"chain to root.pem":       check.OK,
		"credentials":             check.NotRun,
		"references":              check.NotRun,
		"command ./app.env":       check.Fail,
	} {
		if row := r.row(t, prefix, ""); row.Status != st {
			t.Errorf("%s: %s (%s), want %s", prefix, row.Status, row.Detail, st)
		}
	}
	if f.srv.Calls("rolesanywhere:CreateSession") != 0 {
		t.Error("CreateSession was called with a key that does not match")
	}
}

// TestCheckEncryptedBundle: a PKCS#12 bundle needs its passphrase; check
// says where it comes from when it is missing or wrong.
func TestCheckEncryptedBundle(t *testing.T) {
	f := newCheckFixture(t)
	bundle := f.pkcs12(t, "SNTL-passphrase")
	args := []string{"check", "--certificate", bundle, "--trust-anchor-arn", f.anchor, "--profile-arn", f.profile, "--role-arn", f.role}

	t.Setenv(passphraseEnv, "SNTL-passphrase")
	code, r, _ := runCheckJSON(t, args...)
	if code != 0 || r.row(t, "credentials", "").Status != check.OK {
		t.Fatalf("exit %d%s", code, dump(r))
	}
	if row := r.row(t, "private key app.p12", ""); !strings.Contains(row.Detail, "in the certificate file") {
		t.Errorf("key row %q", row.Detail)
	}
	t.Setenv(passphraseEnv, "SNTL-wrong")
	code, r, _ = runCheckJSON(t, args...)
	row := r.row(t, "certificate app.p12", "")
	if code != 1 || row.Status != check.Fail || !strings.Contains(row.Hint, passphraseEnv) {
		t.Errorf("exit %d, row %+v", code, row)
	}
	if row := r.row(t, "credentials", ""); row.Status != check.NotRun {
		t.Errorf("credentials: %s", row.Status)
	}
}

// pkcs12 writes app.p12: a leaf of the fixture's root and its key,
// encrypted with passphrase.
func (f *checkFixture) pkcs12(t *testing.T, passphrase string) string {
	t.Helper()
	c, err := f.root.Leaf(devpki.Options{CommonName: "bundle.example.test"})
	if err != nil {
		t.Fatal(err)
	}
	data, err := pkcs12.Modern.Encode(c.Key, c.Cert, []*x509.Certificate{}, passphrase)
	if err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, "app.p12", string(data), 0o600)
	return "app.p12"
}

// TestCheckSentinel runs every path of check at debug level with secret
// values, a passphrase and a secret access key that carry a sentinel:
// the sentinel never reaches stdout or stderr.
func TestCheckSentinel(t *testing.T) {
	const sentinel = "SNTL"
	f := newCheckFixture(t)
	cert, key := f.leaf(t, "app", expiring, nil)
	other, err := devpki.NewCA(devpki.Options{CommonName: "some other CA"})
	if err != nil {
		t.Fatal(err)
	}
	wrongCert, wrongKey := f.leaf(t, "wrong", longValidity, other)
	bundle := f.pkcs12(t, "SNTL-passphrase")
	writeTestFile(t, "app.env", brokenEnv+"FROM_ENV_TOO=${SNTL_VAR}\n", 0o644)
	writeTestFile(t, "bad.env", "A=1\nB=\"SNTL-unterminated\nC={{ SNTL inline }}\n", 0o644)
	f.srv.CreateUser("deploy", appPolicy)
	if err := f.srv.AddAccessKey("deploy", "AKIASENTINELTEST0001", "SNTL-secret-access-key"); err != nil {
		t.Fatal(err)
	}
	t.Setenv("FROM_ENV_REF", "sm://prod/db#password")

	ra := func(c, k string, extra ...string) []string { return f.args(c, k, extra...) }
	_, otherKey := f.leaf(t, "other", devpki.Options{NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour)}, nil)
	writeTestFile(t, "passphrase.txt", "SNTL-passphrase\n", 0o600)
	writeTestFile(t, "good.env", appEnv, 0o644)
	runs := []struct {
		name string
		env  map[string]string
		args []string
	}{
		{"healthy", nil, ra(cert, key, "--env-file", "good.env", "--", "rolesenv-testchild", "exit", "0")},
		{"local failures", nil, ra(cert, otherKey, "--env-file", "app.env", "--env-file", "missing.env", "--session-duration", "1",
			"--ca", "root.pem", "--intermediates", "app.env", "--", "./app.env")},
		{"expired certificate", nil, ra("other.pem", otherKey, "--env-file", "app.env")},
		{"bundle, passphrase file", nil,
			[]string{"check", "--certificate", bundle, "--private-key-passphrase-file", "passphrase.txt", "--trust-anchor-arn", f.anchor,
				"--profile-arn", f.profile, "--role-arn", f.role, "--env-file", "app.env", "--describe-only"}},
		{"unknown access key", map[string]string{"AWS_ACCESS_KEY_ID": "AKIAUNKNOWNKEY000000", "AWS_SECRET_ACCESS_KEY": "SNTL-secret-access-key"},
			[]string{"check", "--env-file", "app.env"}},
		{"healthy and broken references", nil, ra(cert, key, "--env-file", "app.env", "--from-env", "--", "rolesenv-testchild")},
		{"describe-only", nil, ra(cert, key, "--env-file", "app.env", "--describe-only")},
		{"wrong CA", nil, ra(wrongCert, wrongKey, "--env-file", "app.env", "--ca", "root.pem")},
		{"bad template", nil, ra(cert, key, "--env-file", "bad.env")},
		{"bundle", map[string]string{passphraseEnv: "SNTL-passphrase"},
			[]string{"check", "--certificate", bundle, "--trust-anchor-arn", f.anchor, "--profile-arn", f.profile, "--role-arn", f.role, "--env-file", "app.env"}},
		{"bundle, wrong passphrase", map[string]string{passphraseEnv: "SNTL-wrong-passphrase"},
			[]string{"check", "--certificate", bundle, "--trust-anchor-arn", f.anchor, "--profile-arn", f.profile, "--role-arn", f.role}},
		{"default chain", map[string]string{"AWS_ACCESS_KEY_ID": "AKIASENTINELTEST0001", "AWS_SECRET_ACCESS_KEY": "SNTL-secret-access-key"},
			[]string{"check", "--env-file", "app.env"}},
		{"default chain, describe-only", map[string]string{"AWS_ACCESS_KEY_ID": "AKIASENTINELTEST0001", "AWS_SECRET_ACCESS_KEY": "SNTL-secret-access-key"},
			[]string{"check", "--env-file", "app.env", "--describe-only"}},
	}
	for _, run := range runs {
		for k, v := range run.env {
			t.Setenv(k, v)
		}
		for _, format := range []string{"text", "json"} {
			args := append(append([]string{}, run.args[:1]...), append([]string{"--log-level", "debug", "--format", format}, run.args[1:]...)...)
			code, stdout, stderr := runCLI(t, args...)
			if code != 0 && code != 1 {
				t.Errorf("%s (%s): exit %d\n%s", run.name, format, code, stderr)
			}
			if strings.Contains(stdout+stderr, sentinel) {
				t.Errorf("%s (%s): the sentinel reached the output:\nstdout:\n%s\nstderr:\n%s", run.name, format, stdout, stderr)
			}
			if stdout == "" {
				t.Errorf("%s (%s): no report", run.name, format)
			}
		}
		for k := range run.env {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
}

func TestCheckUsage(t *testing.T) {
	testenv.IsolateAWS(t)
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"check", "--format", "yaml"}, exitcode.Usage, "invalid --format"},
		{[]string{"check", "--ca", "root.pem"}, exitcode.Usage, "--ca verifies a Roles Anywhere certificate chain"},
		{[]string{"check", "--once"}, exitcode.Usage, "unknown flag: --once"},
		{[]string{"check", "--pkcs8-password", "x"}, exitcode.Usage, "refused"},
	} {
		code, _, stderr := runCLI(t, tt.args...)
		if code != tt.code || !strings.Contains(stderr, tt.want) {
			t.Errorf("%q: exit %d, stderr %q; want %d and %q", tt.args, code, stderr, tt.code, tt.want)
		}
	}
	code, stdout, _ := runCLI(t, "check", "--help")
	if code != 0 || !strings.Contains(stdout, "--describe-only") || !strings.Contains(stdout, "Examples:") {
		t.Errorf("--help: exit %d\n%s", code, stdout)
	}
	// Nothing to check is not a failure.
	code, stdout, _ = runCLI(t, "check")
	if code != 0 || !strings.Contains(stdout, "result: ok") {
		t.Errorf("check with nothing: exit %d\n%s", code, stdout)
	}
}

// TestCheckMoto runs check against moto, an emulator that is not ours,
// with IAM enforcement (moto checks actions, not resources) and the
// default credential chain: a user allowed to describe secrets but not
// read them fails the normal check with the statement that would allow
// the read (built from the name, as moto's 403 does not say), and passes
// --describe-only.
func TestCheckMoto(t *testing.T) {
	testenv.RequireTool(t, "aws")
	testenv.IsolateAWS(t)
	policy, _ := json.Marshal(map[string]any{"Version": "2012-10-17", "Statement": []any{
		map[string]any{"Effect": "Allow", "Action": []string{"secretsmanager:DescribeSecret", "sts:GetCallerIdentity"}, "Resource": "*"}}})
	var keys string
	m := startMotoWith(t, append([]awsCall{
		{args: []string{"secretsmanager", "create-secret", "--name", "moto/db", "--secret-string", `{"password":"SNTL-moto"}`}}},
		motoUser("describer", string(policy), &keys)...))
	t.Chdir(t.TempDir())
	writeTestFile(t, "app.env", "DB_PASSWORD=sm://moto/db#password\n", 0o644)
	id, secret, _ := strings.Cut(keys, "\t")
	t.Setenv("AWS_ENDPOINT_URL", m.URL)
	t.Setenv("AWS_ACCESS_KEY_ID", id)
	t.Setenv("AWS_SECRET_ACCESS_KEY", secret)

	code, r, stderr := runCheckJSON(t, "check", "--env-file", "app.env", "--log-level", "debug")
	if code != 1 || strings.Contains(stderr, "SNTL") {
		t.Fatalf("exit %d, want 1%s\n%s", code, dump(r), stderr)
	}
	if cred := r.row(t, "credentials", ""); cred.Status != check.OK || !strings.Contains(cred.Detail, "user/describer") {
		t.Errorf("credentials row %+v", cred)
	}
	row := r.row(t, "reference DB_PASSWORD", "")
	want := `{"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"arn:aws:secretsmanager:us-east-1:123456789012:secret:moto/db-??????"}`
	if row.Status != check.Fail || row.Statement == nil || row.Statement.JSON() != want {
		t.Errorf("denied row %+v, want the statement %s", row, want)
	}

	code, r, _ = runCheckJSON(t, "check", "--env-file", "app.env", "--describe-only")
	if row := r.row(t, "reference DB_PASSWORD", ""); code != 0 || row.Status != check.OK || row.Note == "" {
		t.Errorf("--describe-only: exit %d, row %+v%s", code, row, dump(r))
	}
}

// TestCheckTimeout: --timeout is one deadline for the whole check. A row
// whose call it cut short says so, and the checks after it that need AWS
// are not run, naming the timeout.
func TestCheckTimeout(t *testing.T) {
	f := newCheckFixture(t)
	id, secret := f.srv.CreateUser("deploy", appPolicy)
	t.Setenv("AWS_ACCESS_KEY_ID", id)
	t.Setenv("AWS_SECRET_ACCESS_KEY", secret)
	writeTestFile(t, "app.env", appEnv, 0o644)

	// STS does not answer in time: the credentials row says so, and the
	// references are not run because of it.
	f.srv.SetOperationLatency("sts:GetCallerIdentity", time.Minute)
	code, r, _ := runCheckJSON(t, "check", "--env-file", "app.env", "--timeout", "300ms")
	cred := r.row(t, "credentials", "")
	if code != 1 || cred.Status != check.Fail || !strings.Contains(cred.Detail, "the --timeout of 300ms passed") || !strings.Contains(cred.Hint, "raise --timeout") {
		t.Errorf("exit %d, credentials row = %+v", code, cred)
	}
	if row := r.row(t, "reference DB_USER", ""); row.Status != check.NotRun || !strings.Contains(row.Detail, "the --timeout of 300ms passed before this check") {
		t.Errorf("DB_USER row = %+v", row)
	}
	f.srv.SetOperationLatency("sts:GetCallerIdentity", 0)

	// Secrets Manager does not answer in time: its rows say so, the
	// parameters' rows are ok. The two checks run side by side (each
	// waits for its whole --timeout), each with its own delayed call.
	cases := []struct{ op, flag string }{
		{"secretsmanager:GetSecretValue", ""},
		{"secretsmanager:DescribeSecret", "--describe-only"},
	}
	type result struct {
		code           int
		stdout, stderr string
	}
	results := make([]result, len(cases))
	var wg sync.WaitGroup
	for i, tc := range cases {
		f.srv.SetOperationLatency(tc.op, time.Minute)
		defer f.srv.SetOperationLatency(tc.op, 0)
		// Generous: the calls that are not delayed must answer well within it.
		args := []string{"check", "--format", "json", "--env-file", "app.env", "--timeout", "8s"}
		if tc.flag != "" {
			args = append(args, tc.flag)
		}
		wg.Go(func() {
			var res result
			res.code, res.stdout, res.stderr = runCLI(t, args...)
			results[i] = res
		})
	}
	wg.Wait()
	for i, tc := range cases {
		var r report
		if err := json.Unmarshal([]byte(results[i].stdout), &r); err != nil {
			t.Fatalf("%s: no JSON (%v):\n%s\n%s", tc.op, err, results[i].stdout, results[i].stderr)
		}
		if results[i].code != 1 {
			t.Errorf("%s: exit %d, want 1%s", tc.op, results[i].code, dump(r))
		}
		if row := r.row(t, "reference API_TOKEN", ""); row.Status != check.Fail ||
			!strings.Contains(row.Detail, "no answer before the check's deadline (--timeout)") || !strings.Contains(row.Hint, "raise --timeout") {
			t.Errorf("%s: API_TOKEN row = %+v", tc.op, row)
		}
		if row := r.row(t, "reference PORT", ""); row.Status != check.OK {
			t.Errorf("%s: PORT row = %+v", tc.op, row)
		}
	}
}
