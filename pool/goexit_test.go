package pool

import (
	"context"
	"errors"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestJitterAtLargestMax: a policy whose Max is the largest Duration
// (which validate accepts) with jitter on must draw a delay, not panic in
// rand.Int64N (int64(Max)+1 wraps negative), which made a retryable
// failure a Panicked letter.
func TestJitterAtLargestMax(t *testing.T) {
	rp := RetryPolicy{MaxAttempts: 100, Base: math.MaxInt64, Max: math.MaxInt64}
	if err := rp.validate(); err != nil {
		t.Fatal(err)
	}
	_, retry, d, pv, ok := rp.judge(errors.New("transient"), 1)
	if !ok || !retry || d < 0 {
		t.Fatalf("judge: retry %v delay %v ok %v panic %v; want a retry with a delay >= 0", retry, d, ok, pv)
	}
	synctest.Test(t, func(t *testing.T) {
		p := mustNew[int](t, WithRetry(RetryPolicy{MaxAttempts: 2, Max: math.MaxInt64, Multiplier: math.Inf(1)}))
		_, letters := collect(p)
		runs := 0
		if err := p.Submit(context.Background(), 1, func(context.Context) error {
			runs++
			return errors.New("transient")
		}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = p.Close(ctx)
		for _, dl := range letters() {
			if dl.Reason == ReasonPanicked {
				t.Fatalf("letter %v after %d attempts: %v", dl.Reason, dl.Attempts, dl.Err)
			}
		}
	})
}

// TestGoexitThenDeferredPanic: a task that calls runtime.Goexit and
// whose deferred function then panics (a test's t.FailNow with a cleanup
// that panics). endCall's recover stops that panic, but the goroutine goes
// on with the Goexit: call never returns to runTurn. The task must still
// be one Panicked letter, its group must go on, a worker must take the
// dying one's place, and Close must return. (Real time, not a synctest
// bubble: with the bug the monitor ticks for ever beside the lost worker,
// so a bubble would never end; the test fails at its bound instead, and
// goleak reports the pool it had to leave.)
func TestGoexitThenDeferredPanic(t *testing.T) {
	var handled atomic.Int32
	p := mustNew[int](t, WithWorkers(1, 1), WithPanicHandler(func(any, []byte) { handled.Add(1) }))
	dls := dieThenNext(t, p, func(context.Context) error {
		defer panic("cleanup panicked")
		runtime.Goexit()
		return nil
	})
	if len(dls) != 1 || dls[0].Reason != ReasonPanicked || dls[0].Attempts != 1 || dls[0].Panic != "cleanup panicked" {
		t.Fatalf("letters %+v; want one Panicked letter with the panic's value", dls)
	}
	s := p.Snapshot()
	if s.Submitted != 2 || s.Completed != 1 || s.Panicked != 1 || s.DeadLetters.Panicked != 1 || s.Queued != 0 || handled.Load() != 1 {
		t.Fatalf("submitted %d completed %d panicked %d letters %d queued %d handler %d", s.Submitted, s.Completed, s.Panicked, s.DeadLetters.Panicked, s.Queued, handled.Load())
	}
}

// TestBatcherGoexitThenDeferredPanic is TestGoexitThenDeferredPanic
// for a Batcher's call: one Panicked letter holding the call's messages
// as submitted, the group's next message handled, Close returns.
func TestBatcherGoexitThenDeferredPanic(t *testing.T) {
	var handled atomic.Int32
	ran := make(chan struct{})
	b := mustBatcher(t, func(_ context.Context, _ int, msgs []string) error {
		if msgs[0] == "next" {
			close(ran)
			return nil
		}
		msgs[0] = "overwritten"
		defer panic("cleanup panicked")
		runtime.Goexit()
		return nil
	}, WithWorkers(1, 1), WithMaxBatch(1), WithPanicHandler(func(any, []byte) { handled.Add(1) }))
	letters := batchDieThenNext(t, b, "dies", ran)
	if len(letters) != 1 || letters[0].Reason != ReasonPanicked || letters[0].Attempts != 1 ||
		letters[0].Panic != "cleanup panicked" || len(letters[0].Msgs) != 1 || letters[0].Msgs[0] != "dies" {
		t.Fatalf("letters %+v; want one Panicked letter of [dies] with the panic's value", letters)
	}
	s := b.Snapshot()
	if s.Submitted != 2 || s.Completed != 1 || s.Panicked != 1 || s.DeadLetters.Panicked != 1 || s.Queued != 0 || handled.Load() != 1 {
		t.Fatalf("submitted %d completed %d panicked %d letters %d queued %d handler %d", s.Submitted, s.Completed, s.Panicked, s.DeadLetters.Panicked, s.Queued, handled.Load())
	}
}

// TestJudgeGoexit: RetryPolicy.Retryable or Backoff (a test's
// t.FailNow there) calls runtime.Goexit while the worker judges a failed
// attempt. As for a Goexit in the task, the task (a Batcher's call) must
// be one Panicked letter matching ErrGoexit, the group must go on, a
// worker must take the dying one's place, and Close must return.
func TestJudgeGoexit(t *testing.T) {
	policies := map[string]RetryPolicy{
		"Retryable": {MaxAttempts: 3, Retryable: func(error) bool { runtime.Goexit(); return true }},
		"Backoff":   {MaxAttempts: 3, Backoff: func(int) time.Duration { runtime.Goexit(); return 0 }},
	}
	for name, rp := range policies {
		t.Run("pool/"+name, func(t *testing.T) {
			p := mustNew[int](t, WithWorkers(1, 1), WithRetry(rp))
			dls := dieThenNext(t, p, func(context.Context) error { return errors.New("transient") })
			if len(dls) != 1 || dls[0].Reason != ReasonPanicked || dls[0].Attempts != 1 || !errors.Is(dls[0].Err, ErrGoexit) {
				t.Fatalf("letters %+v; want one Panicked letter matching ErrGoexit", dls)
			}
			if s := p.Snapshot(); s.Submitted != 2 || s.Completed != 1 || s.DeadLetters.Panicked != 1 || s.Queued != 0 {
				t.Fatalf("submitted %d completed %d letters %d queued %d", s.Submitted, s.Completed, s.DeadLetters.Panicked, s.Queued)
			}
		})
		t.Run("batcher/"+name, func(t *testing.T) {
			ran := make(chan struct{})
			b := mustBatcher(t, func(_ context.Context, _ int, msgs []string) error {
				if msgs[0] == "next" {
					close(ran)
					return nil
				}
				return errors.New("transient")
			}, WithWorkers(1, 1), WithMaxBatch(1), WithRetry(rp))
			letters := batchDieThenNext(t, b, "fails", ran)
			if len(letters) != 1 || letters[0].Reason != ReasonPanicked || letters[0].Attempts != 1 ||
				!errors.Is(letters[0].Err, ErrGoexit) || len(letters[0].Msgs) != 1 || letters[0].Msgs[0] != "fails" {
				t.Fatalf("letters %+v; want one Panicked letter of [fails] matching ErrGoexit", letters)
			}
		})
	}
}

// TestDelayCostDoesNotGrowWithAttempts: RetryPolicy.delay looped
// once per attempt made while the bound stayed under Max, so with a
// Multiplier of 1 (a constant delay, "retry for ever") the worker spent
// O(attempts) judging each retry: a task that had failed 2^62 times
// would never be judged. It must cost the same at any attempt.
func TestDelayCostDoesNotGrowWithAttempts(t *testing.T) {
	for _, m := range []float64{1, 1 + 1e-12} {
		rp := RetryPolicy{MaxAttempts: math.MaxInt, Base: time.Millisecond, Multiplier: m, NoJitter: true}
		if err := rp.validate(); err != nil {
			t.Fatal(err)
		}
		got := make(chan time.Duration, 1)
		go func() { got <- rp.delay(math.MaxInt) }()
		select {
		case d := <-got:
			if d < time.Millisecond || d > rp.Max {
				t.Fatalf("Multiplier %v: delay %v, want within [Base, Max]", m, d)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("Multiplier %v: delay after MaxInt attempts has not returned in 5 s", m)
		}
	}
}

// dieThenNext submits die and then a task that records it ran to group 1
// of p, waits up to 10 s for the second (the group must go on after die),
// closes p within 10 s and returns the letters.
func dieThenNext(t *testing.T, p *Pool[int], die Task) []DeadLetter[int] {
	t.Helper()
	_, letters := collect(p)
	if err := p.Submit(context.Background(), 1, die); err != nil {
		t.Fatal(err)
	}
	ran := make(chan struct{})
	if err := p.Submit(context.Background(), 1, func(context.Context) error { close(ran); return nil }); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ran:
	case <-time.After(10 * time.Second):
		t.Fatalf("the group's next task has not run after 10 s: %+v, queued %d", p.Snapshot().Workers, p.Snapshot().Queued)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return letters()
}

// batchDieThenNext submits the message die and then "next" to group 1 of
// b, whose fn closes ran on "next"; it waits up to 10 s for that, closes b
// within 10 s and returns the letters.
func batchDieThenNext(t *testing.T, b *Batcher[int, string], die string, ran <-chan struct{}) []BatchDeadLetter[int, string] {
	t.Helper()
	letters := collectBatch(b)
	for _, m := range []string{die, "next"} {
		if err := b.Submit(context.Background(), 1, m); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-ran:
	case <-time.After(10 * time.Second):
		t.Fatalf("the group's next message has not been handled after 10 s: %+v, queued %d", b.Snapshot().Workers, b.Snapshot().Queued)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return letters()
}

// TestGoexitThenDeferredPanicClearsLabels: with WithProfilerLabels, a task
// (a Batcher's call) that runs runtime.Goexit while a deferred call panics
// never returns, and its worker letters it on its way out (unwound). The
// attempt must still end for the observer before its letter and the panic
// handler: else the handler's goroutine, which inherits its creator's
// labels, runs under the shard's label.
func TestGoexitThenDeferredPanicClearsLabels(t *testing.T) {
	die := func() {
		defer panic("cleanup panicked")
		runtime.Goexit()
	}
	for _, face := range []string{"pool", "batcher"} {
		t.Run(face, func(t *testing.T) {
			var mu sync.Mutex
			var handlerLabels []string
			opts := []Option{WithWorkers(1, 1), WithProfilerLabels(), WithPanicHandler(func(any, []byte) {
				l := labelProbe(t)
				mu.Lock()
				handlerLabels = append(handlerLabels, l)
				mu.Unlock()
			})}
			if face == "pool" {
				p := mustNew[int](t, opts...)
				_ = dieThenNext(t, p, func(context.Context) error { die(); return nil })
			} else {
				ran := make(chan struct{})
				b := mustBatcher(t, func(_ context.Context, _ int, msgs []string) error {
					if msgs[0] == "next" {
						close(ran)
						return nil
					}
					die()
					return nil
				}, append(opts, WithMaxBatch(1))...)
				_ = batchDieThenNext(t, b, "dies", ran)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(handlerLabels) != 1 || handlerLabels[0] != "" {
				t.Fatalf("panic handler ran with labels %q; want once, with none", handlerLabels)
			}
		})
	}
}
