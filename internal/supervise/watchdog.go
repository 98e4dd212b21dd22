package supervise

import (
	"time"
)

// DefaultStartUpLimit is Config.StartUpLimit's default: start-up pings
// the watchdog for at most this long when no deadline of its own bounds
// it.
const DefaultStartUpLimit = 5 * time.Minute

// beatPeriod is how often the loop turns on its own: the heartbeat, or
// half the watchdog timeout (as sd_watchdog_enabled(3) advises), whichever
// is shorter; zero when neither is asked for.
func beatPeriod(cfg *Config) time.Duration {
	d := cfg.Heartbeat
	if w := cfg.Watchdog / 2; w > 0 && (d == 0 || w < d) {
		d = w
	}
	return d
}

func newBeat(cfg *Config) *time.Ticker {
	if d := beatPeriod(cfg); d > 0 {
		return time.NewTicker(d)
	}
	return nil
}

func (l *loop) beatC() <-chan time.Time {
	if l.beat == nil {
		return nil
	}
	return l.beat.C
}

// turned is a turn of the loop: it is reported, then, with a watchdog,
// proved to systemd. An observer that blocks (a test's) holds the ping
// back, as a loop stuck anywhere else would.
func (l *loop) turned() {
	l.observe(Event{Kind: EventBeat})
	if l.cfg.Watchdog > 0 && (l.cfg.Alive == nil || l.cfg.Alive()) {
		l.notify.send("WATCHDOG=1")
	}
}

// startUpPings returns the ticks on which start-up's signal watcher pings
// the watchdog until Run or Exec takes over: resolving the environment
// may take as long as its deadline, and systemd's watchdog runs from the
// start of the process. Past Config.StartUpLimit, start-up is stuck, and
// startUpPing stops the pings.
func (s *Supervisor) startUpPings() (<-chan time.Time, func()) {
	if s.cfg.Watchdog <= 0 || s.cfg.NotifySocket == "" {
		return nil, func() {}
	}
	t := time.NewTicker(s.cfg.Watchdog / 2)
	return t.C, t.Stop
}

// startUpPing pings the watchdog, and reports false (sending nothing)
// once start-up has taken longer than its limit.
func (s *Supervisor) startUpPing() bool {
	if took := time.Since(s.began); took > s.cfg.StartUpLimit {
		s.log.Warn("start-up is taking longer than its limit; no more watchdog pings",
			"took", took.Round(time.Millisecond), "limit", s.cfg.StartUpLimit)
		return false
	}
	newNotifier(s.cfg.NotifySocket, s.log).send("WATCHDOG=1")
	return true
}
