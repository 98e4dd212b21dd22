package supervise

import (
	"errors"
	"testing"
)

// TestStartRetryWritesNewFiles: files of an update that arrives while a
// restart's start is retried are written before the child that finally
// starts, which has the environment of that update.
func TestStartRetryWritesNewFiles(t *testing.T) {
	h := startHarnessWith(t, Config{}, childEnv("hang", "GEN=0"), failStarts(2, 3))
	h.out.until("ready")
	first := &fileWrites{clock: h.clock, changed: true}
	h.updateFiles(childEnv("hang", "GEN=1"), "first", first.write)
	h.log.wait(retryMsg, 1)
	second := &fileWrites{clock: h.clock, changed: true}
	h.updateFiles(childEnv("hang", "GEN=2"), "second", second.write)
	for range 2 {
		at := h.clock.waitAnyTimer(t)
		h.clock.Advance(at.Sub(h.clock.Now()))
	}
	if line := h.out.until("ready"); field(line, "gen") != "2" {
		t.Fatalf("child after retries: %q, want gen=2", line)
	}
	if n := len(second.calls()); n != 1 {
		t.Errorf("the files of the update that came during the retries were written %d times, want once", n)
	}
	if n := len(first.calls()); n != 1 {
		t.Errorf("the first update's files were written %d times, want once", n)
	}
}

// failingWrites is a WriteFiles that fails its first n calls.
type failingWrites struct {
	fileWrites
	fail int
}

func (f *failingWrites) write() (bool, error) {
	changed, _ := f.fileWrites.write()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.at) <= f.fail {
		return false, errors.New("no space left on device")
	}
	return changed, nil
}

// TestWriteRetried: a write of files that fails while watching is tried
// again after a backoff, then the child reloads; the failure is logged.
func TestWriteRetried(t *testing.T) {
	env := childEnv("record", "GEN=0", "RECORD_TERM_EXITS=1")
	h := startHarness(t, Config{OnChange: OnChangeReload}, env)
	h.out.until("ready")
	fw := &failingWrites{fileWrites: fileWrites{clock: h.clock, changed: true}, fail: 1}
	h.updateFiles(env, "rotated", fw.write)
	h.log.wait("cannot write the secret files; the command keeps the ones it has", 1)
	retry := h.log.wait("writing the secret files again later", 1)
	if retry.attrs["failures"] != "1" {
		t.Errorf("retry logged with %v", retry.attrs)
	}
	at := h.clock.waitAnyTimer(t)
	if d := at.Sub(h.clock.Now()); d < retryFirst/2 || d > retryFirst {
		t.Errorf("retry in %v, want within [%v, %v]", d, retryFirst/2, retryFirst)
	}
	h.clock.Advance(at.Sub(h.clock.Now()))
	if got := h.out.until("sig"); got != "sig SIGHUP" {
		t.Fatalf("child got %q, want sig SIGHUP after the retried write", got)
	}
	h.log.wait("child reloaded", 1)
	if n := len(fw.calls()); n != 2 {
		t.Errorf("files written %d times, want twice", n)
	}
}
