package pool

import (
	"context"
	"runtime"
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
