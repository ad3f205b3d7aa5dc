package pool

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"
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

// modelOutcome is what a call of TestBatcherModel does.
type modelOutcome uint8

const (
	moOK        modelOutcome = iota // returns nil
	moFail                          // a retryable error
	moPartial                       // Partial(n, retryable error)
	moPermanent                     // Permanent(Partial(n, error))
	moPanic                         // panics
	moGoexit                        // runtime.Goexit
	moCanceled                      // an error matching context.Canceled
	moJudge                         // Partial(n, error) whose Retryable panics
	moBlock                         // blocks until the Batcher's ctx ends, then fails
	numOutcomes
)

// modelEvent is one call of fn or one letter, for one group.
type modelEvent struct {
	letter   bool
	msgs     []int
	outcome  modelOutcome // a call's
	handled  int          // a call's: messages reported handled
	reason   Reason       // a letter's
	attempts int          // a letter's
	err      error        // a letter's
}

var (
	errModelRetry = errors.New("model: retryable")
	errModelJudge = errors.New("model: Retryable panics on this one")
)

// TestBatcherModel runs Batchers with random bounds, workers, retry
// policies and call outcomes (success, whole failures, Partial, Permanent,
// panics, runtime.Goexit, Canceled, a Retryable that panics, calls that
// block until Close's deadline) against a model: per group, no two calls
// overlap; each call holds exactly the group's next messages, or exactly
// the unhandled rest of the failed call before it; every accepted message
// is handled by exactly one call or in exactly one letter, in Submit
// order; each letter's reason and attempts follow from the calls; and the
// Snapshot after Close counts exactly what happened.
func TestBatcherModel(t *testing.T) {
	for seed := range uint64(100) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { runBatcherModel(t, seed) })
		})
	}
}

