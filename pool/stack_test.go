package pool

import (
	"context"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"
)

// TestTaskRunsOnStartingStack checks that a worker runs a task that blocks
// at once (a time.Sleep, a channel receive) without growing its stack. A
// goroutine starts with 2 KiB, and growing it copies the stack into a new
// one of twice the size: a cost per worker started that a pool of
// thousands of I/O-bound workers pays thousands of times. A task's local
// variable moves when its stack is copied.
//
// A blocking call now and then takes a deeper path inside the runtime (a
// goroutine's first sleep allocates its timer, and an allocation that
// refills the processor's cache goes deep), so a few tasks in a hundred may
// grow their stack; the test allows one in sixteen. Without the room the
// worker's frames leave, every task grows it. The first round only warms
// the runtime's caches (timer heaps, sudogs); the second round's workers
// are new goroutines, each on a new starting stack. The race detector's
// instrumentation makes every frame larger, so the test runs without it.
func TestTaskRunsOnStartingStack(t *testing.T) {
	if raceEnabled {
		t.Skip("frames are larger under the race detector")
	}
	// No collection during the test: it could shrink a stack, which moves
	// it too.
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	for _, kind := range []string{"sleep", "receive"} {
		t.Run(kind, func(t *testing.T) {
			for round := range 2 {
				moved := blockOnNewWorkers(t, kind)
				if round == 1 {
					t.Logf("%d of %d tasks ran on a stack that grew", moved, stackWorkers)
				}
				if round == 1 && moved > stackWorkers/16 {
					t.Errorf("%d of %d tasks ran on a stack that grew when they blocked, want at most %d", moved, stackWorkers, stackWorkers/16)
				}
			}
		})
	}
}

const stackWorkers = 256

// blockOnNewWorkers runs one blocking task on each of stackWorkers new
// workers and returns how many ran on a stack that moved.
func blockOnNewWorkers(t *testing.T, kind string) int32 {
	p := mustNew[int](t, WithWorkers(stackWorkers, stackWorkers))
	release := make(chan struct{})
	var moved atomic.Int32
	var wg sync.WaitGroup
	wg.Add(stackWorkers)
	for g := range stackWorkers {
		err := p.Submit(context.Background(), g, func(context.Context) error {
			defer wg.Done()
			var local byte
			before := uintptr(unsafe.Pointer(&local))
			if kind == "sleep" {
				time.Sleep(time.Nanosecond) // the task's I/O, not a wait
			} else {
				<-release
			}
			if uintptr(unsafe.Pointer(&local)) != before {
				moved.Add(1)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	close(release)
	wg.Wait()
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	return moved.Load()
}
