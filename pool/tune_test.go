package pool

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestTuneLowerMinWithoutScaler: without a scaler the workers kept warm
// are min: after Tune(0, 8) on a pool of WithWorkers(4, 8), the four idle
// workers exit within two idle timeouts, and Stats says target 0.
func TestTuneLowerMinWithoutScaler(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := mustNew[int](t, WithWorkers(4, 8), WithIdleTimeout(time.Second))
		synctest.Wait()
		if r := p.Snapshot().Workers.Running; r != 4 {
			t.Fatalf("running %d, want 4", r)
		}
		if err := p.Tune(0, 8); err != nil {
			t.Fatal(err)
		}
		// Well past two idle timeouts.
		time.Sleep(10 * time.Second)
		synctest.Wait()
		s := p.Snapshot()
		if s.Workers.Running != 0 || s.Workers.Target != 0 {
			t.Errorf("after Tune(0, 8) and 10 idle timeouts: %+v, want 0 running, target 0", s.Workers)
		}
		if err := p.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}

// TestTuneLowerMinAndMaxWithoutScaler: the same with a lower max, Tune(0,
// 2) from (4, 8): no worker stays warm.
func TestTuneLowerMinAndMaxWithoutScaler(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := mustNew[int](t, WithWorkers(4, 8), WithIdleTimeout(time.Second))
		synctest.Wait()
		if err := p.Tune(0, 2); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if s := p.Snapshot(); s.Workers.Running != 0 || s.Workers.Target != 0 {
			t.Errorf("after Tune(0, 2) and 10 idle timeouts: %+v, want 0 running, target 0", s.Workers)
		}
		if err := p.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}

// TestTuneLowerMaxWhileSpinning: Tune lowers max while workers spin (out
// of reach of its wakeAll): once every worker is parked, no more than the
// new max run; those above it exit instead of parking. Iterations vary
// how far the workers got before Tune.
func TestTuneLowerMaxWhileSpinning(t *testing.T) {
	prev := runtime.GOMAXPROCS(4) // two spinners at most (maxSpinning = procs/2)
	defer runtime.GOMAXPROCS(prev)
	for iter := range 300 {
		failed := false
		synctest.Test(t, func(t *testing.T) {
			p := mustNew[int](t, WithWorkers(0, 4), WithIdleTimeout(time.Hour), withCPUReader(blockedCPU))
			gate := make(chan struct{})
			for g := range 4 {
				if err := p.Submit(context.Background(), g, func(context.Context) error { <-gate; return nil }); err != nil {
					t.Fatal(err)
				}
			}
			time.Sleep(5 * time.Millisecond)
			synctest.Wait()
			if r := p.Snapshot().Workers.Running; r != 4 {
				t.Fatalf("running %d, want 4", r)
			}
			close(gate)
			for range iter % 40 {
				runtime.Gosched()
			}
			if err := p.Tune(1, 1); err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
			if s := p.Snapshot(); s.Workers.Running > 1 {
				failed = true
				t.Errorf("iteration %d: after Tune(1, 1) and with every worker parked: %+v, want at most 1 running", iter, s.Workers)
			}
			if err := p.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
		})
		if failed {
			return
		}
	}
}

// overlapTasks returns a task maker for groups that must never run at
// once under max 1: each task notes whether another was running when it
// started; hold makes the task wait for gate.
func overlapTasks(gate <-chan struct{}) (task func(hold bool) Task, overlapped *atomic.Bool, ran *atomic.Int32) {
	var running atomic.Int32
	overlapped, ran = new(atomic.Bool), new(atomic.Int32)
	task = func(hold bool) Task {
		return func(context.Context) error {
			if running.Add(1) > 1 {
				overlapped.Store(true)
			}
			if hold {
				<-gate
			}
			running.Add(-1)
			ran.Add(1)
			return nil
		}
	}
	return task, overlapped, ran
}

