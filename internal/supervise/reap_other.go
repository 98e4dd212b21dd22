//go:build !linux

package supervise

import "log/slog"

// reaper does nothing where there is no child subreaper: orphans go to
// init (launchd), which reaps them, and rolesenv waits only for its child.
type reaper struct{}

func newReaper(log *slog.Logger) *reaper {
	log.Debug("orphan reaping and the child subreaper are Linux-only; skipped")
	return &reaper{}
}

func (*reaper) close()           {}
func (*reaper) learn(int)        {}
func (*reaper) reap(int, func()) {}
