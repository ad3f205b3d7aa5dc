package pool

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// load drives a pool inside a synctest bubble: every tick it submits a
// number of tasks drawn around rate × tick, over many groups, each task
// sleeping 1–5 ms (I/O-like), and counts the tasks running at once.
type load struct {
	t    *testing.T
	p    *Pool[int]
	rng  *rand.Rand
	tick time.Duration
	next int

	inTask  atomic.Int64
	maxTask atomic.Int64
	done    atomic.Int64
	// submitted counts accepted tasks.
	submitted int64
}

func newLoad(t *testing.T, p *Pool[int], seed uint64) *load {
	// Submissions every millisecond, half a millisecond off the scaler's
	// ticks: a bubble's clock makes events of one instant simultaneous, and
	// a sample taken at the instant of a burst would see only bursts.
	time.Sleep(time.Millisecond / 2)
	return &load{t: t, p: p, rng: rand.New(rand.NewPCG(seed, 3)), tick: time.Millisecond}
}

func (g *load) task(d time.Duration) Task {
	return func(context.Context) error {
		n := g.inTask.Add(1)
		for m := g.maxTask.Load(); n > m && !g.maxTask.CompareAndSwap(m, n); m = g.maxTask.Load() {
		}
		time.Sleep(d)
		g.inTask.Add(-1)
		g.done.Add(1)
		return nil
	}
}

// run submits for d at rate tasks per second with ±noise per tick, and
// calls each after every tick.
func (g *load) run(d time.Duration, rate, noise float64, each func()) {
	g.t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); {
		mean := rate * g.tick.Seconds() * (1 + noise*(2*g.rng.Float64()-1))
		n := int(mean)
		if g.rng.Float64() < mean-float64(n) {
			n++
		}
		for range n {
			g.next++
			d := time.Millisecond + time.Duration(g.rng.Int64N(int64(4*time.Millisecond)))
			if err := g.p.Submit(context.Background(), g.next%10007, g.task(d)); err != nil {
				g.t.Fatalf("Submit: %v", err)
			}
			g.submitted++
		}
		time.Sleep(g.tick)
		if each != nil {
			each()
		}
	}
}

// idle lets d pass without submissions, calling each after every tick.
func (g *load) idle(d time.Duration, each func()) {
	for end := time.Now().Add(d); time.Now().Before(end); {
		time.Sleep(g.tick)
		if each != nil {
			each()
		}
	}
}

func closePool(t *testing.T, p *Pool[int]) {
	t.Helper()
	if err := p.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if d := p.c.scaling(); d.Reason != ScalingNone {
		t.Fatalf("Stats.Scaling after Close = %+v, want the zero decision", d)
	}
}

// newScalingPool returns a pool of 64 shards with WithScaling's default
// policy, to be used inside a synctest bubble.
func newScalingPool(t *testing.T, lo, hi int, opts ...Option) *Pool[int] {
	t.Helper()
	base := []Option{WithShards(64), WithQueueSize(1024), WithWorkers(lo, hi), WithIdleTimeout(time.Second),
		WithScaling(DefaultScalingPolicy())}
	p, err := New[int](append(base, opts...)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	// Ends the pool's goroutines inside the bubble if the test stops early.
	t.Cleanup(func() { closeQuietly(p) })
	return p
}

func closeQuietly(p *Pool[int]) {
	_ = p.Close(context.Background())
}

// decisions counts the distinct decisions seen by polling Stats.Scaling at
// least once per Cooldown (decisions are at least that far apart).
type decisions struct {
	p    *Pool[int]
	last time.Time
	n    int
	log  []ScalingDecision
}

func (d *decisions) poll() {
	if s := d.p.c.scaling(); !s.At.Equal(d.last) {
		d.last = s.At
		d.n++
		d.log = append(d.log, s)
	}
}

// From idle to more load than max workers can serve: the target reaches max
// within a bounded time, for reasons of growth, and workers never exceed max.
func TestScalingRampToMax(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const lo, hi = 1, 16
		p := newScalingPool(t, lo, hi)
		g := newLoad(t, p, 1)
		g.idle(2*time.Second, nil)
		if w := p.Snapshot().Workers; w.Target != lo || w.Running != lo {
			t.Fatalf("idle pool: %+v, want target and running %d", w, lo)
		}
		// 16 workers serve 16 / 3 ms ≈ 5,300 tasks/s; offer twice that.
		reached := time.Duration(-1)
		start := time.Now()
		g.run(3*time.Second, 10700, 0.2, func() {
			w := p.Snapshot().Workers
			if w.Running > hi || w.Target > hi {
				t.Fatalf("workers %+v above max %d", w, hi)
			}
			if reached < 0 && w.Target == hi {
				reached = time.Since(start)
			}
		})
		// Growth needs a few samples: at most 9 steps of 25 % from 1 to 16,
		// 200 ms apart, and the busy average jumps them.
		t.Logf("target at max after %v", reached)
		if reached < 0 || reached > 2*time.Second {
			t.Fatalf("target reached max after %v, want within 2s", reached)
		}
		switch r := p.c.scaling().Reason; r {
		case ScalingGrowBusy, ScalingGrowSaturated, ScalingGrowArrivals, ScalingGrowQueue:
		default:
			t.Fatalf("last reason %v, want a growth reason", r)
		}
		if m := g.maxTask.Load(); m > hi {
			t.Fatalf("%d tasks ran at once, max is %d", m, hi)
		}
		closePool(t, p)
		t.Logf("%d tasks", g.submitted)
		if got := g.done.Load(); got != g.submitted {
			t.Fatalf("%d of %d tasks done", got, g.submitted)
		}
	})
}