func runBatcherModel(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 7))
	groups := 1 + rng.IntN(5)
	maxBatch := 1 + rng.IntN(5)
	workers := 1 + rng.IntN(3)
	maxAttempts := 1 + rng.IntN(3)
	withDeadline := rng.IntN(3) == 0
	concurrent := rng.IntN(2) == 0
	queueSize := 1 << 20
	if concurrent {
		queueSize = 1 + rng.IntN(4)
	}
	perGroup := make([]int, groups)
	for g := range perGroup {
		perGroup[g] = rng.IntN(25)
	}
	var mu sync.Mutex
	log := make([][]modelEvent, groups)
	running := make([]bool, groups)
	overlaps := 0
	callRng := rand.New(rand.NewPCG(seed, 11)) // under mu
	fn := func(ctx context.Context, g int, msgs []int) error {
		mu.Lock()
		if running[g] {
			overlaps++
		}
		running[g] = true
		o := modelOutcome(callRng.IntN(int(numOutcomes) + 6)) // one in two calls succeeds
		if o >= numOutcomes || o == moBlock && !withDeadline {
			o = moOK
		}
		n := callRng.IntN(len(msgs) + 2) // Partial's count, len+1 included
		ev := modelEvent{msgs: slices.Clone(msgs), outcome: o}
		switch o {
		case moOK:
			ev.handled = len(msgs)
		case moPartial, moPermanent, moJudge:
			ev.handled = min(n, len(msgs))
		}
		log[g] = append(log[g], ev)
		mu.Unlock()
		// fn may overwrite its slice: letters hold the messages as submitted.
		for i := range msgs {
			msgs[i] = -1
		}
		leave := func() {
			mu.Lock()
			running[g] = false
			mu.Unlock()
		}
		switch o {
		case moOK:
			time.Sleep(time.Duration(1+len(msgs)) * time.Millisecond)
			leave()
			return nil
		case moFail:
			leave()
			return errModelRetry
		case moPartial:
			leave()
			return Partial(n, errModelRetry)
		case moPermanent:
			leave()
			return Permanent(Partial(n, errModelRetry))
		case moPanic:
			leave()
			panic("model panic")
		case moGoexit:
			leave()
			runtime.Goexit()
		case moCanceled:
			leave()
			return fmt.Errorf("model: %w", context.Canceled)
		case moJudge:
			leave()
			return Partial(n, errModelJudge)
		case moBlock:
			<-ctx.Done()
			leave()
			return errModelRetry
		}
		panic("unreachable")
	}
	h := func(dl BatchDeadLetter[int, int]) {
		mu.Lock()
		log[dl.Group] = append(log[dl.Group], modelEvent{letter: true, msgs: dl.Msgs, reason: dl.Reason, attempts: dl.Attempts, err: dl.Err})
		mu.Unlock()
	}
	tm := new(Timings)
	b := mustBatcher(t, fn, WithMaxBatch(maxBatch), WithWorkers(0, workers), WithGroupQueueSize(queueSize),
		WithBatchDeadLetterHandler(h), WithPanicHandler(func(any, []byte) {}), WithTimings(tm),
		WithRetry(RetryPolicy{MaxAttempts: maxAttempts, Backoff: func(int) time.Duration { return time.Millisecond },
			Retryable: func(err error) bool {
				if errors.Is(err, errModelJudge) {
					panic("model: Retryable panics")
				}
				return true
			}}))
	ctx := context.Background()
	if withDeadline {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Second)
		defer cancel()
	}
	accepted := slices.Clone(perGroup)
	total := 0
	var submitters sync.WaitGroup
	if concurrent {
		// One submitter per group, blocking on its small queue; Close
		// comes at a random time and refuses the rest with ErrClosed.
		for g := range groups {
			pause := rand.New(rand.NewPCG(seed, uint64(g)))
			submitters.Go(func() {
				for i := range perGroup[g] {
					if err := b.Submit(context.Background(), g, i); err != nil {
						if !errors.Is(err, ErrClosed) {
							t.Errorf("group %d: Submit: %v", g, err)
						}
						accepted[g] = i
						return
					}
					if pause.IntN(3) == 0 {
						time.Sleep(time.Duration(pause.IntN(4)) * time.Millisecond)
					}
				}
			})
		}
		time.Sleep(time.Duration(rng.IntN(40)) * time.Millisecond)
	} else {
		// Submissions interleave over the groups, in random bursts, with
		// pauses that let calls run between them.
		next := make([]int, groups)
		for {
			var open []int
			for g := range groups {
				if next[g] < perGroup[g] {
					open = append(open, g)
				}
			}
			if len(open) == 0 {
				break
			}
			g := open[rng.IntN(len(open))]
			for range 1 + rng.IntN(4) {
				if next[g] == perGroup[g] {
					break
				}
				if err := b.Submit(context.Background(), g, next[g]); err != nil {
					t.Fatal(err)
				}
				next[g]++
			}
			if rng.IntN(3) == 0 {
				time.Sleep(time.Duration(rng.IntN(4)) * time.Millisecond)
			}
		}
	}
	cerr := b.Close(ctx)
	submitters.Wait()
	for _, n := range accepted {
		total += n
	}
	var closeErr *BatchCloseError[int, int]
	if cerr != nil && !errors.As(cerr, &closeErr) {
		t.Fatalf("Close: %v", cerr)
	}
	if !withDeadline && cerr != nil {
		t.Fatalf("Close without a deadline: %v", cerr)
	}
	s := b.Snapshot()
	if overlaps != 0 {
		t.Fatalf("%d calls overlapped a call of their group", overlaps)
	}

	// The model's counts.
	var (
		completed, calls, msgsCalled, failed, retried, panicked, timed uint64
		dead                                                           [numReasons]uint64
		sizes                                                          [batchBuckets]uint64
	)
	for g := range groups {
		pos := 0          // the next message not yet handled or lettered
		var rest []int    // the unhandled messages of a failed call
		var restAtt int   // their attempts so far
		var restErr error // and the last error
		retryDue := false // rest must come next, as a call or a letter
		checked := -1     // a letter already checked with its call
		for i, ev := range log[g] {
			if i == checked {
				continue
			}
			fail := func(f string, a ...any) {
				t.Fatalf("group %d event %d %+v: %s\nevents: %+v", g, i, ev, fmt.Sprintf(f, a...), log[g])
			}
			if ev.letter {
				dead[ev.reason] += uint64(len(ev.msgs))
				switch {
				case retryDue:
					if !slices.Equal(ev.msgs, rest) {
						fail("letter after a failed call does not hold exactly its rest %v", rest)
					}
					if ev.reason != ReasonShutdown || !withDeadline {
						fail("a retry due became a %v letter", ev.reason)
					}
					if ev.attempts != restAtt || !errors.Is(ev.err, restErr) {
						fail("Shutdown letter of a retry: attempts %d err %v, want %d %v", ev.attempts, ev.err, restAtt, restErr)
					}
					retryDue = false
				default:
					// A Shutdown letter of messages never handed to fn.
					if ev.reason != ReasonShutdown || ev.attempts != 0 || !errors.Is(ev.err, ErrClosed) {
						fail("a letter not after a failed call")
					}
					want := make([]int, 0, len(ev.msgs))
					for j := range len(ev.msgs) {
						want = append(want, pos+j)
					}
					if !slices.Equal(ev.msgs, want) {
						fail("Shutdown letter holds %v, want the next messages %v", ev.msgs, want)
					}
				}
				pos += len(ev.msgs)
				continue
			}
			// A call.
			calls++
			msgsCalled += uint64(len(ev.msgs))
			sizes[batchBucket(len(ev.msgs))]++
			if len(ev.msgs) == 0 || len(ev.msgs) > maxBatch {
				fail("call of %d messages, bound %d", len(ev.msgs), maxBatch)
			}
			attempts := 1
			if retryDue {
				if !slices.Equal(ev.msgs, rest) {
					fail("retry holds %v, want exactly the rest %v", ev.msgs, rest)
				}
				attempts = restAtt + 1
				retryDue = false
				retried++ // the retry ran
			} else {
				for j, m := range ev.msgs {
					if m != pos+j {
						fail("call holds %v, want the messages from %d", ev.msgs, pos)
					}
				}
			}
			if ev.outcome != moGoexit {
				timed += uint64(len(ev.msgs))
			}
			completed += uint64(ev.handled)
			pos += ev.handled
			left := ev.msgs[ev.handled:]
			// What the Batcher must do with the rest: a letter (next
			// event, with this reason and attempts) or a retry.
			var letter *modelEvent
			switch ev.outcome {
			case moOK:
			case moPanic, moGoexit:
				panicked++
				letter = &modelEvent{reason: ReasonPanicked}
			case moCanceled:
				failed++
				letter = &modelEvent{reason: ReasonCanceled}
			case moPermanent:
				if len(left) > 0 {
					failed++
					letter = &modelEvent{reason: ReasonFailed}
				}
			case moFail, moPartial, moJudge, moBlock:
				if len(left) == 0 {
					break
				}
				failed++
				switch {
				case attempts >= maxAttempts:
					letter = &modelEvent{reason: ReasonFailed}
				case ev.outcome == moJudge:
					panicked++
					letter = &modelEvent{reason: ReasonPanicked}
				default:
					rest, restAtt, restErr, retryDue = slices.Clone(left), attempts, errModelRetry, true
				}
			}
			if letter == nil {
				continue
			}
			if i+1 >= len(log[g]) || !log[g][i+1].letter {
				fail("a failed call not followed by its letter")
			}
			l := log[g][i+1]
			if !slices.Equal(l.msgs, left) || l.reason != letter.reason || l.attempts != attempts {
				fail("letter %+v, want the unhandled %v, reason %v, attempts %d", l, left, letter.reason, attempts)
			}
			checked = i + 1
			dead[letter.reason] += uint64(len(left))
			pos += len(left)
		}
		if retryDue {
			t.Fatalf("group %d: the rest %v of a failed call was neither retried nor lettered", g, rest)
		}
		if pos != accepted[g] {
			t.Fatalf("group %d: %d of %d messages handled or lettered\nevents: %+v", g, pos, accepted[g], log[g])
		}
	}

	// The Snapshot after Close counts exactly that.
	if s.Submitted != uint64(total) || s.Completed != completed || s.Queued != 0 || !s.Closed {
		t.Errorf("Submitted %d Completed %d Queued %d Closed %v; want %d %d 0 true", s.Submitted, s.Completed, s.Queued, s.Closed, total, completed)
	}
	wantDead := ReasonCounts{Failed: dead[ReasonFailed], Panicked: dead[ReasonPanicked], Canceled: dead[ReasonCanceled], Shutdown: dead[ReasonShutdown]}
	if s.DeadLetters != wantDead || s.Completed+s.DeadLetters.Total() != s.Submitted {
		t.Errorf("DeadLetters %+v, want %+v (submitted %d, completed %d)", s.DeadLetters, wantDead, s.Submitted, s.Completed)
	}
	if s.Batches.Calls != calls || s.Batches.Messages != msgsCalled || s.Batches.Sizes != sizes {
		t.Errorf("Batches %+v, want %d calls of %d messages, sizes %v", s.Batches, calls, msgsCalled, sizes)
	}
	if s.FailedAttempts != failed || s.Retried != retried || s.Panicked != panicked {
		t.Errorf("FailedAttempts %d Retried %d Panicked %d, want %d %d %d", s.FailedAttempts, s.Retried, s.Panicked, failed, retried, panicked)
	}
	if w, r := s.Timings.Wait.Count(), s.Timings.Run.Count(); w != timed || r != timed || s.TimingSampleEvery != 1 {
		t.Errorf("Timings counts wait %d run %d (every %d), want %d each", w, r, s.TimingSampleEvery, timed)
	}
	if closeErr != nil {
		if closeErr.Shutdown != int(dead[ReasonShutdown]) || len(closeErr.Undelivered) != 0 {
			t.Errorf("BatchCloseError Shutdown %d, Undelivered %d; want %d, 0", closeErr.Shutdown, len(closeErr.Undelivered), dead[ReasonShutdown])
		}
	} else if dead[ReasonShutdown] != 0 {
		t.Errorf("%d Shutdown letters without a Close deadline", dead[ReasonShutdown])
	}
	if s.Workers.Running != 0 {
		t.Errorf("workers after Close: %+v", s.Workers)
	}
}

