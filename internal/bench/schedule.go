package main

import (
	"math/rand/v2"
	"time"
)

// simulateSchedule replays the watch's timing rule without any I/O: n
// instances start together; each checks first at a random point of the
// first interval; a check's calls go out at once (spread 0) or the k-th
// of them at spread·k/calls; the next check comes the interval ±10% after
// the check's last call (the watch sets its timer once a check is done).
// It returns the calls per second over the horizon. The fleet measures the
// same rule through the real watch; this shows what the rule alone
// gives, and what another spread would.
func simulateSchedule(rng *rand.Rand, n int, interval, horizon time.Duration, calls int, spread time.Duration) []int {
	secs := int(horizon / time.Second)
	out := make([]int, secs)
	jitter := interval / 5
	for range n {
		t := time.Duration(rng.Int64N(int64(interval)))
		for t < horizon {
			var at time.Duration
			for k := range calls {
				at = t
				if spread > 0 && calls > 1 {
					at += spread * time.Duration(k) / time.Duration(calls)
				}
				if i := int(at / time.Second); i < secs {
					out[i]++
				}
			}
			t = at + interval - interval/10 + time.Duration(rng.Int64N(int64(jitter)+1))
		}
	}
	return out
}

// checkPeriod is the mean time from one check to the next: the interval
// (its jitter averages out) after the check's last call, which the spread
// puts spread·(calls-1)/calls after its first.
func checkPeriod(interval, spread time.Duration, calls int) time.Duration {
	if calls <= 1 {
		return interval
	}
	return interval + spread*time.Duration(calls-1)/time.Duration(calls)
}

// checksPerHour is how many checks a watcher makes in an hour at interval
// once running, with rolesenv's spread.
func checksPerHour(interval time.Duration, calls int) float64 {
	return float64(time.Hour) / float64(checkPeriod(interval, checkSpread(interval), calls))
}
