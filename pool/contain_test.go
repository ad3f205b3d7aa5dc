package pool

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestCallbackGoexit: a callback of the application's that calls
// runtime.Goexit (t.Fatal in a test's handler does) ends only itself: the
// group's next task runs, the worker count holds, and Close returns.
func TestCallbackGoexit(t *testing.T) {
	for _, tc := range []struct {
		name  string
		opt   func(goexit func()) Option
		first Task
	}{
		{"dead-letter handler", func(goexit func()) Option {
			return WithDeadLetterHandler(func(DeadLetter[int]) { goexit() })
		}, func(context.Context) error { return Permanent(errors.New("no")) }},
		{"panic handler", func(goexit func()) Option {
			return WithPanicHandler(func(any, []byte) { goexit() })
		}, func(context.Context) error { panic("boom") }},
		{"slow-task callback", func(goexit func()) Option {
			return WithSlowTask(time.Millisecond, func(SlowTask[int]) { goexit() })
		}, func(context.Context) error { time.Sleep(10 * time.Millisecond); return nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var calls atomic.Int64
				goexit := func() {
					calls.Add(1)
					runtime.Goexit()
				}
				p := mustNew[int](t, WithWorkers(1, 1), tc.opt(goexit))
				_, letters := collect(p)
				if err := p.Submit(context.Background(), 1, tc.first); err != nil {
					t.Fatal(err)
				}
				var ran atomic.Bool
				if err := p.Submit(context.Background(), 1, func(context.Context) error { ran.Store(true); return nil }); err != nil {
					t.Fatal(err)
				}
				time.Sleep(time.Second)
				synctest.Wait()
				if s := p.Snapshot(); calls.Load() != 1 || !ran.Load() || s.Workers.Running != 1 {
					t.Fatalf("callback called %d times, next task ran %v, %d workers; want 1, true, 1",
						calls.Load(), ran.Load(), s.Workers.Running)
				}
				if err := p.Close(context.Background()); err != nil {
					t.Fatal(err)
				}
				letters()
			})
		})
	}
}

// nilPtrErr is an error type with pointer receivers, like many wrappers;
// a nil *nilPtrErr returned as an error is a non-nil error whose Unwrap
// dereferences nil.
type nilPtrErr struct{ err error }

func (e *nilPtrErr) Error() string { return "wrapped: " + e.err.Error() }
func (e *nilPtrErr) Unwrap() error { return e.err }

// TestErrorMethodsPanic: judging a failed attempt calls the application's
// code (the error's Unwrap through errors.Is, RetryPolicy.Retryable and
// Backoff); where that panics, the task is a Panicked letter and the
// panic handler hears of it, for a Pool and a Batcher alike, and the
// group goes on.
func TestErrorMethodsPanic(t *testing.T) {
	var typedNil *nilPtrErr
	for _, tc := range []struct {
		name   string
		policy RetryPolicy
		err    error
	}{
		{"typed nil error", RetryPolicy{MaxAttempts: 3}, typedNil},
		{"Retryable panics", RetryPolicy{MaxAttempts: 3, Retryable: func(error) bool { panic("retryable") }}, errors.New("x")},
		{"Backoff panics", RetryPolicy{MaxAttempts: 3, Backoff: func(int) time.Duration { panic("backoff") }}, errors.New("x")},
	} {
		t.Run(tc.name+"/pool", func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var handled atomic.Int64
				p := mustNew[int](t, WithWorkers(1, 1), WithRetry(tc.policy),
					WithPanicHandler(func(any, []byte) { handled.Add(1) }))
				_, letters := collect(p)
				_ = p.Submit(context.Background(), 1, func(context.Context) error { return tc.err })
				var ran atomic.Bool
				_ = p.Submit(context.Background(), 1, func(context.Context) error { ran.Store(true); return nil })
				if err := p.Close(context.Background()); err != nil {
					t.Fatal(err)
				}
				dls := letters()
				var pe *PanicError
				if len(dls) != 1 || dls[0].Reason != ReasonPanicked || !errors.As(dls[0].Err, &pe) || !ran.Load() || handled.Load() != 1 {
					t.Fatalf("letters %d (%v), next task ran %v, panic handler %d; want one Panicked letter, true, 1",
						len(dls), dls, ran.Load(), handled.Load())
				}
			})
		})
		t.Run(tc.name+"/batcher", func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var calls atomic.Int64
				fn := func(_ context.Context, _ int, msgs []int) error {
					if calls.Add(1) == 1 {
						return tc.err
					}
					return nil
				}
				b := mustBatcher(t, fn, WithWorkers(1, 1), WithRetry(tc.policy))
				letters := collectBatch(b)
				_ = b.Submit(context.Background(), 1, 1)
				synctest.Wait()
				_ = b.Submit(context.Background(), 1, 2)
				if err := b.Close(context.Background()); err != nil {
					t.Fatal(err)
				}
				dls := letters()
				if len(dls) != 1 || dls[0].Reason != ReasonPanicked || len(dls[0].Msgs) != 1 || dls[0].Msgs[0] != 1 || calls.Load() != 2 {
					t.Fatalf("letters %d, calls %d; want one Panicked letter of [1], then a call of [2]", len(dls), calls.Load())
				}
			})
		})
	}
}

