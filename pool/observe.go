package pool

// Invariants:
//
//   - A pool has an observer only if an option asked for one (WithSlowTask,
//     WithProfilerLabels); without it the worker pays one nil check before
//     and one after each attempt, and reads no clock for it.
//   - shardCtx is built by New and only read after.
//   - slow only grows; it is the one field of the observer written by
//     several workers.

import (
	"context"
	"runtime/pprof"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/shoal-go/shoal/shard"
)

// SlowTask describes a task attempt that ran longer than the threshold of
// WithSlowTask.
type SlowTask[K shard.Key] struct {
	// Group is the task's group.
	Group K
	// Shard is the shard the group maps to (Pool.ShardOf).
	Shard int
	// Attempt is the attempt that was slow, from 1.
	Attempt int
	// Run is how long the attempt ran.
	Run time.Duration
}

// WithSlowTask counts the task attempts that run longer than d in
// Stats.SlowTasks and, if fn is not nil, calls fn with each of them; an
// attempt that ends in runtime.Goexit (the task or a Batcher's call never
// returns) is not looked at, as WithTimings does not record it. fn runs
// on the worker right after the attempt, so it delays the tasks of that
// shard: keep it short (log, count, sample). A panic in fn is recovered and
// ignored, and a runtime.Goexit in fn ends only fn (it runs on a goroutine
// of its own, which the worker waits for). d must be positive.
//
// The option is generic so that fn receives the group with its own type,
// without boxing it in an interface (an allocation per slow task for most
// key types) and without a type assertion in fn; the type is inferred from
// fn. Options are not generic, so a pool whose group type differs from fn's
// is refused by New with an error matching ErrInvalidOption. With a nil fn
// any group type is accepted: pool.WithSlowTask[string](d, nil).
//
// Cost: two clock reads per attempt, about 10 ns per task (BenchmarkObserve;
// docs/TUNING.md has the figures). It composes with WithTimings and
// WithProfilerLabels.
func WithSlowTask[K shard.Key](d time.Duration, fn func(SlowTask[K])) Option {
	return optionFunc(func(c *config) error {
		if d <= 0 {
			return invalid("WithSlowTask(%v): want > 0", d)
		}
		c.slowAfter = d
		c.slowFn = nil
		if fn != nil {
			c.slowFn = fn
		}
		return nil
	})
}

// WithProfilerLabels sets the runtime/pprof label "shard" (the shard's
// index in decimal) on a worker while it runs a task, so that CPU and
// goroutine profiles attribute the time to shards: find hot shards with
// `go tool pprof -tags` or `-tagfocus=shard=12`; Pool.ShardOf maps a group
// to its shard. The labels are cleared after each attempt. A task that wants
// its group in a profile can add it itself with pprof.Do, paying the
// allocations only where it asks.
//
// The shards' labels are built by New; they cost two label switches per
// attempt and no allocation, within the noise of BenchmarkObserve. Without the option the pool sets no labels
// and pays one nil check before and after each attempt.
func WithProfilerLabels() Option {
	return optionFunc(func(c *config) error {
		c.labels = labelShard
		return nil
	})
}

// Profiler label modes of config.labels.
const (
	labelOff = iota
	labelShard
)

// observer runs the options that look at every attempt.
type observer[K shard.Key] struct {
	slowAfter int64 // ns; 0: slow tasks are not looked for
	slowFn    func(SlowTask[K])
	slow      atomic.Uint64
	labels    int
	shardCtx  []context.Context
}

// newObserver returns the pool's observer, nil when no option needs one, or
// an error when WithSlowTask's callback is for another group type.
func newObserver[K shard.Key](c *config) (*observer[K], error) {
	if c.slowAfter == 0 && c.labels == labelOff {
		return nil, nil
	}
	o := &observer[K]{slowAfter: int64(c.slowAfter), labels: c.labels}
	if c.slowFn != nil {
		fn, ok := c.slowFn.(func(SlowTask[K]))
		if !ok {
			var k K
			return nil, invalid("WithSlowTask: callback %T does not take the pool's groups (%T)", c.slowFn, k)
		}
		o.slowFn = fn
	}
	if o.labels != labelOff {
		o.shardCtx = make([]context.Context, c.shards)
		for i := range o.shardCtx {
			o.shardCtx[i] = pprof.WithLabels(context.Background(), pprof.Labels("shard", strconv.Itoa(i)))
		}
	}
	return o, nil
}

// before runs on the worker right before an attempt of e on shard idx; it
// returns the start time, or 0 when no clock is needed.
func (o *observer[K]) before(p nanoClock, idx uint32, group K) int64 {
	if o.labels != labelOff {
		pprof.SetGoroutineLabels(o.shardCtx[idx])
	}
	if o.slowAfter > 0 {
		return p.nanotime()
	}
	return 0
}

// after runs on the worker right after attempt number attempt of e, started
// at start: it clears the labels and looks for a slow attempt.
func (o *observer[K]) after(p nanoClock, idx uint32, group K, attempt int, start int64) {
	if o.slowAfter == 0 {
		o.stop() // no clock to read
		return
	}
	o.afterAt(idx, group, attempt, start, p.nanotime())
}

// stop runs on the worker when an attempt stops without returning (see
// turnState.stopped), before its letter and the panic handler: it clears
// the labels, which the handler's goroutine would inherit.
func (o *observer[K]) stop() {
	if o.labels != labelOff {
		pprof.SetGoroutineLabels(context.Background())
	}
}

// afterAt is after for an attempt that ended at end, read earlier: its
// letter and the panic handler are not its run.
func (o *observer[K]) afterAt(idx uint32, group K, attempt int, start, end int64) {
	o.stop()
	if o.slowAfter > 0 && end-start > o.slowAfter {
		// Counts the slow attempt for Snapshot.
		o.slow.Add(1)
		if o.slowFn != nil {
			callSlow(o.slowFn, SlowTask[K]{Group: group, Shard: int(idx), Attempt: attempt, Run: time.Duration(end - start)})
		}
	}
}

// nanoClock is the pool's clock as the observer reads it.
type nanoClock interface{ nanotime() int64 }

// callSlow calls the slow-task callback, containing its panic and
// runtime.Goexit (see contain).
func callSlow[K shard.Key](fn func(SlowTask[K]), s SlowTask[K]) {
	contain(func() { fn(s) })
}

// slowTasks returns the number of slow attempts so far.
func (p *core[K, P, L]) slowTasks() uint64 {
	if p.obs == nil {
		return 0
	}
	return p.obs.slow.Load()
}
