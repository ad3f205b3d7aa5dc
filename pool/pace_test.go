package pool

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// otherShard returns a group whose shard differs from group 0's.
func otherShard(p *Pool[int]) int {
	g := 1
	for p.ShardOf(g) == p.ShardOf(0) {
		g++
	}
	return g
}

// TestSlowWorkerDoesNotDelayOtherShards: once a worker's tasks block (fewer
// than slowDrains batches per tick), a shard that becomes ready while that
// worker is blocked gets another worker at once, without waiting for the
// monitor's tick. A worker that runs short tasks is counted on to come back
// instead, so the same arrival waits for the tick (no wake-up per task).
// The CPU sample reads every busy worker as blocked, as it is: with one
// processor the second worker is past GOMAXPROCS and starts within the
// room of the monitor's last sample, which the runtime's real counts
// would make depend on whatever else the test binary runs.
func TestSlowWorkerDoesNotDelayOtherShards(t *testing.T) {
	for _, tc := range []struct {
		name       string
		warm       func(p *Pool[int])
		wantAtOnce bool
	}{
		{"slow", func(p *Pool[int]) {
			// Three tasks of 2 ms: fewer than slowDrains batches a tick.
			for range 3 {
				submitOK(p, 0, func(context.Context) error { time.Sleep(2 * time.Millisecond); return nil })
				time.Sleep(3 * time.Millisecond)
			}
		}, true},
		{"fast", func(p *Pool[int]) {
			// Bursts of short tasks, a tick apart: many batches a tick.
			for range 3 {
				for g := range 256 {
					submitOK(p, g, func(context.Context) error { return nil })
				}
				synctest.Wait()
				time.Sleep(monitorTick)
			}
			for g := range 256 {
				submitOK(p, g, func(context.Context) error { return nil })
			}
			synctest.Wait()
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				// One worker while it warms up, so that its pace is the
				// warm-up's; then room for more.
				p := mustNew[int](t, WithWorkers(1, 1), WithShards(64), withCPUReader(blockedCPU))
				tc.warm(p)
				synctest.Wait()
				if err := p.Tune(1, 4); err != nil {
					t.Fatal(err)
				}
				release := make(chan struct{})
				submitOK(p, 0, func(context.Context) error { <-release; return nil })
				synctest.Wait()
				var ran atomic.Bool
				submitOK(p, otherShard(p), func(context.Context) error { ran.Store(true); return nil })
				// No virtual time passes here: the monitor cannot have run it.
				synctest.Wait()
				if got := ran.Load(); got != tc.wantAtOnce {
					t.Errorf("other shard's task ran before any tick: %v, want %v (busy %d, %+v)",
						got, tc.wantAtOnce, p.c.ctl.busy.Load(), p.Snapshot().Workers)
				}
				time.Sleep(2 * monitorTick)
				synctest.Wait()
				if !ran.Load() {
					t.Errorf("other shard's task has not run after two ticks")
				}
				close(release)
				if err := p.Close(context.Background()); err != nil {
					t.Fatal(err)
				}
				if n := p.c.ctl.busy.Load(); n != 0 {
					t.Errorf("busy count %d after Close, want 0", n)
				}
			})
		})
	}
}

// TestNewWorkerNotSlow: a worker started long after the pool is not judged
// on the partial interval it started in, so its second batch is not counted
// in busy.
func TestNewWorkerNotSlow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := mustNew[int](t, WithWorkers(0, 4))
		// The coarse clock moves on before any worker exists.
		time.Sleep(10 * time.Millisecond)
		submitOK(p, 0, func(context.Context) error { return nil })
		synctest.Wait()
		release := make(chan struct{})
		submitOK(p, 0, func(context.Context) error { <-release; return nil })
		synctest.Wait()
		if n := p.c.ctl.busy.Load(); n != 0 {
			t.Errorf("busy count %d while a new worker runs its second batch, want 0", n)
		}
		close(release)
		if err := p.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}

// TestSlowWorkerGoexit: a slow worker whose task ends its goroutine leaves
// the busy count as it was.
func TestSlowWorkerGoexit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := mustNew[int](t, WithWorkers(1, 1))
		_, letters := collect(p)
		submitOK(p, 0, func(context.Context) error { time.Sleep(5 * time.Millisecond); return nil })
		time.Sleep(10 * time.Millisecond)
		submitOK(p, 0, func(context.Context) error { time.Sleep(5 * time.Millisecond); runtime.Goexit(); return nil })
		time.Sleep(10 * time.Millisecond)
		synctest.Wait()
		if n := p.c.ctl.busy.Load(); n != 0 {
			t.Errorf("busy count %d after the worker's goroutine ended, want 0", n)
		}
		if err := p.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if dls := letters(); len(dls) != 1 || dls[0].Reason != ReasonPanicked {
			t.Fatalf("letters %+v", dls)
		}
	})
}

