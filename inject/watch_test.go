package inject

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rolesenv/rolesenv/internal/awsdev"
)

// versionOf returns the version id of a secret's newest version.
func versionOf(t *testing.T, s *awsdev.Server, name string) string {
	t.Helper()
	vs, err := s.SecretVersions(name)
	if err != nil || len(vs) == 0 {
		t.Fatalf("versions of %s: %v", name, err)
	}
	return vs[len(vs)-1].VersionID
}

func wantCalls(t *testing.T, what string, got, want map[string]int64) {
	t.Helper()
	for op, n := range want {
		if got[op] != n {
			t.Errorf("%s: %d %s calls, want %d (all: %v)", what, got[op], op, n, got)
		}
	}
	for op, n := range got {
		if _, ok := want[op]; !ok {
			t.Errorf("%s: %d unexpected %s calls", what, n, op)
		}
	}
}

// TestWatchRotation: a poll is one DescribeSecret per secret and one
// GetParameters per 10 parameters; a new AWSPENDING version and a
// rotated JSON key that no variable uses change nothing; a move of
// AWSCURRENT and a new parameter version do, with one fetch each; a
// reference pinned to a version is never polled.
func TestWatchRotation(t *testing.T) {
	s, cfg := startDev(t, awsdev.AllowAll)
	must[string](t)(s.CreateSecret("app/api", "SNTL-k1"))
	v1 := versionOf(t, s, "app/api")
	must[string](t)(s.CreateSecret("app/db", `{"user":"SNTL-u","password":"SNTL-p1","unused":"SNTL-x1"}`))
	must[int64](t)(s.PutParameter("/app/flag", "String", "SNTL-on"))
	src := "API=sm://app/api\nPASS=sm://app/db#password\nURL=db://{{ sm://app/db#user }}@host\nFLAG=ssm:///app/flag\nPINNED=sm://app/api?version=" + v1 + "\n"
	wt := newWatchTest(t, s, cfg, File{Name: "app.env", Data: []byte(src)})
	wt.start()
	if d := wt.clk.lastArmed(); d != 30*time.Second {
		t.Errorf("first check after %v, want a random point of the interval (the middle with this random source)", d)
	}
	poll := map[string]int64{"secretsmanager:DescribeSecret": 2, "ssm:GetParameters": 1}

	s.ResetCalls()
	if d := wt.step(); d != time.Minute {
		t.Errorf("next check after %v, want the interval", d)
	}
	wt.noChange()
	wantCalls(t, "nothing changed", calls(s), poll)

	s.ResetCalls()
	must[string](t)(s.PutSecretValue("app/api", "SNTL-pending", "AWSPENDING"))
	wt.step()
	wt.noChange()
	wantCalls(t, "AWSPENDING only", calls(s), poll)

	s.ResetCalls()
	must[string](t)(s.PutSecretValue("app/db", `{"user":"SNTL-u","password":"SNTL-p1","unused":"SNTL-x2"}`))
	wt.step()
	wt.noChange()
	wantCalls(t, "unused key", calls(s), map[string]int64{"secretsmanager:DescribeSecret": 2, "ssm:GetParameters": 1, "secretsmanager:GetSecretValue": 1})
	if wt.logs.count("rotation detected") != 1 || wt.logs.count("nothing the command receives changed") != 1 {
		t.Errorf("the unused key's rotation is not logged as changing nothing")
	}

	s.ResetCalls()
	v2 := must[string](t)(s.PutSecretValue("app/api", "SNTL-k2"))
	wt.step()
	c := wt.change()
	wantCalls(t, "AWSCURRENT moved", calls(s), map[string]int64{"secretsmanager:DescribeSecret": 2, "ssm:GetParameters": 1, "secretsmanager:GetSecretValue": 1})
	if envVal(t, c.Env, "API") != "SNTL-k2" || envVal(t, c.Env, "PINNED") != "SNTL-k1" || envVal(t, c.Env, "PASS") != "SNTL-p1" {
		t.Error("the new environment is not the rotated one")
	}
	wantReason := fmt.Sprintf("sm://app/api rotated (%s -> %s)", shortID(v1), shortID(v2))
	if !strings.Contains(c.Reason, wantReason) || !strings.Contains(c.Reason, "variables API") || strings.Contains(c.Reason, "PINNED") {
		t.Errorf("reason %q, want %q and the variable API only", c.Reason, wantReason)
	}
	if !strings.Contains(wt.logs.String(), `msg="rotation detected" ref=sm://app/api old=`+shortID(v1)+" new="+shortID(v2)) {
		t.Errorf("no rotation line with the short version ids")
	}

	s.ResetCalls()
	must[int64](t)(s.PutParameter("/app/flag", "String", "SNTL-off"))
	wt.step()
	c = wt.change()
	if envVal(t, c.Env, "FLAG") != "SNTL-off" {
		t.Error("the parameter's new version is not in the environment")
	}
	wantCalls(t, "parameter", calls(s), map[string]int64{"secretsmanager:DescribeSecret": 2, "ssm:GetParameters": 2})
	if !strings.Contains(c.Reason, "ssm:///app/flag rotated (1 -> 2)") {
		t.Errorf("reason %q", c.Reason)
	}

	s.ResetCalls()
	wt.step()
	wt.noChange()
	wantCalls(t, "after the rotations", calls(s), poll)
}

