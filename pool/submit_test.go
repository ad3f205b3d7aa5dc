package pool

import (
	"context"
	"runtime/metrics"
	"sync/atomic"
	"testing"
)

// TestSubmitterYieldsWhenBehind: a blocking submitter yields its processor
// once, as its task becomes the yieldBehind-th of its group not yet taken
// by a worker, and only while goroutines queue for the processors. A group
// less far behind, a nonblocking submission and a pool whose processors
// have room never yield.
func TestSubmitterYieldsWhenBehind(t *testing.T) {
	ctx := context.Background()
	run := func(t *testing.T, crowded bool, submit func(p *Pool[string])) int64 {
		t.Helper()
		runnable := uint64(0)
		if crowded {
			runnable = 64
		}
		p, err := New[string](WithWorkers(1, 1), withCPUReader(func([]metrics.Sample) (uint64, uint64, bool) {
			return 1, runnable, true
		}))
		if err != nil {
			t.Fatal(err)
		}
		var yields atomic.Int64
		p.c.ctl.yield = func() { yields.Add(1) }
		// The monitor's first tick may come later: what it will store.
		p.c.ctl.crowded.Store(crowded)
		gate, started := make(chan struct{}), make(chan struct{})
		// Holds the one worker, so no task below is taken.
		if err := p.Submit(ctx, "blocker", func(context.Context) error {
			close(started)
			<-gate
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		<-started
		submit(p)
		got := yields.Load()
		close(gate)
		if err := p.Close(ctx); err != nil {
			t.Fatal(err)
		}
		return got
	}
	noop := Task(func(context.Context) error { return nil })
	fill := func(p *Pool[string], group string, n int) {
		for range n {
			if err := p.Submit(ctx, group, noop); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Run("behind", func(t *testing.T) {
		if got := run(t, true, func(p *Pool[string]) { fill(p, "a", 3*yieldBehind) }); got != 1 {
			t.Fatalf("%d yields for %d tasks of one group, want 1", got, 3*yieldBehind)
		}
	})
	t.Run("each group", func(t *testing.T) {
		got := run(t, true, func(p *Pool[string]) {
			fill(p, "a", yieldBehind)
			fill(p, "b", yieldBehind)
			fill(p, "c", yieldBehind-1)
		})
		if got != 2 {
			t.Fatalf("%d yields, want 2 (groups a and b)", got)
		}
	})
	t.Run("nonblocking", func(t *testing.T) {
		got := run(t, true, func(p *Pool[string]) {
			for range 2 * yieldBehind {
				if err := p.TrySubmit("a", noop); err != nil {
					t.Fatal(err)
				}
			}
		})
		if got != 0 {
			t.Fatalf("TrySubmit yielded %d times, want 0", got)
		}
	})
	t.Run("processors free", func(t *testing.T) {
		if got := run(t, false, func(p *Pool[string]) { fill(p, "a", 3*yieldBehind) }); got != 0 {
			t.Fatalf("%d yields with processors free, want 0", got)
		}
	})
}
