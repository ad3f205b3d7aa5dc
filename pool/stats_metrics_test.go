package pool

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/shoal-go/shoal/backpressure"
	"github.com/shoal-go/shoal/shard"
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

// BenchmarkStatsSubmit measures what the statistics options cost per no-op
// task, as BenchmarkSubmit does: the default (sampled timings), with
// WithTopGroups, and with WithTimings (every task timed).
func BenchmarkStatsSubmit(b *testing.B) {
	for _, c := range []struct {
		name string
		opts func() []Option
	}{
		{"default", func() []Option { return nil }},
		{"topgroups", func() []Option { return []Option{WithTopGroups()} }},
		{"timings", func() []Option { return []Option{WithTimings(new(Timings))} }},
	} {
		for _, subs := range []int{8, 1} {
			b.Run(c.name+"/sub"+itoa(subs), func(b *testing.B) { benchShoal(b, subs, 0, c.opts()...) })
		}
	}
}

// TestSnapshotTimesSampledTasksByDefault runs one group on one worker in
// virtual time. A gate task holds the worker (so the monitor ticks and the
// coarse clock lags: tasks are accepted 1.5 ms in, the coarse clock says
// 1 ms), the gate opens 10 ms later, and each task runs 1 ms: task i waits
// exactly 10 ms + i ms. The default histograms hold exactly the sampled
// positions, with exact acceptance times.
func TestSnapshotTimesSampledTasksByDefault(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n = 512
		p := mustNew[int](t, WithWorkers(1, 1), WithShards(4), WithQueueSize(n))
		idx := uint32(p.ShardOf(7))
		gateGroup := 0
		for timingSampled(uint32(p.ShardOf(gateGroup)), 0) || p.ShardOf(gateGroup) == int(idx) {
			gateGroup++
		}
		gate := make(chan struct{})
		defer func() { closePoolAndGate(p, gate) }() // also when the test fails
		// The task's copy: gate becomes nil once closed.
		hold := gate
		if err := p.Submit(context.Background(), gateGroup, func(context.Context) error { <-hold; return nil }); err != nil {
			t.Fatal(err)
		}
		time.Sleep(1500 * time.Microsecond)
		var wantCount uint64
		var wantWait, wantMax time.Duration
		for i := range n {
			if timingSampled(idx, uint64(i)) {
				wantCount++
				wantMax = 10*time.Millisecond + time.Duration(i)*time.Millisecond
				wantWait += wantMax
			}
			if err := p.Submit(context.Background(), 7, func(context.Context) error {
				time.Sleep(time.Millisecond)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(10 * time.Millisecond)
		close(gate)
		gate = nil
		synctest.Wait()
		time.Sleep(n * time.Millisecond)
		synctest.Wait()
		s := p.Snapshot()
		if s.Completed != n+1 {
			t.Fatalf("completed %d, want %d", s.Completed, n+1)
		}
		if s.TimingSampleEvery != TimingSampleEvery {
			t.Fatalf("TimingSampleEvery %d, want %d", s.TimingSampleEvery, TimingSampleEvery)
		}
		// About one in 64 of 512 positions; at least two, or the test says little.
		if wantCount < 2 || wantCount > 32 {
			t.Fatalf("%d of %d positions sampled, want about %d", wantCount, n, n/TimingSampleEvery)
		}
		w, r := s.Timings.Wait, s.Timings.Run
		if w.Count() != wantCount || r.Count() != wantCount {
			t.Fatalf("counts: wait %d run %d, want %d", w.Count(), r.Count(), wantCount)
		}
		if w.Sum() != wantWait || w.Max() != wantMax {
			t.Fatalf("wait sum %v max %v, want %v and %v", w.Sum(), w.Max(), wantWait, wantMax)
		}
		if r.Sum() != time.Duration(wantCount)*time.Millisecond || r.Max() != time.Millisecond {
			t.Fatalf("run sum %v max %v, want %d ms and 1ms", r.Sum(), r.Max(), wantCount)
		}
		if !(w.P50() <= w.P90() && w.P90() <= w.P99() && w.P99() <= w.Max()) || w.P50() < 10*time.Millisecond {
			t.Fatalf("wait quantiles p50 %v p90 %v p99 %v max %v", w.P50(), w.P90(), w.P99(), w.Max())
		}
		if err := p.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}

// TestSnapshotWithTimingsReportsEveryTask: with WithTimings, Snapshot shows
// that Timings, every attempt counted once (no sampled extra).
func TestSnapshotWithTimingsReportsEveryTask(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var tm Timings
		p := mustNew[int](t, WithTimings(&tm), WithWorkers(1, 1), WithQueueSize(256))
		const n = 200
		for i := range n {
			if err := p.Submit(context.Background(), i%3, func(context.Context) error { return nil }); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		s := p.Snapshot()
		if s.TimingSampleEvery != 1 || s.Timings.Run.Count() != n || s.Timings.Wait.Count() != n {
			t.Fatalf("every %d, run %d, wait %d; want 1, %d, %d", s.TimingSampleEvery,
				s.Timings.Run.Count(), s.Timings.Wait.Count(), n, n)
		}
	})
}

// TestSnapshotRates checks the moving averages against their formula in
// virtual time: 100 tasks in the first second, none in the next ten.
func TestSnapshotRates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := mustNew[int](t, WithWorkers(1, 2))
		for i := range 100 {
			if err := p.Submit(context.Background(), i, func(context.Context) error { return nil }); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		time.Sleep(time.Second)
		s := p.Snapshot()
		if s.ArrivalRate != 100 || s.CompletionRate != 100 {
			t.Fatalf("rates after 1 s: arrivals %v completions %v, want 100 and 100", s.ArrivalRate, s.CompletionRate)
		}
		time.Sleep(10 * time.Second)
		s = p.Snapshot()
		want := 100 * math.Exp(-1) // the default window is 10 s
		if math.Abs(s.ArrivalRate-want) > 1e-9 || math.Abs(s.CompletionRate-want) > 1e-9 {
			t.Fatalf("rates after 10 quiet s: %v and %v, want %v", s.ArrivalRate, s.CompletionRate, want)
		}
		if err := p.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}

// TestSnapshotTopGroups holds the only worker on a gate while a hot and a
// warm group queue up, then checks the ranking and that every count leaves
// the sketch: after a drain, and after pushes refused on a full queue.
func TestSnapshotTopGroups(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := mustNewString(t, WithTopGroups(), WithWorkers(1, 1), WithQueueSize(512), WithNonblocking())
		if s := p.Snapshot(); s.TopGroups != nil {
			t.Fatalf("idle pool: top groups %v", s.TopGroups)
		}
		gate := make(chan struct{})
		defer func() { closePoolAndGate(p, gate) }() // also when the test fails
		started := make(chan struct{})
		// The task's copy: gate becomes nil once closed.
		hold := gate
		if err := p.Submit(context.Background(), "gate", func(context.Context) error {
			close(started)
			<-hold
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		<-started
		noop := func(context.Context) error { return nil }
		// A hot group whose full lane refuses at a sampled position (the
		// sketch's rule, metrics.TopK.IncSeq), so refused pushes are counted
		// and must be uncounted.
		hot := ""
		for i := 0; hot == ""; i++ {
			g := fmt.Sprint("hot", i)
			if h := shard.Hash(g); p.ShardOf(g) != p.ShardOf("gate") && ((512^h)*0x9E3779B97F4A7C15)>>32&7 == 0 {
				hot = g
			}
		}
		for range 400 {
			if err := p.Submit(context.Background(), hot, noop); err != nil {
				t.Fatal(err)
			}
		}
		for range 60 {
			if err := p.Submit(context.Background(), "warm", noop); err != nil {
				t.Fatal(err)
			}
		}
		// Fill hot's queue, then have many pushes refused: refused tasks
		// must leave no count behind.
		refused := 0
		for range 2000 {
			if err := p.TrySubmit(hot, noop); errors.Is(err, ErrQueueFull) {
				refused++
			}
		}
		if refused < 1000 {
			t.Fatalf("only %d of 2000 pushes refused", refused)
		}
		s := p.Snapshot()
		if len(s.TopGroups) < 2 || s.TopGroups[0].Group != hot || s.TopGroups[1].Group != "warm" {
			t.Fatalf("top groups %v, want hot then warm", s.TopGroups)
		}
		if q := s.TopGroups[0].Queued; q < 256 || q > 1024 {
			t.Fatalf("hot estimated at %d, want about 512", q)
		}
		if q := s.TopGroups[1].Queued; q < 16 || q > 200 {
			t.Fatalf("warm estimated at %d, want about 60", q)
		}
		close(gate)
		gate = nil
		synctest.Wait()
		if s := p.Snapshot(); s.TopGroups != nil || s.Queued != 0 {
			t.Fatalf("drained pool: top groups %v, queued %d", s.TopGroups, s.Queued)
		}
		if err := p.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}

// TestSnapshotBreaker: WithMemoryBudget's own breaker is reported; a pool
// without one reports none.
func TestSnapshotBreaker(t *testing.T) {
	p := mustNew[int](t)
	if s := p.Snapshot(); s.Breaker != nil {
		t.Fatalf("no breaker, got %+v", s.Breaker)
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	const budget = 1 << 40
	p = mustNew[int](t, WithMemoryBudget(budget))
	s := p.Snapshot()
	if s.Breaker == nil || s.Breaker.Budget != budget || s.Breaker.State != backpressure.Normal {
		t.Fatalf("breaker %+v, want budget %d in Normal", s.Breaker, int64(budget))
	}
	if s.Breaker.Pressure <= 0 || s.Breaker.Pressure >= 1 {
		t.Fatalf("pressure %v, want in (0, 1)", s.Breaker.Pressure)
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s := p.Snapshot(); s.Breaker == nil {
		t.Fatal("breaker missing after Close")
	}
}

func TestSubmitWithTopGroupsAllocs(t *testing.T) {
	p := mustNewString(t, WithTopGroups())
	defer p.Close(context.Background())
	var wg sync.WaitGroup
	task := Task(func(context.Context) error { wg.Done(); return nil })
	ctx := context.Background()
	groups := make([]string, 1000)
	for i := range groups {
		groups[i] = fmt.Sprint("room-", i)
	}
	g := 0
	allocs := testing.AllocsPerRun(10_000, func() {
		wg.Add(1)
		g++
		if err := p.Submit(ctx, groups[g%len(groups)], task); err != nil {
			t.Fatal(err)
		}
	})
	wg.Wait()
	if allocs != 0 {
		t.Fatalf("Submit with WithTopGroups allocates %v times per task", allocs)
	}
}

// TestTimingSampledRate: the sampled share of consecutive positions is close
// to 1/TimingSampleEvery for every shard.
func TestTimingSampledRate(t *testing.T) {
	for _, idx := range []uint32{0, 1, 63, 1023} {
		n := 0
		const total = 1 << 16
		for pos := range uint64(total) {
			if timingSampled(idx, pos) {
				n++
			}
		}
		if want := total / TimingSampleEvery; n < want*9/10 || n > want*11/10 {
			t.Fatalf("shard %d: %d of %d sampled, want about %d", idx, n, total, want)
		}
	}
}

func mustNewString(t testing.TB, opts ...Option) *Pool[string] {
	t.Helper()
	p, err := New[string](opts...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// closePoolAndGate opens gate unless nil and closes p, so that a failed
// test leaves no goroutine behind in its bubble.
func closePoolAndGate[K shard.Key](p *Pool[K], gate chan struct{}) {
	if gate != nil {
		close(gate)
	}
	_ = p.Close(context.Background())
}

// Snapshot reports the groups with the most waiting tasks when the pool
// tracks them.
func ExampleWithTopGroups() {
	p, err := New[string](WithTopGroups(), WithWorkers(1, 1))
	if err != nil {
		panic(err)
	}
	hold, started := make(chan struct{}), make(chan struct{})
	_ = p.Submit(context.Background(), "gate", func(context.Context) error { close(started); <-hold; return nil })
	<-started // the only worker is busy: the tasks below wait
	for range 60 {
		_ = p.Submit(context.Background(), "lobby", func(context.Context) error { return nil })
	}
	for range 5 {
		_ = p.Submit(context.Background(), "quiet", func(context.Context) error { return nil })
	}
	top := p.Snapshot().TopGroups
	fmt.Println(top[0].Group, top[0].Queued > 20)
	close(hold)
	_ = p.Close(context.Background())
	// Output: lobby true
}

// Stats carries queue-wait and run-time distributions: a sampled one task
// in TimingSampleEvery by default, every task with WithTimings.
func ExampleStats_timings() {
	var tm Timings
	p, err := New[int](WithTimings(&tm))
	if err != nil {
		panic(err)
	}
	for i := range 100 {
		_ = p.Submit(context.Background(), i, func(context.Context) error { return nil })
	}
	_ = p.Close(context.Background())
	s := p.Snapshot()
	w := s.Timings.Wait
	fmt.Println(s.TimingSampleEvery, w.Count(), w.P50() <= w.P99() && w.P99() <= w.Max())
	// Output: 1 100 true
}

// TestWorkerCountsSum: Snapshot reads the worker counts one after the other
// while workers move between states; a snapshot that read a worker as idle
// after it was counted out of running (a torn read, made here by moving the
// counters by hand) must still give counts that sum to Running, with none
// negative.
func TestWorkerCountsSum(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, err := New[int](WithWorkers(2, 2), WithShards(4))
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close(context.Background())
		synctest.Wait() // both workers parked
		for _, torn := range []struct{ idle, spinning int32 }{{1, 0}, {0, 3}, {2, 2}, {-1, 0}} {
			p.c.ctl.idle.Add(torn.idle)
			p.c.ctl.spinning.Add(torn.spinning)
			w := p.Snapshot().Workers
			p.c.ctl.idle.Add(-torn.idle)
			p.c.ctl.spinning.Add(-torn.spinning)
			if w.Busy+w.Idle+w.Spinning != w.Running || w.Busy < 0 || w.Idle < 0 || w.Spinning < 0 {
				t.Errorf("torn by %+v: %+v, want non-negative counts summing to Running", torn, w)
			}
		}
	})
}
