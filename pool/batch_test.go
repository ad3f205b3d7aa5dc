package pool

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/shoal-go/shoal/backpressure"
)

// msg is a test message: its group's submission index.
type msg struct {
	group, seq int
}

// recorder is a BatchFunc's log: the calls per group, and a check that
// calls of one group never overlap.
type recorder struct {
	mu      sync.Mutex
	calls   map[int][][]msg
	running map[int]bool
	overlap atomic.Int64
}

func newRecorder() *recorder {
	return &recorder{calls: map[int][][]msg{}, running: map[int]bool{}}
}

// enter records a call's messages (copied: the slice is the Batcher's).
func (r *recorder) enter(group int, msgs []msg) {
	r.mu.Lock()
	if r.running[group] {
		r.overlap.Add(1)
	}
	r.running[group] = true
	r.calls[group] = append(r.calls[group], slices.Clone(msgs))
	r.mu.Unlock()
}

func (r *recorder) leave(group int) {
	r.mu.Lock()
	r.running[group] = false
	r.mu.Unlock()
}

func mustBatcher[M any](t testing.TB, fn BatchFunc[int, M], opts ...Option) *Batcher[int, M] {
	t.Helper()
	b, err := NewBatcher(fn, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// collectBatch reads every dead letter of b until the channel is closed;
// the function it returns waits for that and returns them.
func collectBatch[M any](b *Batcher[int, M]) func() []BatchDeadLetter[int, M] {
	ch := make(chan []BatchDeadLetter[int, M], 1)
	go func() {
		var all []BatchDeadLetter[int, M]
		for dl := range b.DeadLetters() {
			all = append(all, dl)
		}
		ch <- all
	}()
	return func() []BatchDeadLetter[int, M] { return <-ch }
}

// TestBatcherOrderAndConservation: many groups, many submitters; every
// message reaches fn exactly once, each group's messages in Submit order,
// calls of a group never overlap, no call exceeds WithMaxBatch, and the
// counters balance.
func TestBatcherOrderAndConservation(t *testing.T) {
	const groups, perGroup, maxBatch = 500, 200, 16
	rec := newRecorder()
	fn := func(_ context.Context, g int, msgs []msg) error {
		rec.enter(g, msgs)
		if len(msgs) > maxBatch {
			t.Errorf("call of %d messages, bound %d", len(msgs), maxBatch)
		}
		runtime.Gosched() // lets messages pile up behind the call
		rec.leave(g)
		return nil
	}
	b := mustBatcher(t, fn, WithMaxBatch(maxBatch), WithGroupQueueSize(64))
	var wg sync.WaitGroup
	const submitters = 8
	for s := range submitters {
		wg.Go(func() {
			for g := s; g < groups; g += submitters {
				for i := range perGroup {
					if err := b.Submit(context.Background(), g, msg{g, i}); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := rec.overlap.Load(); n != 0 {
		t.Fatalf("%d calls overlapped another call of their group", n)
	}
	var calls, batched int
	for g := range groups {
		next := 0
		for _, c := range rec.calls[g] {
			calls++
			if len(c) > 1 {
				batched++
			}
			for _, m := range c {
				if m.group != g || m.seq != next {
					t.Fatalf("group %d: got %+v, want seq %d", g, m, next)
				}
				next++
			}
		}
		if next != perGroup {
			t.Fatalf("group %d: %d messages handled, want %d", g, next, perGroup)
		}
	}
	s := b.Snapshot()
	if s.Submitted != groups*perGroup || s.Completed != groups*perGroup || s.Queued != 0 {
		t.Fatalf("submitted %d, completed %d, queued %d; want %d, %d, 0", s.Submitted, s.Completed, s.Queued, groups*perGroup, groups*perGroup)
	}
	if s.Batches.Calls != uint64(calls) || s.Batches.Messages != groups*perGroup {
		t.Fatalf("Batches %+v; the function saw %d calls of %d messages", s.Batches, calls, groups*perGroup)
	}
	var sum uint64
	for _, n := range s.Batches.Sizes {
		sum += n
	}
	if sum != s.Batches.Calls || s.Batches.Sizes[batchBucket(maxBatch)+1] != 0 {
		t.Fatalf("size buckets %v do not add up to %d calls of at most %d", s.Batches.Sizes, s.Batches.Calls, maxBatch)
	}
	t.Logf("%d calls, %d of more than one message, mean %.1f, p50 ≤ %d, p99 ≤ %d", calls, batched, s.Batches.Mean(), s.Batches.Quantile(0.5), s.Batches.Quantile(0.99))
}

// TestBatcherTakesWhatQueued: while a group's call runs, its later
// messages queue; the next call receives all of them at once, in order,
// up to WithMaxBatch.
func TestBatcherTakesWhatQueued(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gate := make(chan struct{})
		var mu sync.Mutex
		var sizes [][]int
		fn := func(_ context.Context, _ int, msgs []int) error {
			mu.Lock()
			sizes = append(sizes, slices.Clone(msgs))
			first := len(sizes) == 1
			mu.Unlock()
			if first {
				<-gate
			}
			return nil
		}
		b := mustBatcher(t, fn, WithWorkers(1, 1), WithMaxBatch(4))
		if err := b.Submit(context.Background(), 7, 0); err != nil {
			t.Fatal(err)
		}
		synctest.Wait() // the first call holds the group
		for i := 1; i <= 10; i++ {
			if err := b.TrySubmit(7, i); err != nil {
				t.Fatal(err)
			}
		}
		close(gate)
		if err := b.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		want := [][]int{{0}, {1, 2, 3, 4}, {5, 6, 7, 8}, {9, 10}}
		if fmt.Sprint(sizes) != fmt.Sprint(want) {
			t.Fatalf("calls %v, want %v", sizes, want)
		}
		s := b.Snapshot()
		// Sizes 1, 4, 4, 2: buckets 0, 2, 2, 1.
		if s.Batches.Sizes[0] != 1 || s.Batches.Sizes[1] != 1 || s.Batches.Sizes[2] != 2 || s.Batches.Mean() != 11.0/4 {
			t.Fatalf("Batches %+v", s.Batches)
		}
	})
}

// TestBatcherRetryWhole: a failed call is retried with the same messages,
// in order, and no later message of the group reaches fn before it
// succeeds; other groups go on meanwhile.
func TestBatcherRetryWhole(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gate := make(chan struct{})
		var mu sync.Mutex
		var calls [][]int
		fails := 2
		fn := func(_ context.Context, g int, msgs []int) error {
			if g == 2 {
				return nil
			}
			mu.Lock()
			calls = append(calls, slices.Clone(msgs))
			n := len(calls)
			mu.Unlock()
			if n == 1 {
				<-gate
				return nil
			}
			mu.Lock()
			defer mu.Unlock()
			if fails > 0 {
				fails--
				return errors.New("write failed")
			}
			return nil
		}
		b := mustBatcher(t, fn, WithWorkers(1, 2), WithRetry(RetryPolicy{MaxAttempts: 3, Base: time.Second, NoJitter: true}))
		_ = b.Submit(context.Background(), 1, 0)
		synctest.Wait()
		for i := 1; i <= 3; i++ {
			_ = b.Submit(context.Background(), 1, i)
		}
		close(gate)
		synctest.Wait() // the batch {1,2,3} failed once and is parked
		_ = b.Submit(context.Background(), 1, 4)
		// Another group is not held back by the parked one.
		if err := b.Submit(context.Background(), 2, 0); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if s := b.Snapshot(); s.Completed != 2 {
			t.Fatalf("completed %d while group 1 waits for its retry, want 2 (group 1's first, group 2's)", s.Completed)
		}
		if err := b.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		want := [][]int{{0}, {1, 2, 3}, {1, 2, 3}, {1, 2, 3}, {4}}
		if fmt.Sprint(calls) != fmt.Sprint(want) {
			t.Fatalf("calls %v, want %v", calls, want)
		}
		s := b.Snapshot()
		if s.FailedAttempts != 2 || s.Retried != 2 || s.Completed != 6 || s.DeadLetters.Total() != 0 {
			t.Fatalf("failed %d retried %d completed %d letters %d; want 2, 2, 6, 0", s.FailedAttempts, s.Retried, s.Completed, s.DeadLetters.Total())
		}
	})
}

// TestBatcherDeadLetters: a call that fails for good becomes one letter
// with its messages, the reason and the attempts; Permanent skips retries;
// a panic and a runtime.Goexit become Panicked letters; the group goes on
// with its later messages.
func TestBatcherDeadLetters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bad := errors.New("constraint violated")
		fn := func(_ context.Context, g int, msgs []string) error {
			switch msgs[0] {
			case "fail":
				return bad
			case "permanent":
				return Permanent(bad)
			case "panic":
				panic("boom")
			case "goexit":
				runtime.Goexit()
			case "canceled":
				return context.Canceled
			}
			return nil
		}
		var panics atomic.Int64
		b := mustBatcher(t, fn, WithWorkers(1, 1), WithMaxBatch(1),
			WithRetry(RetryPolicy{MaxAttempts: 3, Base: time.Millisecond}),
			WithPanicHandler(func(any, []byte) { panics.Add(1) }))
		in := []string{"fail", "ok", "permanent", "panic", "goexit", "canceled", "ok"}
		for _, m := range in {
			if err := b.Submit(context.Background(), 1, m); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		var got []string
		for dl := range b.DeadLetters() {
			if dl.Group != 1 || len(dl.Msgs) != 1 {
				t.Fatalf("letter %+v", dl)
			}
			got = append(got, fmt.Sprintf("%s:%s:%d", dl.Msgs[0], dl.Reason, dl.Attempts))
			if dl.Reason == ReasonFailed && !errors.Is(dl.Err, bad) {
				t.Fatalf("letter error %v, want %v", dl.Err, bad)
			}
			if dl.Reason == ReasonPanicked && dl.Msgs[0] == "panic" && (dl.Panic != "boom" || len(dl.Stack) == 0) {
				t.Fatalf("panic letter %+v", dl)
			}
		}
		want := []string{"fail:Failed:3", "permanent:Failed:1", "panic:Panicked:1", "goexit:Panicked:1", "canceled:Canceled:1"}
		if !slices.Equal(got, want) {
			t.Fatalf("letters %v, want %v", got, want)
		}
		s := b.Snapshot()
		if s.Completed != 2 || s.DeadLetters.Total() != 5 || panics.Load() != 2 {
			t.Fatalf("completed %d, letters %d, panics handled %d; want 2, 5, 2", s.Completed, s.DeadLetters.Total(), panics.Load())
		}
	})
}

// TestBatcherCloseShutdown: Close's context ends while a group's call is
// blocked: the queued messages become Shutdown letters (one per turn, in
// order), and every accepted message is in a call or a letter.
func TestBatcherCloseShutdown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gate := make(chan struct{})
		var handled atomic.Int64
		fn := func(_ context.Context, g int, msgs []int) error {
			if g == 0 && msgs[0] == 0 {
				<-gate
			}
			handled.Add(int64(len(msgs)))
			return nil
		}
		b := mustBatcher(t, fn, WithWorkers(1, 1), WithMaxBatch(3))
		_ = b.Submit(context.Background(), 0, 0)
		synctest.Wait() // the call of message 0 blocks
		for i := 1; i < 8; i++ {
			_ = b.Submit(context.Background(), 0, i)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		var letters []BatchDeadLetter[int, int]
		done := make(chan struct{})
		go func() {
			for dl := range b.DeadLetters() {
				letters = append(letters, dl)
			}
			close(done)
		}()
		go func() {
			time.Sleep(2 * time.Second) // fake time: after Close gave up
			close(gate)
		}()
		err := b.Close(ctx)
		<-done
		var ce *BatchCloseError[int, int]
		if !errors.As(err, &ce) || ce.Shutdown != 7 || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Close: %v, want a BatchCloseError with 7 messages shut down", err)
		}
		var next = 1
		for _, dl := range letters {
			if dl.Reason != ReasonShutdown || !errors.Is(dl.Err, ErrClosed) {
				t.Fatalf("letter %+v, want Shutdown", dl)
			}
			for _, m := range dl.Msgs {
				if m != next {
					t.Fatalf("shut-down messages out of order: %v", letters)
				}
				next++
			}
		}
		if next != 8 || handled.Load() != 1 {
			t.Fatalf("letters up to %d, handled %d; want 1..7 lettered and 1 handled", next-1, handled.Load())
		}
	})
}