// TestWatchCallCounts measures the calls of one poll for many references:
// 30 secrets and 25 parameters used by 95 variables (whole values, JSON
// keys, inline references, repeats) plus 5 references pinned to versions.
func TestWatchCallCounts(t *testing.T) {
	s, cfg := startDev(t, awsdev.AllowAll)
	var src strings.Builder
	for i := range 30 {
		must[string](t)(s.CreateSecret(fmt.Sprintf("n/s%02d", i), fmt.Sprintf(`{"user":"SNTL-u%d","password":"SNTL-p%d"}`, i, i)))
	}
	for i := range 25 {
		must[int64](t)(s.PutParameter(fmt.Sprintf("/n/p%02d", i), "SecureString", fmt.Sprintf("SNTL-%d", i)))
	}
	for i := range 60 {
		sec := fmt.Sprintf("n/s%02d", i%30)
		if i < 30 {
			fmt.Fprintf(&src, "V%03d=sm://%s#user\n", i, sec)
		} else {
			fmt.Fprintf(&src, "V%03d=u={{ sm://%s#user }};p={{ sm://%s#password | urlquery }}\n", i, sec, sec)
		}
	}
	for i := range 25 {
		fmt.Fprintf(&src, "Q%02d={{ ssm:///n/p%02d }}\n", i, i)
	}
	for i := range 10 {
		fmt.Fprintf(&src, "P%02d=ssm:///n/p%02d\n", i, i+15)
	}
	for i := range 5 {
		fmt.Fprintf(&src, "PIN%d=sm://n/s%02d?version=%s#user\n", i, i, versionOf(t, s, fmt.Sprintf("n/s%02d", i)))
	}
	wt := newWatchTest(t, s, cfg, File{Name: "n.env", Data: []byte(src.String())})
	wt.start()
	s.ResetCalls()
	wt.step()
	wt.noChange()
	quiet := calls(s)
	wantCalls(t, "no change", quiet, map[string]int64{"secretsmanager:DescribeSecret": 30, "ssm:GetParameters": 3})

	s.ResetCalls()
	must[string](t)(s.PutSecretValue("n/s07", `{"user":"SNTL-new","password":"SNTL-p7"}`))
	must[int64](t)(s.PutParameter("/n/p03", "SecureString", "SNTL-new"))
	wt.step()
	wt.change()
	changed := calls(s)
	wantCalls(t, "one secret and one parameter changed", changed,
		map[string]int64{"secretsmanager:DescribeSecret": 30, "ssm:GetParameters": 4, "secretsmanager:GetSecretValue": 1})
	t.Logf("one poll of %d references (%d polled fetches): %v without change, %v with one secret and one parameter rotated",
		wt.w.tm.References(), 55, quiet, changed)
}

