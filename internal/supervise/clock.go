package supervise

import "time"

// Clock is the time source of everything time-driven in a Supervisor: the
// debounce, the restart budget and the stop timeout. Tests inject a fake
// one; nil means the real clock.
type Clock interface {
	Now() time.Time
	// NewTimer returns a timer that fires once, after d.
	NewTimer(d time.Duration) Timer
}

// Timer is the part of *time.Timer that a Supervisor uses.
type Timer interface {
	C() <-chan time.Time
	// Stop prevents the timer from firing. After Stop, C never delivers.
	Stop()
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time { return r.t.C }
func (r realTimer) Stop()               { r.t.Stop() }
