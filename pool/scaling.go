package pool

// Invariants:
//
//   - A pool has at most one autoscaler goroutine. It is started by New
//     (through cfg.scaler) after the workers of min have started, and stop,
//     which Close calls before draining, returns only after it has exited.
//   - The autoscaler goroutine alone calls Step on its scalingEngine and
//     alone stores control.target. Tune stores the bounds; floor() clamps the
//     target to them at once, and the next sample moves the target itself
//     within them.
//   - decided holds the latest decision that moved the target, published after
//     the target store; nil until the first sample.
//   - control.scaler points to the pool's autoscaler from start to stop,
//     so that Snapshot finds it; stop clears it before it
//     returns.

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// WithScaling runs a scaler goroutine that samples the pool every
// p.Interval and sets the number of workers kept warm (the target, within
// the WithWorkers bounds): a worker that parks while more workers run than
// the target exits after 10 ms without work (or the idle timeout, if
// shorter), parked workers above a lowered target exit within two idle
// timeouts, and a higher target starts workers at once. New returns an error
// matching ErrInvalidOption and ErrInvalidScalingPolicy if p is out of range.
//
// Scaling is off by default. Without it the pool still sizes itself: a
// worker starts whenever a shard is ready and none is idle (up to max), and
// idle workers above min exit after the idle timeout. The scaler adds a
// warm set that follows the load, so that workers in steady use survive
// lulls longer than the idle timeout. It costs a wake-up per interval (one a
// second while the pool is quiet) and a pass over the shards per sample,
// about 4 µs at 1,024 shards (BenchmarkScalingSample, 2 cores).
//
// Measured by bench/cmd/dayscale (a compressed day of 1–5 ms tasks, peak
// at 5× the quiet rate, 64 workers at most; medians of 3 days, 2-core
// virtual machine shared with other work), the scaler's peak p99 queue
// wait was 0.95–1.30× that of a static pool at max (the spread of the
// machine: the on-demand pool's ranged as widely), with 0.49 of its
// worker-seconds in three runs; the on-demand path alone used 0.52–0.54,
// because the workers a peak calls up idle for the whole idle timeout after
// it. It pays where the load has peaks and lulls, or where idle goroutines
// are costly; it is off by default. docs/SCALING.md has the figures and how
// to choose a policy.
//
// The last decision that moved the target is in Stats.Scaling.
func WithScaling(p ScalingPolicy) Option {
	return optionFunc(func(c *config) error {
		if err := p.Validate(); err != nil {
			return fmt.Errorf("%w: WithScaling: %w", ErrInvalidOption, err)
		}
		c.scaler = func(ctl *control, src scalingSource) (stop func()) {
			a := startAutoscaler(ctl, src, p)
			if a == nil {
				return nil
			}
			return a.stop
		}
		return nil
	})
}

// scaling returns the scaler's last decision (Stats.Scaling).
func (p *core[K, P, L]) scaling() ScalingDecision {
	if a := p.ctl.scaler.Load(); a != nil {
		return a.last()
	}
	return ScalingDecision{}
}

// scalingSource is what the scaler reads from the generic half of a pool
// besides control: arrivals since New, queued tasks and queue capacity, in
// one pass over the shards. The core implements it; init passes itself to
// cfg.scaler.
type scalingSource interface {
	scalingLoad() (arrivals uint64, queued, capacity int)
}

var _ scalingSource = (*core[int, Task, DeadLetter[int]])(nil)

// scalingLoad reads every shard once: the tasks it accepted and those it
// holds; capacity is the pool-wide bound.
func (p *core[K, P, L]) scalingLoad() (arrivals uint64, queued, capacity int) {
	for i := range p.shards {
		s := &p.shards[i]
		s.mu.Lock()
		arrivals += s.submitted
		queued += s.queued
		s.mu.Unlock()
	}
	return arrivals, queued, p.cfg.maxQueued
}

// autoscaler is a pool's scaler goroutine and what it publishes.
type autoscaler struct {
	ctl      *control
	src      scalingSource // nil in tests: only control's signals
	sc       *scalingEngine
	interval time.Duration

	quit     chan struct{} // closed by stop
	done     chan struct{} // closed by the goroutine when it returns
	stopOnce sync.Once
	decided  atomic.Pointer[ScalingDecision]

	arrivals uint64        // at the previous sample; the goroutine's own
	samples  atomic.Uint64 // samples taken, for tests
}

