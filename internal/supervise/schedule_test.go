package supervise

import (
	"testing"
	"time"
)

func TestSchedule(t *testing.T) {
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	s := schedule{debounce: 5 * time.Second, maxRestarts: 2, window: time.Minute}

	if s.pending() {
		t.Fatal("pending before any change")
	}
	s.change(at(0))
	if wait, _ := s.next(at(0), true); wait != 5*time.Second {
		t.Errorf("first change waits %v, want the debounce", wait)
	}
	s.change(at(4 * time.Second))
	if wait, _ := s.next(at(4*time.Second), true); wait != 5*time.Second {
		t.Errorf("a later change restarts the debounce: %v", wait)
	}
	// Changes every 4s: the cap (20s after the first) wins at 16s.
	for _, d := range []time.Duration{8, 12, 16} {
		s.change(at(d * time.Second))
	}
	if wait, _ := s.next(at(16*time.Second), true); wait != 4*time.Second {
		t.Errorf("capped wait %v, want 4s (first change + 4 debounces)", wait)
	}
	if wait, deferred := s.next(at(20*time.Second), true); wait != 0 || deferred {
		t.Errorf("at the cap: wait %v deferred %v", wait, deferred)
	}
	s.restarted(at(20 * time.Second))
	if s.pending() {
		t.Error("pending after the restart")
	}

	// Second restart within budget, third deferred to the first's expiry.
	s.change(at(30 * time.Second))
	if wait, deferred := s.next(at(35*time.Second), true); wait != 0 || deferred {
		t.Errorf("second restart: wait %v deferred %v", wait, deferred)
	}
	s.restarted(at(35 * time.Second))
	s.change(at(40 * time.Second))
	wait, deferred := s.next(at(45*time.Second), true)
	if !deferred || wait != 35*time.Second { // 20s + 1m - 45s
		t.Errorf("third restart: wait %v deferred %v; want deferred 35s", wait, deferred)
	}
	if wait, deferred := s.next(at(45*time.Second), false); wait != 0 || deferred {
		t.Errorf("without the budget (on-change exit): wait %v deferred %v", wait, deferred)
	}
	if wait, deferred := s.next(at(80*time.Second), true); wait != 0 || deferred {
		t.Errorf("when the window allows: wait %v deferred %v", wait, deferred)
	}

	// No budget, no debounce: at once.
	s = schedule{}
	s.change(at(0))
	if wait, deferred := s.next(at(0), true); wait != 0 || deferred {
		t.Errorf("no debounce, no budget: wait %v deferred %v", wait, deferred)
	}
}