// TestRetryPolicyBounds: a NaN multiplier is refused; a Max near the
// largest Duration never yields a negative delay.
func TestRetryPolicyBounds(t *testing.T) {
	if _, err := New[int](WithRetry(RetryPolicy{MaxAttempts: 3, Multiplier: math.NaN()})); !errors.Is(err, ErrInvalidOption) {
		t.Fatalf("Multiplier NaN: %v, want ErrInvalidOption", err)
	}
	rp := RetryPolicy{MaxAttempts: 100, Max: math.MaxInt64, NoJitter: true}
	if err := rp.validate(); err != nil {
		t.Fatal(err)
	}
	for attempts := 1; attempts < 100; attempts++ {
		if d := rp.delay(attempts); d < 0 {
			t.Fatalf("delay after %d attempts %v, want >= 0", attempts, d)
		}
	}
	if d := rp.delay(99); d != math.MaxInt64 {
		t.Fatalf("delay after 99 attempts %v, want Max", d)
	}
}

// TestRetryPolicyDefaultsFitTheOtherBound: a policy that gives only Max
// below the default Base, or only Base above the default Max, is valid: the
// default of the bound left out follows the one given. Both given out of
// order are refused.
func TestRetryPolicyDefaultsFitTheOtherBound(t *testing.T) {
	rp := RetryPolicy{MaxAttempts: 5, Max: time.Millisecond, NoJitter: true}
	if err := rp.validate(); err != nil {
		t.Fatalf("Max 1ms alone: %v", err)
	}
	for n := 1; n < 5; n++ {
		if d := rp.delay(n); d != time.Millisecond {
			t.Errorf("Max 1ms alone: delay after %d attempts %v, want 1ms", n, d)
		}
	}
	rp = RetryPolicy{MaxAttempts: 5, Base: 20 * time.Second, NoJitter: true}
	if err := rp.validate(); err != nil {
		t.Fatalf("Base 20s alone: %v", err)
	}
	if d := rp.delay(3); d != 20*time.Second {
		t.Errorf("Base 20s alone: delay after 3 attempts %v, want 20s", d)
	}
	if _, err := New[int](WithRetry(RetryPolicy{MaxAttempts: 2, Base: time.Second, Max: time.Millisecond})); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("Max below Base: %v, want ErrInvalidOption", err)
	}
}

// panicNilChild names the test a child process of TestPanicNil runs.
const panicNilChild = "SHOAL_PANICNIL_CHILD"