// TestBatcherLetterHasSubmittedMsgs: fn reverses and overwrites its
// slice, then fails; the letter holds the messages as they were
// submitted, in Submit order, whichever way the call failed.
func TestBatcherLetterHasSubmittedMsgs(t *testing.T) {
	for _, tc := range []struct {
		name   string
		fail   func() error
		reason Reason
		want   []int
	}{
		{"permanent", func() error { return Permanent(errors.New("no")) }, ReasonFailed, []int{1, 2, 3}},
		{"partial", func() error { return Partial(1, Permanent(errors.New("no"))) }, ReasonFailed, []int{2, 3}},
		{"panic", func() error { panic("boom") }, ReasonPanicked, []int{1, 2, 3}},
		{"goexit", func() error { runtime.Goexit(); return nil }, ReasonPanicked, []int{1, 2, 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				gate := make(chan struct{})
				fn := func(_ context.Context, g int, msgs []int) error {
					if g == 0 {
						<-gate
						return nil
					}
					slices.Reverse(msgs)
					for i := range msgs {
						msgs[i] = -1
					}
					return tc.fail()
				}
				b := mustBatcher(t, fn, WithWorkers(1, 1), WithMaxBatch(8))
				letters := collectBatch(b)
				_ = b.Submit(context.Background(), 0, 0)
				synctest.Wait() // the one worker is in group 0's call
				for i := 1; i <= 3; i++ {
					if err := b.Submit(context.Background(), 1, i); err != nil {
						t.Fatal(err)
					}
				}
				close(gate) // group 1's call then gets 1, 2, 3
				if err := b.Close(context.Background()); err != nil {
					t.Fatal(err)
				}
				dls := letters()
				if len(dls) != 1 || dls[0].Reason != tc.reason || !slices.Equal(dls[0].Msgs, tc.want) {
					var got []string
					for _, dl := range dls {
						got = append(got, fmt.Sprintf("%v %v", dl.Reason, dl.Msgs))
					}
					t.Fatalf("letters %v, want one %v letter of %v", got, tc.reason, tc.want)
				}
			})
		})
	}
}

