package credcache

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rolesenv/rolesenv/signer"
	"golang.org/x/sys/unix"
)

// sentinel is in every secret the tests store: it must never reach a log
// line or an error.
const sentinel = "SENTINEL"

var (
	t0 = time.Date(2029, 12, 31, 0, 0, 0, 0, time.UTC)
	// keyA and keyB are the keys of testdata/v1.json and v2.json.
	keyA = sha256Hex("a")
	keyB = sha256Hex("b")
)

func sha256Hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// clock is an injected clock tests move by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// logBuf is a log that tests read after the code under test returned.
type logBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}
func (l *logBuf) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.buf.String() }

func newCreds(id string, exp time.Time) *signer.Credentials {
	return &signer.Credentials{AccessKeyID: "ASIA" + id, SecretAccessKey: "secret-" + id + "-" + sentinel,
		SessionToken: "token-" + id + "-" + sentinel, Expiration: exp}
}

func mustOpen(t *testing.T, path string, opts Options) *File {
	t.Helper()
	c, err := Open(context.Background(), path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return c
}

func TestStoreAndReuse(t *testing.T) {
	clk := &clock{now: t0}
	path := filepath.Join(t.TempDir(), "cache.json")
	c := mustOpen(t, path, Options{Now: clk.Now})
	if _, ok := c.Get(keyA); ok {
		t.Fatal("a new cache has an entry")
	}
	want := newCreds("A", t0.Add(time.Hour))
	if err := c.Put(keyA, want); err != nil {
		t.Fatal(err)
	}
	c.Close()
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v", st.Mode(), err)
	}
	data, _ := os.ReadFile(path)
	if !bytes.HasPrefix(data, markerPrefix) {
		t.Fatalf("the file does not start with the marker: %.40q", data)
	}

	c = mustOpen(t, path, Options{Now: clk.Now})
	defer c.Close()
	got, ok := c.Get(keyA)
	if !ok || got.AccessKeyID != want.AccessKeyID || got.SecretAccessKey != want.SecretAccessKey ||
		got.SessionToken != want.SessionToken || !got.Expiration.Equal(want.Expiration) {
		t.Fatalf("Get: %v %+v", ok, got.AWS())
	}
	if _, ok := c.Get(keyB); ok {
		t.Error("another identity got an entry")
	}
	// Until ReuseMargin before the expiry, not after.
	clk.Add(time.Hour - ReuseMargin - time.Second)
	if _, ok := c.Get(keyA); !ok {
		t.Error("not reused with more than ReuseMargin left")
	}
	clk.Add(time.Second)
	if _, ok := c.Get(keyA); ok {
		t.Error("reused with ReuseMargin left")
	}
}