// After a burst, sustained idleness brings the target and then the running
// workers back to min.
func TestScalingIdleBackToMin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const lo, hi = 2, 24
		p := newScalingPool(t, lo, hi)
		g := newLoad(t, p, 2)
		g.run(3*time.Second, 15000, 0.2, nil)
		if w := p.Snapshot().Workers; w.Target < hi/2 {
			t.Fatalf("after the burst: %+v, want a target of at least %d", w, hi/2)
		}
		start := time.Now()
		targetAt, runningAt := time.Duration(-1), time.Duration(-1)
		g.idle(30*time.Second, func() {
			w := p.Snapshot().Workers
			if targetAt < 0 && w.Target == lo {
				targetAt = time.Since(start)
			}
			if runningAt < 0 && w.Running == lo {
				runningAt = time.Since(start)
			}
		})
		// The burst's backlog drains in ~1 s; then about 15 shrink steps of
		// 15 %, 1 s apart (ShrinkCooldown); then the idle timeout.
		t.Logf("target at min after %v, running after %v", targetAt, runningAt)
		if targetAt < 0 || targetAt > 20*time.Second {
			t.Fatalf("target back to min after %v, want within 20s", targetAt)
		}
		// A parked worker above min compares running with the target when its
		// idle timer fires, so it exits at most two idle timeouts later.
		if bound := targetAt + 2*time.Second + 3*DefaultScalingPolicy().Interval; runningAt < 0 || runningAt > bound {
			t.Fatalf("running back to min after %v (target at %v), want by %v: two idle timeouts", runningAt, targetAt, bound)
		}
		if r := p.c.scaling().Reason; r != ScalingShrinkIdle && r != ScalingShrinkArrivals {
			t.Fatalf("last reason %v, want a shrink", r)
		}
		closePool(t, p)
	})
}

// A steady load with noise: once the target has found its level, it
// moves rarely, and stays within the bounds.
func TestScalingSteadyLoadNoOscillation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const lo, hi = 1, 32
		p := newScalingPool(t, lo, hi)
		g := newLoad(t, p, 3)
		// 2,000 tasks/s of 3 ms on average keep about 6 workers busy.
		g.run(10*time.Second, 2000, 0.3, nil)
		d := &decisions{p: p}
		d.poll()
		d.n = 0
		g.run(40*time.Second, 2000, 0.3, func() {
			d.poll()
			if w := p.Snapshot().Workers; w.Target < lo || w.Target > hi || w.Running > hi {
				t.Fatalf("workers %+v outside [%d, %d]", w, lo, hi)
			}
		})
		t.Logf("%d decisions, target %d, %d tasks at once at most", d.n, p.Snapshot().Workers.Target, g.maxTask.Load())
		if d.n > 3 {
			t.Fatalf("%d decisions in 40 s of steady load, want <= 3: %+v", d.n, d.log)
		}
		if w := p.Snapshot().Workers; w.Target < 4 {
			t.Fatalf("steady target %d, want at least the ~6 workers in use less noise", w.Target)
		}
		closePool(t, p)
	})
}

