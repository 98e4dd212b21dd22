package main

import (
	"math"
	"os"
	"runtime/debug"
)

// startupMemoryLimit is the heap at which the garbage collector runs
// while pauseGC holds it off: above what a start-up allocates (a few MB,
// more with hundreds of large secrets), and low enough that a start-up
// that waits and retries for minutes (AWS unreachable) stays within the
// footprint a watching rolesenv is allowed, instead of growing until a
// collection.
const startupMemoryLimit = 64 << 20

// pauseGC turns the garbage collector off for a start-up that ends in an
// exec or an exit, or in resumeGC: what start-up allocates (TLS,
// configuration, the first fetch) lives until then anyway, and a
// collection at Go's default target (every 4 MB at first) costs
// milliseconds of CPU, a stop of the world included, while the start-up
// waits. The runtime still collects if the heap nears
// startupMemoryLimit. GOGC or GOMEMLIMIT in the environment are the
// user's choice: pauseGC then does nothing.
func pauseGC() {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	debug.SetMemoryLimit(startupMemoryLimit)
	debug.SetGCPercent(-1)
}

// resumeGC gives the garbage collector back the target gcPercent, and
// the runtime's default memory limit (none), unless GOGC or GOMEMLIMIT
// set them.
func resumeGC(gcPercent int) {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	debug.SetGCPercent(gcPercent)
	debug.SetMemoryLimit(math.MaxInt64)
}
