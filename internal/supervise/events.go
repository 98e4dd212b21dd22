package supervise

import (
	"syscall"
	"time"
)

// EventKind says what an Event reports.
type EventKind int

const (
	// EventStarted: a child started (PID), the first or after a restart.
	EventStarted EventKind = iota + 1
	// EventExited: the child ended (PID, ExitCode, Signal).
	EventExited
	// EventRestart: a restart for Reason ended with Outcome.
	EventRestart
	// EventReload: a reload (the child told to re-read its configuration,
	// not restarted) for Reason ended with Outcome.
	EventReload
	// EventBeat: the loop turned, as it does every Config.Heartbeat.
	EventBeat
)

// Reasons of a restart or reload, and their outcomes: a few fixed words,
// so that a counter by reason and outcome stays small.
const (
	ReasonChange = "change" // the environment changed

	OutcomeOK       = "ok"       // the new child runs (or took the reload)
	OutcomeFailed   = "failed"   // the new child could not be started
	OutcomeDeferred = "deferred" // the restart budget held the change back
)

// Event is something that happened to the child, as Config.Observe is
// told of it. It never holds an environment or a reference: the reasons
// of the log lines name references, Reason does not.
type Event struct {
	Kind     EventKind
	Time     time.Time
	PID      int
	ExitCode int            // EventExited: the status, or 128+N
	Signal   syscall.Signal // EventExited: the signal the child died of, or 0
	Reason   string         // EventRestart, EventReload
	Outcome  string         // EventRestart, EventReload
	// Updates, for EventStarted and a successful EventReload: how many
	// environments (Updates without Err) Run had received when the child
	// started or the reload began. The child has the newest of them, so
	// an observer that counts what it sent can tell whether the child
	// has caught up.
	Updates int64
}

// observe tells Config.Observe of e, stamped with the loop's clock.
func (l *loop) observe(e Event) {
	if l.cfg.Observe == nil {
		return
	}
	e.Time = l.clock.Now()
	l.cfg.Observe(e)
}
