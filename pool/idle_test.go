package pool

import (
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestIdleTimerArmedOncePerSpell: a worker that parks after every task
// sets its idle timer at its first park and not again while the timer is
// pending: a hundred park and wake cycles within one idle timeout arm it
// once (see worker.timer).
func TestIdleTimerArmedOncePerSpell(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var arms atomic.Int64
		hook := func(pt hookPoint) {
			if pt == hookArm {
				arms.Add(1)
			}
		}
		p := mustNew[int](t, WithWorkers(0, 1), WithIdleTimeout(time.Second), withSchedHook(hook))
		const cycles = 100
		for i := range cycles {
			done := make(chan struct{})
			if err := p.Submit(context.Background(), i, func(context.Context) error { close(done); return nil }); err != nil {
				t.Fatal(err)
			}
			<-done
			synctest.Wait() // the worker has parked
			if s := p.Snapshot().Workers; s.Running != 1 || s.Idle != 1 {
				t.Fatalf("cycle %d: running %d, idle %d, want one parked worker", i, s.Running, s.Idle)
			}
		}
		if n := arms.Load(); n != 1 {
			t.Fatalf("%d parks armed the idle timer %d times, want once", cycles, n)
		}
		if err := p.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}

// TestIdleTimeoutFromLastPark: a worker woken again and again before its
// idle timeout never exits, though the timer set at its first park fires
// meanwhile; it exits one idle timeout after its last park, not before.
func TestIdleTimeoutFromLastPark(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const idle = time.Second
		p := mustNew[int](t, WithWorkers(0, 1), WithIdleTimeout(idle))
		run := func(i int) {
			done := make(chan struct{})
			if err := p.Submit(context.Background(), i, func(context.Context) error { close(done); return nil }); err != nil {
				t.Fatal(err)
			}
			<-done
			synctest.Wait() // parked
		}
		running := func() int { return p.Snapshot().Workers.Running }
		for i := range 10 {
			run(i)
			time.Sleep(idle * 6 / 10)
			synctest.Wait()
			if r := running(); r != 1 {
				t.Fatalf("after park %d and %v idle: %d workers, want 1", i, idle*6/10, r)
			}
		}
		run(10)
		time.Sleep(idle - time.Millisecond)
		synctest.Wait()
		if r := running(); r != 1 {
			t.Fatalf("%v after the last park: %d workers, want 1", idle-time.Millisecond, r)
		}
		time.Sleep(2 * time.Millisecond)
		synctest.Wait()
		if r := running(); r != 0 {
			t.Fatalf("%v after the last park: %d workers, want 0", idle+time.Millisecond, r)
		}
		if err := p.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}

// TestIdleTimerShortSpells: with a scaler and more workers than its
// target, a worker's idle spell is aboveTargetIdle; a worker woken every
// millisecond does not reset its timer at each park (the pending one
// fires before the new spell ends and is set for the rest), and it exits
// aboveTargetIdle after its last park.
func TestIdleTimerShortSpells(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var c control
		if err := c.init(16, 1, 8, time.Second, sinceStart()); err != nil {
			t.Fatal(err)
		}
		var arms atomic.Int64
		c.hook = func(pt hookPoint) {
			if pt == hookArm {
				arms.Add(1)
			}
		}
		c.scaler.Store(&autoscaler{})
		c.target.Store(1)
		c.running.Store(3) // above the target: spells of aboveTargetIdle
		w := &worker{wake: make(chan struct{}, 1)}
		const parks = 9 // all within one spell of the first park
		for i := range parks {
			done := parkAsync(&c, w)
			time.Sleep(time.Millisecond)
			c.wakeAll()
			if !<-done {
				t.Fatalf("park %d: the worker exited after %v idle, want it woken", i, time.Millisecond)
			}
		}
		last := time.Now()
		if <-parkAsync(&c, w) {
			t.Fatal("a worker above the target stayed after its idle spell, want it to exit")
		}
		if idle := time.Since(last); idle != aboveTargetIdle {
			t.Fatalf("the worker exited after %v idle, want %v", idle, aboveTargetIdle)
		}
		// The first park's, and the firing that set it for the rest
		// of the last spell.
		if n := arms.Load(); n != 2 {
			t.Fatalf("%d parks armed the idle timer %d times, want 2", parks+1, n)
		}
	})
}

// parkAsync parks w in a goroutine of the synctest bubble and returns once
// every goroutine of the bubble is blocked (w parked, or gone); the
// channel carries park's result.
func parkAsync(c *control, w *worker) <-chan bool {
	done := make(chan bool, 1)
	go func() { done <- c.park(w) }()
	synctest.Wait()
	return done
}

// sinceStart returns a pool clock for a control of a test's own: the time
// since the call (in a synctest bubble, the bubble's). Parks time their
// idle spells on it.
func sinceStart() func() int64 {
	start := time.Now()
	return func() int64 { return int64(time.Since(start)) }
}
