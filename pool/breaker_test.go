package pool

import (
	"context"
	"testing"
	"testing/synctest"
)

// TestBreakerInFlightNeverNegative: the breaker's in-flight count never
// reads below zero, even when the worker runs and finishes a task while
// its submitter is paused right after the shard's unlock that made the
// task visible.
func TestBreakerInFlightNeverNegative(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hook, arm, reached, resume := pauseAt(hookAccepted)
		p := mustNew[int](t, WithWorkers(1, 1), WithMemoryBudget(1<<50), withSchedHook(hook))
		gate := make(chan struct{})
		if err := p.Submit(context.Background(), 1, func(context.Context) error { <-gate; return nil }); err != nil {
			t.Fatal(err)
		}
		synctest.Wait() // the worker holds group 1, in its first task
		arm()
		submitted := make(chan error, 1)
		go func() { submitted <- p.Submit(context.Background(), 1, func(context.Context) error { return nil }) }()
		<-reached
		// The holder finishes the first task, takes the second, runs it,
		// and releases both tasks' reservation.
		close(gate)
		synctest.Wait()
		if s := p.Snapshot(); s.Completed != 2 {
			t.Fatalf("completed %d, want 2", s.Completed)
		}
		if n := p.c.inFlight.Load(); n < 0 {
			t.Errorf("in-flight count %d with every accepted task finished; want 0", n)
		}
		resume()
		if err := <-submitted; err != nil {
			t.Fatal(err)
		}
		if n := p.c.inFlight.Load(); n != 0 {
			t.Errorf("in-flight count %d after the submission returned; want 0", n)
		}
		if err := p.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}