// One entry per identity; expired entries go when the file is rewritten.
func TestPutReplacesAndPrunes(t *testing.T) {
	clk := &clock{now: t0}
	path := filepath.Join(t.TempDir(), "cache.json")
	c := mustOpen(t, path, Options{Now: clk.Now})
	defer c.Close()
	for _, p := range []struct {
		key string
		exp time.Duration
	}{{keyA, time.Hour}, {keyA, 2 * time.Hour}, {keyB, 30 * time.Minute}} {
		if err := c.Put(p.key, newCreds(p.key[:4], t0.Add(p.exp))); err != nil {
			t.Fatal(err)
		}
	}
	if len(c.entries) != 2 {
		t.Fatalf("%d entries for two identities", len(c.entries))
	}
	clk.Add(45 * time.Minute) // keyB has expired
	if err := c.Put(sha256Hex("c"), newCreds("C", clk.Now().Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	entries, err := decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := entries[keyB]; ok || len(entries) != 2 {
		t.Errorf("after pruning: %d entries, the expired one kept: %v", len(entries), ok)
	}
}

// TestFileClasses: every kind of file found at the cache's path is either
// refused and left byte for byte as it was, with its modification time,
// or, when it carries the cache's marker (or is empty), used or started
// anew. A user's file is never rewritten.
func TestFileClasses(t *testing.T) {
	v1, _ := os.ReadFile("testdata/v1.json")
	v2, _ := os.ReadFile("testdata/v2.json")
	ini, _ := os.ReadFile("testdata/aws-credentials.ini")
	junk := make([]byte, 4096)
	rng := rand.NewChaCha8([32]byte{7})
	rng.Read(junk)
	junk[0] = 0xff // not JSON whatever the seed
	const (
		refused = "refused"
		rebuilt = "rebuilt" // started anew, with a warning
		read    = "read"    // entries kept
	)
	for _, tc := range []struct {
		name    string
		content []byte
		want    string
	}{
		{"empty", nil, read},
		{"user JSON with version", []byte(`{"version": "2.1", "name": "my app settings"}`), refused},
		{"user JSON with version 1", []byte(`{"version":1,"entries":{"a":"b"}}`), refused},
		{"first format with no entry", []byte(`{"version":1,"entries":{}}`), refused},
		{"first format with another member", append(v1[:len(v1)-1:len(v1)-1], []byte(`,"mine":true}`)...), refused},
		{"first format cut short", v1[:len(v1)/2], refused},
		{"first format whole", v1, read},
		{"JSON array", []byte(`[{"version":1,"entries":{}}]`), refused},
		{"empty JSON array", []byte(`[]`), refused},
		{"JSON null", []byte(`null`), refused},
		{"AWS credentials file", ini, refused},
		{"blank line", []byte("\n"), refused},
		{"binary junk", junk, refused},
		{"huge file", bytes.Repeat([]byte(`{"version":1}`), maxFile/8), refused},
		{"ours", v2, read},
		{"ours reformatted", reformat(t, v2), read},
		{"ours cut short", v2[:len(v2)/2], rebuilt},
		{"ours, the marker alone", markerPrefix, rebuilt},
		{"ours with another version", []byte(`{"rolesenv":"credential-cache","version":3,"entries":{}}`), rebuilt},
		{"ours with a malformed entry", []byte(`{"rolesenv":"credential-cache","version":2,"entries":{"x":{}}}`), rebuilt},
		{"ours, huge", append(append([]byte{}, markerPrefix...), bytes.Repeat([]byte(" "), maxFile)...), rebuilt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "cache.json")
			if err := os.WriteFile(path, tc.content, 0o600); err != nil {
				t.Fatal(err)
			}
			past := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
			if err := os.Chtimes(path, past, past); err != nil {
				t.Fatal(err)
			}
			var log logBuf
			clk := &clock{now: t0}
			c, err := Open(context.Background(), path, Options{Now: clk.Now, Logger: slog.New(slog.NewTextHandler(&log, nil))})
			if tc.want == refused {
				if c != nil {
					c.Close()
				}
				var fe *FileError
				if !errors.As(err, &fe) || !errors.Is(err, ErrNotCache) || fe.Hint() == "" {
					t.Fatalf("Open: %v, want a refusal", err)
				}
				after, _ := os.ReadFile(path)
				st, _ := os.Stat(path)
				if !bytes.Equal(after, tc.content) || !st.ModTime().Equal(past) {
					t.Errorf("the refused file was changed (%d bytes, mtime %v)", len(after), st.ModTime())
				}
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer c.Close()
			damaged := strings.Contains(log.String(), "damaged; starting it anew")
			if damaged != (tc.want == rebuilt) {
				t.Errorf("warned of damage: %v; log %q", damaged, log.String())
			}
			if tc.want == read && len(tc.content) > 0 {
				if got, ok := c.Get(keyA); !ok || !strings.HasSuffix(got.SecretAccessKey, sentinel) {
					t.Errorf("the entry of %s was lost", tc.name)
				}
			}
			if err := c.Put(keyB, newCreds("B", t0.Add(time.Hour))); err != nil {
				t.Fatal(err)
			}
			after, _ := os.ReadFile(path)
			entries, err := decode(after)
			if !bytes.HasPrefix(after, markerPrefix) || err != nil {
				t.Fatalf("rewritten as %.60q: %v", after, err)
			}
			if _, ok := entries[keyA]; ok != (tc.want == read && len(tc.content) > 0) {
				t.Errorf("the old entry kept: %v", ok)
			}
		})
	}
}

func reformat(t *testing.T, data []byte) []byte {
	var out bytes.Buffer
	out.WriteString("\n ")
	out.Write(bytes.ReplaceAll(data, []byte(`,"`), []byte(", \"")))
	return out.Bytes()
}

// TestRefusedFiles: links, other files than regular ones, files others can
// read or that are another user's are refused and left as they are.
func TestRefusedFiles(t *testing.T) {
	const precious = "[default]\naws_access_key_id = AKIAPRECIOUS\n"
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, path, target string)
		want  error
	}{
		{"symbolic link", func(t *testing.T, path, target string) { must(t, os.Symlink(target, path)) }, ErrSymlink},
		{"dangling symbolic link", func(t *testing.T, path, target string) {
			must(t, os.Remove(target))
			must(t, os.Symlink(target, path))
		}, ErrSymlink},
		{"hard link", func(t *testing.T, path, target string) { must(t, os.Link(target, path)) }, ErrHardLink},
		{"readable by others", func(t *testing.T, path, _ string) {
			must(t, os.WriteFile(path, nil, 0o600))
			must(t, os.Chmod(path, 0o644))
		}, ErrExposed},
		{"directory", func(t *testing.T, path, _ string) { must(t, os.Mkdir(path, 0o700)) }, ErrNotRegular},
		{"FIFO", func(t *testing.T, path, _ string) { must(t, unix.Mkfifo(path, 0o600)) }, ErrNotRegular},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			target := filepath.Join(dir, "precious")
			must(t, os.WriteFile(target, []byte(precious), 0o600))
			path := filepath.Join(dir, "cache.json")
			tc.setup(t, path, target)
			c, err := Open(context.Background(), path, Options{})
			if c != nil {
				c.Close()
			}
			var fe *FileError
			if !errors.Is(err, tc.want) || !errors.As(err, &fe) || !fe.Config() || fe.Hint() == "" && tc.want != ErrNotRegular {
				t.Fatalf("Open: %v, want %v with a hint", err, tc.want)
			}
			if got, err := os.ReadFile(target); tc.name == "dangling symbolic link" {
				if err == nil {
					t.Error("the link's target was created")
				}
			} else if string(got) != precious {
				t.Errorf("the target was changed: %q", got)
			}
		})
	}
}

