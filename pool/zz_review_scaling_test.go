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
