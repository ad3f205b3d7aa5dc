package pool

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoal-go/shoal/internal/xcore"
)

// The benchmarks submit b.N tasks over benchGroups groups from 1 or 8
// goroutines and wait for the last to finish; ns/op is per task. Run with
// -benchtime=1000000x for the figures in docs/ARCHITECTURE.md. Each result
// also reports xcore-ns, the time to move a cache line between two CPUs
// measured right after it (internal/xcore): on a virtual machine it changes
// with the host's placement of the virtual CPUs, and every row moves with
// it, so compare rows of like xcore-ns only.
const benchGroups = 10_000

// reportXcore measures the machine's cache-line transfer time after a
// result, once the pool has stopped, and reports it beside the result.
func reportXcore(b *testing.B) {
	b.ReportMetric(float64(xcore.Min(5, 4000).Nanoseconds()), "xcore-ns")
}

// spinWork runs n dependent multiply-adds: about 1 µs of CPU at n = 250 on
// an unloaded core of the reference machine. The result goes to a sink so
// that the loop is not removed.
var sink uint64

func spinWork(n int) {
	x := uint64(n)
	for i := 0; i < n; i++ {
		x = x*6364136223846793005 + 1442695040888963407
	}
	if x == 42 {
		sink++
	}
}

// chanPool is the baseline: a bare channel feeding GOMAXPROCS workers, with
// no order, no retries and no dead letters.
type chanPool struct {
	ch chan func()
	wg sync.WaitGroup
}

func newChanPool() *chanPool {
	p := &chanPool{ch: make(chan func(), 1024)}
	for range runtime.GOMAXPROCS(0) {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			for f := range p.ch {
				f()
			}
		}()
	}
	return p
}

func (p *chanPool) close() { close(p.ch); p.wg.Wait() }

func BenchmarkSubmit(b *testing.B) {
	for _, work := range []struct {
		name string
		n    int
	}{{"noop", 0}, {"1us", 250}} {
		for _, subs := range []int{8, 1} {
			name := work.name + "/sub" + itoa(subs)
			b.Run("shoal/"+name, func(b *testing.B) { benchShoal(b, subs, work.n) })
			b.Run("chan/"+name, func(b *testing.B) { benchChan(b, subs, work.n) })
		}
	}
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}

// spread runs submit(i) for i in [0, n) from subs goroutines.
func spread(n, subs int, submit func(i int)) {
	var wg sync.WaitGroup
	for s := range subs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := s; i < n; i += subs {
				submit(i)
			}
		}()
	}
	wg.Wait()
}

// benchShoal submits b.N tasks of work spin rounds from subs goroutines over
// benchGroups groups to a pool built with opts, and waits for them all.
func benchShoal(b *testing.B, subs, work int, opts ...Option) {
	p, err := New[int](opts...)
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	task := Task(func(context.Context) error {
		if work > 0 {
			spinWork(work)
		}
		wg.Done()
		return nil
	})
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	wg.Add(b.N)
	spread(b.N, subs, func(i int) {
		if err := p.Submit(ctx, (i*7919)%benchGroups, task); err != nil {
			b.Error(err)
			wg.Done()
		}
	})
	wg.Wait()
	b.StopTimer()
	if err := p.Close(ctx); err != nil {
		b.Fatal(err)
	}
	reportXcore(b)
}

func benchChan(b *testing.B, subs, work int) {
	p := newChanPool()
	var wg sync.WaitGroup
	task := func() {
		if work > 0 {
			spinWork(work)
		}
		wg.Done()
	}
	b.ReportAllocs()
	b.ResetTimer()
	wg.Add(b.N)
	spread(b.N, subs, func(int) { p.ch <- task })
	wg.Wait()
	b.StopTimer()
	p.close()
	reportXcore(b)
}

// withRules sets the worker and submitter rules of control.go for a
// benchmark: spin rounds before parking, the batch size under which a
// worker yields, and the tasks behind at which a submitter yields (0:
// never).
func withRules(spin int, yield int64, behind uint32) Option {
	return optionFunc(func(c *config) error {
		c.spinRounds, c.yieldBelow, c.yieldBehind = spin, yield, behind
		return nil
	})
}

