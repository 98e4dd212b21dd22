package inject

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/rolesenv/rolesenv/internal/awsdev"
	"github.com/rolesenv/rolesenv/internal/devpki"
	"github.com/rolesenv/rolesenv/signer"
)

const opCreateSession = "rolesanywhere:CreateSession"

// raCredentials is Roles Anywhere against the emulator: the signer's
// client calls CreateSession, and the SDK's credentials cache keeps the
// session (the cache implements Invalidate, as rolesenv's provider does).
func raCredentials(t *testing.T, s *awsdev.Server, policy awsdev.Policy) aws.CredentialsProvider {
	t.Helper()
	ca := must[*devpki.Cert](t)(devpki.NewCA(devpki.Options{CommonName: "watch test CA"}))
	leaf := must[*devpki.Cert](t)(ca.Leaf(devpki.Options{CommonName: "watcher"}))
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, leaf.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, leaf.KeyPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	id := must[*signer.Identity](t)(signer.LoadFiles(signer.LoadOptions{Certificate: certFile, PrivateKey: keyFile}))
	role := s.CreateRole("reader", awsdev.RoleOptions{Policy: policy})
	anchor := s.CreateTrustAnchor(ca.Cert, awsdev.TrustAnchorOptions{})
	profile := s.CreateProfile(awsdev.ProfileOptions{RoleARNs: []string{role}})
	client := must[*signer.Client](t)(signer.NewClient(id, signer.Config{TrustAnchorARN: anchor, ProfileARN: profile, RoleARN: role,
		Region: s.Region(), Endpoint: s.URL(), CABundle: s.CAPEM()}))
	return aws.NewCredentialsCache(aws.CredentialsProviderFunc(func(ctx context.Context) (aws.Credentials, error) {
		c, err := client.CreateSession(ctx)
		if err != nil {
			return aws.Credentials{}, err
		}
		return c.AWS(), nil
	}))
}

// TestWatchRenewsRejectedCredentials: session credentials that AWS
// expired early (or revoked) are dropped once per episode and the next
// check, at once, signs with a new session: exactly one CreateSession,
// the checks recover, nothing reaches the command. A second episode
// renews again. Access denied by a policy renews nothing.
func TestWatchRenewsRejectedCredentials(t *testing.T) {
	s, cfg := startDev(t, awsdev.AllowAll)
	cfg.Credentials = raCredentials(t, s, awsdev.AllowAll)
	must[string](t)(s.CreateSecret("app/api", "SNTL-k1"))
	must[int64](t)(s.PutParameter("/app/flag", "String", "SNTL-on"))
	wt := newWatchTest(t, s, cfg, File{Name: "app.env", Data: []byte("API=sm://app/api\nFLAG=ssm:///app/flag\n")})
	wt.start()
	wt.step()
	for episode := 1; episode <= 2; episode++ {
		s.ResetCalls()
		s.ExpireCredentials()
		if d := wt.step(); d != 0 {
			t.Errorf("episode %d: after the credentials were dropped the next check comes after %v, want at once", episode, d)
		}
		if d := wt.step(); d != time.Minute {
			t.Errorf("episode %d: the check with new credentials did not recover (next wait %v)", episode, d)
		}
		wt.step()
		if n := s.Calls(opCreateSession); n != 1 {
			t.Errorf("episode %d: %d CreateSession calls, want 1", episode, n)
		}
		wt.noChange()
		if n := wt.logs.count("watch recovered"); n != episode {
			t.Errorf("episode %d: %d recoveries", episode, n)
		}
		if n := wt.logs.count("AWS rejected the credentials; dropping them to obtain new ones"); n != episode {
			t.Errorf("episode %d: %d renewals logged", episode, n)
		}
	}
	if !strings.Contains(lastLine(wt.logs.String(), "watch failed"), "code=ExpiredTokenException") {
		t.Errorf("the warning does not name the cause: %s", lastLine(wt.logs.String(), "watch failed"))
	}

	// A policy that denies: new credentials would get the same answer.
	s.ResetCalls()
	if err := s.SetRolePolicy("reader", awsdev.Policy{}); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		if d := wt.step(); d == 0 || d == time.Minute {
			t.Errorf("denied access: next check after %v, want a back-off", d)
		}
	}
	if n := s.Calls(opCreateSession); n != 0 {
		t.Errorf("access denied by policy made %d CreateSession calls", n)
	}
	if err := s.SetRolePolicy("reader", awsdev.AllowAll); err != nil {
		t.Fatal(err)
	}
	must[string](t)(s.PutSecretValue("app/api", "SNTL-k2"))
	wt.step()
	if c := wt.change(); envVal(t, c.Env, "API") != "SNTL-k2" {
		t.Error("a rotation after the episodes did not apply")
	}
}