// TestBatcherPartialJudgePanics: a call reports its first two messages
// handled (Partial(2, err)) and the policy's Retryable panics on err. The
// two handled messages count as completed and are in no letter (each
// message is in one successful call or one letter, never both); the third
// becomes the Panicked letter; the call, which returned an error, counts
// in FailedAttempts as a Pool's task does.
func TestBatcherPartialJudgePanics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bad := errors.New("bad row")
		var letters []BatchDeadLetter[int, string]
		fn := func(_ context.Context, _ int, msgs []string) error {
			if len(msgs) == 3 {
				return Partial(2, bad)
			}
			return nil
		}
		started, gate := make(chan struct{}), make(chan struct{})
		b := mustBatcher(t, func(ctx context.Context, g int, msgs []string) error {
			if msgs[0] == "hold" {
				close(started)
				<-gate
				return nil
			}
			return fn(ctx, g, msgs)
		}, WithWorkers(1, 1), WithPanicHandler(func(any, []byte) {}),
			WithRetry(RetryPolicy{MaxAttempts: 3, Retryable: func(err error) bool {
				if errors.Is(err, bad) {
					panic("Retryable panics")
				}
				return true
			}}),
			WithBatchDeadLetterHandler(func(dl BatchDeadLetter[int, string]) { letters = append(letters, dl) }))
		for _, m := range []string{"hold", "a", "b", "c"} {
			if err := b.Submit(context.Background(), 1, m); err != nil {
				t.Fatal(err)
			}
			if m == "hold" {
				<-started
			}
		}
		close(gate)
		if err := b.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if len(letters) != 1 || !slices.Equal(letters[0].Msgs, []string{"c"}) || letters[0].Reason != ReasonPanicked {
			t.Errorf("letters %+v; want one Panicked letter of [c]", letters)
		}
		s := b.Snapshot()
		if s.Completed != 3 || s.DeadLetters.Panicked != 1 || s.FailedAttempts != 1 || s.Panicked != 1 {
			t.Errorf("Completed %d, Panicked letters %d, FailedAttempts %d, Panicked %d; want 3, 1, 1, 1",
				s.Completed, s.DeadLetters.Panicked, s.FailedAttempts, s.Panicked)
		}
	})
}

