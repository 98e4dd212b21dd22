package main

import (
	"sync"
	"time"

	"github.com/rolesenv/rolesenv/inject"
)

// stepClock is a watch clock that the harness drives: a timer fires
// only when fire is called, and every new timer is announced on created,
// which tells the harness that a check has finished (the watch sets the
// next one) without waiting on real time.
type stepClock struct {
	mu      sync.Mutex
	now     time.Time
	last    *stepTimer
	created chan time.Duration
}

type stepTimer struct {
	c chan time.Time
}

func (t *stepTimer) C() <-chan time.Time { return t.c }
func (t *stepTimer) Stop()               {}

func newStepClock() *stepClock {
	return &stepClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), created: make(chan time.Duration, 16)}
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *stepClock) NewTimer(d time.Duration) inject.Timer {
	t := &stepTimer{c: make(chan time.Time, 1)}
	c.mu.Lock()
	c.last = t
	c.mu.Unlock()
	c.created <- d
	return t
}

// fire advances the clock by d and fires the newest timer.
func (c *stepClock) fire(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	t := c.last
	now := c.now
	c.mu.Unlock()
	t.c <- now
}

// scaledClock runs faster than real time: one real second is scale
// seconds of the watch's schedule. Timers are real timers of the scaled
// duration.
type scaledClock struct {
	start, sim time.Time
	scale      float64
	// onTimer, when set, hears of every timer: when it is due, in
	// simulated time since the clock started (the watch's schedule,
	// before any delay of this machine).
	onTimer func(due time.Duration)
}

func newScaledClock(scale float64) *scaledClock {
	now := time.Now()
	return &scaledClock{start: now, sim: now, scale: scale}
}

func (c *scaledClock) Now() time.Time {
	return c.sim.Add(time.Duration(float64(time.Since(c.start)) * c.scale))
}

// simSince is the simulated time since the clock started.
func (c *scaledClock) simSince(t time.Time) time.Duration {
	return time.Duration(float64(t.Sub(c.start)) * c.scale)
}

func (c *scaledClock) NewTimer(d time.Duration) inject.Timer {
	if c.onTimer != nil {
		c.onTimer(c.simSince(time.Now()) + d)
	}
	return realTimer{time.NewTimer(time.Duration(float64(d) / c.scale))}
}

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time { return r.t.C }
func (r realTimer) Stop()               { r.t.Stop() }
