package chatsim

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// Invariants:
//   - Every field is an atomic counter; record may run on any number of
//     goroutines at once, and quantile may read while they do. A quantile taken
//     during recording is a consistent lower-bound view: every bucket count it
//     reads is one that was reached.
//   - Bucket i counts values v with lower(i) <= v <= upper(i); buckets are
//     contiguous and cover [0, 2^64).

// subBits is the number of mantissa bits kept per power of two: 32 buckets
// per octave, so a quantile is reported within 1/32 (3 %) of the true value.
const (
	subBits    = 5
	subCount   = 1 << subBits
	numBuckets = (64 - subBits + 1) * subCount
)

// histogram is a log-linear histogram of durations in nanoseconds, the shape
// of HdrHistogram with a fixed 3 % precision. It needs no lock: one atomic add
// per value.
type histogram struct {
	buckets [numBuckets]atomic.Uint64
	count   atomic.Uint64
	sum     atomic.Uint64
	max     atomic.Uint64
}

// bucketOf returns the index of the bucket holding v.
func bucketOf(v uint64) int {
	if v < subCount {
		return int(v)
	}
	shift := bits.Len64(v) - 1 - subBits
	return (shift+1)*subCount + int((v>>uint(shift))&(subCount-1))
}

// bucketUpper returns the largest value bucket i holds.
func bucketUpper(i int) uint64 {
	if i < subCount {
		return uint64(i)
	}
	shift := uint(i/subCount - 1)
	lower := uint64(subCount+i%subCount) << shift
	return lower + (uint64(1) << shift) - 1
}

// record adds one duration; negative durations count as zero.
func (h *histogram) record(d time.Duration) {
	v := uint64(0)
	if d > 0 {
		v = uint64(d)
	}
	h.buckets[bucketOf(v)].Add(1) // publishes nothing: a counter
	h.count.Add(1)                // a counter
	h.sum.Add(v)                  // a counter
	for {
		m := h.max.Load()                         // the largest value recorded so far
		if v <= m || h.max.CompareAndSwap(m, v) { // raises the maximum; fails if another value won
			return
		}
	}
}

// quantile returns the value below or at which a fraction q of the recorded
// values lie, rounded up to its bucket's upper bound and capped by the maximum.
// It returns 0 when nothing was recorded.
func (h *histogram) quantile(q float64) time.Duration {
	n := h.count.Load() // values recorded so far
	if n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(n)))
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for i := range h.buckets {
		seen += h.buckets[i].Load() // a counter
		if seen >= rank {
			return time.Duration(min(bucketUpper(i), h.max.Load())) // the maximum so far
		}
	}
	return time.Duration(h.max.Load()) // the maximum so far
}

// mean returns the arithmetic mean, or 0 when nothing was recorded.
func (h *histogram) mean() time.Duration {
	n := h.count.Load() // a counter
	if n == 0 {
		return 0
	}
	return time.Duration(h.sum.Load() / n) // a counter
}

// maximum returns the largest recorded value.
func (h *histogram) maximum() time.Duration { return time.Duration(h.max.Load()) } // the maximum so far
