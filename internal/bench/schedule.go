package main

import (
	"math/rand/v2"
	"time"
)

// simulateSchedule replays the Watcher's timing rule without any I/O: n
// instances start together; each checks first at a random point of the
// first interval, then every interval ±10%. A check's calls go out at
// once (spread 0), or evenly over spread. It returns the calls per
// second over the horizon. The fleet measures the same rule through the
// real Watcher; this shows what the rule alone gives, and what spreading
// a check's calls would.
func simulateSchedule(rng *rand.Rand, n int, interval, horizon time.Duration, calls int, spread time.Duration) []int {
	secs := int(horizon / time.Second)
	out := make([]int, secs)
	jitter := interval / 5
	for range n {
		t := time.Duration(rng.Int64N(int64(interval)))
		for t < horizon {
			for k := range calls {
				at := t
				if spread > 0 && calls > 1 {
					at += spread * time.Duration(k) / time.Duration(calls)
				}
				if i := int(at / time.Second); i < secs {
					out[i]++
				}
			}
			t += interval - interval/10 + time.Duration(rng.Int64N(int64(jitter)+1))
		}
	}
	return out
}