// TestBatcherCloseDeadlineDuringRetryableCall: a call that is running when
// Close's deadline passes and then fails with an error the policy retries
// (whole, or after Partial) has its unhandled messages shut down at once,
// with its error and attempt: Close does not wait for the retry timer.
func TestBatcherCloseDeadlineDuringRetryableCall(t *testing.T) {
	for _, tc := range []struct {
		name string
		fail func(error) error
		want []int
	}{
		{"whole", func(err error) error { return err }, []int{1, 2}},
		{"partial", func(err error) error { return Partial(1, err) }, []int{2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				reset := errors.New("connection reset")
				gate := make(chan struct{})
				fn := func(ctx context.Context, g int, msgs []int) error {
					if g == 0 {
						<-gate
						return nil
					}
					<-ctx.Done() // canceled when Close gives up
					// The write notices a moment later, after Close
					// went through the groups parked for a retry.
					time.Sleep(time.Millisecond)
					return tc.fail(reset)
				}
				b := mustBatcher(t, fn, WithWorkers(1, 1),
					WithRetry(RetryPolicy{MaxAttempts: 3, Base: time.Hour, Max: time.Hour, NoJitter: true}))
				letters := collectBatch(b)
				_ = b.Submit(context.Background(), 0, 0)
				synctest.Wait()
				_ = b.Submit(context.Background(), 1, 1)
				_ = b.Submit(context.Background(), 1, 2)
				close(gate) // group 1's call gets 1, 2 and waits for ctx
				synctest.Wait()
				start := time.Now()
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				defer cancel()
				err := b.Close(ctx)
				if d := time.Since(start); d > 2*time.Second {
					t.Errorf("Close returned after %v, want about 1s: it waited for the retry timer", d)
				}
				var ce *BatchCloseError[int, int]
				if !errors.As(err, &ce) || ce.Shutdown != len(tc.want) {
					t.Fatalf("Close: %v, want a BatchCloseError with %d messages shut down", err, len(tc.want))
				}
				dls := letters()
				if len(dls) != 1 || dls[0].Reason != ReasonShutdown || !errors.Is(dls[0].Err, reset) ||
					dls[0].Attempts != 1 || !slices.Equal(dls[0].Msgs, tc.want) {
					t.Fatalf("letters %+v, want one Shutdown letter of %v with the call's error and 1 attempt", dls, tc.want)
				}
			})
		})
	}
}

