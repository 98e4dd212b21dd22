package supervise

import "time"

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
	if l.cfg.Watchdog > 0 {
		l.notify.send("WATCHDOG=1")
	}
}

// startUpPings returns the ticks on which start-up's signal watcher pings
// the watchdog until Run or Exec takes over: resolving the environment
// may take as long as its deadline, and systemd's watchdog runs from the
// start of the process.
func (s *Supervisor) startUpPings() (<-chan time.Time, func()) {
	if s.cfg.Watchdog <= 0 || s.cfg.NotifySocket == "" {
		return nil, func() {}
	}
	t := time.NewTicker(s.cfg.Watchdog / 2)
	return t.C, t.Stop
}

func (s *Supervisor) watchdogPing() {
	newNotifier(s.cfg.NotifySocket, s.log).send("WATCHDOG=1")
}