// countingKeys hands out a key AWS does not know until it has been asked
// good times, then the real one; it counts the requests.
type countingKeys struct {
	id, secret string
	bad        int64 // how many first answers are an unknown key
	asked      atomic.Int64
}

func (c *countingKeys) Retrieve(context.Context) (aws.Credentials, error) {
	if c.asked.Add(1) <= c.bad {
		return aws.Credentials{AccessKeyID: "AKIAUNKNOWNUNKNOWN00", SecretAccessKey: "unknown", Source: "test"}, nil
	}
	return aws.Credentials{AccessKeyID: c.id, SecretAccessKey: c.secret, Source: "test"}, nil
}

// TestWatchRenewsOncePerEpisode: credentials that stay rejected after
// one renewal are not dropped again in the same episode (no storm of
// credential requests): the checks back off.
func TestWatchRenewsOncePerEpisode(t *testing.T) {
	s, cfg := startDev(t, awsdev.AllowAll)
	id, secret := s.CreateUser("keys", awsdev.AllowAll)
	keys := &countingKeys{id: id, secret: secret}
	cfg.Credentials = aws.NewCredentialsCache(keys)
	must[string](t)(s.CreateSecret("app/api", "SNTL-k1"))
	wt := newWatchTest(t, s, cfg, File{Name: "app.env", Data: []byte("API=sm://app/api\n")})
	wt.start()
	wt.step()
	keys.asked.Store(0)
	keys.bad = 100
	cfg.Credentials.(*aws.CredentialsCache).Invalidate()
	var waits []time.Duration
	for range 5 {
		waits = append(waits, wt.step())
	}
	if waits[0] != 0 || waits[1] != 1500*time.Millisecond || waits[4] != 12*time.Second {
		t.Errorf("waits %v: want at once after the one renewal, then the back-off", waits)
	}
	if n := keys.asked.Load(); n != 2 {
		t.Errorf("credentials asked for %d times in one episode, want 2 (the first, one renewal)", n)
	}
	if n := wt.logs.count("watch failed; the command keeps its environment"); n != 1 {
		t.Errorf("%d warnings for one episode with one cause", n)
	}
	if !strings.Contains(lastLine(wt.logs.String(), "watch failed"), "code=UnrecognizedClientException") {
		t.Errorf("warning: %s", lastLine(wt.logs.String(), "watch failed"))
	}
}

// TestResolveRenewsRejectedCredentials: at start-up, references that
// failed because AWS rejected the cached credentials are fetched once
// more with new ones; rejected again, they fail as before, after one
// renewal only. Without a cache to drop, nothing is tried again.
func TestResolveRenewsRejectedCredentials(t *testing.T) {
	s, cfg := startDev(t, awsdev.AllowAll)
	id, secret := s.CreateUser("keys", awsdev.AllowAll)
	must[string](t)(s.CreateSecret("app/api", "SNTL-k1"))
	must[int64](t)(s.PutParameter("/app/flag", "String", "SNTL-on"))
	tm := must[*Template](t)(Parse([]File{{Name: "app.env", Data: []byte("API=sm://app/api\nFLAG=ssm:///app/flag\n")}}, Options{CleanEnv: true}))
	for _, c := range []struct {
		name   string
		bad    int64
		cached bool
		ok     bool
		asked  int64
	}{
		{"renewed", 1, true, true, 2},
		{"rejected again", 100, true, false, 2},
		{"no cache", 100, false, false, 2}, // one retrieve per client: no second round
	} {
		keys := &countingKeys{id: id, secret: secret, bad: c.bad}
		cfg.Credentials = keys
		if c.cached {
			cfg.Credentials = aws.NewCredentialsCache(keys)
		}
		r := &Resolver{Config: cfg}
		env, _, err := r.Resolve(context.Background(), tm)
		if (err == nil) != c.ok {
			t.Errorf("%s: Resolve: %v", c.name, err)
		}
		if c.ok && err == nil && envVal(t, env, "API") != "SNTL-k1" {
			t.Errorf("%s: wrong value", c.name)
		}
		if !c.ok && (err == nil || !strings.Contains(err.Error(), "UnrecognizedClientException")) {
			t.Errorf("%s: error %v does not name the cause", c.name, err)
		}
		if n := keys.asked.Load(); n != c.asked {
			t.Errorf("%s: credentials asked for %d times, want %d", c.name, n, c.asked)
		}
	}
}