// TestBatcherIsolation: a group whose call blocks holds back only its own
// messages; a full group refuses only its own submitters.
func TestBatcherIsolation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gate := make(chan struct{})
		var others atomic.Int64
		fn := func(_ context.Context, g int, msgs []int) error {
			if g == 0 {
				<-gate
				return nil
			}
			others.Add(int64(len(msgs)))
			return nil
		}
		// The CPU sample reads every busy worker as blocked, as it is:
		// with one processor the second worker is past GOMAXPROCS, and
		// the runtime's real counts would include whatever else the
		// test binary runs.
		b := mustBatcher(t, fn, WithWorkers(1, 4), WithGroupQueueSize(2), withCPUReader(blockedCPU))
		_ = b.Submit(context.Background(), 0, 0)
		synctest.Wait()
		for i := 1; i <= 2; i++ {
			if err := b.TrySubmit(0, i); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.TrySubmit(0, 3); !errors.Is(err, ErrQueueFull) {
			t.Fatalf("TrySubmit to a full group: %v, want ErrQueueFull", err)
		}
		for g := 1; g <= 100; g++ {
			if err := b.TrySubmit(g, g); err != nil {
				t.Fatalf("group %d refused while group 0 is full: %v", g, err)
			}
		}
		// The worker blocked in group 0 counts as free until the monitor
		// judges it slow: a submission that comes just after the other
		// worker parked wakes nobody, and the monitor wakes it at its
		// next tick (the bound the pool documents: about a millisecond),
		// so the test lets two ticks pass, as TestGroupFullBlocksOnly-
		// ItsSubmitters does.
		time.Sleep(2 * monitorTick)
		synctest.Wait()
		if others.Load() != 100 {
			t.Fatalf("%d messages of other groups handled while group 0 blocks, want 100", others.Load())
		}
		close(gate)
		if err := b.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}