// inPanicNilChild reports whether t runs in a child process with
// GODEBUG=panicnil=1; if not, it runs t alone in such a child, and fails
// t if the child fails.
func inPanicNilChild(t *testing.T) bool {
	t.Helper()
	if os.Getenv(panicNilChild) != "" {
		return true
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.count=1", "-test.timeout=60s")
	cmd.Env = append(os.Environ(), panicNilChild+"=1", "GODEBUG=panicnil=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child with GODEBUG=panicnil=1: %v\n%s", err, out)
	}
	return false
}

// TestPanicNil: under GODEBUG=panicnil=1 (the default where the main
// module says go < 1.21) recover returns nil for panic(nil), as it does
// while runtime.Goexit unwinds. The pool letters such a task as it does a
// Goexit (ErrGoexit), once, and the worker goes on: the group's later
// tasks run and the counters balance. Run in a child process with that
// setting.
func TestPanicNil(t *testing.T) {
	if !inPanicNilChild(t) {
		return
	}
	for _, face := range []string{"pool", "batcher"} {
		t.Run(face, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				gate := make(chan struct{})
				var ran [2]atomic.Bool
				var s Stats
				var letters int
				if face == "pool" {
					p := mustNew[int](t, WithWorkers(1, 1))
					_, all := collect(p)
					// Holds the worker, so that the next three run in one turn.
					_ = p.Submit(context.Background(), 0, func(context.Context) error { <-gate; return nil })
					synctest.Wait()
					_ = p.Submit(context.Background(), 1, func(context.Context) error { panic(nil) })
					_ = p.Submit(context.Background(), 1, func(context.Context) error { ran[0].Store(true); return nil })
					_ = p.Submit(context.Background(), 1, func(context.Context) error { ran[1].Store(true); return nil })
					close(gate)
					synctest.Wait()
					s = p.Snapshot()
					if err := p.Close(context.Background()); err != nil {
						t.Fatal(err)
					}
					letters = len(all())
				} else {
					fn := func(_ context.Context, g int, msgs []int) error {
						switch {
						case g == 0:
							<-gate
						case msgs[0] == 1:
							panic(nil)
						default:
							for _, m := range msgs {
								ran[m-2].Store(true)
							}
						}
						return nil
					}
					b := mustBatcher(t, fn, WithWorkers(1, 1), WithMaxBatch(1))
					all := collectBatch(b)
					_ = b.Submit(context.Background(), 0, 0)
					synctest.Wait()
					for m := 1; m <= 3; m++ {
						_ = b.Submit(context.Background(), 1, m)
					}
					close(gate)
					synctest.Wait()
					s = b.Snapshot()
					if err := b.Close(context.Background()); err != nil {
						t.Fatal(err)
					}
					letters = len(all())
				}
				if !ran[0].Load() || !ran[1].Load() || letters != 1 {
					t.Fatalf("later tasks ran %v %v, letters %d; want both, 1", ran[0].Load(), ran[1].Load(), letters)
				}
				if s.Submitted != 4 || s.Completed != 3 || s.DeadLetters.Total() != 1 || s.Queued != 0 {
					t.Fatalf("submitted %d, completed %d, letters %d, queued %d; want 4, 3, 1, 0",
						s.Submitted, s.Completed, s.DeadLetters.Total(), s.Queued)
				}
			})
		})
	}
}

