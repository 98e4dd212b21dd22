package secretfiles

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
)

func open(t *testing.T, o Options) *Dir {
	t.Helper()
	d, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

// TestWriteAndClose: a new directory is 0700, its files 0400 (or their
// mode) with the contents given; Close removes them and the directory.
func TestWriteAndClose(t *testing.T) {
	parent := t.TempDir()
	d := open(t, Options{Parent: parent})
	fi, err := os.Lstat(d.Path())
	if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 || filepath.Dir(d.Path()) != parent {
		t.Fatalf("directory %s: %v %v", d.Path(), fi.Mode(), err)
	}
	changed, err := d.Write([]File{{Name: "a", Data: []byte("one")}, {Name: "b.pem", Mode: 0o440, Data: []byte("two")}})
	if err != nil || len(changed) != 2 {
		t.Fatalf("Write = %v, %v", changed, err)
	}
	checkFile(t, d.Join("a"), "one", 0o400)
	checkFile(t, d.Join("b.pem"), "two", 0o440)
	changed, err = d.Write([]File{{Name: "a", Data: []byte("one")}, {Name: "b.pem", Mode: 0o440, Data: []byte("2")}})
	if err != nil || len(changed) != 1 || changed[0] != "b.pem" {
		t.Fatalf("second Write = %v, %v", changed, err)
	}
	checkFile(t, d.Join("b.pem"), "2", 0o440)
	// A file no longer given is removed.
	changed, err = d.Write([]File{{Name: "b.pem", Mode: 0o440, Data: []byte("2")}})
	if err != nil || len(changed) != 1 || changed[0] != "a" {
		t.Fatalf("third Write = %v, %v", changed, err)
	}
	if _, err := os.Lstat(d.Join("a")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a file no longer given is still there")
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(d.Path()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("directory still there: %v", err)
	}
}

func checkFile(t *testing.T, path, want string, mode os.FileMode) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != mode {
		t.Errorf("%s: mode %v, want %v", path, fi.Mode(), mode)
	}
	if got, _ := os.ReadFile(path); string(got) != want {
		t.Errorf("%s: %q, want %q", path, got, want)
	}
}

// TestOwner: with an owner, the directory and files are that account's.
func TestOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give files away")
	}
	d := open(t, Options{Parent: t.TempDir(), Owner: true, UID: 65534, GID: 65534})
	if _, err := d.Write([]File{{Name: "k", Data: []byte("v")}}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{d.Path(), d.Join("k")} {
		fi, _ := os.Lstat(p)
		st := fi.Sys().(*syscall.Stat_t)
		if st.Uid != 65534 || st.Gid != 65534 {
			t.Errorf("%s owned by %d:%d", p, st.Uid, st.Gid)
		}
	}
}