// Many submitters at once: never more than max workers, nor tasks running.
func TestScalingMaxNeverExceeded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const lo, hi = 2, 8
		p := newScalingPool(t, lo, hi, WithQueueSize(64))
		g := newLoad(t, p, 4)
		var wg sync.WaitGroup
		var stop atomic.Bool
		for s := range 32 {
			wg.Go(func() {
				for i := 0; !stop.Load(); i++ {
					for range 5 {
						if err := p.Submit(context.Background(), s*1000+i%50, g.task(2*time.Millisecond)); err != nil {
							t.Errorf("Submit: %v", err)
							return
						}
					}
					time.Sleep(10 * time.Millisecond)
				}
			})
		}
		g.idle(3*time.Second, func() {
			if w := p.Snapshot().Workers; w.Running > hi || w.Target > hi {
				t.Errorf("workers %+v above max %d", w, hi)
			}
		})
		stop.Store(true)
		wg.Wait()
		t.Logf("%d tasks done, %d at once at most", g.done.Load(), g.maxTask.Load())
		if m := g.maxTask.Load(); m > hi || m < hi/2 {
			t.Fatalf("%d tasks at once, want at most max %d (and the burst to use most of it)", m, hi)
		}
		closePool(t, p)
	})
}

// Tune during a burst applies at once: a lower max caps the target and, once
// the workers finish their batch, the running workers; a higher min starts
// workers and raises the target.
func TestScalingTuneDuringBurst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newScalingPool(t, 1, 16)
		g := newLoad(t, p, 5)
		g.run(2*time.Second, 10000, 0.2, nil)
		if w := p.Snapshot().Workers; w.Target < 8 {
			t.Fatalf("before Tune: %+v, want a target of at least 8", w)
		}
		if err := p.Tune(1, 4); err != nil {
			t.Fatal(err)
		}
		if w := p.Snapshot().Workers; w.Target > 4 || w.Max != 4 {
			t.Fatalf("right after Tune(1, 4): %+v, want target <= 4", w)
		}
		g.maxTask.Store(0)
		var capped bool
		g.run(2*time.Second, 10000, 0.2, func() {
			if d := p.c.scaling(); d.Reason == ScalingMax && d.Target == 4 {
				capped = true
			}
			if w := p.Snapshot().Workers; w.Target > 4 {
				t.Fatalf("after Tune(1, 4): %+v", w)
			}
		})
		if !capped {
			t.Fatalf("the scaler never took the new max: last %+v", p.c.scaling())
		}
		// A batch is at most 64 tasks of 5 ms: by now every worker above 4 has
		// finished it.
		g.maxTask.Store(g.inTask.Load())
		g.run(time.Second, 10000, 0.2, nil)
		if m := g.maxTask.Load(); m > 4 {
			t.Fatalf("%d tasks at once after Tune(1, 4)", m)
		}
		if err := p.Tune(12, 16); err != nil {
			t.Fatal(err)
		}
		if w := p.Snapshot().Workers; w.Target < 12 || w.Running < 12 {
			t.Fatalf("right after Tune(12, 16): %+v, want target and running >= 12", w)
		}
		g.run(time.Second, 10000, 0.2, nil)
		closePool(t, p)
	})
}

// WithScaling with a policy out of range: New fails with both sentinels and
// the field named; nothing is started.
func TestWithScalingRejectsBadPolicies(t *testing.T) {
	cases := []struct {
		field string
		edit  func(*ScalingPolicy)
	}{
		{"Interval", func(p *ScalingPolicy) { p.Interval = 0 }},
		{"Alpha", func(p *ScalingPolicy) { p.Alpha = 2 }},
		{"Window", func(p *ScalingPolicy) { p.Window = time.Millisecond }},
		{"GrowQueueRatio", func(p *ScalingPolicy) { p.GrowQueueRatio = -1 }},
		{"GrowArrivalFactor", func(p *ScalingPolicy) { p.GrowArrivalFactor = 0.5 }},
		{"GrowStep", func(p *ScalingPolicy) { p.GrowStep = 0 }},
		{"ShrinkQueueRatio", func(p *ScalingPolicy) { p.ShrinkQueueRatio = 0.9 }},
		{"ShrinkArrivalFactor", func(p *ScalingPolicy) { p.ShrinkArrivalFactor = 1.2 }},
		{"ShrinkStep", func(p *ScalingPolicy) { p.ShrinkStep = 1 }},
		{"Headroom", func(p *ScalingPolicy) { p.Headroom = 0.5 }},
		{"Cooldown", func(p *ScalingPolicy) { p.Cooldown = -time.Second }},
		{"ShrinkCooldown", func(p *ScalingPolicy) { p.ShrinkCooldown = 0 }},
		{"Interval", func(p *ScalingPolicy) { *p = ScalingPolicy{} }},
	}
	for _, c := range cases {
		pol := DefaultScalingPolicy()
		c.edit(&pol)
		p, err := New[int](WithScaling(pol))
		var pe *ScalingPolicyError
		if p != nil || !errors.Is(err, ErrInvalidOption) || !errors.Is(err, ErrInvalidScalingPolicy) ||
			!errors.As(err, &pe) || pe.Field != c.field {
			t.Errorf("%s: New = %v, %v; want nil and an error naming %s", c.field, p, err, c.field)
		}
	}
}

