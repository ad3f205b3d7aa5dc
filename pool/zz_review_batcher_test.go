package pool

import (
	"context"
	"testing"
	"testing/synctest"
)

// TestBatcherHotGroupPublishes: one group whose messages keep arriving
// while its calls run keeps its worker on the group, call after call (no
// other group waits). Snapshot must still count the calls that returned,
// and the breaker's in-flight count (queued and running messages) must
// not grow with every message handled since the worker started.
func TestBatcherHotGroupPublishes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		entered, release := make(chan int), make(chan struct{})
		fn := func(_ context.Context, _ int, msgs []int) error {
			entered <- msgs[0]
			<-release
			return nil
		}
		b := mustBatcher(t, fn, WithWorkers(1, 1), WithMemoryBudget(1<<40))
		const calls = 100
		if err := b.Submit(context.Background(), 1, 0); err != nil {
			t.Fatal(err)
		}
		for i := 1; i <= calls; i++ {
			<-entered // call i-1 runs with message i-1
			if err := b.Submit(context.Background(), 1, i); err != nil {
				t.Fatal(err)
			}
			release <- struct{}{}
		}
		<-entered // the last call runs
		s := b.Snapshot()
		inFlight := b.c.inFlight.Load()
		release <- struct{}{}
		if err := b.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		// calls messages handled, one running: allow one call's lag.
		if s.Completed < calls-1 || s.Batches.Calls < calls-1 {
			t.Errorf("while the hot group runs: Completed %d, Batches.Calls %d; want about %d",
				s.Completed, s.Batches.Calls, calls)
		}
		if inFlight > 2 {
			t.Errorf("breaker's in-flight count %d with %d queued; want the queued and running messages", inFlight, s.Queued)
		}
	})
}
