package main

import (
	"math"
	"slices"
	"time"
)

// sample is a set of measured durations.
type sample []time.Duration

// quantile returns the q-quantile (0 to 1) by linear interpolation between
// the closest ranks, the usual definition for small samples; 0 for an
// empty sample.
func (s sample) quantile(q float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	v := slices.Clone(s)
	slices.Sort(v)
	if q <= 0 {
		return v[0]
	}
	if q >= 1 {
		return v[len(v)-1]
	}
	pos := q * float64(len(v)-1)
	lo := int(math.Floor(pos))
	hi := int(math.Ceil(pos))
	frac := pos - float64(lo)
	return v[lo] + time.Duration(frac*float64(v[hi]-v[lo]))
}

func (s sample) median() time.Duration { return s.quantile(0.5) }
func (s sample) p90() time.Duration    { return s.quantile(0.9) }

// spread is the interquartile range relative to the median: how much
// repeated runs varied (0.1 means the middle half lay within 10% of the
// median's size).
func (s sample) spread() float64 {
	m := s.median()
	if m <= 0 {
		return 0
	}
	return float64(s.quantile(0.75)-s.quantile(0.25)) / float64(m)
}

// rateStats summarises a series of per-bucket counts: the mean, the peak
// and the peak over the mean.
type rateStats struct {
	Mean, Peak float64
	Ratio      float64
}

func rates(counts []int) rateStats {
	if len(counts) == 0 {
		return rateStats{}
	}
	var sum, peak int
	for _, c := range counts {
		sum += c
		peak = max(peak, c)
	}
	mean := float64(sum) / float64(len(counts))
	r := rateStats{Mean: mean, Peak: float64(peak)}
	if mean > 0 {
		r.Ratio = float64(peak) / mean
	}
	return r
}

// rebucket sums consecutive groups of k buckets (a last partial group is
// dropped, so every bucket covers the same time).
func rebucket(counts []int, k int) []int {
	if k <= 1 {
		return counts
	}
	out := make([]int, 0, len(counts)/k)
	for i := 0; i+k <= len(counts); i += k {
		s := 0
		for _, c := range counts[i : i+k] {
			s += c
		}
		out = append(out, s)
	}
	return out
}

// poissonPeak is the median of the largest of n independent Poisson(lambda)
// counts: the peak that uncoordinated, uniformly spread clients reach by
// chance alone. It is the smallest k with P(X <= k)^n >= 1/2.
func poissonPeak(lambda float64, n int) int {
	if lambda <= 0 || n <= 0 {
		return 0
	}
	p := math.Exp(-lambda) // P(X = 0)
	cdf := p
	for k := 0; k < 1_000_000; k++ {
		if math.Pow(cdf, float64(n)) >= 0.5 {
			return k
		}
		p *= lambda / float64(k+1)
		cdf += p
	}
	return int(lambda)
}
