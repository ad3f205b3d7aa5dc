package pool

// Observers, timings and clocks: what each figure counts, and what the
// options do not reach.

import (
	"context"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// Run time is the attempt's: WithTimings must not count the WithSlowTask
// callback, which runs on the worker after the attempt, as the task's run.
func TestRunExcludesSlowCallback(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var tm Timings
		p := newPool[string](t, WithWorkers(1, 1), WithTimings(&tm),
			WithSlowTask(5*time.Millisecond, func(SlowTask[string]) { time.Sleep(time.Second) }))
		if err := p.Submit(context.Background(), "g", func(context.Context) error {
			time.Sleep(10 * time.Millisecond)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if err := p.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		s := tm.Snapshot()
		if s.Run.Count() != 1 || s.Run.Max() != 10*time.Millisecond {
			t.Fatalf("Run: count %d, max %v; want 1 attempt of 10ms (the slow callback's 1s is not the task's)", s.Run.Count(), s.Run.Max())
		}
	})
}

// The same for a Batcher: the call's run time, not the call plus the
// slow-task callback.
func TestBatcherRunExcludesSlowCallback(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var tm Timings
		b, err := NewBatcher(func(ctx context.Context, g string, msgs []int) error {
			time.Sleep(10 * time.Millisecond)
			return nil
		}, WithWorkers(1, 1), WithTimings(&tm),
			WithSlowTask(5*time.Millisecond, func(SlowTask[string]) { time.Sleep(time.Second) }))
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Submit(context.Background(), "g", 1); err != nil {
			t.Fatal(err)
		}
		if err := b.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		s := tm.Snapshot()
		if s.Run.Count() != 1 || s.Run.Max() != 10*time.Millisecond {
			t.Fatalf("Run: count %d, max %v; want 1 call of 10ms", s.Run.Count(), s.Run.Max())
		}
	})
}

// frozenClock is an injected Clock that never moves (a typical test clock).
type frozenClock struct{ t time.Time }

func (c frozenClock) Now() time.Time { return c.t }

// Guarantee 2: a group with a deep queue yields its worker after a turn of
// WithBatchSize tasks or 2 ms. WithClock is documented as the source of
// timestamps and of the expiry check only; the scheduler's turn clock must
// not depend on it. With one worker and one shard, group "b" submitted
// behind 200 one-millisecond tasks of "a" must start within a few ms.
func TestClockDoesNotDriveTurns(t *testing.T) {
	for name, opts := range map[string][]Option{
		"no clock":     nil,
		"frozen clock": {WithClock(frozenClock{time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)})},
	} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := newPool[string](t, append([]Option{WithWorkers(1, 1), WithShards(1)}, opts...)...)
				start := time.Now()
				for range 200 {
					if err := p.Submit(context.Background(), "a", func(context.Context) error {
						time.Sleep(time.Millisecond)
						return nil
					}); err != nil {
						t.Fatal(err)
					}
				}
				var bStart time.Duration
				if err := p.Submit(context.Background(), "b", func(context.Context) error {
					bStart = time.Since(start)
					return nil
				}); err != nil {
					t.Fatal(err)
				}
				if err := p.Close(context.Background()); err != nil {
					t.Fatal(err)
				}
				if bStart > 10*time.Millisecond {
					t.Fatalf("group b started after %v behind a's 1 ms tasks; want a's turn to end after about 2 ms", bStart)
				}
			})
		})
	}
}

// stepClock is an injected Clock that a test moves forward.
type stepClock struct {
	base time.Time
	off  atomic.Int64
}

func (c *stepClock) Now() time.Time { return c.base.Add(time.Duration(c.off.Load())) }

// Figures without overflow: Sum (and so Mean) of a Timings must not wrap
// negative. Four concurrent attempts that each run 100 years (an injected
// clock moved once while they run) sum to 400 years of run time, past
// int64 nanoseconds (about 292 years): the Sum saturates. A busy pool's
// wait Sum would get there in days (1e5 tasks/s with 1 s of queue wait
// add 1e14 ns a second), sooner when several pools share one Timings.
func TestTimingsSumSaturates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var tm Timings
		clk := &stepClock{base: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}
		p := newPool[int](t, WithWorkers(4, 4), WithTimings(&tm), WithClock(clk))
		const long = 100 * 365 * 24 * time.Hour
		var started sync.WaitGroup
		release := make(chan struct{})
		started.Add(4)
		for g := range 4 {
			if err := p.Submit(context.Background(), g, func(context.Context) error {
				started.Done()
				<-release
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}
		started.Wait()
		clk.off.Store(int64(long))
		close(release)
		if err := p.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		r := tm.Snapshot().Run
		if r.Count() != 4 || r.Sum() < 0 || r.Mean() < 0 || r.Mean() > r.Max() {
			t.Fatalf("Run: count %d, sum %v, mean %v, max %v; want a non-negative sum and mean <= max",
				r.Count(), r.Sum(), r.Mean(), r.Max())
		}
	})
}

