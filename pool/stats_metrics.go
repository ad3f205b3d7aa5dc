package pool

// Invariants:
//
//   - A Timings' histograms only grow. Workers record into the stripe of the
//     shard they run (shard mod timingStripes), so workers of different
//     shards seldom write the same cache lines; Snapshot merges the stripes
//     without stopping them.

import (
	"iter"
	"time"

	"github.com/shoal-go/shoal/internal/metrics"
)

// timingStripes spreads the shards over this many pairs of histograms. Eight
// pairs cost 14 KiB per Timings and keep two workers of different shards
// off each other's cache lines seven times in eight.
const timingStripes = 8

// Timings records how long each task attempt waited in its queue and how
// long it ran, in lock-free log-scale histograms (four buckets per power of
// two from 1 µs to about 69 s). Give it to a pool with WithTimings and read
// it with Snapshot at any time, for example from a Prometheus collector.
//
// Recording costs two clock reads per attempt (taken only when a pool has a
// Timings) and about 30 ns, without allocation. The zero value is ready.
// Several pools may share one Timings; their times add up.
type Timings struct {
	stripes [timingStripes]timingStripe
}

type timingStripe struct {
	wait, run metrics.Histogram
	_         [64]byte // keeps the next stripe's counters off this one's last line
}

// WithTimings makes the pool record every task attempt's queue wait and run
// time into t. The queue wait of a retried task is counted from its
// acceptance. It composes with other options that observe tasks.
func WithTimings(t *Timings) Option {
	return optionFunc(func(c *config) error {
		if t == nil {
			return invalid("WithTimings(nil)")
		}
		if prev := c.onTask; prev != nil {
			c.onTask = func(shard int, wait, run time.Duration) {
				prev(shard, wait, run)
				t.record(shard, wait, run)
			}
			return nil
		}
		c.onTask = t.record
		return nil
	})
}

// record is the onTask hook: it runs on the worker after each attempt.
func (t *Timings) record(shard int, wait, run time.Duration) {
	s := &t.stripes[uint(shard)%timingStripes]
	s.wait.Record(wait)
	s.run.Record(run)
}

// TimingStats is a snapshot of a Timings.
type TimingStats struct {
	// Wait is the time from acceptance to the start of each attempt.
	Wait Histogram
	// Run is the time each attempt ran.
	Run Histogram
}

// Snapshot returns the distributions recorded so far. It costs
// O(buckets × stripes), about 2 µs, and never blocks the pool.
func (t *Timings) Snapshot() TimingStats {
	var s TimingStats
	for i := range t.stripes {
		w := t.stripes[i].wait.Snapshot()
		r := t.stripes[i].run.Snapshot()
		s.Wait.h.Merge(&w)
		s.Run.h.Merge(&r)
	}
	return s
}

// Histogram is a distribution of durations in fixed log-scale buckets: one
// below 1.024 µs, four per power of two up to 2^36 ns (≈ 68.7 s), and one
// above. It is a plain value. Quantiles are estimated within their bucket,
// so their relative error is at most 25 %; Count, Sum and Max are exact.
type Histogram struct {
	h metrics.HistogramSnapshot
}

// Count returns the number of recorded durations.
func (h Histogram) Count() uint64 { return h.h.Count }

// Sum returns the total of the recorded durations.
func (h Histogram) Sum() time.Duration { return h.h.Sum }

// Max returns the largest recorded duration.
func (h Histogram) Max() time.Duration { return h.h.Max }

// Mean returns Sum / Count, or 0 when empty.
func (h Histogram) Mean() time.Duration { return h.h.Mean() }

// Quantile returns an estimate of the q-quantile, 0 <= q <= 1 (0 when
// empty).
func (h Histogram) Quantile(q float64) time.Duration { return h.h.Quantile(q) }

// P50 returns the estimated median.
func (h Histogram) P50() time.Duration { return h.h.Quantile(0.50) }

// P90 returns the estimated 90th percentile.
func (h Histogram) P90() time.Duration { return h.h.Quantile(0.90) }

// P99 returns the estimated 99th percentile.
func (h Histogram) P99() time.Duration { return h.h.Quantile(0.99) }

// Merge returns the distribution of h and o together.
func (h Histogram) Merge(o Histogram) Histogram {
	h.h.Merge(&o.h)
	return h
}

// Buckets yields every bucket in increasing order as its exclusive upper
// bound and its count; the last bucket's bound is math.MaxInt64.
func (h Histogram) Buckets() iter.Seq2[time.Duration, uint64] {
	return func(yield func(time.Duration, uint64) bool) {
		for i, c := range h.h.Counts {
			if !yield(metrics.BucketUpperBound(i), c) {
				return
			}
		}
	}
}
