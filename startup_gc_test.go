package main

import (
	"math"
	"runtime/debug"
	"testing"
)

// TestPauseGC: start-up runs without the collector's target, under a
// memory limit, and resumeGC gives both back; GOGC or GOMEMLIMIT in the
// environment leave them alone.
func TestPauseGC(t *testing.T) {
	oldPct := debug.SetGCPercent(100)
	oldLimit := debug.SetMemoryLimit(math.MaxInt64)
	defer func() {
		debug.SetGCPercent(oldPct)
		debug.SetMemoryLimit(oldLimit)
	}()
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	pauseGC()
	if got := debug.SetGCPercent(-1); got != -1 {
		t.Errorf("after pauseGC the target is %d, want -1 (off)", got)
	}
	if got := debug.SetMemoryLimit(-1); got != startupMemoryLimit {
		t.Errorf("after pauseGC the memory limit is %d, want %d", got, startupMemoryLimit)
	}
	resumeGC(watchGCPercent)
	if got := debug.SetGCPercent(100); got != watchGCPercent {
		t.Errorf("after resumeGC the target is %d, want %d", got, watchGCPercent)
	}
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("after resumeGC the memory limit is %d, want none", got)
	}

	for _, v := range []string{"GOGC", "GOMEMLIMIT"} {
		t.Run(v, func(t *testing.T) {
			t.Setenv(v, "200")
			debug.SetGCPercent(100)
			pauseGC()
			if got := debug.SetGCPercent(100); got != 100 {
				t.Errorf("%s set: pauseGC changed the target to %d", v, got)
			}
			if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
				t.Errorf("%s set: pauseGC set a memory limit of %d", v, got)
			}
		})
	}
}