// TestPanicNilObserved: under GODEBUG=panicnil=1, the attempt of a task
// (a Batcher's call) that panics with nil ends for the observer as any
// other: the profiler label it set is cleared, not kept by the worker
// between turns, and a slow attempt is counted. Run in a child process
// with that setting.
func TestPanicNilObserved(t *testing.T) {
	if !inPanicNilChild(t) {
		return
	}
	for _, face := range []string{"pool", "batcher"} {
		t.Run(face, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				opts := []Option{WithWorkers(1, 1), WithProfilerLabels(), WithSlowTask[int](time.Second, nil)}
				var s Stats
				var labels string
				var letters int
				slowNil := func() {
					time.Sleep(2 * time.Second)
					panic(nil)
				}
				if face == "pool" {
					p := mustNew[int](t, opts...)
					_, all := collect(p)
					_ = p.Submit(context.Background(), 1, func(context.Context) error { slowNil(); return nil })
					time.Sleep(3 * time.Second) // past the attempt
					synctest.Wait()
					s, labels = p.Snapshot(), goroutineLabels(t)
					if err := p.Close(context.Background()); err != nil {
						t.Fatal(err)
					}
					letters = len(all())
				} else {
					b := mustBatcher(t, func(context.Context, int, []int) error { slowNil(); return nil }, opts...)
					all := collectBatch(b)
					_ = b.Submit(context.Background(), 1, 1)
					time.Sleep(3 * time.Second) // past the call
					synctest.Wait()
					s, labels = b.Snapshot(), goroutineLabels(t)
					if err := b.Close(context.Background()); err != nil {
						t.Fatal(err)
					}
					letters = len(all())
				}
				if letters != 1 || s.DeadLetters.Panicked != 1 {
					t.Fatalf("letters %d, panicked %d; want 1, 1", letters, s.DeadLetters.Panicked)
				}
				if strings.Contains(labels, `"shard"`) {
					t.Errorf("a goroutine keeps the shard label after the attempt:\n%s", labels)
				}
				if s.SlowTasks != 1 {
					t.Errorf("slow attempts %d, want 1", s.SlowTasks)
				}
			})
		})
	}
}

// goroutineLabels returns the label lines of the goroutine profile.
func goroutineLabels(t *testing.T) string {
	var buf bytes.Buffer
	if err := pprof.Lookup("goroutine").WriteTo(&buf, 1); err != nil {
		t.Fatal(err)
	}
	var out []string
	for line := range strings.Lines(buf.String()) {
		if strings.HasPrefix(line, "# labels:") {
			out = append(out, line)
		}
	}
	return strings.Join(out, "")
}

// TestPanicNilRunExcludesLetter: under GODEBUG=panicnil=1, the attempt of
// a task (a Batcher's call) that panics with nil at once ends when the
// task stopped, not after its letter went out and the panic handler
// returned: its run time in WithTimings is nil, and WithSlowTask does
// not count it, though the handler takes two seconds. Run in a child
// process with that setting.
func TestPanicNilRunExcludesLetter(t *testing.T) {
	if !inPanicNilChild(t) {
		return
	}
	for _, face := range []string{"pool", "batcher"} {
		t.Run(face, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var tm Timings
				opts := []Option{WithWorkers(1, 1), WithTimings(&tm), WithSlowTask[int](time.Second, nil),
					WithPanicHandler(func(any, []byte) { time.Sleep(2 * time.Second) })}
				var s Stats
				if face == "pool" {
					p := mustNew[int](t, opts...)
					_, _ = collect(p)
					_ = p.Submit(context.Background(), 1, func(context.Context) error { panic(nil) })
					if err := p.Close(context.Background()); err != nil {
						t.Fatal(err)
					}
					s = p.Snapshot()
				} else {
					b := mustBatcher(t, func(context.Context, int, []int) error { panic(nil) }, opts...)
					_ = collectBatch(b)
					_ = b.Submit(context.Background(), 1, 1)
					if err := b.Close(context.Background()); err != nil {
						t.Fatal(err)
					}
					s = b.Snapshot()
				}
				if s.DeadLetters.Panicked != 1 {
					t.Fatalf("panicked letters %d, want 1", s.DeadLetters.Panicked)
				}
				if run := tm.Snapshot().Run; run.Count() != 1 || run.Max() != 0 {
					t.Errorf("Run: count %d, max %v; want 1 attempt of 0s (the handler's 2s are not the task's)", run.Count(), run.Max())
				}
				if s.SlowTasks != 0 {
					t.Errorf("slow attempts %d, want 0: the task stopped at once", s.SlowTasks)
				}
			})
		})
	}
}