// TestWatchSchedule: the first check falls anywhere in the first interval,
// later ones within ±10% of it, and back-off waits in [d/2, d] with d
// doubling from 1s up to the interval.
func TestWatchSchedule(t *testing.T) {
	w := &watcher{WatchOptions: WatchOptions{Interval: time.Minute}, randN: rand.Int64N}
	for range 2000 {
		if d := w.firstWait(); d < 0 || d >= time.Minute {
			t.Fatalf("first wait %v", d)
		}
		if d := w.nextWait(); d < 54*time.Second || d > 66*time.Second {
			t.Fatalf("next wait %v", d)
		}
		for n := 1; n <= 40; n++ {
			top := min(time.Minute, time.Second<<min(n-1, 30))
			if d := w.backoff(n); d < top/2 || d > top {
				t.Fatalf("back-off %d: %v, want [%v, %v]", n, d, top/2, top)
			}
		}
	}
	w.Interval = 100 * time.Millisecond
	if d := w.backoff(1); d > 100*time.Millisecond {
		t.Errorf("back-off %v beyond a short interval", d)
	}
}

// TestWatchStale: with MaxStale, a failure episode longer than that ends
// Run with a *StaleError, sent first as a Change; it classifies as
// unavailable whatever the failure was (here access denied).
func TestWatchStale(t *testing.T) {
	s, cfg := startDev(t, awsdev.AllowAll)
	must[string](t)(s.CreateSecret("app/api", "SNTL-k1"))
	wt := newWatchTest(t, s, cfg, File{Name: "app.env", Data: []byte("API=sm://app/api\n")})
	wt.w.MaxStale = 10 * time.Second
	wt.start()
	wt.step()
	if err := s.SetUserPolicy("app", awsdev.Policy{}); err != nil {
		t.Fatal(err)
	}
	for {
		if _, ok := wt.clk.fireNext(); !ok {
			t.Fatal("no timer set")
		}
		select {
		case <-wt.idle:
			wt.noChange()
			continue
		case err := <-wt.done:
			var se *StaleError
			if !errors.As(err, &se) || !se.Unavailable() || se.Since < 10*time.Second {
				t.Fatalf("Run returned %v, want a *StaleError after 10s", err)
			}
			c := wt.change()
			if c.Err != err {
				t.Errorf("the change carried %v, want the stale error", c.Err)
			}
			if !strings.Contains(err.Error(), "AccessDeniedException") {
				t.Errorf("stale error %q does not say what failed", err)
			}
			if wt.logs.count("watch failed; the command keeps its environment") != 1 {
				t.Error("want one warning for the episode")
			}
			wt.done <- err // for the cleanup
			return
		case <-time.After(watchDeadline):
			t.Fatal("the watcher neither waited nor returned")
		}
	}
}

// TestWatchRenderFailure: a rotation that drops a JSON key a variable
// uses keeps the environment as it was (a warning, no change) until the
// key is back.
func TestWatchRenderFailure(t *testing.T) {
	s, cfg := startDev(t, awsdev.AllowAll)
	must[string](t)(s.CreateSecret("app/db", `{"password":"SNTL-p1"}`))
	wt := newWatchTest(t, s, cfg, File{Name: "app.env", Data: []byte("PASS=sm://app/db#password\n")})
	wt.start()
	must[string](t)(s.PutSecretValue("app/db", `{"pass":"SNTL-p2"}`))
	wt.step()
	wt.step()
	wt.noChange()
	if wt.logs.count("watch failed; the command keeps its environment") != 1 || !strings.Contains(wt.logs.String(), "app.env:1") {
		t.Errorf("want one warning naming the file and line")
	}
	must[string](t)(s.PutSecretValue("app/db", `{"password":"SNTL-p3"}`))
	wt.step()
	if c := wt.change(); envVal(t, c.Env, "PASS") != "SNTL-p3" {
		t.Error("the fixed secret did not apply")
	}
	if wt.logs.count("watch recovered") != 1 {
		t.Error("no recovery line")
	}
}