// A cache file another user created first, in a directory others may
// write, is refused with the advice to keep the cache in a directory of
// one's own. Only root can give a file away.
func TestAnotherUsersFile(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to make a file of another user")
	}
	dir := t.TempDir()
	must(t, os.Chmod(dir, 0o1777))
	path := filepath.Join(dir, "cache.json")
	must(t, os.WriteFile(path, []byte("theirs"), 0o600))
	must(t, os.Chown(path, 65534, 65534))
	for _, err := range []error{
		func() error { _, err := Open(context.Background(), path, Options{}); return err }(),
		// Where fs.protected_regular is set, the open itself fails.
		openError(path, &os.PathError{Op: "open", Path: path, Err: unix.EACCES}),
	} {
		var fe *FileError
		if !errors.Is(err, ErrOtherOwner) || !errors.As(err, &fe) {
			t.Fatalf("error %v, want %v", err, ErrOtherOwner)
		}
		if h := fe.Hint(); !strings.Contains(h, "$XDG_RUNTIME_DIR") || !strings.Contains(h, "never /tmp") {
			t.Errorf("hint %q", h)
		}
		if !strings.Contains(err.Error(), "belongs to another user (uid 65534)") {
			t.Errorf("error %q", err)
		}
	}
	if got, _ := os.ReadFile(path); string(got) != "theirs" {
		t.Errorf("their file was changed: %q", got)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// holdLock takes the cache file's lock as another caller would, through
// another open file, until the returned function is called.
func holdLock(t *testing.T, path string) (release func()) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release = func() { once.Do(func() { f.Close() }) }
	t.Cleanup(release)
	return release
}

// noticeHandler tells a channel when the lock-wait warning is logged.
type noticeHandler struct {
	slog.Handler
	seen chan struct{}
	once sync.Once
}

func (h *noticeHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "waiting for the cache file's lock" {
		h.once.Do(func() { close(h.seen) })
	}
	return h.Handler.Handle(ctx, r)
}