// TestBatcherBadInput: a nil function, a bad WithMaxBatch and a handler
// of the wrong type are errors; a nil context is refused.
func TestBatcherBadInput(t *testing.T) {
	fn := func(context.Context, int, []string) error { return nil }
	if _, err := NewBatcher[int, string](nil); !errors.Is(err, ErrInvalidOption) {
		t.Fatalf("nil fn: %v", err)
	}
	for _, n := range []int{0, -1, 1<<16 + 1} {
		if _, err := NewBatcher(fn, WithMaxBatch(n)); !errors.Is(err, ErrInvalidOption) {
			t.Fatalf("WithMaxBatch(%d): %v", n, err)
		}
	}
	if _, err := NewBatcher(fn, WithBatchDeadLetterHandler(func(BatchDeadLetter[int, int]) {})); !errors.Is(err, ErrInvalidOption) {
		t.Fatalf("handler of the wrong message type: %v", err)
	}
	if _, err := NewBatcher(fn, WithDeadLetterHandler(func(DeadLetter[int]) {})); !errors.Is(err, ErrInvalidOption) {
		t.Fatalf("a Pool's handler: %v", err)
	}
	if _, err := NewBatcher(fn, WithBatchSize(8)); !errors.Is(err, ErrInvalidOption) {
		t.Fatalf("a Pool's WithBatchSize given to a Batcher: %v", err)
	}
	if _, err := New[int](WithMaxBatch(8)); !errors.Is(err, ErrInvalidOption) {
		t.Fatalf("a Batcher's WithMaxBatch given to a Pool: %v", err)
	}
	b := mustBatcher(t, fn)
	//lint:ignore SA1012 a nil context on purpose: its error is the subject
	if err := b.Submit(nil, 1, "x"); !errors.Is(err, ErrNilContext) {
		t.Fatalf("nil ctx: %v", err)
	}
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := b.TrySubmit(1, "x"); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

// TestBatcherHandler: WithBatchDeadLetterHandler takes every letter.
func TestBatcherHandler(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var got []BatchDeadLetter[string, int]
		var mu sync.Mutex
		h := func(dl BatchDeadLetter[string, int]) {
			mu.Lock()
			got = append(got, dl)
			mu.Unlock()
		}
		fn := func(context.Context, string, []int) error { return Permanent(errors.New("no")) }
		b, err := NewBatcher(fn, WithBatchDeadLetterHandler(h), WithWorkers(1, 1))
		if err != nil {
			t.Fatal(err)
		}
		_ = b.Submit(context.Background(), "room", 1)
		if err := b.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].Group != "room" || !slices.Equal(got[0].Msgs, []int{1}) {
			t.Fatalf("handler got %+v", got)
		}
	})
}