// startAutoscaler starts the scaler goroutine of the pool whose control is
// ctl, reading src if not nil. It returns nil for an invalid policy
// (WithScaling has rejected it before).
func startAutoscaler(ctl *control, src scalingSource, p ScalingPolicy) *autoscaler {
	sc, err := newScalingEngine(p)
	if err != nil {
		return nil
	}
	a := &autoscaler{
		ctl: ctl, src: src, sc: sc, interval: p.Interval,
		quit: make(chan struct{}), done: make(chan struct{}),
	}
	// Registers the scaler for Snapshot before its first decision.
	ctl.scaler.Store(a)
	go a.run()
	return a
}

// stop ends the goroutine and waits for it. Safe to call more than once.
func (a *autoscaler) stop() {
	a.stopOnce.Do(func() {
		close(a.quit)
		<-a.done
		// Unregisters the scaler if it is still the pool's.
		a.ctl.scaler.CompareAndSwap(a, nil)
	})
}

// last returns the latest decision that moved the target.
func (a *autoscaler) last() ScalingDecision {
	if d := a.decided.Load(); d != nil {
		return *d
	}
	return ScalingDecision{}
}

// idleBackoff bounds how far a quiet pool's scaler stretches its sampling
// period: up to idleBackoff × Interval (1 s by default), doubling after each
// quiet sample. A quiet pool costs one sample a second instead of ten; a
// burst is still met by the pool's on-demand workers at once, and the scaler
// sees it within that second, its EWMA weighting the long gap as the
// intervals it spans.
const idleBackoff = 10

func (a *autoscaler) run() {
	defer close(a.done)
	wait := a.interval
	t := time.NewTimer(wait)
	defer t.Stop()
	a.sample(time.Now())
	for {
		select {
		case <-a.quit:
			return
		case now := <-t.C:
			if a.sample(now) {
				wait = a.interval
			} else {
				wait = min(2*wait, idleBackoff*a.interval)
			}
			t.Reset(wait)
		}
	}
}

// sample takes one sample, steps the scaler and applies its decision. It
// reports whether the pool was active: tasks arrived, a worker was busy, a
// shard waited, the target is above min or moved, or workers run above it.
func (a *autoscaler) sample(now time.Time) (active bool) {
	c := a.ctl
	x := a.read(now)
	running := x.Running
	a.samples.Add(1)
	lo := int(c.minW.Load())
	d := a.sc.Step(x, lo, int(c.maxW.Load()))
	active = x.Arrivals != a.arrivals || x.Busy > 0 || x.ShardsWaiting > 0 ||
		d.Target > lo || d.Changed() || running > d.Target
	a.arrivals = x.Arrivals
	if d.Changed() {
		// Publishes the new count kept warm to park's idle-timeout check.
		c.target.Store(int32(d.Target))
		// Publishes the decision to Snapshot (Stats.Scaling). The copy is the only value
		// that escapes, so a sample that changes nothing allocates nothing.
		published := d
		a.decided.Store(&published)
		if d.Target > d.Previous {
			c.ensure(int32(d.Target))
		}
	}
	// Parked workers above min keep their idle timers armed and compare
	// running with the target when they fire (see control.park), so a
	// lower target needs no wake: a worker above it exits within about two
	// idle timeouts.
	return active
}

// read takes the pool's signals at now.
func (a *autoscaler) read(now time.Time) scalingSample {
	c := a.ctl
	// Reads the worker counts; each may be a transition apart from the
	// others, which the scaler's smoothing absorbs.
	running := int(c.running.Load())
	free := int(c.idle.Load()) + int(c.spinning.Load())
	busy := max(0, running-free)
	// A shard is waiting for a worker only if no worker is free to take it:
	// with free workers, a scheduled shard is taken within a tick of the
	// monitor. Counting those (under load some shard is almost always in
	// the run queue) made the arrival rule grow the target to max on every
	// ramp: bench/cmd/dayscale measured 0.65 of static-at-max's
	// worker-seconds, against 0.58 this way (see WithScaling).
	waiting := max(0, c.runq.Len()-free)
	x := scalingSample{Now: now, ShardsWaiting: waiting, Busy: busy, Running: running}
	if a.src != nil {
		x.Arrivals, x.Queued, x.Capacity = a.src.scalingLoad()
	}
	return x
}
