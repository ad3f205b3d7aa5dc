// Invariants:
//   - counts[i] only grows; it counts Record calls whose duration fell in
//     bucket i. sum only grows by the recorded durations; max only grows.
//   - The fields are updated independently, so a snapshot taken during
//     Record calls may count a duration in a bucket but not yet in sum (or
//     the reverse); each field is exact once recording stops.

package metrics

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

const (
	subBits  = 2            // 4 sub-buckets per power of two: width/lower bound <= 25 %
	subCount = 1 << subBits // sub-buckets per power of two
	minExp   = 10           // 2^10 ns = 1.024 µs: the first bucket is [0, 1.024 µs)
	maxExp   = 36           // 2^36 ns ≈ 68.7 s: the last bucket is [68.7 s, +Inf)
	numLog   = (maxExp - minExp) * subCount
)

// NumBuckets is the number of buckets of a Histogram: one below 1.024 µs,
// four per power of two up to 2^36 ns (≈ 68.7 s), and one above.
const NumBuckets = 1 + numLog + 1

// Histogram counts durations in fixed log-scale buckets. Record is safe for
// concurrent use, lock-free and allocation-free. The zero value is ready.
//
// All goroutines recording into one Histogram share its cache lines; where
// many cores record at a high rate, give each worker (or group of shards)
// its own Histogram and Merge their snapshots.
type Histogram struct {
	counts [NumBuckets]atomic.Uint64
	sum    atomic.Int64 // nanoseconds
	max    atomic.Int64 // nanoseconds
}

// Record adds one duration. Negative durations count as zero.
func (h *Histogram) Record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[BucketOf(d)].Add(1) // counts the observation; read by Snapshot
	if h.sum.Add(int64(d)) < 0 { // adds to the total; read by Snapshot
		// Past 292 years of nanoseconds the total wraps: it stays at the
		// most an int64 holds instead (a long-lived Timings under load
		// gets there in days).
		h.sum.Store(math.MaxInt64)
	}
	for {
		m := h.max.Load()                                       // current maximum
		if int64(d) <= m || h.max.CompareAndSwap(m, int64(d)) { // raises the maximum
			return
		}
	}
}

// Snapshot copies the histogram in O(NumBuckets), without stopping
// recorders.
func (h *Histogram) Snapshot() HistogramSnapshot {
	var s HistogramSnapshot
	for i := range h.counts {
		c := h.counts[i].Load() // observes bucket i's count so far
		s.Counts[i] = c
		s.Count += c
	}
	s.Sum = time.Duration(h.sum.Load()) // observes the total so far
	s.Max = time.Duration(h.max.Load()) // observes the maximum so far
	return s
}

// BucketOf returns the index of the bucket that holds d.
func BucketOf(d time.Duration) int {
	if d < 1<<minExp {
		return 0
	}
	u := uint64(d)
	e := bits.Len64(u) - 1 // 2^e <= u < 2^(e+1)
	if e >= maxExp {
		return NumBuckets - 1
	}
	sub := int(u>>(e-subBits)) & (subCount - 1)
	return 1 + (e-minExp)*subCount + sub
}

// BucketLowerBound returns the smallest duration bucket i holds.
func BucketLowerBound(i int) time.Duration {
	switch {
	case i <= 0:
		return 0
	case i >= NumBuckets-1:
		return 1 << maxExp
	}
	e := minExp + (i-1)/subCount
	sub := (i - 1) % subCount
	return time.Duration(uint64(subCount+sub) << (e - subBits))
}

// BucketUpperBound returns the first duration above bucket i (exclusive
// bound), or math.MaxInt64 for the last bucket.
func BucketUpperBound(i int) time.Duration {
	if i >= NumBuckets-1 {
		return math.MaxInt64
	}
	return BucketLowerBound(i + 1)
}

// HistogramSnapshot is a copy of a Histogram at one moment. It is a plain
// value: copy, merge and query it freely.
type HistogramSnapshot struct {
	Counts [NumBuckets]uint64 // observations per bucket
	Count  uint64             // sum of Counts
	Sum    time.Duration      // sum of the recorded durations
	Max    time.Duration      // largest recorded duration
}

// Merge adds o's observations to s.
func (s *HistogramSnapshot) Merge(o *HistogramSnapshot) {
	for i := range s.Counts {
		s.Counts[i] += o.Counts[i]
	}
	s.Count += o.Count
	if s.Sum > math.MaxInt64-o.Sum {
		s.Sum = math.MaxInt64 // saturates, as Record does
	} else {
		s.Sum += o.Sum
	}
	s.Max = max(s.Max, o.Max)
}

// Mean returns Sum/Count, or 0 when empty.
func (s *HistogramSnapshot) Mean() time.Duration {
	if s.Count == 0 {
		return 0
	}
	return s.Sum / time.Duration(s.Count)
}

// Quantile returns an estimate of the q-quantile (0 <= q <= 1) of the
// recorded durations: the observation of rank ceil(q·Count), interpolated
// linearly inside its bucket and never above Max. The estimate lies in the
// same bucket as the true value, so its relative error is at most 25 %
// (absolute below 1.024 µs). It returns 0 when the snapshot is empty.
func (s *HistogramSnapshot) Quantile(q float64) time.Duration {
	if s.Count == 0 || math.IsNaN(q) {
		return 0
	}
	q = min(max(q, 0), 1)
	rank := uint64(math.Ceil(q * float64(s.Count)))
	rank = max(rank, 1)
	if rank >= s.Count {
		return s.Max // the largest observation is known exactly
	}
	var cum uint64
	for i, c := range s.Counts {
		if c == 0 || cum+c < rank {
			cum += c
			continue
		}
		lo, hi := BucketLowerBound(i), BucketUpperBound(i)
		hi = min(hi, s.Max)
		if hi <= lo {
			return min(lo, s.Max)
		}
		// Place the c observations at the midpoints of c equal parts of
		// [lo, hi); rank-cum is the position (1..c) of the one we want.
		frac := (float64(rank-cum) - 0.5) / float64(c)
		return lo + time.Duration(frac*float64(hi-lo))
	}
	return s.Max
}

// Summary is the usual digest of a histogram.
type Summary struct {
	// Count is the number of values recorded, Mean their mean.
	Count uint64
	Mean  time.Duration
	// P50, P90 and P99 are percentiles, Max the largest value.
	P50, P90, P99, Max time.Duration
}

// Summary returns count, mean, p50, p90, p99 and max.
func (s *HistogramSnapshot) Summary() Summary {
	return Summary{
		Count: s.Count,
		Mean:  s.Mean(),
		P50:   s.Quantile(0.50),
		P90:   s.Quantile(0.90),
		P99:   s.Quantile(0.99),
		Max:   s.Max,
	}
}