// TestBatcherSubmitAllocs: Submit allocates nothing once the groups'
// queues exist and the calls' slices have grown.
func TestBatcherSubmitAllocs(t *testing.T) {
	var handled atomic.Int64
	fn := func(_ context.Context, _ int, msgs []int) error {
		handled.Add(int64(len(msgs)))
		return nil
	}
	b := mustBatcher(t, fn, WithWorkers(1, 1))
	defer b.Close(context.Background())
	const groups = 8
	for i := range 4096 {
		_ = b.Submit(context.Background(), i%groups, i)
	}
	i := 0
	allocs := testing.AllocsPerRun(10000, func() {
		_ = b.Submit(context.Background(), i%groups, i)
		i++
	})
	if allocs != 0 {
		t.Fatalf("Submit: %v allocations per message, want 0", allocs)
	}
}

// TestBatchQuantile checks BatchStats' quantiles against a direct count.
func TestBatchQuantile(t *testing.T) {
	var s BatchStats
	for _, n := range []int{1, 1, 1, 2, 3, 4, 5, 8, 9, 256} {
		s.Calls++
		s.Messages += uint64(n)
		s.Sizes[batchBucket(n)]++
	}
	for _, c := range []struct {
		q    float64
		want int
	}{{0, 1}, {0.3, 1}, {0.35, 2}, {0.5, 4}, {0.7, 8}, {0.85, 16}, {0.95, 256}, {1, 256}} {
		if got := s.Quantile(c.q); got != c.want {
			t.Errorf("Quantile(%v) = %d, want %d", c.q, got, c.want)
		}
	}
	if s.Mean() != 29 {
		t.Errorf("Mean %v, want 29", s.Mean())
	}
	if (BatchStats{}).Quantile(0.5) != 0 || batchBucket(1<<20) != batchBuckets-1 {
		t.Error("empty stats or a huge call")
	}
	// 99 calls of one message and one of 8: the 99th smallest is 1.
	var t99 BatchStats
	t99.Calls, t99.Sizes[0], t99.Sizes[3] = 100, 99, 1
	if got := t99.Quantile(0.99); got != 1 {
		t.Errorf("p99 of 99 ones and an 8 = %d, want 1", got)
	}
	if got := t99.Quantile(1); got != 8 {
		t.Errorf("max = %d, want 8", got)
	}
}

// fuzzMsg is a message of FuzzBatcher: its group's submission index and
// the failure it injects into every call that holds it.
type fuzzMsg struct {
	seq  int
	fail uint8 // 0 none, 1 the first call holding it fails, 2 every call, 3 the first call fails after the messages before it (Partial)
}