// Quantiles are monotonic and bounded by Max for any mix of recordings,
// including negative, zero and huge durations.
func TestQuantilesMonotonic(t *testing.T) {
	var tm Timings
	ds := []time.Duration{-5, 0, 1, 1023, 1024, 1500, 3 * time.Millisecond, time.Second, 1 << 36, 1<<36 + 1, 1 << 62}
	for i, d := range ds {
		tm.record(i, d, d)
	}
	h := tm.Snapshot().Run
	prev := time.Duration(-1)
	for q := 0.0; q <= 1.0; q += 0.01 {
		v := h.Quantile(q)
		if v < prev || v > h.Max() || v < 0 {
			t.Fatalf("Quantile(%v) = %v after %v, max %v", q, v, prev, h.Max())
		}
		prev = v
	}
	if !(h.P50() <= h.P99() && h.P99() <= h.Max()) {
		t.Fatalf("p50 %v p99 %v max %v", h.P50(), h.P99(), h.Max())
	}
}

// Without WithProfilerLabels "the pool sets no labels": a task runs with
// no labels of the application's, though a worker is started by a Submit
// made inside pprof.Do, whose labels a goroutine would inherit.
func TestWorkersStartWithoutLabels(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPool[string](t, WithWorkers(0, 1))
		var wg sync.WaitGroup
		wg.Add(1)
		pprof.Do(context.Background(), pprof.Labels("caller", "handler-x"), func(ctx context.Context) {
			if err := p.Submit(ctx, "a", func(context.Context) error { wg.Done(); return nil }); err != nil {
				t.Fatal(err)
			}
		})
		wg.Wait()
		synctest.Wait()
		got := probeLabels(t, p, "b")
		if got != "" {
			t.Fatalf("group b's task, submitted without labels, ran with labels %s", got)
		}
	})
}

// Passing WithTimings twice with the same Timings (a shared option list
// plus a per-pool one) must not count each attempt twice: Stats says every
// attempt is one sample (TimingSampleEvery 1).
func TestWithTimingsTwiceCountsOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var tm Timings
		p := newPool[string](t, WithTimings(&tm), WithTimings(&tm))
		for range 3 {
			if err := p.Submit(context.Background(), "g", func(context.Context) error { return nil }); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		s := p.Snapshot()
		if n := s.Timings.Run.Count(); n != s.Completed {
			t.Fatalf("Timings counted %d attempts for %d completed tasks (TimingSampleEvery %d)", n, s.Completed, s.TimingSampleEvery)
		}
	})
}

// WithTopGroups under a Batcher: a group with 1000 messages waiting behind
// a blocked call is reported near 1000, and nothing once all are handled;
// with WithMemoryBudget the breaker's in-flight count is in messages and
// returns to 0, reserving BatchBytesPerMessage each.
func TestBatcherTopGroupsAndInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gate := make(chan struct{})
		var once sync.Once
		entered := make(chan struct{})
		b, err := NewBatcher(func(ctx context.Context, g string, msgs []int) error {
			once.Do(func() { close(entered); <-gate })
			return nil
		}, WithWorkers(1, 1), WithTopGroups(), WithMemoryBudget(1<<40), WithMaxBatch(16))
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Submit(context.Background(), "first", 0); err != nil {
			t.Fatal(err)
		}
		<-entered
		for i := range 1000 {
			if err := b.Submit(context.Background(), "hot", i); err != nil {
				t.Fatal(err)
			}
		}
		s := b.Snapshot()
		if len(s.TopGroups) == 0 || s.TopGroups[0].Group != "hot" || s.TopGroups[0].Queued < 600 || s.TopGroups[0].Queued > 1400 {
			t.Errorf("TopGroups %+v; want hot near 1000", s.TopGroups)
		}
		if s.Breaker == nil || s.Breaker.BytesPerTask != BatchBytesPerMessage {
			t.Errorf("breaker %+v; want BytesPerTask %d", s.Breaker, BatchBytesPerMessage)
		}
		close(gate)
		if err := b.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		s = b.Snapshot()
		if s.TopGroups != nil {
			t.Errorf("TopGroups after drain %+v", s.TopGroups)
		}
		if n := b.c.inFlight.Load(); n != 0 {
			t.Errorf("in-flight after Close = %d", n)
		}
		if s.Timings.Wait.Count() == 0 || s.Timings.Wait.Count() > s.Submitted {
			t.Errorf("sampled wait count %d of %d messages", s.Timings.Wait.Count(), s.Submitted)
		}
	})
}