func submitOK(p *Pool[int], g int, task Task) {
	if err := p.Submit(context.Background(), g, task); err != nil {
		panic(err)
	}
}

// TestParkAboveScalerTarget: with a scaler, a worker that parks while more
// workers run than the scaler's target exits after aboveTargetIdle, not
// after the idle timeout; at the target it stays parked; without a scaler a
// worker above min waits for the idle timeout.
func TestParkAboveScalerTarget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var c control
		if err := c.init(16, 1, 8, time.Hour, sinceStart()); err != nil {
			t.Fatal(err)
		}
		// No timer: the first timed park creates it, the next ones reuse it.
		w := &worker{wake: make(chan struct{}, 1)}
		// stillParked parks w, checks it is parked a second later, wakes it.
		stillParked := func() {
			t.Helper()
			done := make(chan bool)
			go func() { done <- c.park(w) }()
			time.Sleep(time.Second)
			synctest.Wait()
			if n := c.idle.Load(); n != 1 {
				t.Fatalf("running %d, idle %d a second after park: want the worker parked", c.running.Load(), n)
			}
			c.wakeAll()
			if !<-done {
				t.Fatal("a woken worker reported that it must exit")
			}
		}

		c.scaler.Store(&autoscaler{ctl: &c})
		c.running.Store(3) // the target is min, 1
		start := time.Now()
		if c.park(w) {
			t.Fatal("a worker above the scaler's target stayed, want it to exit")
		}
		if waited := time.Since(start); waited != aboveTargetIdle {
			t.Fatalf("a worker above the scaler's target exited after %v idle, want %v", waited, aboveTargetIdle)
		}
		if r, i := c.running.Load(), c.idle.Load(); r != 2 || i != 0 || len(c.idleList) != 0 {
			t.Fatalf("after the exit: running %d, idle %d, idle list %d; want 2, 0, 0", r, i, len(c.idleList))
		}
		c.running.Store(1)
		stillParked()

		c.scaler.Store(nil)
		c.running.Store(3)
		stillParked()
	})
}

// TestIdleTimerFiringForAnEarlierSpell: the idle timer is a function timer,
// and a firing meant for an earlier idle spell (one that Stop could not
// withdraw in time) may run while the worker parks again. It must neither
// retire a worker whose current spell is younger than the idle timeout nor
// one parked without a timer; the current spell's own firing retires it on
// time.
func TestIdleTimerFiringForAnEarlierSpell(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var c control
		if err := c.init(16, 1, 8, time.Second, sinceStart()); err != nil {
			t.Fatal(err)
		}
		w := &worker{wake: make(chan struct{}, 1)}
		expectParked := func(when string) {
			t.Helper()
			c.mu.Lock()
			parked := w.parked
			c.mu.Unlock()
			if !parked || c.idle.Load() != 1 {
				t.Fatalf("%s: parked %v, idle %d; want the worker parked", when, parked, c.idle.Load())
			}
		}

		// At min: an untimed park; a stray firing leaves it parked.
		c.running.Store(1)
		done := parkAsync(&c, w)
		c.idleExpired(w)
		expectParked("a stray firing at min")
		c.wakeAll()
		if !<-done {
			t.Fatal("a woken worker reported that it must exit")
		}

		// Above min: a timed park. A firing half-way through the spell
		// (an earlier spell's) leaves it parked and the pool's counts as
		// they were.
		c.running.Store(3)
		start := time.Now()
		done = parkAsync(&c, w)
		time.Sleep(500 * time.Millisecond)
		c.idleExpired(w)
		expectParked("a firing half-way through the spell")
		if r := c.running.Load(); r != 3 {
			t.Fatalf("running %d after an early firing, want 3", r)
		}
		if <-done {
			t.Fatal("a worker above min stayed after its idle timeout, want it to exit")
		}
		if waited := time.Since(start); waited != time.Second {
			t.Fatalf("the worker exited after %v idle, want the idle timeout, 1s", waited)
		}
		if r, i := c.running.Load(), c.idle.Load(); r != 2 || i != 0 || len(c.idleList) != 0 {
			t.Fatalf("after the exit: running %d, idle %d, idle list %d; want 2, 0, 0", r, i, len(c.idleList))
		}
	})
}