// FuzzBatcher runs a Batcher over a sequence of submissions to four groups,
// some of whose messages make their calls fail once, always, or once after
// the messages before them (Partial), against a model: per group, the
// handled messages and the letters hold every submitted message exactly
// once, in Submit order; a failed call is followed by a call (or a letter)
// with exactly its unhandled messages; no call exceeds WithMaxBatch.
func FuzzBatcher(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 0, 1, 2, 3})
	f.Add([]byte{0, 0, 0, 8, 0, 0, 12, 0, 0, 0, 0, 1, 9, 13, 1, 1})
	f.Add([]byte{8, 8, 8, 12, 12, 12, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, ops []byte) {
		const groups, maxBatch = 4, 3
		type event struct {
			msgs    []fuzzMsg
			letter  bool
			failed  bool // a call that failed and will be retried or lettered
			handled int  // of a failed call, the messages it reported handled
		}
		var mu sync.Mutex
		log := make([][]event, groups)
		failedOnce := map[[2]int]bool{}
		fn := func(_ context.Context, g int, msgs []fuzzMsg) error {
			if len(msgs) == 0 || len(msgs) > maxBatch {
				t.Errorf("call of %d messages, bound %d", len(msgs), maxBatch)
			}
			mu.Lock()
			defer mu.Unlock()
			ev := event{msgs: slices.Clone(msgs)}
			for i, m := range msgs {
				switch m.fail {
				case 1:
					if !failedOnce[[2]int{g, m.seq}] {
						failedOnce[[2]int{g, m.seq}] = true
						ev.failed = true
					}
				case 2:
					ev.failed = true
				case 3:
					if !failedOnce[[2]int{g, m.seq}] && !ev.failed {
						failedOnce[[2]int{g, m.seq}] = true
						ev.failed, ev.handled = true, i
					}
				}
			}
			log[g] = append(log[g], ev)
			if ev.failed {
				return Partial(ev.handled, errors.New("injected"))
			}
			return nil
		}
		h := func(dl BatchDeadLetter[int, fuzzMsg]) {
			mu.Lock()
			log[dl.Group] = append(log[dl.Group], event{msgs: dl.Msgs, letter: true})
			mu.Unlock()
		}
		b, err := NewBatcher(fn, WithMaxBatch(maxBatch), WithWorkers(1, 3),
			WithBatchDeadLetterHandler(h),
			WithRetry(RetryPolicy{MaxAttempts: 2, Backoff: func(int) time.Duration { return 0 }}))
		if err != nil {
			t.Fatal(err)
		}
		var want [groups][]fuzzMsg
		for _, op := range ops {
			g := int(op % groups)
			m := fuzzMsg{seq: len(want[g]), fail: (op / groups) % 8}
			if m.fail > 3 {
				m.fail = 0
			}
			want[g] = append(want[g], m)
			if err := b.Submit(context.Background(), g, m); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		for g := range groups {
			var got []fuzzMsg
			evs := log[g]
			for i, ev := range evs {
				if ev.failed {
					rest := ev.msgs[ev.handled:]
					if i+1 >= len(evs) || !slices.Equal(evs[i+1].msgs, rest) {
						t.Fatalf("group %d: failed call %v (%d handled) not followed by exactly the rest: %v", g, ev.msgs, ev.handled, evs)
					}
					got = append(got, ev.msgs[:ev.handled]...)
					continue
				}
				got = append(got, ev.msgs...)
			}
			if !slices.Equal(got, want[g]) {
				t.Fatalf("group %d: handled or lettered %v, want %v (events %v)", g, got, want[g], evs)
			}
		}
	})
}

