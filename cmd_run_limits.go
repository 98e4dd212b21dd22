package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/rolesenv/rolesenv/inject"
)

// refreshGap is the shortest time between two checks asked for with
// --refresh-signal. A check costs one call per secret and per 10
// parameters; a loop that sends the signal (or a signal storm) would
// otherwise make one check per signal.
const refreshGap = 5 * time.Second

// limitRefresh passes the refresh requests of in on to the watcher at most
// once per refreshGap: the first at once, those that come sooner merged
// into one that follows when the gap has passed. A request made while the
// watcher has one waiting is merged with it too (the watcher's channel
// holds one). With no refresh signal (in nil) it returns nil.
func limitRefresh(ctx context.Context, in <-chan struct{}, log *slog.Logger) <-chan struct{} {
	if in == nil {
		return nil
	}
	out := make(chan struct{}, 1)
	l := refreshLimiter{gap: refreshGap, now: time.Now, after: time.After, log: log}
	go l.run(ctx, in, out)
	return out
}

// refreshLimiter is limitRefresh's rule, with its clock injected.
type refreshLimiter struct {
	gap   time.Duration
	now   func() time.Time
	after func(time.Duration) <-chan time.Time
	log   *slog.Logger
}

func (l refreshLimiter) run(ctx context.Context, in <-chan struct{}, out chan<- struct{}) {
	var last time.Time        // when a request was last passed on
	var held <-chan time.Time // a merged request waits for the gap
	pass := func() {
		last = l.now()
		select {
		case out <- struct{}{}:
		default: // one is waiting already: merged
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-in:
			if !ok {
				in = nil
				continue
			}
			switch wait := last.Add(l.gap).Sub(l.now()); {
			case held != nil:
			case last.IsZero() || wait <= 0:
				pass()
			default:
				held = l.after(wait)
				l.log.Debug("refresh requested again within the gap: merged into one check", "after", wait.Round(time.Millisecond))
			}
		case <-held:
			held = nil
			pass()
		}
	}
}

// withFlagNames gives the watcher's errors the names of rolesenv's flags:
// inject speaks of its own fields.
func withFlagNames(err error) error {
	var se *inject.StaleError
	if errors.As(err, &se) {
		return &maxStaleError{se}
	}
	return err
}

// maxStaleError is the watcher's *inject.StaleError as rolesenv reports
// it, naming --max-stale. It classifies itself as the StaleError does.
type maxStaleError struct{ *inject.StaleError }

func (e *maxStaleError) Error() string {
	return fmt.Sprintf("no successful check for rotation for %v (--max-stale %v); last failure: %s",
		e.Since.Round(time.Second), e.MaxStale, e.Last)
}

func (e *maxStaleError) Unwrap() error { return e.StaleError }

func (e *maxStaleError) Hint() string {
	return "--max-stale bounds how long checks may fail; the warnings above name what failed"
}
