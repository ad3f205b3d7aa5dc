package pool

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// TestNilCallbacksAndMismatchedOptionsRefused: the options that
// docs/SEMANTICS.md §8 names besides TestBadInput's table get an error
// matching ErrInvalidOption from New or NewBatcher, never a pool that
// panics later: nil callbacks, and callbacks or bounds of another kind of
// pool or another group type.
func TestNilCallbacksAndMismatchedOptionsRefused(t *testing.T) {
	newPool := func(opts ...Option) error {
		p, err := New[int](opts...)
		if err == nil {
			p.Close(context.Background())
		}
		return err
	}
	newBatcher := func(opts ...Option) error {
		b, err := NewBatcher(func(context.Context, int, []string) error { return nil }, opts...)
		if err == nil {
			b.Close(context.Background())
		}
		return err
	}
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"WithPanicHandler(nil)", newPool(WithPanicHandler(nil))},
		{"WithClock(nil)", newPool(WithClock(nil))},
		{"WithTimings(nil)", newPool(WithTimings(nil))},
		{"WithDeadLetterHandler(nil)", newPool(WithDeadLetterHandler[int](nil))},
		{"WithDeadLetterHandler of another group type", newPool(WithDeadLetterHandler(func(DeadLetter[string]) {}))},
		{"WithBatchDeadLetterHandler given to New", newPool(WithBatchDeadLetterHandler(func(BatchDeadLetter[int, string]) {}))},
		{"WithDeadLetterHandler given to NewBatcher", newBatcher(WithDeadLetterHandler(func(DeadLetter[int]) {}))},
		{"WithBatchDeadLetterHandler(nil)", newBatcher(WithBatchDeadLetterHandler[int, string](nil))},
		{"WithBatchDeadLetterHandler of another message type", newBatcher(WithBatchDeadLetterHandler(func(BatchDeadLetter[int, []byte]) {}))},
		{"WithSlowTask(0)", newPool(WithSlowTask[int](0, nil))},
		{"WithSlowTask of another group type", newPool(WithSlowTask(time.Second, func(SlowTask[string]) {}))},
		{"WithMaxBatch given to New", newPool(WithMaxBatch(4))},
		{"WithBatchSize given to NewBatcher", newBatcher(WithBatchSize(4))},
		{"WithMaxBatch(0)", newBatcher(WithMaxBatch(0))},
		{"WithScaling out of range", newPool(WithScaling(ScalingPolicy{}))},
	} {
		if !errors.Is(tc.err, ErrInvalidOption) {
			t.Errorf("%s: got %v, want an error matching ErrInvalidOption", tc.name, tc.err)
		}
	}
}

// TestUntakenLettersLoggedAtMostOnceASecond: letters nobody takes are each
// counted, but logged at most one line a second, with the count so far
// (docs/SEMANTICS.md §2): ten letters whose handler panics within one
// instant give one line, an eleventh 1.5 s later a second line that says
// 11.
func TestUntakenLettersLoggedAtMostOnceASecond(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		logs := captureLog(t)
		p := mustNew[int](t, WithDeadLetterHandler(func(DeadLetter[int]) { panic("handler fails") }))
		fail := func(context.Context) error { return Permanent(errors.New("bad")) }
		for g := range 10 {
			if err := p.Submit(context.Background(), g, fail); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		if n := p.Snapshot().DeadLettersUntaken; n != 10 {
			t.Fatalf("untaken %d, want 10", n)
		}
		if lines := strings.Count(logs.String(), "dead letter not taken"); lines != 1 {
			t.Fatalf("%d log lines for 10 untaken letters within one instant, want 1:\n%s", lines, logs.String())
		}
		time.Sleep(1500 * time.Millisecond)
		if err := p.Submit(context.Background(), 10, fail); err != nil {
			t.Fatal(err)
		}
		if err := p.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		out := logs.String()
		if lines := strings.Count(out, "dead letter not taken"); lines != 2 || !strings.Contains(out, "untaken=11") {
			t.Fatalf("%d log lines after 1.5 s more, want 2, the second with untaken=11:\n%s", lines, out)
		}
	})
}