// TestWatchRefresh: a refresh request checks at once, without waiting for
// the schedule.
func TestWatchRefresh(t *testing.T) {
	s, cfg := startDev(t, awsdev.AllowAll)
	must[string](t)(s.CreateSecret("app/api", "SNTL-k1"))
	wt := newWatchTest(t, s, cfg, File{Name: "app.env", Data: []byte("API=sm://app/api\n")})
	refresh := make(chan struct{}, 1)
	wt.w.Refresh = refresh
	wt.start()
	must[string](t)(s.PutSecretValue("app/api", "SNTL-k2"))
	before := wt.clk.Now()
	refresh <- struct{}{}
	wt.waitIdle()
	if c := wt.change(); envVal(t, c.Env, "API") != "SNTL-k2" {
		t.Error("refresh did not pick up the rotation")
	}
	if !wt.clk.Now().Equal(before) {
		t.Error("the clock moved: the check waited for the schedule")
	}
}

// writeFile replaces a file's content the way editors and configuration
// tools do: a new file renamed over the old one.
func writeFile(t *testing.T, path, data string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestWatchFiles: a changed env file is parsed and resolved again; a file
// that cannot be parsed, read or resolved keeps the last good environment
// with one warning, and rotation of the other references still applies.
func TestWatchFiles(t *testing.T) {
	s, cfg := startDev(t, awsdev.AllowAll)
	must[string](t)(s.CreateSecret("app/api", "SNTL-k1"))
	must[string](t)(s.CreateSecret("app/new", "SNTL-n1"))
	path := filepath.Join(t.TempDir(), "app.env")
	writeFile(t, path, "A=one\nB=sm://app/api\n")
	data, _ := os.ReadFile(path)
	files := []File{{Name: path, Data: data}, {Name: "-", Data: []byte("STDIN=kept\n")}}
	wt := newWatchTest(t, s, cfg, files...)
	wt.src.files = files
	wt.w.Interval = 10 * time.Second
	wt.start()
	// tick fires the next timer: the file timer every second, a check
	// every 10 seconds.
	tick := func() {
		t.Helper()
		if _, ok := wt.clk.fireNext(); !ok {
			t.Fatal("no timer")
		}
		wt.waitIdle()
	}
	// untilChange ticks until a change comes, at most a minute of
	// watcher time.
	untilChange := func() Change {
		t.Helper()
		for range 60 {
			if len(wt.out) > 0 {
				return wt.change()
			}
			tick()
		}
		t.Fatal("no change within a minute of checks")
		return Change{}
	}

	tick()
	wt.noChange()
	writeFile(t, path, "A=two\nB=sm://app/api\n")
	tick()
	c := wt.change()
	if envVal(t, c.Env, "A") != "two" || envVal(t, c.Env, "STDIN") != "kept" || !strings.Contains(c.Reason, "env file changed: "+path) {
		t.Errorf("changed file not applied: %q", c.Reason)
	}

	writeFile(t, path, "A=\"unterminated\nB=sm://app/api\n")
	tick()
	wt.noChange()
	if wt.logs.count("env file changed but cannot be used; the command keeps its environment") != 1 {
		t.Error("no warning for the broken file")
	}

	writeFile(t, path, "A=two\nB=sm://app/api\nC=sm://app/new\n")
	tick()
	if c := wt.change(); envVal(t, c.Env, "C") != "SNTL-n1" {
		t.Error("the new reference was not resolved")
	}

	writeFile(t, path, "A=two\nB=sm://app/api\nC=sm://app/new\nD=sm://app/missing\n")
	tick()
	wt.noChange()
	if wt.logs.count("env file changed but its references do not resolve yet; the command keeps its environment") != 1 {
		t.Error("no warning for the unresolved reference")
	}
	// The pending file does not stop rotation of what is in use.
	must[string](t)(s.PutSecretValue("app/api", "SNTL-k2"))
	if c := untilChange(); envVal(t, c.Env, "B") != "SNTL-k2" {
		t.Error("rotation did not apply while a changed file waits")
	}
	if wt.logs.count("env file changed but its references do not resolve yet; the command keeps its environment") != 1 {
		t.Error("the pending file's problem is logged more than once")
	}
	must[string](t)(s.CreateSecret("app/missing", "SNTL-m"))
	if c := untilChange(); envVal(t, c.Env, "D") != "SNTL-m" {
		t.Error("the pending file was not adopted once it resolved")
	}

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	tick()
	tick()
	wt.noChange()
	if n := wt.logs.count("env file cannot be read; the command keeps its environment"); n != 1 {
		t.Errorf("%d warnings for the missing file, want 1", n)
	}
	writeFile(t, path, "A=two\nB=sm://app/api\nC=sm://app/new\nD=sm://app/missing\n")
	tick()
	wt.noChange()
	if wt.logs.count("env file readable again") != 1 {
		t.Error("no line for the file coming back")
	}
}

// TestWatchWithoutAWS: with nothing to resolve there is no resolver and
// nothing to poll; only the files are watched, and a reference added
// later gets a resolver then.
func TestWatchWithoutAWS(t *testing.T) {
	s, cfg := startDev(t, awsdev.AllowAll)
	must[string](t)(s.CreateSecret("app/api", "SNTL-k1"))
	path := filepath.Join(t.TempDir(), "app.env")
	writeFile(t, path, "A=one\n")
	data, _ := os.ReadFile(path)
	wt := newWatchTest(t, s, cfg, File{Name: path, Data: data})
	wt.src.files = []File{{Name: path, Data: data}}
	wt.start()
	if wt.src.resolver != nil || wt.configs != 0 || wt.clk.pending() != 1 || wt.clk.lastArmed() != time.Second {
		t.Fatalf("want only the file timer, %d timers", wt.clk.pending())
	}
	s.ResetCalls()
	for range 3 {
		wt.step()
	}
	writeFile(t, path, "A=two\n")
	wt.step()
	if c := wt.change(); envVal(t, c.Env, "A") != "two" {
		t.Error("file change not applied")
	}
	if len(calls(s)) != 0 || wt.configs != 0 {
		t.Errorf("AWS was asked with nothing to resolve: %v, %d configurations", calls(s), wt.configs)
	}
	writeFile(t, path, "A=two\nB=sm://app/api\n")
	wt.step()
	if c := wt.change(); envVal(t, c.Env, "B") != "SNTL-k1" || wt.configs != 1 {
		t.Error("the added reference was not resolved")
	}
}

// TestWatchSpread: a scheduled check with Spread spaces its calls evenly
// over it (here 4 secrets over 8 s: at 0, 2, 4 and 6 s of the check's
// clock) and applies the results together; a refresh is not spread.
func TestWatchSpread(t *testing.T) {
	s, cfg := startDev(t, awsdev.AllowAll)
	var src strings.Builder
	for i := range 4 {
		must[string](t)(s.CreateSecret(fmt.Sprintf("spread/s%d", i), fmt.Sprintf("SNTL-%d", i)))
		fmt.Fprintf(&src, "S%d=sm://spread/s%d\n", i, i)
	}
	// Standard input is never looked at again: no file timer in the way.
	wt := newWatchTest(t, s, cfg, File{Name: "-", Data: []byte(src.String())})
	wt.w.Spread = 8 * time.Second
	refresh := make(chan struct{}, 1)
	wt.w.Refresh = refresh
	wt.start()
	s.ResetCalls()
	describes := func() int64 { return s.Calls("secretsmanager:DescribeSecret") }
	waitUntil := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(watchDeadline)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(time.Millisecond) // polling a condition, with a deadline
		}
	}
	if _, ok := wt.clk.fireNext(); !ok {
		t.Fatal("no check scheduled")
	}
	must[string](t)(s.PutSecretValue("spread/s3", "SNTL-new"))
	waitUntil("the first call and three spaced timers", func() bool { return describes() == 1 && wt.clk.pending() == 3 })
	armed := wt.clk.armedSince(3)
	slices.Sort(armed)
	if want := []time.Duration{2 * time.Second, 4 * time.Second, 6 * time.Second}; !slices.Equal(armed, want) {
		t.Errorf("calls spaced at %v, want %v", armed, want)
	}
	for want := int64(2); want <= 4; want++ {
		wt.clk.fireNext()
		waitUntil(fmt.Sprintf("call %d", want), func() bool { return describes() == want })
		if want < 4 {
			wt.noChange() // nothing applied before the check is over
		}
	}
	wt.waitIdle()
	if c := wt.change(); !strings.Contains(c.Reason, "spread/s3") {
		t.Errorf("change %q, want the rotation of spread/s3", c.Reason)
	}

	// A refresh checks at once: all four calls without a timer fired.
	s.ResetCalls()
	refresh <- struct{}{}
	waitUntil("the refresh's four calls", func() bool { return describes() == 4 })
	wt.waitIdle()
	wt.noChange()
}

