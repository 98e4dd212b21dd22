package signer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestCredentialsRedacted prints credentials every way a program might.
func TestCredentialsRedacted(t *testing.T) {
	c := Credentials{AccessKeyID: "ASIASENTINEL", SecretAccessKey: "SECRETSENTINEL", SessionToken: "TOKENSENTINEL",
		Expiration: time.Now(), AssumedRoleARN: "arn:aws:sts::123456789012:assumed-role/r/s"}
	var logs bytes.Buffer
	slog.New(slog.NewTextHandler(&logs, nil)).Info("x", "creds", c, "ptr", &c)
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("x", "creds", c)
	j, _ := json.Marshal(c)
	jp, _ := json.Marshal(struct{ C *Credentials }{&c})
	outputs := []string{
		c.String(), fmt.Sprint(c), fmt.Sprintf("%v %+v %#v %s %q %x %d", c, c, c, c, c, c, c),
		fmt.Sprintf("%v %+v %#v %s", &c, &c, &c, &c), fmt.Sprintf("%v", []Credentials{c}),
		fmt.Sprintf("%+v", struct{ C Credentials }{c}), string(j), string(jp), logs.String(),
	}
	for _, out := range outputs {
		if strings.Contains(out, "SENTINEL") {
			t.Errorf("secret in %q", out)
		}
		if !strings.Contains(out, Redacted) {
			t.Errorf("%q does not say %s", out, Redacted)
		}
	}
}

// TestErrorsCarryNoSecrets runs the error paths that see secrets: a
// passphrase, decrypted key bytes, an answer holding credentials.
func TestErrorsCarryNoSecrets(t *testing.T) {
	const sentinel = "PASSPHRASESENTINEL"
	_, err := LoadFiles(LoadOptions{Certificate: fixture("rsa2048.pem"), PrivateKey: fixture("rsa2048.pbkdf2-aes256.pem"), Passphrase: []byte(sentinel)})
	if err == nil || strings.Contains(err.Error(), sentinel) {
		t.Errorf("wrong passphrase: %v", err)
	}
	_, err = LoadFiles(LoadOptions{Certificate: fixture("rsa2048.p12"), Passphrase: []byte(sentinel)})
	if err == nil || strings.Contains(err.Error(), sentinel) {
		t.Errorf("wrong PKCS#12 passphrase: %v", err)
	}
	_, err = parseCredentials([]byte(`{"credentialSet":[{"credentials":{"accessKeyId":"A","secretAccessKey":"SECRETSENTINEL","sessionToken":"TOKENSENTINEL","expiration":"soon"}}]}`))
	if err == nil || strings.Contains(err.Error(), "SENTINEL") {
		t.Errorf("malformed answer: %v", err)
	}
}

func TestKeyDerivationBounds(t *testing.T) {
	// The scrypt fixture uses N=1024; lower the bound under it to prove a
	// file cannot choose an unbounded cost.
	defer func(old int) { maxScryptMemory = old }(maxScryptMemory)
	maxScryptMemory = 128 * 512 * 8
	_, err := LoadFiles(LoadOptions{Certificate: fixture("p256.pem"), PrivateKey: fixture("p256.scrypt-aes256.pem"), Passphrase: []byte(passphrase)})
	if !errors.Is(err, ErrUnsupportedKey) || !strings.Contains(err.Error(), "N=1024") {
		t.Fatalf("err = %v, want scrypt parameters out of bounds", err)
	}
	defer func(old int) { maxPBKDF2Iterations = old }(maxPBKDF2Iterations)
	maxPBKDF2Iterations = 1000
	_, err = LoadFiles(LoadOptions{Certificate: fixture("rsa2048.pem"), PrivateKey: fixture("rsa2048.pbkdf2-aes256.pem"), Passphrase: []byte(passphrase)})
	if !errors.Is(err, ErrUnsupportedKey) || !strings.Contains(err.Error(), "iteration count 2048") {
		t.Fatalf("err = %v, want the iteration count out of bounds", err)
	}
}

func TestFileIdentityReloads(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "leaf.pem"), filepath.Join(dir, "leaf.key")
	install := func(name string) {
		for src, dst := range map[string]string{name + ".pem": cert, name + ".key": key} {
			data, err := os.ReadFile(fixture(src))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(dst+".tmp", data, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(dst+".tmp", dst); err != nil {
				t.Fatal(err)
			}
		}
	}
	install("p256")
	var logs bytes.Buffer
	clock := func() time.Time { return fixtureTime }
	f, err := NewFileIdentity(LoadOptions{Certificate: cert, PrivateKey: key}, clock, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	first, _ := f.Current()
	if again, _ := f.Current(); again != first {
		t.Fatal("unchanged files were loaded again")
	}
	install("p384")
	second, err := f.Current()
	if err != nil || second == first || second.Certificate.Subject.CommonName != "p384.test.invalid" {
		t.Fatalf("after renewal: %v %v", second, err)
	}
	// A half-done renewal (new certificate, old key) keeps the working
	// identity and warns once.
	data, _ := os.ReadFile(fixture("p521.pem"))
	if err := os.WriteFile(cert, data, 0o600); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if id, err := f.Current(); err != nil || id != second {
			t.Fatalf("during a half-done renewal: %v %v", id, err)
		}
	}
	if n := strings.Count(logs.String(), "cannot be used"); n != 1 {
		t.Errorf("%d warnings, want 1:\n%s", n, logs.String())
	}
}

// TestNoForbiddenImports keeps the library free of global logging,
// printing and subprocesses.
func TestNoForbiddenImports(t *testing.T) {
	files, _ := filepath.Glob("*.go")
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if p == "os/exec" || p == "log" {
				t.Errorf("%s imports %s", name, p)
			}
		}
		src, _ := os.ReadFile(name)
		for _, bad := range []string{"fmt.Print", "os.Exit", "os.Getenv", "os.LookupEnv", "slog.Default", "os.Stdout", "os.Stderr"} {
			if bytes.Contains(src, []byte(bad)) {
				t.Errorf("%s uses %s", name, bad)
			}
		}
		// A library speaks its own language: no command's flags,
		// variables or exit codes in its errors, logs or docs.
		for _, bad := range []string{"ROLESENV_", "rolesenv exits", "exit code"} {
			if bytes.Contains(src, []byte(bad)) {
				t.Errorf("%s speaks of the command: %s", name, bad)
			}
		}
		if m := regexp.MustCompile(`--[a-z]`).Find(src); m != nil {
			t.Errorf("%s names a command-line flag: %s", name, m)
		}
	}
}