// TestBatchQuantileTornAndOutOfRange: a Snapshot taken while a worker
// publishes its counts may read a call in Calls before its size in Sizes
// (flush publishes the calls first); ten calls of one message then read
// as Calls 11 with ten in Sizes[0]. Quantile must still answer within the
// sizes seen (1), not the top of the last bucket (65,536); and, like
// Histogram.Quantile, it takes q below 0 or above 1 as 0 or 1 and
// answers 0 to NaN, never the last bucket's top.
func TestBatchQuantileTornAndOutOfRange(t *testing.T) {
	var s BatchStats
	s.Calls, s.Messages, s.Sizes[0] = 11, 10, 10
	for _, q := range []float64{0.5, 0.99, 1} {
		if got := s.Quantile(q); got != 1 {
			t.Errorf("torn snapshot: Quantile(%v) = %d, want 1", q, got)
		}
	}
	s.Calls = 10
	for _, q := range []float64{-1, 2, math.Inf(1), math.Inf(-1)} {
		if got := s.Quantile(q); got != 1 {
			t.Errorf("Quantile(%v) = %d, want 1", q, got)
		}
	}
	if got := s.Quantile(math.NaN()); got != 0 {
		t.Errorf("Quantile(NaN) = %d, want 0", got)
	}
}

// TestPoolHotGroupPublishes is TestBatcherHotGroupPublishes for a Pool:
// one group whose next task arrives while the previous runs keeps its
// worker turn after turn; the counts and the breaker's in-flight count
// must follow the turns.
func TestPoolHotGroupPublishes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		entered, release := make(chan struct{}), make(chan struct{})
		task := func(context.Context) error {
			entered <- struct{}{}
			<-release
			return nil
		}
		p := mustNew[int](t, WithWorkers(1, 1), WithBatchSize(1), WithMemoryBudget(1<<40))
		const tasks = 100
		if err := p.Submit(context.Background(), 1, task); err != nil {
			t.Fatal(err)
		}
		for range tasks {
			<-entered
			if err := p.Submit(context.Background(), 1, task); err != nil {
				t.Fatal(err)
			}
			release <- struct{}{}
		}
		<-entered
		s := p.Snapshot()
		inFlight := p.c.inFlight.Load()
		release <- struct{}{}
		if err := p.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if s.Completed < tasks-1 {
			t.Errorf("while the hot group runs: Completed %d; want about %d", s.Completed, tasks)
		}
		if inFlight > 2 {
			t.Errorf("breaker's in-flight count %d with %d queued", inFlight, s.Queued)
		}
	})
}