// While another process holds the lock, Open waits, logs who holds it, and
// gives up with a LockError when the deadline passes.
func TestLockDeadline(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cache.json")
	holdLock(t, path)
	var log logBuf
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, err := Open(ctx, path, Options{Logger: slog.New(slog.NewTextHandler(&log, nil)), WaitNotice: time.Millisecond})
	var le *LockError
	if !errors.As(err, &le) || !le.Timeout() || !le.Unavailable() {
		t.Fatalf("Open: %v, want a LockError that timed out", err)
	}
	holder := fmt.Sprintf("pid %d", os.Getpid())
	if le.Holder.PID != os.Getpid() || !strings.Contains(err.Error(), "timed out waiting for the cache lock held by another process ("+holder) {
		t.Errorf("holder %+v, error %q", le.Holder, err)
	}
	if l := log.String(); strings.Count(l, "waiting for the cache file's lock") != 1 || !strings.Contains(l, holder) {
		t.Errorf("log %q: want one warning naming the holder", l)
	}
}

// A cancelled wait is not a timeout.
func TestLockCancelled(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cache.json")
	holdLock(t, path)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Open(ctx, path, Options{})
	var le *LockError
	if !errors.As(err, &le) || le.Timeout() || le.Unavailable() || !errors.Is(err, context.Canceled) {
		t.Fatalf("Open: %v", err)
	}
}

// Open takes the lock as soon as its holder lets it go, and then sees
// what the holder wrote.
func TestLockHandedOver(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cache.json")
	first := mustOpen(t, path, Options{})
	h := &noticeHandler{Handler: slog.NewTextHandler(&logBuf{}, nil), seen: make(chan struct{})}
	type result struct {
		c   *File
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := Open(context.Background(), path, Options{Logger: slog.New(h), WaitNotice: time.Millisecond, Now: func() time.Time { return t0 }})
		done <- result{c, err}
	}()
	select {
	case <-h.seen: // the second caller is waiting
	case r := <-done:
		t.Fatalf("Open did not wait for the lock: %v", r.err)
	case <-time.After(time.Minute):
		t.Fatal("no wait was logged")
	}
	must(t, first.Put(keyA, newCreds("A", t0.Add(time.Hour))))
	first.Close()
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatal(r.err)
		}
		defer r.c.Close()
		if _, ok := r.c.Get(keyA); !ok {
			t.Error("the second caller does not see the first one's entry")
		}
	case <-time.After(time.Minute):
		t.Fatal("Open still waits after the lock was released")
	}
}

// No log line, error or formatted value holds a credential.
func TestNoCredentialLeaks(t *testing.T) {
	var log logBuf
	logger := slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	opts := Options{Logger: logger, Now: func() time.Time { return t0 }, WaitNotice: time.Millisecond}
	path := filepath.Join(t.TempDir(), "cache.json")
	v2, _ := os.ReadFile("testdata/v2.json")
	must(t, os.WriteFile(path, v2, 0o600))
	c := mustOpen(t, path, opts)
	must(t, c.Put(keyB, newCreds("B", t0.Add(time.Hour))))
	shown := fmt.Sprintf("%v %+v %#v %s", c.entries, c.entries, c.entries, c.entries[keyA])
	c.Close()
	var errs []string
	must(t, os.WriteFile(path, v2[:len(v2)-20], 0o600)) // damaged: logged
	mustOpen(t, path, opts).Close()
	holdLock(t, path)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := Open(ctx, path, opts); err != nil { // a wait, logged, then an error
		errs = append(errs, err.Error())
	}
	for _, s := range append(errs, log.String(), shown) {
		if strings.Contains(s, sentinel) {
			t.Errorf("a credential leaked: %q", s)
		}
	}
	if len(errs) == 0 || !strings.Contains(log.String(), "damaged") {
		t.Errorf("the paths that log and fail were not taken: errs %q, log %q", errs, log.String())
	}
}

func TestFindHolder(t *testing.T) {
	const locks = `1: POSIX  ADVISORY  WRITE 100 08:01:42 0 EOF
2: FLOCK  ADVISORY  WRITE 200 08:01:99 0 EOF
2: -> FLOCK  ADVISORY  WRITE 300 08:01:42 0 EOF
3: FLOCK  ADVISORY  WRITE 400 08:01:42 0 EOF
`
	h := findHolder(newScanner(locks), "08:01:42")
	if h.PID != 400 {
		t.Errorf("holder %+v, want pid 400", h)
	}
	if h := findHolder(newScanner(locks), "08:02:42"); h != (Holder{}) || h.String() != "another process" {
		t.Errorf("holder %+v of an unknown file", h)
	}
}

func newScanner(s string) *bufio.Scanner { return bufio.NewScanner(strings.NewReader(s)) }