// TestWatchAcceptRefuses: a new environment that Accept refuses (one that
// exec could not take) is a failed check: no change, one warning, and it
// is tried again at every check (it is not taken as the child's) until
// one is accepted.
func TestWatchAcceptRefuses(t *testing.T) {
	s, cfg := startDev(t, awsdev.AllowAll)
	must[string](t)(s.CreateSecret("app/api", "SNTL-k1"))
	wt := newWatchTest(t, s, cfg, File{Name: "app.env", Data: []byte("API=sm://app/api\n")})
	refused := 0
	wt.w.Accept = func(e *Env) error {
		if v, _ := e.Lookup("API"); len(v.Reveal()) > 10 {
			refused++
			return errors.New("too large")
		}
		return nil
	}
	wt.start()
	must[string](t)(s.PutSecretValue("app/api", "SNTL-k2-much-longer"))
	wt.step()
	wt.step()
	wt.noChange()
	if refused != 2 {
		t.Errorf("Accept refused %d times in 2 checks, want 2", refused)
	}
	if wt.logs.count("watch failed; the command keeps its environment") != 1 || !strings.Contains(wt.logs.String(), "too large") {
		t.Error("want one warning saying why")
	}
	must[string](t)(s.PutSecretValue("app/api", "SNTL-k3"))
	wt.step()
	if c := wt.change(); envVal(t, c.Env, "API") != "SNTL-k3" {
		t.Error("the accepted environment did not apply")
	}
	if wt.logs.count("watch recovered") != 1 {
		t.Error("no recovery line")
	}
}