// Scaling is off unless asked for: the target stays at min, and Scaling()
// reports no decision.
func TestScalingOffByDefault(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, err := New[int](WithShards(64), WithWorkers(1, 8))
		if err != nil {
			t.Fatal(err)
		}
		g := newLoad(t, p, 6)
		g.run(time.Second, 5000, 0.2, nil)
		if w := p.Snapshot().Workers; w.Target != 1 {
			t.Fatalf("target %d without WithScaling, want min", w.Target)
		}
		if d := p.c.scaling(); d != (ScalingDecision{}) {
			t.Fatalf("Stats.Scaling = %+v without WithScaling", d)
		}
		closePool(t, p)
	})
}

// The scaler with every signal (arrivals, queued tasks, capacity): a
// backlog above GrowQueueRatio of capacity grows the target, and so does a
// jump in arrivals while shards wait.
func TestScalingFullSignals(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Room for 64 tasks in all. One worker may run, so the queues
		// fill.
		pol := DefaultScalingPolicy()
		p, err := New[int](WithShards(4), WithMaxQueued(64), WithWorkers(1, 1), WithIdleTimeout(time.Second), WithScaling(pol))
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait() // the first sample, before any arrival
		release := make(chan struct{})
		block := func(context.Context) error { <-release; return nil }
		// A group for each shard.
		var groups [4]int
		for g, found := 0, 0; found < 4; g++ {
			if s := p.ShardOf(g); groups[s] == 0 {
				groups[s] = g + 1
				found++
			}
		}
		for i := range 60 {
			if err := p.TrySubmit(groups[i%4]-1, block); err != nil {
				t.Fatalf("TrySubmit %d: %v", i, err)
			}
		}
		arrivals, queued, capacity := p.c.scalingLoad()
		if arrivals != 60 || queued < 56 || capacity != 64 {
			t.Fatalf("scalingLoad = %d, %d, %d; want 60, >= 56, 64", arrivals, queued, capacity)
		}
		// The target may pass max; floor() clamps it, and a higher max lets
		// it through.
		if err := p.Tune(1, 8); err != nil {
			t.Fatal(err)
		}
		time.Sleep(pol.Interval)
		synctest.Wait()
		d := p.c.scaling()
		if d.Reason != ScalingGrowQueue {
			t.Fatalf("with 56 of 64 queued: %+v, want a queue growth", d)
		}
		if d.Rate <= 0 {
			t.Fatalf("decision %+v: want the arrival rate the scaler saw", d)
		}
		if s := p.Snapshot(); s.Scaling != d {
			t.Fatalf("Snapshot().Scaling = %+v, want %+v", s.Scaling, d)
		}
		close(release)
		closePool(t, p)
		if s := p.Snapshot(); s.Scaling != (ScalingDecision{}) {
			t.Fatalf("Snapshot().Scaling after Close = %+v", s.Scaling)
		}
	})
}

// The sample costs one pass over the shards and no allocation.
func TestScalingSampleDoesNotAllocate(t *testing.T) {
	p, err := New[int](WithShards(256), WithWorkers(1, 4))
	if err != nil {
		t.Fatal(err)
	}
	defer closePool(t, p)
	sc, err := newScalingEngine(DefaultScalingPolicy())
	if err != nil {
		t.Fatal(err)
	}
	a := &autoscaler{ctl: &p.c.ctl, src: &p.c, sc: sc}
	a.sample(time.Now()) // the first sample moves the target to min
	now := time.Now()
	allocs := testing.AllocsPerRun(100, func() {
		now = now.Add(100 * time.Millisecond)
		a.sample(now)
	})
	if allocs != 0 {
		t.Fatalf("sample allocates %v times", allocs)
	}
}