// TestCredentialsRejectedCodes: every code that classifies as denied is
// sorted into "the credentials are no longer good" (drop them) or "a
// policy denies" (new credentials would not help). A denied code added
// later must be sorted here too.
func TestCredentialsRejectedCodes(t *testing.T) {
	rejected := []string{"ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId", "UnrecognizedClientException",
		"InvalidSignatureException", "SignatureDoesNotMatch"}
	policy := []string{"AccessDeniedException", "AccessDenied", "NotAuthorized", "AuthFailure", "IncompleteSignature",
		"MissingAuthenticationToken", "DecryptionFailure", "KMSAccessDeniedException"}
	for code := range deniedCodes {
		if !slices.Contains(rejected, code) && !slices.Contains(policy, code) {
			t.Errorf("denied code %s is not sorted by this test", code)
		}
	}
	for _, c := range rejected {
		if !credentialsRejected(c) {
			t.Errorf("%s: the credentials would not be renewed", c)
		}
	}
	for _, c := range append(policy, "", "ThrottlingException", "ResourceNotFoundException", "InternalServiceError") {
		if credentialsRejected(c) {
			t.Errorf("%s: the credentials would be dropped for no use", c)
		}
	}
}

// TestWatchWarnsNewCause: the warning of an episode names its cause; when
// the cause changes the new one is warned about, each cause once per
// episode, and MaxStale's error names the latest.
func TestWatchWarnsNewCause(t *testing.T) {
	s, cfg := startDev(t, awsdev.AllowAll)
	must[string](t)(s.CreateSecret("app/api", "SNTL-k1"))
	wt := newWatchTest(t, s, cfg, File{Name: "app.env", Data: []byte("API=sm://app/api\n")})
	wt.w.MaxStale = time.Hour
	wt.start()
	wt.step()
	const warn, again = "watch failed; the command keeps its environment", "watch failing for another reason; the command keeps its environment"
	s.SetErrorRate("*", 1, awsdev.FaultThrottle)
	wt.step()
	wt.step()
	s.SetErrorRate("*", 0, 0)
	if err := s.SetUserPolicy("app", awsdev.Policy{}); err != nil {
		t.Fatal(err)
	}
	wt.step()
	wt.step()
	if err := s.SetUserPolicy("app", awsdev.AllowAll); err != nil {
		t.Fatal(err)
	}
	s.SetErrorRate("*", 1, awsdev.FaultThrottle)
	wt.step()
	if n := wt.logs.count(warn); n != 1 {
		t.Errorf("%d episode warnings, want 1", n)
	}
	if n := wt.logs.count(again); n != 1 || !strings.Contains(lastLine(wt.logs.String(), again), "code=AccessDeniedException") {
		t.Errorf("%d warnings of a new cause, want 1 naming AccessDeniedException: %s", n, lastLine(wt.logs.String(), again))
	}
	if !strings.Contains(wt.w.lastErr, "Throttling") {
		t.Errorf("the last failure is %q, want the current cause", wt.w.lastErr)
	}
	s.SetErrorRate("*", 0, 0)
	wt.step()
	wt.noChange()
	if wt.logs.count("watch recovered") != 1 {
		t.Error("no recovery")
	}
}