// TestSecondCloseWaitsForTheFirst: a second Close waits for the first and
// returns nil once it has finished, or its own context's error if that
// ends first, leaving the first Close to go on (docs/SEMANTICS.md §4).
func TestSecondCloseWaitsForTheFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := mustNew[int](t)
		release := make(chan struct{})
		if err := p.Submit(context.Background(), 1, func(context.Context) error { <-release; return nil }); err != nil {
			t.Fatal(err)
		}
		first := make(chan error, 1)
		go func() { first <- p.Close(context.Background()) }()
		synctest.Wait()

		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		defer cancel()
		if err := p.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("second Close whose ctx ends while the first drains: %v, want context.DeadlineExceeded", err)
		}
		select {
		case err := <-first:
			t.Fatalf("the first Close returned (%v) while its task still ran", err)
		default:
		}

		second := make(chan error, 1)
		go func() { second <- p.Close(context.Background()) }()
		synctest.Wait()
		select {
		case err := <-second:
			t.Fatalf("a second Close returned (%v) before the first finished", err)
		default:
		}
		close(release)
		if err := <-first; err != nil {
			t.Fatalf("first Close: %v", err)
		}
		if err := <-second; err != nil {
			t.Fatalf("second Close after the first finished: %v, want nil", err)
		}
		if s := p.Snapshot(); s.Completed != 1 || !s.Closed {
			t.Fatalf("completed %d, closed %v; want 1 and true", s.Completed, s.Closed)
		}
	})
}

type plainCtxKey struct{}

// TestContextWithoutDoneRunsAsIs: a task submitted with a context that has
// no Done channel (context.Background, or values over it) runs with that
// very context, unwrapped; one with a Done channel runs with a copy that
// keeps its values but not its cancellation (docs/SEMANTICS.md §9).
func TestContextWithoutDoneRunsAsIs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := mustNew[int](t)
		plain := context.WithValue(context.Background(), plainCtxKey{}, "v")
		cancelable, cancel := context.WithCancel(plain)
		defer cancel()
		got := make(chan context.Context, 3)
		for _, ctx := range []context.Context{context.Background(), plain, cancelable} {
			if err := p.Submit(ctx, 1, func(ctx context.Context) error { got <- ctx; return nil }); err != nil {
				t.Fatal(err)
			}
		}
		closePool(t, p)
		if c := <-got; c != context.Background() {
			t.Errorf("context.Background(): the task got %v", c)
		}
		if c := <-got; c != plain {
			t.Errorf("a context of values without Done: the task got %v, want it as submitted", c)
		}
		if c := <-got; c == cancelable || c.Done() == cancelable.Done() || c.Value(plainCtxKey{}) != "v" {
			t.Errorf("a cancelable context: the task got %v, want a copy without its cancellation, with its values", c)
		}
	})
}

// TestSnapshotBalancesWithARunningTask: Queued counts running tasks too, so
// a pool that has settled with a task still running, first of its
// worker's batch, balances as Submitted == Completed + DeadLetters.Total() +
// Queued, with nothing added for the running task (docs/SEMANTICS.md §2,
// Stats). The earlier tasks settle first (a synctest sleep returns once
// every worker is parked): tasks a worker finished in earlier turns of the
// batch that is still running are counted when that batch ends.
func TestSnapshotBalancesWithARunningTask(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := mustNew[int](t, WithWorkers(1, 1))
		gate := make(chan struct{})
		noop := func(context.Context) error { return nil }
		submit := func(g int, task Task) {
			t.Helper()
			if err := p.Submit(context.Background(), g, task); err != nil {
				t.Fatal(err)
			}
		}
		submit(2, func(context.Context) error { return Permanent(errors.New("bad")) })
		submit(2, noop)
		time.Sleep(10 * time.Millisecond) // group 2's turn ends: its counts are published
		for i := range 5 {
			submit(i%2, noop)
		}
		time.Sleep(10 * time.Millisecond) // they run; the worker parks
		submit(0, func(context.Context) error { <-gate; return nil })
		submit(0, noop)
		submit(1, noop)
		time.Sleep(100 * time.Millisecond)
		s := p.Snapshot()
		if s.Workers.Busy != 1 {
			t.Fatalf("%d workers busy, want the one running the blocked task", s.Workers.Busy)
		}
		if s.Submitted != s.Completed+s.DeadLetters.Total()+uint64(s.Queued) || s.DeadLetters.Total() != 1 {
			t.Fatalf("submitted %d, completed %d, dead letters %d, queued %d: want submitted = completed + dead letters + queued, 1 letter",
				s.Submitted, s.Completed, s.DeadLetters.Total(), s.Queued)
		}
		close(gate)
		closePool(t, p)
		<-p.DeadLetters()
		s = p.Snapshot()
		if s.Submitted != 10 || s.Completed != 9 || s.DeadLetters.Total() != 1 || s.Queued != 0 {
			t.Fatalf("after Close: submitted %d, completed %d, dead letters %d, queued %d; want 10, 9, 1, 0",
				s.Submitted, s.Completed, s.DeadLetters.Total(), s.Queued)
		}
	})
}