// A quiet pool's scaler samples about once a second, not ten times; a
// burst after the quiet is still met.
func TestScalingIdleBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const lo, hi = 1, 16
		p := newScalingPool(t, lo, hi)
		a := p.c.ctl.scaler.Load()
		if a == nil {
			t.Fatal("no autoscaler registered")
		}
		g := newLoad(t, p, 7)
		g.idle(2*time.Second, nil)
		before := a.samples.Load()
		g.idle(20*time.Second, nil)
		if n := a.samples.Load() - before; n < 15 || n > 25 {
			t.Fatalf("%d samples in 20 s of quiet, want about 20", n)
		}
		start := time.Now()
		reached := time.Duration(-1)
		g.run(3*time.Second, 10700, 0.2, func() {
			if reached < 0 && p.Snapshot().Workers.Target == hi {
				reached = time.Since(start)
			}
		})
		t.Logf("target at max %v after the quiet", reached)
		if reached < 0 || reached > 3*time.Second {
			t.Fatalf("target reached max after %v, want within 3s", reached)
		}
		closePool(t, p)
	})
}

// While the target shrinks step by step, workers above it exit along the
// way, not only once it has reached min: waking parked workers (to re-arm
// their idle timers) must not happen so often that the timers never fire.
func TestScalingWorkersFollowShrinkingTarget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const lo, hi = 2, 24
		// An idle timeout longer than the shrink cooldown (1 s).
		p := newScalingPool(t, lo, hi, WithIdleTimeout(2*time.Second))
		g := newLoad(t, p, 8)
		g.run(3*time.Second, 15000, 0.2, nil)
		halfAt, minAt := time.Duration(-1), time.Duration(-1)
		start := time.Now()
		g.idle(30*time.Second, func() {
			w := p.Snapshot().Workers
			if halfAt < 0 && w.Running <= hi/2 {
				halfAt = time.Since(start)
			}
			if minAt < 0 && w.Target == lo {
				minAt = time.Since(start)
			}
		})
		t.Logf("running at half of max after %v, target at min after %v", halfAt, minAt)
		if halfAt < 0 || minAt < 0 || halfAt >= minAt {
			t.Fatalf("running reached %d after %v, the target reached min after %v: want the workers to follow the target down", hi/2, halfAt, minAt)
		}
		closePool(t, p)
	})
}

// The cost of one sample of a pool of 1,024 shards (the default): one pass
// over the shards, the scaler's step, no allocation.
func BenchmarkScalingSample(b *testing.B) {
	p, err := New[int](WithShards(1024), WithWorkers(1, 8))
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close(context.Background())
	sc, err := newScalingEngine(DefaultScalingPolicy())
	if err != nil {
		b.Fatal(err)
	}
	a := &autoscaler{ctl: &p.c.ctl, src: &p.c, sc: sc}
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(100 * time.Millisecond)
		a.sample(now)
	}
}

// A shard in the run queue counts as waiting only when no worker is free
// (parked or spinning) to take it.
func TestScalingReadWaitingShards(t *testing.T) {
	var c control
	if err := c.init(16, 1, 8, time.Second, func() int64 { return 0 }); err != nil {
		t.Fatal(err)
	}
	for i := range uint32(3) {
		c.push(i)
	}
	a := &autoscaler{ctl: &c}
	for _, tc := range []struct{ running, idle, spinning, waiting, busy int32 }{
		{8, 0, 0, 3, 8},
		{8, 1, 0, 2, 7},
		{8, 2, 1, 0, 5},
		{8, 5, 0, 0, 3},
	} {
		c.running.Store(tc.running)
		c.idle.Store(tc.idle)
		c.spinning.Store(tc.spinning)
		x := a.read(time.Now())
		if x.ShardsWaiting != int(tc.waiting) || x.Busy != int(tc.busy) || x.Running != int(tc.running) {
			t.Errorf("running %d, idle %d, spinning %d, 3 shards queued: sample %+v, want %d waiting and %d busy",
				tc.running, tc.idle, tc.spinning, x, tc.waiting, tc.busy)
		}
	}
}