// TestBatcherBreakerAndScaling: a Batcher shares the Pool's memory breaker
// (Submit refuses under pressure and counts it) and its worker bounds
// (Tune), and its Snapshot reports its workers.
func TestBatcherBreakerAndScaling(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &fakeMemory{}
		src.used.Store(10)
		br, err := backpressure.NewBreaker(backpressure.WithBudget(1000), backpressure.WithSource(src), backpressure.WithBytesPerTask(1))
		if err != nil {
			t.Fatal(err)
		}
		defer br.Close()
		gate := make(chan struct{})
		release := sync.OnceFunc(func() { close(gate) })
		fn := func(context.Context, int, []int) error { <-gate; return nil }
		b := mustBatcher(t, fn, WithBreaker(br), WithWorkers(0, 8), withCPUReader(blockedCPU))
		defer b.Close(context.Background())
		defer release()
		time.Sleep(time.Second) // the breaker's sampler runs
		for g := range 4 {
			if err := b.Submit(context.Background(), g, g); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(10 * time.Millisecond) // monitor ticks: workers grow
		synctest.Wait()
		if s := b.Snapshot(); s.Workers.Running != 4 || s.Workers.Busy != 4 {
			t.Fatalf("workers %+v, want 4 running and busy (one per blocked group)", s.Workers)
		}
		if err := b.Tune(0, 2); err != nil {
			t.Fatal(err)
		}
		src.used.Store(990)
		time.Sleep(time.Second) // the breaker's sampler runs
		synctest.Wait()
		if err := b.TrySubmit(9, 9); !errors.Is(err, ErrMemoryPressure) {
			t.Fatalf("TrySubmit under pressure: %v", err)
		}
		release()
		synctest.Wait()
		if s := b.Snapshot(); s.Workers.Running > 2 || s.Rejected.MemoryPressure != 1 || s.Completed != 4 {
			t.Fatalf("after Tune(0, 2): workers %+v, rejections %+v, completed %d", s.Workers, s.Rejected, s.Completed)
		}
		if err := b.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}

// TestBatcherPartial: a call that reports its first n messages handled
// (Partial) is retried with the rest only; after the last attempt the rest
// alone becomes the letter; Permanent(Partial) retries nothing; the
// handled ones count as completed and are never handed to fn again.
func TestBatcherPartial(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		started, release := make(chan struct{}), make(chan struct{})
		var mu sync.Mutex
		var calls [][]string
		bad := errors.New("row rejected")
		fn := func(_ context.Context, g int, msgs []string) error {
			if msgs[0] == "hold" {
				close(started)
				<-release
				return nil
			}
			mu.Lock()
			calls = append(calls, slices.Clone(msgs))
			mu.Unlock()
			for i, m := range msgs {
				switch m {
				case "flaky":
					// Fails once, handled on its retry.
					if len(calls) == 1 {
						return Partial(i, bad)
					}
				case "bad":
					return Partial(i, bad)
				case "final":
					return Permanent(Partial(i, bad))
				}
			}
			return nil
		}
		var letters []BatchDeadLetter[int, string]
		b := mustBatcher(t, fn, WithWorkers(1, 1),
			WithRetry(RetryPolicy{MaxAttempts: 3, Base: time.Millisecond}),
			WithBatchDeadLetterHandler(func(dl BatchDeadLetter[int, string]) { letters = append(letters, dl) }))
		_ = b.Submit(context.Background(), 1, "hold")
		<-started
		for _, m := range []string{"a", "flaky", "c", "bad", "d"} {
			_ = b.Submit(context.Background(), 1, m)
		}
		close(release)
		synctest.Wait()
		_ = b.Submit(context.Background(), 1, "e")
		_ = b.Submit(context.Background(), 1, "final")
		_ = b.Submit(context.Background(), 1, "f")
		if err := b.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		want := "[[a flaky c bad d] [flaky c bad d] [bad d] [e final f]]" // bad was in 3 calls: its last attempt
		if fmt.Sprint(calls) != want {
			t.Fatalf("calls %v, want %s", calls, want)
		}
		if len(letters) != 2 ||
			!slices.Equal(letters[0].Msgs, []string{"bad", "d"}) || letters[0].Attempts != 3 || !errors.Is(letters[0].Err, bad) ||
			!slices.Equal(letters[1].Msgs, []string{"final", "f"}) || letters[1].Attempts != 1 {
			t.Fatalf("letters %+v", letters)
		}
		s := b.Snapshot()
		// hold, a, flaky, c, e: completed; bad, d, final, f: lettered.
		if s.Completed != 5 || s.DeadLetters.Failed != 4 || s.Queued != 0 {
			t.Fatalf("completed %d, failed letters %d, queued %d; want 5, 4, 0", s.Completed, s.DeadLetters.Failed, s.Queued)
		}
	})
}

// TestBatcherBreakerReservation: a Batcher's own breaker (WithMemoryBudget)
// reserves BatchBytesPerMessage per message, a Pool's the breaker's default.
func TestBatcherBreakerReservation(t *testing.T) {
	fn := func(context.Context, int, []int) error { return nil }
	b := mustBatcher(t, fn, WithMemoryBudget(1<<30))
	defer b.Close(context.Background())
	p := mustNew[int](t, WithMemoryBudget(1<<30))
	defer p.Close(context.Background())
	bs, ps := b.Snapshot().Breaker, p.Snapshot().Breaker
	if bs == nil || ps == nil {
		t.Fatal("no breaker figures")
	}
	if bs.BytesPerTask != BatchBytesPerMessage || ps.BytesPerTask <= BatchBytesPerMessage {
		t.Fatalf("bytes reserved per message %d, per task %d; want %d and the breaker's larger default", bs.BytesPerTask, ps.BytesPerTask, BatchBytesPerMessage)
	}
}