// specialFiles makes, at path, each kind of file that is not a regular
// file, the way an attacker or an accident would put it there (renamed
// over the file, so the watcher sees a new file).
var specialFiles = []struct {
	name string
	what string
	make func(t *testing.T, path string)
}{
	{"named pipe", "a named pipe", func(t *testing.T, path string) {
		tmp := path + ".fifo"
		if err := syscall.Mkfifo(tmp, 0o600); err != nil {
			t.Fatal(err)
		}
		rename(t, tmp, path)
	}},
	{"symlink to a named pipe", "a named pipe", func(t *testing.T, path string) {
		fifo := filepath.Join(t.TempDir(), "fifo")
		if err := syscall.Mkfifo(fifo, 0o600); err != nil {
			t.Fatal(err)
		}
		symlinkOver(t, fifo, path)
	}},
	{"directory", "a directory", func(t *testing.T, path string) {
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(path, 0o700); err != nil {
			t.Fatal(err)
		}
	}},
	{"dev-zero", "a character device", func(t *testing.T, path string) { symlinkOver(t, "/dev/zero", path) }},
	{"dev-null", "a character device", func(t *testing.T, path string) { symlinkOver(t, "/dev/null", path) }},
	{"dev-ptmx (a terminal)", "a character device", func(t *testing.T, path string) {
		if _, err := os.Stat("/dev/ptmx"); err != nil {
			t.Skip("no /dev/ptmx")
		}
		symlinkOver(t, "/dev/ptmx", path)
	}},
}

func rename(t *testing.T, from, to string) {
	t.Helper()
	if err := os.Rename(from, to); err != nil {
		t.Fatal(err)
	}
}

func symlinkOver(t *testing.T, target, path string) {
	t.Helper()
	tmp := path + ".link"
	if err := os.Symlink(target, tmp); err != nil {
		t.Fatal(err)
	}
	rename(t, tmp, path)
}

// restore puts a regular file back at path, whatever is there.
func restore(t *testing.T, path, data string) {
	t.Helper()
	if fi, err := os.Lstat(path); err == nil && fi.IsDir() {
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, path, data)
}

// TestWatchRefusesSpecialFiles: a watched env file replaced by anything
// but a regular file is refused with one warning that says what it is;
// the command keeps its environment, rotation still applies, and the
// file is used again once it is a regular file.
func TestWatchRefusesSpecialFiles(t *testing.T) {
	for _, sf := range specialFiles {
		t.Run(sf.name, func(t *testing.T) {
			s, cfg := startDev(t, awsdev.AllowAll)
			must[string](t)(s.CreateSecret("app/api", "SNTL-k1"))
			path := filepath.Join(t.TempDir(), "app.env")
			writeFile(t, path, "A=one\nB=sm://app/api\n")
			files := []File{{Name: path, Data: []byte("A=one\nB=sm://app/api\n")}}
			wt := newWatchTest(t, s, cfg, files...)
			wt.w.src.files = files
			wt.w.Interval = 10 * time.Second
			wt.start()
			wt.step()
			sf.make(t, path)
			wt.step()
			wt.step()
			wt.noChange()
			const warn = "env file cannot be read; the command keeps its environment"
			if n := wt.logs.count(warn); n != 1 || !strings.Contains(lastLine(wt.logs.String(), warn), "not a regular file ("+sf.what+")") {
				t.Fatalf("%d warnings, want one saying %q: %s", n, sf.what, lastLine(wt.logs.String(), warn))
			}
			must[string](t)(s.PutSecretValue("app/api", "SNTL-k2"))
			c := untilChange(wt)
			if envVal(t, c.Env, "B") != "SNTL-k2" || envVal(t, c.Env, "A") != "one" {
				t.Error("rotation did not apply while the file was refused")
			}
			restore(t, path, "A=two\nB=sm://app/api\n")
			if c := untilChange(wt); envVal(t, c.Env, "A") != "two" {
				t.Error("the regular file was not used again")
			}
			if wt.logs.count("env file readable again") != 1 {
				t.Error("no line for the file coming back")
			}
		})
	}
}

// untilChange fires timers until a change comes, at most 60.
func untilChange(wt *watchTest) Change {
	wt.t.Helper()
	for range 60 {
		if len(wt.out) > 0 {
			return wt.change()
		}
		wt.step()
	}
	wt.t.Fatal("no change within 60 timers")
	return Change{}
}

// TestReadFilesRefusesSpecialFiles: at start-up too, only regular files
// are read (a named pipe would block start-up); standard input is "-".
func TestReadFilesRefusesSpecialFiles(t *testing.T) {
	for _, sf := range specialFiles {
		t.Run(sf.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "app.env")
			writeFile(t, path, "A=one\n")
			sf.make(t, path)
			_, err := ReadFiles([]string{path}, nil)
			var re *ResolveError
			if !errors.As(err, &re) || !re.Config() || !errors.Is(err, errNotRegular) || !strings.Contains(err.Error(), sf.what) {
				t.Fatalf("ReadFiles: %v, want a configuration error saying %s", err, sf.what)
			}
		})
	}
	files, err := ReadFiles([]string{"-"}, strings.NewReader("A=one\n"))
	if err != nil || string(files[0].Data) != "A=one\n" {
		t.Errorf("standard input: %v", err)
	}
}

