package pool

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestTimingsRecordsWaitAndRun runs tasks of known length in virtual time:
// one group, so each task waits exactly for the ones before it.
func TestTimingsRecordsWaitAndRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var tm Timings
		p, err := New[int](WithTimings(&tm), WithWorkers(1, 1), WithShards(4))
		if err != nil {
			t.Fatal(err)
		}
		const n = 10
		for i := range n {
			d := time.Duration(i+1) * time.Millisecond
			if err := p.Submit(context.Background(), 1, func(context.Context) error {
				time.Sleep(d)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		if err := p.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		s := tm.Snapshot()
		if s.Run.Count() != n || s.Wait.Count() != n {
			t.Fatalf("counts: run %d wait %d, want %d", s.Run.Count(), s.Wait.Count(), n)
		}
		// Runs are 1..10 ms; task i waits for tasks 1..i-1: 0..45 ms.
		if s.Run.Sum() != 55*time.Millisecond || s.Run.Max() != 10*time.Millisecond {
			t.Fatalf("run sum %v max %v, want 55ms and 10ms", s.Run.Sum(), s.Run.Max())
		}
		if s.Wait.Sum() != 165*time.Millisecond || s.Wait.Max() != 45*time.Millisecond {
			t.Fatalf("wait sum %v max %v, want 165ms and 45ms", s.Wait.Sum(), s.Wait.Max())
		}
		if p50 := s.Run.P50(); p50 < 4*time.Millisecond || p50 > 6*time.Millisecond {
			t.Fatalf("run p50 %v, want about 5ms", p50)
		}
		if s.Run.P90() > s.Run.P99() || s.Run.P99() > s.Run.Max() {
			t.Fatalf("quantiles out of order: p90 %v p99 %v max %v", s.Run.P90(), s.Run.P99(), s.Run.Max())
		}
		var total uint64
		var last time.Duration
		for upper, c := range s.Run.Buckets() {
			if upper <= last {
				t.Fatalf("bucket bounds not increasing at %v", upper)
			}
			last = upper
			total += c
		}
		if total != n {
			t.Fatalf("buckets hold %d, want %d", total, n)
		}
		m := s.Run.Merge(s.Wait)
		if m.Count() != 2*n || m.Max() != 45*time.Millisecond {
			t.Fatalf("merged count %d max %v", m.Count(), m.Max())
		}
	})
}

func TestWithTimingsRejectsNilAndChains(t *testing.T) {
	if _, err := New[int](WithTimings(nil)); !errors.Is(err, ErrInvalidOption) {
		t.Fatalf("WithTimings(nil): %v, want ErrInvalidOption", err)
	}
	var a, b Timings
	var c config
	calls := 0
	c.onTask = func(int, time.Duration, time.Duration) { calls++ }
	for _, o := range []Option{WithTimings(&a), WithTimings(&b)} {
		if err := o.apply(&c); err != nil {
			t.Fatal(err)
		}
	}
	c.onTask(3, time.Millisecond, 2*time.Millisecond)
	if calls != 1 || a.Snapshot().Run.Count() != 1 || b.Snapshot().Wait.Count() != 1 {
		t.Fatalf("chained hooks: earlier hook %d calls, a %d, b %d", calls,
			a.Snapshot().Run.Count(), b.Snapshot().Wait.Count())
	}
}

func TestTimingsRecordDoesNotAllocate(t *testing.T) {
	var tm Timings
	i := 0
	if n := testing.AllocsPerRun(1000, func() {
		i++
		tm.record(i, time.Duration(i)*time.Microsecond, time.Millisecond)
	}); n != 0 {
		t.Fatalf("record allocates %v times", n)
	}
}

// BenchmarkTimingsRecord is the per-attempt cost of WithTimings: two
// goroutines, as two workers, each on its own shard, with durations that
// vary over a realistic range (the maximum rarely moves).
func BenchmarkTimingsRecord(b *testing.B) {
	var tm Timings
	var next atomic.Int32
	b.RunParallel(func(pb *testing.PB) {
		shard := int(next.Add(1))
		i := 0
		for pb.Next() {
			i++
			tm.record(shard, time.Duration(i%5000)*time.Microsecond, time.Duration(i%700)*time.Microsecond)
		}
	})
}

func BenchmarkTimingsSnapshot(b *testing.B) {
	var tm Timings
	for i := range 10000 {
		tm.record(i, time.Duration(i)*time.Microsecond, time.Millisecond)
	}
	for b.Loop() {
		_ = tm.Snapshot().Wait.P99()
	}
}

func ExampleTimings() {
	var tm Timings
	p, err := New[string](WithTimings(&tm))
	if err != nil {
		panic(err)
	}
	for _, room := range []string{"lobby", "lobby", "random"} {
		_ = p.Submit(context.Background(), room, func(context.Context) error { return nil })
	}
	_ = p.Close(context.Background()) // drains: every attempt is recorded
	s := tm.Snapshot()
	fmt.Println("attempts:", s.Run.Count(), "waits:", s.Wait.Count())
	fmt.Println("p99 wait within max:", s.Wait.P99() <= s.Wait.Max())
	// Output:
	// attempts: 3 waits: 3
	// p99 wait within max: true
}

func ExampleHistogram() {
	var tm Timings
	for i := 1; i <= 100; i++ {
		tm.record(0, 0, time.Duration(i)*time.Millisecond)
	}
	run := tm.Snapshot().Run
	fmt.Println("count:", run.Count(), "max:", run.Max(), "mean:", run.Mean())
	p99 := run.P99()
	fmt.Println("p99 within 25% of 99ms:", p99 > 75*time.Millisecond && p99 < 124*time.Millisecond)
	// Output:
	// count: 100 max: 100ms mean: 50.5ms
	// p99 within 25% of 99ms: true
}
