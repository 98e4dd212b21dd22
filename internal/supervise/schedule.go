package supervise

import "time"

// schedule decides when a pending change of environment is applied: after
// a trailing debounce that never delays a change by more than four times
// the debounce, and within the restart budget (maxRestarts per window).
// It is pure bookkeeping on the times it is given, so its rules are tested
// without processes or clocks.
type schedule struct {
	debounce    time.Duration
	maxRestarts int // 0: no budget
	window      time.Duration

	restarts    []time.Time // restarts inside the window, oldest first
	first, last time.Time   // of the pending change; zero when none
}

// debounceCap is how many debounce periods a change may wait at most while
// more changes keep arriving.
const debounceCap = 4

func (s *schedule) change(now time.Time) {
	if s.first.IsZero() {
		s.first = now
	}
	s.last = now
}

func (s *schedule) pending() bool { return !s.first.IsZero() }

// clear forgets the pending change (it was applied, or abandoned).
func (s *schedule) clear() { s.first, s.last = time.Time{}, time.Time{} }

// restarted records a restart at now and clears the pending change.
func (s *schedule) restarted(now time.Time) {
	s.restarts = append(s.restarts, now)
	s.clear()
}

// next says how long to wait before applying the pending change: zero
// means now. deferred is set when the debounce has settled but the budget
// is spent; the change then waits until the oldest restart leaves the
// window. budget false ignores the budget (for --on-change exit).
func (s *schedule) next(now time.Time, budget bool) (wait time.Duration, deferred bool) {
	settle := s.last.Add(s.debounce)
	if limit := s.first.Add(debounceCap * s.debounce); limit.Before(settle) {
		settle = limit
	}
	if now.Before(settle) {
		return settle.Sub(now), false
	}
	if !budget || s.maxRestarts <= 0 {
		return 0, false
	}
	s.prune(now)
	if len(s.restarts) < s.maxRestarts {
		return 0, false
	}
	return s.restarts[0].Add(s.window).Sub(now), true
}

// prune drops the restarts that have left the window.
func (s *schedule) prune(now time.Time) {
	i := 0
	for i < len(s.restarts) && !now.Before(s.restarts[i].Add(s.window)) {
		i++
	}
	s.restarts = s.restarts[i:]
}
