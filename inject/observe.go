package inject

import "time"

// CheckEvent is one check for rotation, as WatchOptions.Observe is told of
// it. It names no reference: counts and times only.
type CheckEvent struct {
	// Time is when the check ended, on the watch's clock.
	Time time.Time
	// OK is true when every reference was polled and the environment
	// rendered: the command's values are confirmed current as of Time.
	OK bool
	// Failed counts the failed checks in a row, this one included; zero
	// when OK.
	Failed int
	// Rotated counts the references this check found rotated.
	Rotated int
	// Polled is true when the template in use after the check has
	// anything to poll (Template.Polled): when false, no check comes
	// until an env file changes, and none is needed.
	Polled bool
}

// observe tells WatchOptions.Observe of the check that just settled.
func (w *watcher) observe(ok bool) {
	n := w.rotated
	w.rotated = 0
	if w.Observe == nil {
		return
	}
	w.Observe(CheckEvent{Time: w.clock.Now(), OK: ok, Failed: w.failed, Rotated: n, Polled: w.pollable()})
}

// CallOutcome classifies the result of one AWS API request for counting:
// "ok", "throttled" (refused for the rate of calls), "denied" (by a
// policy, or credentials AWS does not accept: the codes for which check
// prints an IAM statement or drops the credentials), or "error". It uses
// the same tables as the resolver's errors.
func CallOutcome(err error) string {
	if err == nil {
		return "ok"
	}
	fe := awsFailure("", "", err)
	switch {
	case fe.throttled():
		return "throttled"
	case fe.class == classDenied:
		return "denied"
	}
	return "error"
}
