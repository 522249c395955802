package bench

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// Dist summarises a set of durations.
type Dist struct {
	N                  int
	Min, P50, P95, P99 time.Duration
	Max, Mean          time.Duration
}

// NewDist computes the summary of samples (which it sorts in place).
// Percentiles are nearest-rank: P99 is the smallest sample that at least
// 99% of the samples do not exceed.
func NewDist(samples []time.Duration) Dist {
	if len(samples) == 0 {
		return Dist{}
	}
	slices.Sort(samples)
	var sum time.Duration
	for _, s := range samples {
		sum += s
	}
	return Dist{
		N:    len(samples),
		Min:  samples[0],
		P50:  Percentile(samples, 50),
		P95:  Percentile(samples, 95),
		P99:  Percentile(samples, 99),
		Max:  samples[len(samples)-1],
		Mean: sum / time.Duration(len(samples)),
	}
}

// Percentile returns the nearest-rank p-th percentile of sorted samples.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// Median returns the median of samples (sorting them in place).
func Median(samples []time.Duration) time.Duration {
	return NewDist(samples).P50
}

// FmtDur formats a duration with three significant digits in a fitting
// unit: 87.3µs, 1.24ms, 2.05s.
func FmtDur(d time.Duration) string {
	switch {
	case d <= 0:
		return "0"
	case d < time.Millisecond:
		return sig3(float64(d)/float64(time.Microsecond)) + "µs"
	case d < time.Second:
		return sig3(float64(d)/float64(time.Millisecond)) + "ms"
	default:
		return sig3(float64(d)/float64(time.Second)) + "s"
	}
}

func sig3(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

// FmtMB formats a byte count in MiB.
func FmtMB(b int64) string { return fmt.Sprintf("%.1f MB", float64(b)/(1<<20)) }

// FmtPct formats a ratio 0..1 as a percentage; 1 is "100 %" exactly and
// anything below it never rounds up to 100.
func FmtPct(r float64) string {
	if r >= 1 {
		return "100 %"
	}
	s := fmt.Sprintf("%.3f %%", math.Floor(r*100000)/1000)
	return s
}
