package pool

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestGoexitAboveLoweredMaxIsNotReplaced: a worker whose task calls
// runtime.Goexit after Tune lowered max below the running count is not
// replaced: no more tasks run at once than the new max.
func TestGoexitAboveLoweredMaxIsNotReplaced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := mustNew[int](t, WithWorkers(2, 2), withCPUReader(blockedCPU))
		blockA, goB := make(chan struct{}), make(chan struct{})
		var inA, inB, ranC atomic.Bool
		_ = p.Submit(context.Background(), 1, func(context.Context) error { inA.Store(true); <-blockA; return nil })
		_ = p.Submit(context.Background(), 2, func(context.Context) error { inB.Store(true); <-goB; runtime.Goexit(); return nil })
		// The monitor's tick wakes the parked worker if a producer left
		// the second group to it.
		time.Sleep(2 * monitorTick)
		synctest.Wait()
		if !inA.Load() || !inB.Load() {
			close(blockA)
			close(goB)
			_ = p.Close(context.Background())
			t.Fatalf("both tasks should run on the two workers: A %v B %v", inA.Load(), inB.Load())
		}
		if err := p.Tune(0, 1); err != nil {
			t.Fatal(err)
		}
		_ = p.Submit(context.Background(), 3, func(context.Context) error { ranC.Store(true); return nil })
		close(goB)
		time.Sleep(2 * stallAfter)
		synctest.Wait()
		if ranC.Load() {
			t.Errorf("after Tune(0, 1), a task started while another ran: the Goexit's replacement ran above max")
		}
		if r := p.Snapshot().Workers.Running; r > 1 {
			t.Errorf("running %d after Tune(0, 1) and a Goexit, want at most 1", r)
		}
		close(blockA)
		synctest.Wait()
		if !ranC.Load() {
			t.Errorf("the third task did not run once a worker came free")
		}
		_ = p.Close(context.Background())
	})
}

// TestIdleWorkersAtMinParkWithoutTimer: once a burst's workers have gone
// back to min, the workers left park without an idle timer (an idle pool
// uses no CPU): none keeps waking every idle timeout.
func TestIdleWorkersAtMinParkWithoutTimer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := mustNew[int](t, WithWorkers(2, 8), WithIdleTimeout(time.Second), withCPUReader(blockedCPU))
		for g := range 64 {
			if err := p.Submit(context.Background(), g, func(context.Context) error {
				time.Sleep(10 * time.Millisecond)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(5 * time.Millisecond)
		synctest.Wait()
		if s := p.Snapshot(); s.Workers.Running != 8 {
			t.Fatalf("running %d during the burst, want 8", s.Workers.Running)
		}
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if s := p.Snapshot(); s.Workers.Running != 2 || s.Workers.Idle != 2 {
			t.Fatalf("after idling: %+v, want 2 running and idle", s.Workers)
		}
		c := &p.c.ctl
		c.mu.Lock()
		timed := 0
		for _, w := range c.all {
			if w.parked && w.idleUntil != 0 {
				timed++
			}
		}
		c.mu.Unlock()
		if timed != 0 {
			t.Errorf("%d of the 2 workers at min still park on an idle timer, want none", timed)
		}
		if err := p.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}

// TestTuneLowerMaxStopsWorkersStayingOnTheirGroups: after Tune lowers max,
// workers that each stay on a busy group (nobody else waits, so each turn
// is followed by a new one on the same group) still give up their places:
// once their turns end, no more tasks run at once than the new max.
func TestTuneLowerMaxStopsWorkersStayingOnTheirGroups(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := mustNew[int](t, WithWorkers(3, 3), withCPUReader(blockedCPU))
		var now, peak atomic.Int32
		task := func(context.Context) error {
			n := now.Add(1)
			for {
				m := peak.Load()
				if n <= m || peak.CompareAndSwap(m, n) {
					break
				}
			}
			time.Sleep(time.Millisecond)
			now.Add(-1)
			return nil
		}
		for range 300 {
			for g := range 3 {
				if err := p.Submit(context.Background(), g, task); err != nil {
					t.Fatal(err)
				}
			}
		}
		time.Sleep(10 * time.Millisecond)
		if m := peak.Load(); m != 3 {
			t.Fatalf("peak %d of 3 groups on 3 workers, want 3", m)
		}
		if err := p.Tune(0, 1); err != nil {
			t.Fatal(err)
		}
		// The turns under way end within maxTurn and a task.
		time.Sleep(10 * time.Millisecond)
		peak.Store(now.Load())
		time.Sleep(50 * time.Millisecond)
		if m := peak.Load(); m > 1 {
			t.Errorf("%d tasks ran at once 10 ms after Tune(0, 1), want at most 1", m)
		}
		if r := p.Snapshot().Workers.Running; r > 1 {
			t.Errorf("running %d 10 ms after Tune(0, 1), want at most 1", r)
		}
		if err := p.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}

// TestTuneHigherMaxKeepsTheCPURule: a Tune that raises max while shards
// wait starts workers past GOMAXPROCS only as the pool's own growth would
// (within the growth room): with the processors full, none; not one per
// waiting shard.
func TestTuneHigherMaxKeepsTheCPURule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		procs := runtime.GOMAXPROCS(0)
		p := mustNew[int](t, WithWorkers(1, procs), withCPUReader(saturatedCPU))
		gate := make(chan struct{})
		for g := range 64 {
			_ = p.Submit(context.Background(), g, func(context.Context) error { <-gate; return nil })
		}
		time.Sleep(2 * monitorTick)
		synctest.Wait()
		if r := p.Snapshot().Workers.Running; r != procs {
			t.Fatalf("running %d, want max %d", r, procs)
		}
		if err := p.Tune(1, 64); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if r := p.Snapshot().Workers.Running; r != procs {
			t.Errorf("running %d right after Tune(1, 64) with the processors full, want %d", r, procs)
		}
		close(gate)
		if err := p.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}

// TestTuneLowerMaxWokenWorkersDoNotTakeWork: the parked workers that Tune
// wakes to re-read a lower max leave without taking a waiting shard, so
// that no more tasks run at once than the new max.
func TestTuneLowerMaxWokenWorkersDoNotTakeWork(t *testing.T) {
	// Enough processors that no worker starts slow: a producer then counts
	// on the busy worker and leaves the second group to the monitor's tick.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(8))
	synctest.Test(t, func(t *testing.T) {
		p := mustNew[int](t, WithWorkers(4, 4), withCPUReader(blockedCPU))
		synctest.Wait()
		blockA := make(chan struct{})
		var inA, ranB atomic.Bool
		_ = p.Submit(context.Background(), 1, func(context.Context) error { inA.Store(true); <-blockA; return nil })
		synctest.Wait()
		_ = p.Submit(context.Background(), 2, func(context.Context) error { ranB.Store(true); return nil })
		synctest.Wait()
		if !inA.Load() || ranB.Load() {
			close(blockA)
			_ = p.Close(context.Background())
			t.Skipf("the second group did not wait for the tick (A %v, B %v)", inA.Load(), ranB.Load())
		}
		if err := p.Tune(0, 1); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if ranB.Load() {
			t.Errorf("a worker woken by Tune(0, 1) ran a task beside the busy one")
		}
		if r := p.Snapshot().Workers.Running; r > 1 {
			t.Errorf("running %d after Tune(0, 1), want at most 1", r)
		}
		close(blockA)
		synctest.Wait()
		if !ranB.Load() {
			t.Errorf("the second task did not run once the worker came free")
		}
		if err := p.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}
