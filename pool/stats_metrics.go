package pool

// Invariants:
//
//   - A Timings' histograms only grow. Workers record into the stripe of the
//     shard they run (shard mod timingStripes), so workers of different
//     shards seldom write the same cache lines; Snapshot merges the stripes
//     without stopping them.
//   - A task flagged stampTop in entry.enq was counted once in Pool.top
//     before its push published it, and is uncounted exactly once: when the
//     push fails, or when it first reaches attempt, which clears the flag
//     (a retry keeps the cleared copy).
//   - rates.lastArr and lastDone only grow, under rates.mu.

import (
	"iter"
	"slices"
	"sync"
	"time"

	"github.com/shoal-go/shoal/internal/metrics"
	"github.com/shoal-go/shoal/shard"
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
// Every pool already times a sampled one task in TimingSampleEvery into a
// Timings of its own, reported in Stats.Timings. WithTimings times every
// attempt instead: two clock reads per attempt and an exact acceptance
// time per task (about 35 ns each on a kvm-clock virtual machine) plus
// about 30 ns of recording, without allocation. The zero value is ready.
// Several pools may share one Timings; their times add up.
type Timings struct {
	stripes [timingStripes]timingStripe
}

type timingStripe struct {
	wait, run metrics.Histogram
	_         [64]byte // keeps the next stripe's counters off this one's last line
}

// WithTimings makes the pool record every task attempt's queue wait and run
// time into t, but for an attempt that ends in runtime.Goexit (the task or
// a Batcher's call never returns; its letter is Panicked, ErrGoexit or the
// value of a panic that interrupted the Goexit), which is not recorded. The
// queue wait of a retried task is counted from its acceptance. It composes
// with other options that observe tasks.
func WithTimings(t *Timings) Option {
	return optionFunc(func(c *config) error {
		if t == nil {
			return invalid("WithTimings(nil)")
		}
		if slices.Contains(c.timingsAll, t) {
			return nil // already recorded into: counted once
		}
		c.timingsAll = append(c.timingsAll, t)
		c.timings = t
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

// Sampled timings, top groups and rates: what Snapshot carries by default.
//
// A task is timed when its shard's submission count, mixed with the shard
// by a multiplicative hash, falls in the sampled 1/TimingSampleEvery. Submit
// keeps that count under the shard's lock anyway, and only a sampled task
// pays for the real clock at acceptance; the
// worker reads the clock at the start and end of each attempt of a sampled
// task only. The flags travel in the two low bits of entry.enq, so entries
// keep their size; acceptance times lose at most 3 ns.

// timingSampleShift sets the default sampling: one task in 1<<shift.
const timingSampleShift = 6

// TimingSampleEvery is how many tasks one timed task stands for in the
// default queue-wait and run-time histograms of Stats (one in 64). With
// WithTimings every task is timed instead.
const TimingSampleEvery = 1 << timingSampleShift

// Flags in the low bits of entry.enq.
const (
	// stampTimed: the acceptance time is exact and the worker times the
	// task's attempts into the pool's sampled Timings.
	stampTimed = 1
	// stampTop: the task is counted in the pool's top-groups sketch; the
	// worker uncounts it when its first attempt starts.
	stampTop = 2
	// stampPlain: the task's context can never be canceled (entry.plain).
	stampPlain = 4
	stampFlags = stampTimed | stampTop | stampPlain
)

// timingSampled reports whether the task at submission count pos of shard idx
// is timed. The golden-ratio multiplication spreads consecutive positions
// evenly, without a period that batches (a multiple of 64 tasks) could
// line up with.
func timingSampled(idx uint32, pos uint64) bool {
	return ((pos^uint64(idx)<<32)*0x9E3779B97F4A7C15)>>(64-timingSampleShift) == 0
}

// enqTime returns the acceptance time of a stamp, without its flags.
func enqTime(enq int64) int64 { return enq &^ stampFlags }

// recordSample times one attempt of a sampled task into the pool's own
// Timings; start and end are exact clock readings, enq the exact stamp.
func (t *Timings) recordSample(idx uint32, enq, start, end int64) {
	t.record(int(idx), time.Duration(start-enqTime(enq)), time.Duration(end-start))
}

// WithTopGroups makes the pool track the groups with the most tasks waiting
// to start, reported in Stats.TopGroups. A sampled one task in eight (by
// its shard's submission count) is counted in a count-min sketch on Submit and
// uncounted when its first attempt starts; heavy groups enter a 16-slot
// table. See Stats.TopGroups for the cost.
//
// Cost: about 5 ns per task (internal/metrics, IncSeq and Dec), within the
// noise of BenchmarkStatsSubmit. It is off by default because it buys
// nothing for pools whose load is spread.
func WithTopGroups() Option {
	return optionFunc(func(c *config) error { c.topGroups = true; return nil })
}

// GroupQueued is one entry of Stats.TopGroups.
type GroupQueued struct {
	// Group is the group's key (a K of the pool's Pool[K]).
	Group any
	// Queued estimates the group's tasks waiting to start: the sampled
	// count times eight. It errs upward by what groups sharing its sketch
	// cells hold and, for small counts, by sampling noise.
	Queued int64
}

// topGroups returns the tracked groups, heaviest first, or nil.
func (p *core[K, P, L]) topGroups() []GroupQueued {
	if p.top == nil {
		return nil
	}
	var buf [metrics.TopKSlots]metrics.TopGroup[K]
	top := p.top.Top(buf[:0])
	if len(top) == 0 {
		return nil
	}
	out := make([]GroupQueued, len(top))
	for i, g := range top {
		out[i] = GroupQueued{Group: g.Group, Queued: g.Queued}
	}
	return out
}

// countTop counts a task about to be pushed in the top-groups sketch when
// it is sampled, and flags it. h is the group's hash, 0 for Go's tasks.
func (p *core[K, P, L]) countTop(e *entry[K, P], h uint64, group K, pos uint64) {
	if p.top.IncSeq(h, group, pos) {
		e.enq |= stampTop
	}
}

// uncountTop takes a flagged task out of the sketch: when its push failed,
// or when its first attempt starts.
func (p *core[K, P, L]) uncountTop(e *entry[K, P], group K) {
	p.top.Dec(shard.Hash(group))
	e.enq &^= stampTop
}

// rates turns the arrival and completion counters into moving averages at
// Snapshot time, so tasks pay nothing for them.
type rates struct {
	mu                    sync.Mutex
	arrivals, completions metrics.Rate
	lastArr, lastDone     uint64 // guarded by mu
}

// start seeds both averages' start time (New calls it).
func (r *rates) start(now time.Time) {
	r.arrivals.Tick(now)
	r.completions.Tick(now)
}

// update folds the counts since the previous call into the averages and
// returns them. Concurrent snapshots may read counters out of order; a count
// below the last one adds nothing.
func (r *rates) update(now time.Time, arrived, done uint64) (arrivals, completions float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if arrived > r.lastArr {
		r.arrivals.Add(arrived - r.lastArr)
		r.lastArr = arrived
	}
	if done > r.lastDone {
		r.completions.Add(done - r.lastDone)
		r.lastDone = done
	}
	r.arrivals.Tick(now)
	r.completions.Tick(now)
	return r.arrivals.Rate(), r.completions.Rate()
}
