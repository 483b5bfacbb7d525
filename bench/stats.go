package bench

import (
	"math"
	"slices"
	"time"
)

// Percentile returns the p-th percentile (0 < p <= 100) of sorted latencies by the
// nearest-rank method: the smallest value such that at least p% of the values are less than
// or equal to it. It returns 0 for no values.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	if p <= 0 {
		return sorted[0]
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// Summary sums up a load run: how many calls and units (observations, entries, messages:
// whatever one call carries) succeeded in how long, with latency percentiles of the
// successful calls.
type Summary struct {
	Calls    int64         // successful calls
	Units    int64         // units carried by the successful calls
	Errors   int64         // failed calls
	FirstErr string        // the first failure, if any
	Elapsed  time.Duration // measured wall time (warm-up excluded)
	P50      time.Duration
	P99      time.Duration
	P999     time.Duration
	Max      time.Duration
	// AllUnits are the units of every successful call of the run, warm-up and the calls
	// that ended after the measured window included (what the server acknowledged in all).
	AllUnits int64
}

// Summarize computes a Summary from the latencies of successful calls (in any order; the
// slice is sorted in place), the units they carried, the failures and the elapsed time.
func Summarize(latencies []time.Duration, units, errors int64, elapsed time.Duration) Summary {
	slices.Sort(latencies)
	s := Summary{Calls: int64(len(latencies)), Units: units, Errors: errors, Elapsed: elapsed}
	if len(latencies) > 0 {
		s.P50 = Percentile(latencies, 50)
		s.P99 = Percentile(latencies, 99)
		s.P999 = Percentile(latencies, 99.9)
		s.Max = latencies[len(latencies)-1]
	}
	return s
}

// CallRate returns successful calls per second.
func (s Summary) CallRate() float64 { return perSecond(s.Calls, s.Elapsed) }

// UnitRate returns units per second.
func (s Summary) UnitRate() float64 { return perSecond(s.Units, s.Elapsed) }

func perSecond(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// Millis returns d in milliseconds, as the tables show latencies.
func Millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
