package main

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestQuantile(t *testing.T) {
	for _, tc := range []struct {
		s    sample
		q    float64
		want time.Duration
	}{
		{ms2(), 0.5, 0},
		{ms2(7), 0.5, 7 * time.Millisecond},
		{ms2(7), 0.9, 7 * time.Millisecond},
		{ms2(3, 1, 2), 0.5, 2 * time.Millisecond},
		{ms2(4, 1, 3, 2), 0.5, 2500 * time.Microsecond},
		{ms2(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 0.9, 9100 * time.Microsecond},
		{ms2(10, 1), 0, time.Millisecond},
		{ms2(10, 1), 1, 10 * time.Millisecond},
	} {
		// Interpolation in floating point: within a microsecond.
		if got := tc.s.quantile(tc.q); got < tc.want-time.Microsecond || got > tc.want+time.Microsecond {
			t.Errorf("quantile(%v, %v) = %v, want %v", tc.s, tc.q, got, tc.want)
		}
	}
	s := ms2(5, 1, 3)
	_ = s.median()
	if s[0] != 5*time.Millisecond {
		t.Error("quantile sorted the caller's sample in place")
	}
}

func TestSpread(t *testing.T) {
	s := sample{90, 100, 100, 110, 100}
	// Quartiles 100 and 100: no spread in the middle half.
	if got := s.spread(); got != 0 {
		t.Errorf("spread = %v, want 0", got)
	}
	s = sample{80, 90, 100, 110, 120}
	if got := s.spread(); got != 0.2 {
		t.Errorf("spread = %v, want 0.2", got)
	}
}

func TestRates(t *testing.T) {
	r := rates([]int{1, 3, 2, 2})
	if r.Mean != 2 || r.Peak != 3 || r.Ratio != 1.5 {
		t.Errorf("rates = %+v", r)
	}
	if got := rebucket([]int{1, 2, 3, 4, 5}, 2); len(got) != 2 || got[0] != 3 || got[1] != 7 {
		t.Errorf("rebucket = %v, want [3 7]", got)
	}
	if r := rates(nil); r != (rateStats{}) {
		t.Errorf("rates(nil) = %+v", r)
	}
}

func TestPoissonPeak(t *testing.T) {
	// Poisson(1): P(X <= 4) = 0.99634, P(X <= 5) = 0.99941; to the 1,000th
	// power 0.026 and 0.554: the median peak of 1,000 buckets is 5.
	if got := poissonPeak(1, 1000); got != 5 {
		t.Errorf("poissonPeak(1, 1000) = %d, want 5", got)
	}
	// One bucket: the median of Poisson(10) itself.
	if got := poissonPeak(10, 1); got != 10 {
		t.Errorf("poissonPeak(10, 1) = %d, want 10", got)
	}
	if got := poissonPeak(0, 10); got != 0 {
		t.Errorf("poissonPeak(0, 10) = %d", got)
	}
}

func TestSimulateSchedule(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	// One instance, a check every 10 s ±1 s over 100 s: 9 to 11 checks,
	// each of 3 calls in one second.
	got := simulateSchedule(rng, 1, 10*time.Second, 100*time.Second, 3, 0)
	if len(got) != 100 {
		t.Fatalf("%d buckets, want 100", len(got))
	}
	sum := 0
	for _, c := range got {
		if c != 0 && c != 3 {
			t.Fatalf("a second with %d calls: a check's 3 calls go out together", c)
		}
		sum += c
	}
	if sum < 27 || sum > 33 {
		t.Errorf("%d calls, want 3 for each of 9 to 11 checks", sum)
	}
	// Spread over 3 s: at most one call of a check a second, and the next
	// check is due 10 s ±1 s after the last call, 2 s after the first: a
	// check every 12 s ±1 s, 7 to 9 in 100 s.
	got = simulateSchedule(rand.New(rand.NewPCG(1, 1)), 1, 10*time.Second, 100*time.Second, 3, 3*time.Second)
	spread := 0
	for _, c := range got {
		if c > 1 {
			t.Fatalf("a second with %d calls of one check spread over 3 s", c)
		}
		spread += c
	}
	if spread < 3*7-2 || spread > 3*9 {
		t.Errorf("%d calls spread, want 3 for each of 7 to 9 checks (less a check cut by the horizon)", spread)
	}
}

func TestCheckPeriod(t *testing.T) {
	// rolesenv's spread: a tenth of the interval, at most 10 s.
	for iv, want := range map[time.Duration]time.Duration{time.Second: 100 * time.Millisecond, time.Minute: 6 * time.Second, 5 * time.Minute: 10 * time.Second, time.Hour: 10 * time.Second} {
		if got := checkSpread(iv); got != want {
			t.Errorf("checkSpread(%v) = %v, want %v", iv, got, want)
		}
	}
	// 11 calls over 10 s: the last goes out 10·10/11 s after the first.
	if got, want := checkPeriod(5*time.Minute, 10*time.Second, 11), 5*time.Minute+100*time.Second/11; got != want {
		t.Errorf("checkPeriod = %v, want %v", got, want)
	}
	if got := checkPeriod(5*time.Minute, 10*time.Second, 1); got != 5*time.Minute {
		t.Errorf("one call: checkPeriod = %v, want the interval", got)
	}
	// The footprint's 50 references at 1 s: a check every 1.098 s.
	if got := checksPerHour(time.Second, 50); got < 3278 || got > 3279 {
		t.Errorf("checksPerHour(1s, 50) = %.1f, want 3600/1.098", got)
	}
}