// TestNoPartialReads: a reader polling a file in a tight loop sees one
// whole version or the next, never an empty or partial one, through 1,000
// rewrites.
func TestNoPartialReads(t *testing.T) {
	d := open(t, Options{Parent: t.TempDir()})
	version := func(i int) []byte { return bytes.Repeat([]byte{byte('a' + i%26)}, 64<<10) }
	if _, err := d.Write([]File{{Name: "s", Data: version(0)}}); err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	bad, reads := make(chan string, 1), make(chan int, 1)
	go func() {
		n := 0
		for !stop.Load() {
			data, err := os.ReadFile(d.Join("s"))
			n++
			if err != nil || len(data) != 64<<10 || bytes.Count(data, data[:1]) != len(data) {
				select {
				case bad <- "read " + strconv.Itoa(len(data)) + " bytes, err " + strconv.Quote(errString(err)):
				default:
				}
			}
		}
		reads <- n
	}()
	for i := 1; i <= 1000; i++ {
		if _, err := d.Write([]File{{Name: "s", Data: version(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	t.Logf("%d reads", <-reads)
	select {
	case b := <-bad:
		t.Fatal(b)
	default:
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestForeign: a symbolic link or a file that Dir did not write at a
// destination is refused and left alone.
func TestForeign(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "s")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	d := open(t, Options{Dir: dir})
	target := filepath.Join(t.TempDir(), "target")
	must(t, os.WriteFile(target, []byte("keep"), 0o600))
	must(t, os.Symlink(target, filepath.Join(dir, "link")))
	must(t, os.WriteFile(filepath.Join(dir, "theirs"), []byte("keep"), 0o600))
	for _, name := range []string{"link", "theirs"} {
		_, err := d.Write([]File{{Name: name, Data: []byte("secret")}})
		var fe *ForeignError
		if !errors.As(err, &fe) {
			t.Fatalf("%s: err = %v, want a ForeignError", name, err)
		}
	}
	if got, _ := os.ReadFile(target); string(got) != "keep" {
		t.Fatal("the link's target was written")
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "theirs")); string(got) != "keep" {
		t.Fatal("a foreign file was overwritten")
	}
	// A file Dir wrote, then replaced by a link, is refused too.
	if _, err := d.Write([]File{{Name: "mine", Data: []byte("1")}}); err != nil {
		t.Fatal(err)
	}
	must(t, os.Remove(filepath.Join(dir, "mine")))
	must(t, os.Symlink(target, filepath.Join(dir, "mine")))
	if _, err := d.Write([]File{{Name: "mine", Data: []byte("2")}}); err == nil {
		t.Fatal("wrote through a replaced file")
	}
	must(t, d.Close())
	if _, err := os.Lstat(filepath.Join(dir, "theirs")); err != nil {
		t.Fatal("Close removed a foreign file")
	}
	if _, err := os.Lstat(dir); err != nil {
		t.Fatal("Close removed a directory it did not create")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestExistingDirUntouched: an existing directory is used as it is or
// refused, never changed: one that holds files rolesenv did not write
// (say /etc/nginx) is refused with its mode, owner and files as they
// were, with or without an owner to give it to.
func TestExistingDirUntouched(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "etc")
	must(t, os.Mkdir(dir, 0o755))
	must(t, os.Chmod(dir, 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte("keep"), 0o644))
	opts := []Options{{Dir: dir}}
	if os.Geteuid() == 0 {
		opts = append(opts, Options{Dir: dir, Owner: true, UID: 65534, GID: 65534})
	}
	for _, o := range opts {
		_, err := Open(o)
		var fe *ForeignError
		if !errors.As(err, &fe) {
			t.Fatalf("Open(%+v) = %v, want a ForeignError", o, err)
		}
		if _, _, err := Inspect(o); !errors.As(err, &fe) {
			t.Fatalf("Inspect(%+v) = %v, want a ForeignError", o, err)
		}
		fi, err := os.Stat(dir)
		must(t, err)
		st := fi.Sys().(*syscall.Stat_t)
		if fi.Mode().Perm() != 0o755 || int(st.Uid) != os.Geteuid() {
			t.Fatalf("directory changed: mode %v, uid %d", fi.Mode(), st.Uid)
		}
		if got, _ := os.ReadFile(filepath.Join(dir, "nginx.conf")); string(got) != "keep" {
			t.Fatal("a file of the directory changed")
		}
	}
	// An empty one is used, as it is (the owner of the files can enter it).
	empty := filepath.Join(t.TempDir(), "empty")
	must(t, os.Mkdir(empty, 0o711))
	must(t, os.Chmod(empty, 0o711))
	o := Options{Dir: empty}
	if os.Geteuid() == 0 {
		o.Owner, o.UID, o.GID = true, 65534, 65534
	}
	d := open(t, o)
	if _, err := d.Write([]File{{Name: "s", Data: []byte("x")}}); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		// One that the owner of the files could not enter is refused.
		closed := filepath.Join(t.TempDir(), "closed")
		must(t, os.Mkdir(closed, 0o700))
		var fe *ForeignError
		if _, err := Open(Options{Dir: closed, Owner: true, UID: 65534, GID: 65534}); !errors.As(err, &fe) {
			t.Errorf("Open of a root 0700 directory for another owner: %v", err)
		}
	}
	fi, err := os.Stat(empty)
	must(t, err)
	if fi.Mode().Perm() != 0o711 || int(fi.Sys().(*syscall.Stat_t).Uid) != os.Geteuid() {
		t.Fatalf("an existing directory was changed: %v", fi.Mode())
	}
}

// TestLeftoversByIdentity: the next run removes only the files a killed
// run wrote, by identity, and the temporary files it recorded: never a
// file someone else put at a name the run was refused, a file that took
// the place of one it wrote, or a temporary file it did not record.
func TestLeftoversByIdentity(t *testing.T) {
	dead := deadPid(t)
	dir := filepath.Join(t.TempDir(), "named")
	d, err := Open(Options{Dir: dir})
	must(t, err)
	must(t, os.WriteFile(filepath.Join(dir, "theirs"), []byte("keep"), 0o600))
	must(t, os.WriteFile(filepath.Join(dir, ".tmp-operator"), []byte("keep"), 0o600))
	var fe *ForeignError
	if _, err := d.Write([]File{{Name: "theirs", Data: []byte("x")}}); !errors.As(err, &fe) {
		t.Fatalf("Write over a foreign file: %v", err)
	}
	if _, err := d.Write([]File{{Name: "replaced", Data: []byte("x")}, {Name: "mine", Data: []byte("x")}}); err != nil {
		t.Fatal(err)
	}
	// Written aside, then renamed over: a new inode, whatever the file
	// system's reuse of numbers.
	must(t, os.WriteFile(filepath.Join(dir, "aside"), []byte("keep"), 0o600))
	must(t, os.Rename(filepath.Join(dir, "aside"), filepath.Join(dir, "replaced")))
	fakeOwner(t, d, dead)
	// A recorded temporary file, as a run killed while writing leaves.
	data, err := os.ReadFile(filepath.Join(dir, markerName))
	must(t, err)
	m, err := decodeMarker(data)
	must(t, err)
	m.tmps = []string{".tmp-0123456789abcdef"}
	must(t, os.WriteFile(filepath.Join(dir, markerName), m.encode(), 0o600))
	must(t, os.WriteFile(filepath.Join(dir, m.tmps[0]), []byte("x"), 0o600))

	open(t, Options{Dir: dir})
	for _, name := range []string{"theirs", ".tmp-operator", "replaced"} {
		if got, err := os.ReadFile(filepath.Join(dir, name)); err != nil || string(got) != "keep" {
			t.Errorf("%s: %q, %v: the next run removed or changed a file the killed one did not write", name, got, err)
		}
	}
	for _, name := range []string{"mine", m.tmps[0]} {
		if _, err := os.Lstat(filepath.Join(dir, name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: the killed run's file is still there (%v)", name, err)
		}
	}
}

// TestDirChecks: a named directory that is a link, writable by others or
// in use by a running process is refused.
func TestDirChecks(t *testing.T) {
	base := t.TempDir()
	real := filepath.Join(base, "real")
	must(t, os.Mkdir(real, 0o700))
	must(t, os.Symlink(real, filepath.Join(base, "link")))
	if _, err := Open(Options{Dir: filepath.Join(base, "link")}); err == nil {
		t.Error("opened a symbolic link")
	}
	open(t, Options{Dir: real})
	var iu *InUseError
	if _, err := Open(Options{Dir: real}); !errors.As(err, &iu) || iu.PID != os.Getpid() {
		t.Errorf("second Open: %v", err)
	}
	fresh := filepath.Join(base, "fresh") // created by the first Open
	open(t, Options{Dir: fresh})
	if _, err := Open(Options{Dir: fresh}); !errors.As(err, &iu) {
		t.Errorf("second Open of a directory the first created: %v", err)
	}
	wide := filepath.Join(base, "wide")
	must(t, os.Mkdir(wide, 0o777))
	must(t, os.Chmod(wide, 0o777))
	if _, err := Open(Options{Dir: wide}); err == nil {
		t.Error("opened a world-writable directory")
	}
}

// TestLeftovers: the files and directory of a run that no longer exists
// are removed by the next Open of the same directory, or by Clean.
func TestLeftovers(t *testing.T) {
	dead := deadPid(t)
	parent := t.TempDir()

	// The lock wins over the marker: a directory still open is in use,
	// whatever its marker says (its owner may be in another PID
	// namespace, where the pid means something else).
	held := open(t, Options{Parent: parent})
	m := marker{self: current()}
	m.self.pid, m.self.ns = dead, "pid:[1]"
	if err := os.WriteFile(held.Join(markerName), m.encode(), 0o600); err != nil {
		t.Fatal(err)
	}
	if cleaned, _ := Clean(parent, -1); len(cleaned) != 0 {
		t.Fatalf("Clean removed a directory whose owner holds its lock: %v", cleaned)
	}
	held.Release()
	if cleaned, _ := Clean(parent, -1); len(cleaned) != 1 {
		t.Fatalf("Clean left a directory whose owner is gone: %v", cleaned)
	}

	d, err := Open(Options{Parent: parent})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Write([]File{{Name: "s", Data: []byte("x")}}); err != nil {
		t.Fatal(err)
	}
	fakeOwner(t, d, dead)
	cleaned, err := Clean(parent, -1)
	if err != nil || len(cleaned) != 1 || cleaned[0] != d.Path() {
		t.Fatalf("Clean = %v, %v", cleaned, err)
	}
	if _, err := os.Lstat(d.Path()); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("leftover directory still there")
	}

	named := filepath.Join(t.TempDir(), "named")
	d, err = Open(Options{Dir: named})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Write([]File{{Name: "s", Data: []byte("x")}}); err != nil {
		t.Fatal(err)
	}
	fakeOwner(t, d, dead)
	d2 := open(t, Options{Dir: named})
	if _, err := os.Lstat(d2.Join("s")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("leftover file still there")
	}
	if _, err := d2.Write([]File{{Name: "s", Data: []byte("y")}}); err != nil {
		t.Fatal(err)
	}
}

// deadPid returns the pid of a process that has exited and been reaped.
func deadPid(t *testing.T) int {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

// fakeOwner makes d's marker name another process, and lets d go as a
// killed run would.
func fakeOwner(t *testing.T, d *Dir, pid int) {
	t.Helper()
	data, err := os.ReadFile(d.Join(markerName))
	if err != nil {
		t.Fatal(err)
	}
	m, err := decodeMarker(data)
	if err != nil {
		t.Fatal(err)
	}
	m.self.pid = pid
	if err := os.WriteFile(d.Join(markerName), m.encode(), 0o600); err != nil {
		t.Fatal(err)
	}
	d.Release()
}

// leftover makes a directory under parent as a killed run leaves it.
func leftover(t *testing.T, parent string, o Options, dead int) *Dir {
	t.Helper()
	o.Parent = parent
	d, err := Open(o)
	must(t, err)
	if _, err := d.Write([]File{{Name: "s", Data: []byte("x")}}); err != nil {
		t.Fatal(err)
	}
	fakeOwner(t, d, dead)
	return d
}

// TestCleanBounds: Clean opens only directories of this user, or of the
// account given (a --user run's), and at most maxClean a call.
func TestCleanBounds(t *testing.T) {
	dead := deadPid(t)
	parent := t.TempDir()
	if os.Geteuid() == 0 {
		d := leftover(t, parent, Options{Owner: true, UID: 65534, GID: 65534}, dead)
		if cleaned, err := Clean(parent, -1); err != nil || len(cleaned) != 0 {
			t.Fatalf("Clean without the owner = %v, %v; want the directory of another account left", cleaned, err)
		}
		if cleaned, err := Clean(parent, 65534); err != nil || len(cleaned) != 1 || cleaned[0] != d.Path() {
			t.Fatalf("Clean with the owner = %v, %v", cleaned, err)
		}
	}
	for range maxClean + 3 {
		leftover(t, parent, Options{}, dead)
	}
	if cleaned, err := Clean(parent, -1); err != nil || len(cleaned) != maxClean {
		t.Fatalf("first Clean removed %d, %v; want %d", len(cleaned), err, maxClean)
	}
	if cleaned, err := Clean(parent, -1); err != nil || len(cleaned) != 3 {
		t.Fatalf("second Clean removed %d, %v; want the 3 left", len(cleaned), err)
	}
}

// TestInspectOtherOwner: check, which has no --user, accepts as root a
// directory that a --user run left to its account, and still sees one
// that a running process owns as in use.
func TestInspectOtherOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a directory away")
	}
	dir := filepath.Join(t.TempDir(), "s")
	must(t, os.Mkdir(dir, 0o700))
	must(t, os.Chown(dir, 65534, 65534))
	if _, _, err := Inspect(Options{Dir: dir}); err != nil {
		t.Fatalf("Inspect = %v", err)
	}
	d := open(t, Options{Dir: dir, Owner: true, UID: 65534, GID: 65534})
	held, err := Open(Options{Dir: dir})
	if err == nil {
		held.Close()
	}
	var iu *InUseError
	if !errors.As(err, &iu) {
		t.Fatalf("a second Open while the first holds it: %v", err)
	}
	if _, _, err := Inspect(Options{Dir: dir}); !errors.As(err, &iu) {
		t.Fatalf("Inspect of a directory in use = %v", err)
	}
	must(t, d.Close())
}