// TestWatchBeats: with Beat, the loop turns at least every Heartbeat,
// even while no check or file is due, and says so at every turn; a
// check's event says whether anything is polled.
func TestWatchBeats(t *testing.T) {
	s, cfg := startDev(t, awsdev.AllowAll)
	must[string](t)(s.CreateSecret("app/api", "SNTL-k1"))
	wt := newWatchTest(t, s, cfg, File{Name: "app.env", Data: []byte("API=sm://app/api\n")})
	var beats atomic.Int64
	events := make(chan CheckEvent, 4)
	wt.w.Beat = func() { beats.Add(1) }
	wt.w.Heartbeat = 10 * time.Second
	wt.w.Observe = func(e CheckEvent) { events <- e }
	wt.start()
	if n := beats.Load(); n != 1 {
		t.Fatalf("%d beats at the start, want 1", n)
	}
	if d := wt.step(); d != 10*time.Second || beats.Load() != 2 {
		t.Errorf("after the heartbeat's timer: %d beats, next timer %v; want 2 and the heartbeat", beats.Load(), d)
	}
	for range 3 { // the check, at 30 s, comes after two more beats
		wt.step()
	}
	select {
	case e := <-events:
		if !e.OK || !e.Polled {
			t.Errorf("check event %+v, want OK and Polled", e)
		}
	default:
		t.Fatal("no check after 30 s")
	}
}