// otherShards returns n groups of p in distinct shards.
func otherShards(p *Pool[int], n int) []int {
	var gs []int
	seen := map[int]bool{}
	for g := 0; len(gs) < n; g++ {
		if s := p.ShardOf(g); !seen[s] {
			seen[s] = true
			gs = append(gs, g)
		}
	}
	return gs
}

// TestTuneLowerMaxSpinnerTakesNoShard: a worker that spins while Tune
// lowers max below the running count takes no shard after Tune returned:
// it leaves, and the shard waits for a worker within the new max.
func TestTuneLowerMaxSpinnerTakesNoShard(t *testing.T) {
	prev := runtime.GOMAXPROCS(4) // workers start fast, and spin
	defer runtime.GOMAXPROCS(prev)
	synctest.Test(t, func(t *testing.T) {
		hook, arm, reached, resume := pauseAt(hookSpin)
		p := mustNew[int](t, WithWorkers(2, 2), WithIdleTimeout(time.Hour), withSchedHook(hook))
		gs := otherShards(p, 2)
		gate := make(chan struct{})
		task, overlapped, ran := overlapTasks(gate)
		synctest.Wait()
		if err := p.Submit(context.Background(), gs[0], task(true)); err != nil {
			t.Fatal(err)
		}
		synctest.Wait() // one worker in the task, the other parked
		arm()
		// Wakes the parked worker, which finds nothing and spins.
		if err := p.Tune(2, 2); err != nil {
			t.Fatal(err)
		}
		<-reached
		if err := p.Tune(1, 1); err != nil {
			t.Fatal(err)
		}
		if err := p.Submit(context.Background(), gs[1], task(false)); err != nil {
			t.Fatal(err)
		}
		resume()
		synctest.Wait()
		if overlapped.Load() {
			t.Errorf("a spinning worker took a shard after Tune(1, 1) returned, beside the running one")
		}
		close(gate)
		synctest.Wait()
		if s := p.Snapshot(); ran.Load() != 2 || s.Workers.Running > 1 {
			t.Errorf("%d tasks ran, workers %+v; want 2, at most 1 running", ran.Load(), s.Workers)
		}
		if err := p.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}

// TestTuneLowerMaxGrowthTakesNoShard: a worker that growth starts while
// Tune lowers max (past growth's check of max) takes no shard above the
// new max.
func TestTuneLowerMaxGrowthTakesNoShard(t *testing.T) {
	prev := runtime.GOMAXPROCS(4) // growth below GOMAXPROCS needs no room
	defer runtime.GOMAXPROCS(prev)
	synctest.Test(t, func(t *testing.T) {
		hook, arm, reached, resume := pauseAt(hookGrow)
		p := mustNew[int](t, WithWorkers(1, 2), WithIdleTimeout(time.Hour), withSchedHook(hook))
		gs := otherShards(p, 3)
		gate := make(chan struct{})
		task, overlapped, ran := overlapTasks(gate)
		synctest.Wait()
		if err := p.Submit(context.Background(), gs[0], task(true)); err != nil {
			t.Fatal(err)
		}
		synctest.Wait() // the worker in the task
		arm()
		submitted := make(chan error, 1)
		go func() {
			// The second shard waiting, with no free worker, grows the
			// pool.
			err := p.Submit(context.Background(), gs[1], task(false))
			if err == nil {
				err = p.Submit(context.Background(), gs[2], task(false))
			}
			submitted <- err
		}()
		<-reached
		if err := p.Tune(1, 1); err != nil {
			t.Fatal(err)
		}
		resume()
		if err := <-submitted; err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if overlapped.Load() {
			t.Errorf("a worker growth started took a shard after Tune(1, 1) returned, beside the running one")
		}
		close(gate)
		synctest.Wait()
		if s := p.Snapshot(); ran.Load() != 3 || s.Workers.Running > 1 {
			t.Errorf("%d tasks ran, workers %+v; want 3, at most 1 running", ran.Load(), s.Workers)
		}
		if err := p.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}

// TestTuneLowerMaxHolderTakesNoOtherGroup: a worker that holds a group
// when Tune lowers max below the running count does not go on, once that
// group is empty, with another group of its shard that waits for a worker:
// it leaves, and that group waits for a worker within the new max, as a
// shard in the run queue does.
func TestTuneLowerMaxHolderTakesNoOtherGroup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := mustNew[int](t, WithWorkers(2, 2), WithIdleTimeout(time.Hour))
		// g1 and g2 share a shard; h is in another.
		g1, g2, h := 0, -1, -1
		for g := 1; g2 < 0 || h < 0; g++ {
			if p.ShardOf(g) == p.ShardOf(g1) {
				if g2 < 0 {
					g2 = g
				}
			} else if h < 0 {
				h = g
			}
		}
		var running atomic.Int32
		var overlapped atomic.Bool
		var ran atomic.Int32
		task := func(gate <-chan struct{}) Task {
			return func(context.Context) error {
				if running.Add(1) > 1 {
					overlapped.Store(true)
				}
				if gate != nil {
					<-gate
				}
				running.Add(-1)
				ran.Add(1)
				return nil
			}
		}
		gate1, gateH := make(chan struct{}), make(chan struct{})
		synctest.Wait()
		if err := p.Submit(context.Background(), g1, task(gate1)); err != nil {
			t.Fatal(err)
		}
		if err := p.Submit(context.Background(), h, task(gateH)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond) // the monitor wakes the second worker
		synctest.Wait()
		if n := running.Load(); n != 2 {
			t.Fatalf("%d tasks running, want 2 (both workers busy)", n)
		}
		overlapped.Store(false) // two at once are within max 2
		// g2 waits for a worker: both are busy, and max is reached.
		if err := p.Submit(context.Background(), g2, task(nil)); err != nil {
			t.Fatal(err)
		}
		if err := p.Tune(1, 1); err != nil {
			t.Fatal(err)
		}
		close(gate1) // g1's holder is free, above max
		synctest.Wait()
		if overlapped.Load() {
			t.Errorf("after Tune(1, 1) returned, g1's holder ran g2's task beside h's")
		}
		close(gateH)
		synctest.Wait()
		if s := p.Snapshot(); ran.Load() != 3 || s.Workers.Running > 1 {
			t.Errorf("%d tasks ran, workers %+v; want 3, at most 1 running", ran.Load(), s.Workers)
		}
		if err := p.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}

// TestExitAboveMaxHandsOnWaitingShard: a worker that leaves above max
// without a shard (here park's own check, as after a Tune that lowered max
// while it spun) may be the free worker a producer counted on when it
// pushed a shard and woke nobody. Leaving, it must hand the waiting shard
// to a parked worker within max (as aboveMax does), not leave it to the
// monitor's next tick. The leaving worker is simulated: one more place in
// running, then control.park.
func TestExitAboveMaxHandsOnWaitingShard(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := mustNew[int](t, WithWorkers(1, 1), WithIdleTimeout(time.Hour))
		synctest.Wait() // the one worker parked
		c := &p.c.ctl
		// The leaving worker's place: above max 1, counted free.
		c.running.Add(1)
		var ranAt time.Time
		submitted := time.Now()
		if err := p.Submit(context.Background(), 1, func(context.Context) error { ranAt = time.Now(); return nil }); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if !ranAt.IsZero() {
			t.Fatal("the producer woke the parked worker itself: it did not count on the leaving one")
		}
		if c.park(&worker{wake: make(chan struct{}, 1)}) {
			t.Fatal("park above max: the worker stays")
		}
		synctest.Wait()
		if ranAt.IsZero() {
			t.Errorf("the task waits for the monitor's tick after the worker left above max; the leaving worker must hand its shard on")
		} else if ranAt.After(submitted) {
			t.Errorf("the task ran at +%v, after the monitor's tick; want at once", ranAt.Sub(submitted))
		}
		if err := p.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}