// BenchmarkSubmitRules compares the worker and submitter rules on no-op
// tasks, side by side: the defaults, no yield after a short batch, 4 or
// 1024 spin rounds instead of 256 (docs/ARCHITECTURE.md, "Waking is the
// expensive event"), and submitters that never yield as their group falls
// behind ("Submitters yield when their room falls behind").
func BenchmarkSubmitRules(b *testing.B) {
	for _, r := range []struct {
		name   string
		spin   int
		yield  int64
		behind uint32
	}{
		{"default", spinRounds, yieldBelow, yieldBehind},
		{"noyield", spinRounds, 0, yieldBehind},
		{"spin4", 4, yieldBelow, yieldBehind},
		{"spin1024", 1024, yieldBelow, yieldBehind},
		{"nobehind", spinRounds, yieldBelow, 0},
	} {
		for _, subs := range []int{8, 1} {
			b.Run(r.name+"/sub"+itoa(subs), func(b *testing.B) {
				benchShoal(b, subs, 0, withRules(r.spin, r.yield, r.behind))
			})
		}
	}
}

// BenchmarkGroupMemory queues one task in each of 1,000,000 distinct groups
// behind a blocked worker and reports the heap per queued task
// (queued-B/task), then lets them drain, waits until the pool is idle, and
// reports the heap then as a ratio of the empty pool's (drained-heap-ratio).
// Run with -benchtime=1x.
func BenchmarkGroupMemory(b *testing.B) {
	const groups = 1_000_000
	for range b.N {
		heap := func() uint64 {
			runtime.GC()
			runtime.GC()
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			return m.HeapAlloc
		}
		p, err := New[int](WithWorkers(1, 1), WithMaxQueued(2*groups))
		if err != nil {
			b.Fatal(err)
		}
		gate := make(chan struct{})
		if err := p.Submit(context.Background(), -1, func(context.Context) error { <-gate; return nil }); err != nil {
			b.Fatal(err)
		}
		empty := heap()
		task := Task(func(context.Context) error { return nil })
		for g := range groups {
			if err := p.Submit(context.Background(), g, task); err != nil {
				b.Fatal(err)
			}
		}
		full := heap()
		close(gate)
		for p.Snapshot().Queued != 0 || !p.c.ctl.asleep.Load() {
			time.Sleep(time.Millisecond)
		}
		drained := heap()
		b.ReportMetric(float64(full-empty)/groups, "queued-B/task")
		b.ReportMetric(float64(drained)/float64(empty), "drained-heap-ratio")
		if err := p.Close(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWorkersCPUAndIO runs 4,000 tasks over 1,000 groups from 8
// submitters through a pool with its default worker bounds, once with
// tasks that compute for about 200 µs and once with tasks that sleep 1 ms
// (I/O), and reports the most workers running at once (peak-workers,
// sampled every millisecond) beside GOMAXPROCS (procs): CPU-bound tasks
// must stay near GOMAXPROCS, I/O-bound ones must grow past it. ns/op is
// per task.
func BenchmarkWorkersCPUAndIO(b *testing.B) {
	const tasks, groups = 4000, 1000
	for _, kind := range []string{"cpu", "io"} {
		b.Run(kind, func(b *testing.B) {
			peak := 0
			for range b.N {
				p, err := New[int]()
				if err != nil {
					b.Fatal(err)
				}
				var wg sync.WaitGroup
				task := Task(func(context.Context) error {
					if kind == "cpu" {
						spinWork(50_000) // about 200 µs
					} else {
						time.Sleep(time.Millisecond)
					}
					wg.Done()
					return nil
				})
				stopWatch := watchPeakWorkers(p)
				wg.Add(tasks)
				spread(tasks, 8, func(i int) {
					if err := p.Submit(context.Background(), i%groups, task); err != nil {
						b.Error(err)
						wg.Done()
					}
				})
				wg.Wait()
				peak = max(peak, stopWatch())
				if err := p.Close(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*tasks), "ns/task")
			b.ReportMetric(float64(peak), "peak-workers")
			b.ReportMetric(float64(runtime.GOMAXPROCS(0)), "procs")
		})
	}
}

// BenchmarkParkWake is one park and wake cycle of a worker above min, as
// a worker whose tasks wait on I/O goes through after nearly every task:
// park (the idle list, the idle timer) and wakeOne (the token), from two
// goroutines. ns/op is per cycle.
func BenchmarkParkWake(b *testing.B) {
	var c control
	if err := c.init(8, 0, 4, time.Second, sinceStart()); err != nil {
		b.Fatal(err)
	}
	c.running.Store(2) // above min: every park is timed
	w := &worker{wake: make(chan struct{}, 1)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for c.park(w) && !c.stopping.Load() {
		}
	}()
	for b.Loop() {
		for c.idle.Load() == 0 {
			runtime.Gosched()
		}
		c.wakeOne()
	}
	c.stopping.Store(true)
	c.wakeAll()
	<-done
	if w.timer != nil {
		w.timer.Stop() // left pending by the last wake
	}
}

// BenchmarkSubmitShards is BenchmarkSubmit's no-op row at several shard
// counts: more shards are cheaper while each shard's idle list holds the
// groups that come and go. Run with -benchtime=1000000x.
func BenchmarkSubmitShards(b *testing.B) {
	for _, n := range []int{16, 64, 256, 1024} {
		for _, subs := range []int{8, 1} {
			b.Run(itoa(n)+"/sub"+itoa(subs), func(b *testing.B) { benchShoal(b, subs, 0, WithShards(n)) })
		}
	}
}

// BenchmarkBatcher compares, per message, a Pool that runs one task per
// message with a Batcher that hands each group's queued messages to one
// call, from 8 submitters over benchGroups groups: "noop" is the
// scheduling cost alone; "write" gives every task or call a fixed cost of
// 100 µs of waiting (a database round trip), so the Pool pays it per
// message and the Batcher per call. msgs/call is the Batcher's mean call.
//
//	go test -run '^$' -bench BenchmarkBatcher -count 5 ./pool
func BenchmarkBatcher(b *testing.B) {
	for _, write := range []time.Duration{0, 100 * time.Microsecond} {
		name := "noop"
		if write > 0 {
			name = "write"
		}
		b.Run(name+"/pool", func(b *testing.B) {
			p, err := New[int]()
			if err != nil {
				b.Fatal(err)
			}
			var wg sync.WaitGroup
			task := Task(func(context.Context) error {
				if write > 0 {
					time.Sleep(write)
				}
				wg.Done()
				return nil
			})
			b.ReportAllocs()
			b.ResetTimer()
			wg.Add(b.N)
			spread(b.N, 8, func(i int) {
				if err := p.Submit(context.Background(), (i*7919)%benchGroups, task); err != nil {
					b.Error(err)
					wg.Done()
				}
			})
			wg.Wait()
			b.StopTimer()
			_ = p.Close(context.Background())
		})
		b.Run(name+"/batcher", func(b *testing.B) {
			var wg sync.WaitGroup
			fn := func(_ context.Context, _ int, msgs []int) error {
				if write > 0 {
					time.Sleep(write)
				}
				wg.Add(-len(msgs))
				return nil
			}
			bt, err := NewBatcher(fn)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			wg.Add(b.N)
			spread(b.N, 8, func(i int) {
				if err := bt.Submit(context.Background(), (i*7919)%benchGroups, i); err != nil {
					b.Error(err)
					wg.Done()
				}
			})
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(bt.Snapshot().Batches.Mean(), "msgs/call")
			_ = bt.Close(context.Background())
		})
	}
}

// BenchmarkStalledRoom blocks a task in each of GOMAXPROCS groups, fills
// the CPUs with 4×GOMAXPROCS spinning goroutines, then submits a task to
// another group and reports how long it waited to start (wait-ms; 2,000
// means it had not started after 2 s). The CPU sample leaves no growth
// room there; the monitor's stall rule (stallAfter) starts a worker.
func BenchmarkStalledRoom(b *testing.B) {
	var total time.Duration
	for range b.N {
		p, err := New[int]()
		if err != nil {
			b.Fatal(err)
		}
		procs := runtime.GOMAXPROCS(0)
		release := make(chan struct{})
		for g := range procs {
			if err := p.Submit(context.Background(), g, func(context.Context) error { <-release; return nil }); err != nil {
				b.Fatal(err)
			}
		}
		for p.Snapshot().Workers.Busy < procs {
			runtime.Gosched()
		}
		var stop atomic.Bool
		var spinners sync.WaitGroup
		for range 4 * procs {
			spinners.Go(func() {
				for !stop.Load() {
				}
			})
		}
		started := make(chan time.Time, 1)
		at := time.Now()
		if err := p.Submit(context.Background(), procs, func(context.Context) error { started <- time.Now(); return nil }); err != nil {
			b.Fatal(err)
		}
		select {
		case s := <-started:
			total += s.Sub(at)
		case <-time.After(2 * time.Second):
			total += 2 * time.Second
		}
		stop.Store(true)
		spinners.Wait()
		close(release)
		if err := p.Close(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "wait-ms")
}