// TestWatchLookBlocks: a look at an env file that never returns (a hung
// network file system) holds up nothing: after the bound the look counts
// as failed (one warning), the file is not looked at again while the look
// hangs (one read in flight), scheduled checks still apply rotations,
// MaxStale still ends Run, and Run ends with its context.
func TestWatchLookBlocks(t *testing.T) {
	s, cfg := startDev(t, awsdev.AllowAll)
	must[string](t)(s.CreateSecret("app/api", "SNTL-k1"))
	path := filepath.Join(t.TempDir(), "app.env")
	writeFile(t, path, "B=sm://app/api\n")
	files := []File{{Name: path, Data: []byte("B=sm://app/api\n")}}
	wt := newWatchTest(t, s, cfg, files...)
	wt.w.src.files = files
	wt.w.Interval = 10 * time.Second
	wt.w.MaxStale = 30 * time.Second
	var block atomic.Bool
	var looks atomic.Int64
	started := make(chan struct{}, 1)
	hang := make(chan struct{})
	t.Cleanup(func() { close(hang) })
	wt.w.lookFile = func(name string, prev os.FileInfo) fileLook {
		if block.Load() {
			looks.Add(1)
			started <- struct{}{}
			<-hang
		}
		return lookAt(name, prev)
	}
	// Every wait, busy looks or not: the hanging look keeps the watcher
	// from being idle.
	waits := make(chan int, 1)
	wt.w.waiting = func(busy int) { waits <- busy }
	wt.w.idle = nil
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- wt.w.Run(ctx, wt.out) }()
	wait := func() int {
		t.Helper()
		select {
		case b := <-waits:
			return b
		case err := <-done:
			t.Fatalf("Run returned %v", err)
		case <-time.After(watchDeadline):
			t.Fatal("the watcher did not come back to waiting")
		}
		return 0
	}
	fire := func() {
		t.Helper()
		if _, ok := wt.clk.fireNext(); !ok {
			t.Fatal("no timer set")
		}
	}
	wait()
	block.Store(true)
	fire() // the first look at the file: it hangs
	select {
	case <-started:
	case <-time.After(watchDeadline):
		t.Fatal("the look did not start")
	}
	if b := wait(); b != 1 {
		t.Fatalf("%d looks busy, want 1", b)
	}
	must[string](t)(s.PutSecretValue("app/api", "SNTL-k2"))
	const warn = "env file cannot be read; the command keeps its environment"
	for len(wt.out) == 0 || wt.logs.count(warn) == 0 {
		fire()
		wait()
		if wt.clk.Now().Sub(newFakeClock().now) > time.Minute {
			t.Fatal("no rotation within a minute while a look hangs")
		}
	}
	if c := wt.change(); envVal(t, c.Env, "B") != "SNTL-k2" {
		t.Error("wrong rotation")
	}
	if n := wt.logs.count(warn); n != 1 || !strings.Contains(lastLine(wt.logs.String(), warn), "did not finish within") {
		t.Errorf("%d warnings for the hung look: %s", n, lastLine(wt.logs.String(), warn))
	}
	if n := looks.Load(); n != 1 {
		t.Errorf("%d looks started at the hung file, want 1 in flight", n)
	}
	// MaxStale still ends Run.
	if err := s.SetUserPolicy("app", awsdev.Policy{}); err != nil {
		t.Fatal(err)
	}
	for {
		fire()
		select {
		case <-waits:
			continue
		case err := <-done:
			var se *StaleError
			if !errors.As(err, &se) {
				t.Fatalf("Run returned %v, want a *StaleError", err)
			}
		case <-time.After(watchDeadline):
			t.Fatal("neither a wait nor the end of Run")
		}
		break
	}
	cancel()
	// Run ends with its context while a look hangs.
	ctx, cancel = context.WithCancel(context.Background())
	go func() { done <- wt.w.Run(ctx, wt.out) }()
	cancel()
	select {
	case <-done:
	case <-time.After(watchDeadline):
		t.Fatal("Run did not end with its context while a look hangs")
	}
}
