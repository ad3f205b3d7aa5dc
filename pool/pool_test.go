package pool

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/shoal-go/shoal/backpressure"
	"github.com/shoal-go/shoal/internal/proccpu"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func mustNew[K interface{ ~int | ~string }](t testing.TB, opts ...Option) *Pool[int] {
	t.Helper()
	p, err := New[int](opts...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// collect reads every dead letter until the channel is closed.
func collect(p *Pool[int]) (<-chan []DeadLetter[int], func() []DeadLetter[int]) {
	ch := make(chan []DeadLetter[int], 1)
	go func() {
		var all []DeadLetter[int]
		for dl := range p.DeadLetters() {
			all = append(all, dl)
		}
		ch <- all
	}()
	return ch, func() []DeadLetter[int] { return <-ch }
}

// mix is a deterministic hash of a task's identity, for random but
// repeatable behaviour across retries.
func mix(a, b, c uint64) uint64 {
	x := a*0x9e3779b97f4a7c15 ^ b*0xbf58476d1ce4e5b9 ^ c*0x94d049bb133111eb
	x ^= x >> 31
	x *= 0xd6e8feb86659fd93
	return x ^ x>>32
}

// TestOrderAndConservation is guarantees 1–3: per group, tasks start in
// acceptance order and never overlap, retries included; every accepted task
// completes or becomes exactly one dead letter.
func TestOrderAndConservation(t *testing.T) {
	n, groups := 1_000_000, 100_000
	if raceEnabled || testing.Short() {
		n = 300_000
	}
	const submitters = 8
	p := mustNew[int](t, WithGroupQueueSize(64),
		WithRetry(RetryPolicy{MaxAttempts: 3, Base: time.Microsecond, Max: 20 * time.Microsecond}),
		WithPanicHandler(func(any, []byte) { panic("handler panics too") }))
	_, letters := collect(p)

	type group struct {
		inflight atomic.Int32
		last     atomic.Int64 // sequence of the last started task
	}
	gs := make([]group, groups)
	for i := range gs {
		gs[i].last.Store(-1)
	}
	var accepted, completed, violations atomic.Int64
	var wantFailed, wantPanicked atomic.Int64

	var wg sync.WaitGroup
	for s := range submitters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			seq := make([]int64, groups)
			for i := s; i < n; i += submitters {
				// Group g is only submitted to by submitter g%submitters, so
				// its acceptance order is this loop's order.
				g := (i/submitters*7919%(groups/submitters))*submitters + s
				q := seq[g]
				seq[g]++
				kind := mix(uint64(g), uint64(q), 0) % 100
				var attempts atomic.Int32
				task := func(context.Context) error {
					st := &gs[g]
					if st.inflight.Add(1) != 1 {
						violations.Add(1)
					}
					defer st.inflight.Add(-1)
					if prev := st.last.Swap(q); prev > q {
						violations.Add(1)
					}
					a := attempts.Add(1)
					switch {
					case kind < 2:
						panic(fmt.Sprintf("task %d/%d", g, q))
					case kind < 4:
						return Permanent(errors.New("permanent"))
					case kind < 6:
						return errors.New("always fails")
					case kind < 16 && a < 3:
						return errors.New("transient")
					}
					completed.Add(1)
					return nil
				}
				if err := p.Submit(context.Background(), g, task); err != nil {
					t.Error(err)
					continue
				}
				accepted.Add(1)
				switch {
				case kind < 2:
					wantPanicked.Add(1)
				case kind < 6:
					wantFailed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	dls := letters()
	if v := violations.Load(); v != 0 {
		t.Fatalf("%d order or overlap violations", v)
	}
	byReason := map[Reason]int64{}
	for _, dl := range dls {
		byReason[dl.Reason]++
		if dl.Reason == ReasonPanicked && (len(dl.Stack) == 0 || dl.Panic == nil) {
			t.Fatalf("panicked letter without stack or value: %+v", dl)
		}
	}
	if got := completed.Load() + int64(len(dls)); got != accepted.Load() || accepted.Load() != int64(n) {
		t.Fatalf("accepted %d, completed %d + dead letters %d = %d", accepted.Load(), completed.Load(), len(dls), got)
	}
	if byReason[ReasonPanicked] != wantPanicked.Load() || byReason[ReasonFailed] != wantFailed.Load() {
		t.Fatalf("letters %v, want %d panicked and %d failed", byReason, wantPanicked.Load(), wantFailed.Load())
	}
	s := p.Snapshot()
	if s.Submitted != uint64(n) || s.Completed != uint64(completed.Load()) || s.DeadLetters.Total() != uint64(len(dls)) || s.Queued != 0 {
		t.Fatalf("snapshot %+v disagrees", s)
	}
	if s.Retried == 0 || s.Panicked != uint64(wantPanicked.Load()) {
		t.Fatalf("snapshot retried %d panicked %d", s.Retried, s.Panicked)
	}
}

// TestShutdownDeadline: Close with a deadline shorter than the backlog
// leaves every accepted task completed or a Shutdown letter.
func TestShutdownDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := mustNew[int](t, WithWorkers(1, 2), WithShards(4), WithQueueSize(1024),
			WithRetry(RetryPolicy{MaxAttempts: 5, Base: time.Second, NoJitter: true}))
		_, letters := collect(p)
		var completed atomic.Int64
		const n = 400
		for i := range n {
			if err := p.Submit(context.Background(), i%8, func(context.Context) error {
				time.Sleep(time.Millisecond)
				if i == 3 {
					return errors.New("retry me") // parks its shard for 1 s
				}
				completed.Add(1)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		err := p.Close(ctx)
		var ce *CloseError[int]
		if !errors.As(err, &ce) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Close: %v, want a CloseError matching DeadlineExceeded", err)
		}
		dls := letters()
		shut := 0
		for _, dl := range dls {
			if dl.Reason != ReasonShutdown {
				t.Fatalf("letter %v, want Shutdown", dl.Reason)
			}
			shut++
		}
		if got := completed.Load() + int64(shut) + int64(len(ce.Undelivered)); got != n {
			t.Fatalf("completed %d + shutdown %d + undelivered %d != %d", completed.Load(), shut, len(ce.Undelivered), n)
		}
		if ce.Shutdown != shut+len(ce.Undelivered) || shut == 0 || completed.Load() == 0 {
			t.Fatalf("CloseError.Shutdown %d, letters %d, completed %d", ce.Shutdown, shut, completed.Load())
		}
		if err := p.Submit(context.Background(), 1, func(context.Context) error { return nil }); !errors.Is(err, ErrClosed) {
			t.Fatalf("Submit after Close: %v", err)
		}
		if err := p.Close(context.Background()); err != nil {
			t.Fatalf("second Close: %v", err)
		}
	})
}

// TestShutdownDeadlineDuringRetryableAttempt: an attempt that is running
// when Close's deadline passes and then fails with an error the policy
// retries becomes a Shutdown letter at once, with that error and its
// attempt: Close does not wait for a retry that would not run.
func TestShutdownDeadlineDuringRetryableAttempt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := mustNew[int](t, WithWorkers(1, 1),
			WithRetry(RetryPolicy{MaxAttempts: 3, Base: time.Hour, Max: time.Hour, NoJitter: true}))
		_, letters := collect(p)
		reset := errors.New("connection reset")
		release := make(chan struct{})
		if err := p.Submit(context.Background(), 1, func(context.Context) error {
			<-release
			return reset
		}); err != nil {
			t.Fatal(err)
		}
		synctest.Wait() // the attempt runs
		go func() {
			time.Sleep(2 * time.Second) // fake time: after Close gave up
			close(release)
		}()
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		err := p.Close(ctx)
		if d := time.Since(start); d != 2*time.Second {
			t.Errorf("Close returned after %v, want 2s (when the attempt returned)", d)
		}
		var ce *CloseError[int]
		if !errors.As(err, &ce) || ce.Shutdown != 1 {
			t.Fatalf("Close: %v, want a CloseError with 1 task shut down", err)
		}
		dls := letters()
		if len(dls) != 1 || dls[0].Reason != ReasonShutdown || !errors.Is(dls[0].Err, reset) || dls[0].Attempts != 1 {
			t.Fatalf("letters %+v, want one Shutdown letter with the attempt's error and 1 attempt", dls)
		}
	})
}

// TestCloseDrains: without a deadline, Close runs the whole backlog and
// unblocks submitters waiting for room with ErrClosed.
func TestCloseDrains(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := mustNew[int](t, WithWorkers(1, 1), WithShards(1), WithQueueSize(4))
		gate := make(chan struct{})
		var ran atomic.Int64
		task := func(context.Context) error { <-gate; ran.Add(1); return nil }
		for range 5 { // one running, four queued
			if err := p.Submit(context.Background(), 0, task); err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
		}
		blocked := make(chan error)
		go func() { blocked <- p.Submit(context.Background(), 0, task) }()
		synctest.Wait()
		closed := make(chan error)
		go func() { closed <- p.Close(context.Background()) }()
		if err := <-blocked; !errors.Is(err, ErrClosed) {
			t.Fatalf("blocked Submit: %v, want ErrClosed", err)
		}
		close(gate)
		if err := <-closed; err != nil {
			t.Fatal(err)
		}
		if ran.Load() != 5 {
			t.Fatalf("ran %d, want 5", ran.Load())
		}
		if _, ok := <-p.DeadLetters(); ok {
			t.Fatal("dead-letter channel not closed")
		}
	})
}

// TestFairness: a group flooding its shard holds back another shard's task
// by at most one batch.
func TestFairness(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const batch = 8
		p := mustNew[int](t, WithWorkers(1, 1), WithShards(16), WithBatchSize(batch), WithQueueSize(1024))
		gate := make(chan struct{})
		var flooded atomic.Int64
		var before int64 = -1
		flood := 0
		other := 1
		for p.ShardOf(other) == p.ShardOf(flood) {
			other++
		}
		if err := p.Submit(context.Background(), flood, func(context.Context) error { <-gate; return nil }); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		for range 10 * batch {
			if err := p.Submit(context.Background(), flood, func(context.Context) error { flooded.Add(1); return nil }); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.Submit(context.Background(), other, func(context.Context) error { before = flooded.Load(); return nil }); err != nil {
			t.Fatal(err)
		}
		close(gate)
		if err := p.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if before < 0 || before > batch {
			t.Fatalf("%d flood tasks ran before the other shard's task, want <= %d", before, batch)
		}
	})
}

// TestIdleShrink: after a burst, workers above min exit after the idle
// timeout.
func TestIdleShrink(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := mustNew[int](t, WithWorkers(2, 8), WithIdleTimeout(time.Second), withCPUReader(blockedCPU))
		for g := range 64 {
			if err := p.Submit(context.Background(), g, func(context.Context) error {
				time.Sleep(10 * time.Millisecond)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}
		// Producers start workers while more shards wait than workers are
		// awake; the monitor's tick (1 ms) starts the rest.
		time.Sleep(5 * time.Millisecond)
		synctest.Wait()
		if s := p.Snapshot(); s.Workers.Running != 8 {
			t.Fatalf("running %d during the burst, want 8 (%+v, waiting %d)", s.Workers.Running, s.Workers, s.WaitingShards)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		s := p.Snapshot()
		if s.Workers.Running != 2 || s.Workers.Idle != 2 || s.Completed != 64 {
			t.Fatalf("after idling: %+v completed %d, want 2 running and idle", s.Workers, s.Completed)
		}
		if err := p.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}

// TestIdleCPU measures the process's CPU time over a real 300 ms window
// while the pool is idle. This is the one test that uses the wall clock: it
// measures what happens during the window (nothing should), it does not wait
// for something to happen, and synctest's virtual time would measure
// nothing.
func TestIdleCPU(t *testing.T) {
	p := mustNew[int](t, WithWorkers(4, 8))
	var wg sync.WaitGroup
	for g := range 10_000 {
		wg.Add(1)
		if err := p.Submit(context.Background(), g, func(context.Context) error { wg.Done(); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	// The process's CPU over a quiet window is the pool's (the test runs
	// alone in its package). The garbage the 10,000 groups left is
	// collected first, and the least of three windows counts, so that a
	// runtime background task on a loaded machine, or the few microseconds
	// the workers look for more work before they park, do not pass for
	// the pool's: a worker that spins burns the whole of every window. The
	// windows measure real time; they wait for nothing.
	runtime.GC()
	used := time.Hour
	for range 3 {
		before := cpuTime(t)
		time.Sleep(200 * time.Millisecond)
		used = min(used, cpuTime(t)-before)
	}
	if used > 20*time.Millisecond {
		t.Fatalf("idle pool used %v of CPU in each of three 200 ms windows", used)
	}
	if w := p.Snapshot().Workers; w.Idle != w.Running {
		t.Fatalf("after 600 ms idle, %d of %d workers parked", w.Idle, w.Running)
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func cpuTime(t *testing.T) time.Duration {
	d, ok := proccpu.Read()
	if !ok {
		t.Skip("the process's CPU time is not read on this system")
	}
	return d
}

func TestBadInput(t *testing.T) {
	noop := func(context.Context) error { return nil }
	closed := mustNew[int](t)
	if err := closed.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	open := mustNew[int](t)
	defer open.Close(context.Background())
	newErr := func(opts ...Option) error { _, err := New[int](opts...); return err }
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"nil task", open.Submit(context.Background(), 1, nil), ErrNilTask},
		{"nil task TrySubmit", open.TrySubmit(1, nil), ErrNilTask},
		{"nil task Go", open.Go(context.Background(), nil), ErrNilTask},
		//lint:ignore SA1012 a nil context on purpose: its error is the subject
		{"nil context", open.Submit(nil, 1, noop), ErrNilContext},
		{"WithShards(0)", newErr(WithShards(0)), ErrInvalidOption},
		{"WithWorkers(5, 2)", newErr(WithWorkers(5, 2)), ErrInvalidOption},
		{"WithWorkers(-1, 2)", newErr(WithWorkers(-1, 2)), ErrInvalidOption},
		{"WithQueueSize(-1)", newErr(WithQueueSize(-1)), ErrInvalidOption},
		{"WithGroupQueueSize(0)", newErr(WithGroupQueueSize(0)), ErrInvalidOption},
		{"WithGroupQueueSize(1<<25)", newErr(WithGroupQueueSize(1 << 25)), ErrInvalidOption},
		{"WithMaxQueued(0)", newErr(WithMaxQueued(0)), ErrInvalidOption},
		{"WithMaxQueued(-5)", newErr(WithMaxQueued(-5)), ErrInvalidOption},
		{"WithBatchSize(0)", newErr(WithBatchSize(0)), ErrInvalidOption},
		{"WithIdleTimeout(0)", newErr(WithIdleTimeout(0)), ErrInvalidOption},
		{"WithDeadLetterBuffer(-1)", newErr(WithDeadLetterBuffer(-1)), ErrInvalidOption},
		{"WithRetry(MaxAttempts 0)", newErr(WithRetry(RetryPolicy{})), ErrInvalidOption},
		{"WithRetry(Max < Base)", newErr(WithRetry(RetryPolicy{MaxAttempts: 2, Base: time.Second, Max: time.Millisecond})), ErrInvalidOption},
		{"WithMemoryBudget(0)", newErr(WithMemoryBudget(0)), ErrInvalidOption},
		{"WithMemoryBudget below use", newErr(WithMemoryBudget(1)), ErrInvalidOption},
		{"WithBreaker(nil)", newErr(WithBreaker(nil)), ErrInvalidOption},
		{"nil option", newErr(nil), ErrInvalidOption},
		{"Tune(0, 0)", open.Tune(0, 0), ErrInvalidOption},
		{"Tune(3, 1)", open.Tune(3, 1), ErrInvalidOption},
		{"Submit after Close", closed.Submit(context.Background(), 1, noop), ErrClosed},
		{"TrySubmit after Close", closed.TrySubmit(1, noop), ErrClosed},
		{"Go after Close", closed.Go(context.Background(), noop), ErrClosed},
		{"Tune after Close", closed.Tune(1, 2), ErrClosed},
	} {
		if !errors.Is(tc.err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, tc.err, tc.want)
		}
	}
}

func TestSubmitAllocs(t *testing.T) {
	p := mustNew[int](t)
	defer p.Close(context.Background())
	var wg sync.WaitGroup
	task := Task(func(context.Context) error { wg.Done(); return nil })
	ctx := context.Background()
	g := 0
	allocs := testing.AllocsPerRun(10_000, func() {
		wg.Add(1)
		g++
		if err := p.Submit(ctx, g%1000, task); err != nil {
			t.Fatal(err)
		}
	})
	wg.Wait()
	if allocs != 0 {
		t.Fatalf("Submit allocates %v times per task", allocs)
	}
}

func TestQueueFull(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := mustNew[int](t, WithWorkers(1, 1), WithShards(1), WithQueueSize(2))
		gate := make(chan struct{})
		task := func(context.Context) error { <-gate; return nil }
		for range 3 { // one running, two queued
			if err := p.Submit(context.Background(), 0, task); err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
		}
		if err := p.TrySubmit(0, task); !errors.Is(err, ErrQueueFull) {
			t.Fatalf("TrySubmit on a full queue: %v", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		err := p.Submit(ctx, 0, task)
		if !errors.Is(err, ErrQueueFull) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("blocked Submit: %v, want QueueFull and DeadlineExceeded", err)
		}
		var re *RejectError
		if !errors.As(err, &re) || re.Reason != RejectQueueFull {
			t.Fatalf("not a QueueFull RejectError: %v", err)
		}
		// A blocked Submit gets in once room is made.
		done := make(chan error)
		go func() { done <- p.Submit(context.Background(), 0, func(context.Context) error { return nil }) }()
		synctest.Wait()
		close(gate)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if err := p.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if s := p.Snapshot(); s.Rejected.QueueFull != 2 || s.Completed != 4 {
			t.Fatalf("rejected %+v completed %d", s.Rejected, s.Completed)
		}
	})
	synctest.Test(t, func(t *testing.T) {
		p := mustNew[int](t, WithWorkers(1, 1), WithShards(1), WithQueueSize(2), WithNonblocking())
		gate := make(chan struct{})
		task := func(context.Context) error { <-gate; return nil }
		_ = p.Submit(context.Background(), 0, task)
		synctest.Wait()
		_ = p.Submit(context.Background(), 0, task)
		_ = p.Submit(context.Background(), 0, task)
		if err := p.Submit(context.Background(), 0, task); !errors.Is(err, ErrQueueFull) {
			t.Fatalf("nonblocking Submit on a full queue: %v", err)
		}
		close(gate)
		if err := p.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}

type ctxKey struct{}

// TestContext: a task sees the submitter's values and deadline but not its
// cancellation; a task whose deadline passed before it started is Expired.
func TestContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := mustNew[int](t, WithWorkers(1, 1), WithShards(1))
		_, letters := collect(p)
		gate := make(chan struct{})
		_ = p.Submit(context.Background(), 0, func(context.Context) error { <-gate; return nil })
		synctest.Wait()

		ctx, cancel := context.WithCancel(context.WithValue(context.Background(), ctxKey{}, "v"))
		seen := make(chan string, 1)
		if err := p.Submit(ctx, 0, func(c context.Context) error {
			v, _ := c.Value(ctxKey{}).(string)
			if c.Err() != nil {
				v += " canceled"
			}
			seen <- v
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		cancel() // later cancellation does not reach the task

		dctx, dcancel := context.WithTimeout(context.Background(), time.Second)
		defer dcancel()
		if err := p.Submit(dctx, 0, func(context.Context) error { t.Error("expired task ran"); return nil }); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Second) // the deadline passes while the task waits
		close(gate)
		if v := <-seen; v != "v" {
			t.Fatalf("task saw %q, want the value and no cancellation", v)
		}
		if err := p.Submit(ctx, 0, func(context.Context) error { return nil }); !errors.Is(err, context.Canceled) {
			t.Fatalf("Submit with a done context: %v", err)
		}
		if err := p.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		dls := letters()
		if len(dls) != 1 || dls[0].Reason != ReasonExpired || !errors.Is(dls[0].Err, context.DeadlineExceeded) || dls[0].Attempts != 0 {
			t.Fatalf("letters %+v, want one Expired", dls)
		}
	})
}

// TestRetryPastDeadlineExpiresAtOnce: a task that fails with its retry due
// after its deadline is lettered Expired when it fails, with its error and
// attempt, and its group's next task runs then, not after the backoff (10 s
// here, against a deadline of 100 ms).
func TestRetryPastDeadlineExpiresAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := mustNew[int](t, WithWorkers(1, 1), WithShards(1),
			WithRetry(RetryPolicy{MaxAttempts: 5, Base: 10 * time.Second, NoJitter: true}))
		_, letters := collect(p)
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		errBusy := errors.New("busy")
		if err := p.Submit(ctx, 7, func(context.Context) error { return errBusy }); err != nil {
			t.Fatal(err)
		}
		ran := make(chan time.Duration, 1)
		if err := p.Submit(context.Background(), 7, func(context.Context) error {
			ran <- time.Since(start)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if d := <-ran; d >= 100*time.Millisecond {
			t.Errorf("the group's next task started after %v, want before the failed task's deadline", d)
		}
		if err := p.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		dls := letters()
		if len(dls) != 1 || dls[0].Reason != ReasonExpired || !errors.Is(dls[0].Err, errBusy) || dls[0].Attempts != 1 {
			t.Fatalf("letters %+v, want one Expired with the task's error after 1 attempt", dls)
		}
		if r := p.Snapshot().Retried; r != 0 {
			t.Errorf("Retried %d, want 0: no retry was scheduled", r)
		}
	})
}

// TestRetriedCountsRetriesThatRan: Stats.Retried counts the retries that
// ran, not those scheduled: a task whose retry comes due while the only
// worker is busy past the task's deadline (an Expired letter), one whose
// retry is still waiting when Close's deadline passes (a Shutdown letter),
// and a Batcher's call in the same case, count no retry; a retry that
// runs counts one.
func TestRetriedCountsRetriesThatRan(t *testing.T) {
	errBusy := errors.New("busy")
	t.Run("expired", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			p := mustNew[int](t, WithWorkers(1, 1),
				WithRetry(RetryPolicy{MaxAttempts: 3, Base: 50 * time.Millisecond, NoJitter: true}))
			_, letters := collect(p)
			g, other := otherShards(p, 2)[0], otherShards(p, 2)[1]
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			_ = p.Submit(ctx, g, func(context.Context) error { return errBusy })
			// Holds the only worker past the deadline while the retry
			// comes due at 50 ms.
			_ = p.Submit(context.Background(), other, func(context.Context) error { time.Sleep(200 * time.Millisecond); return nil })
			if err := p.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			dls := letters()
			if len(dls) != 1 || dls[0].Reason != ReasonExpired || dls[0].Attempts != 1 {
				t.Fatalf("letters %+v, want one Expired after 1 attempt", dls)
			}
			if s := p.Snapshot(); s.Retried != 0 || s.FailedAttempts != 1 {
				t.Errorf("Retried %d, FailedAttempts %d; want 0, 1: the retry never ran", s.Retried, s.FailedAttempts)
			}
		})
	})
	t.Run("shutdown", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			p := mustNew[int](t, WithWorkers(1, 1),
				WithRetry(RetryPolicy{MaxAttempts: 3, Base: time.Hour, NoJitter: true}))
			_, letters := collect(p)
			attempts := 0
			// A task that fails once, then completes.
			_ = p.Submit(context.Background(), 1, func(context.Context) error {
				attempts++
				if attempts == 1 {
					return errBusy
				}
				return nil
			})
			// Its retry runs an hour later.
			time.Sleep(2 * time.Hour)
			synctest.Wait()
			// A task whose retry is still an hour away at Close's deadline.
			_ = p.Submit(context.Background(), 3, func(context.Context) error { return errBusy })
			synctest.Wait()
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			var ce *CloseError[int]
			if err := p.Close(ctx); !errors.As(err, &ce) || ce.Shutdown != 1 {
				t.Fatalf("Close: %v, want a CloseError with 1 shut down", err)
			}
			if dls := letters(); len(dls) != 1 || dls[0].Reason != ReasonShutdown || dls[0].Attempts != 1 {
				t.Fatalf("letters %+v, want one Shutdown after 1 attempt", dls)
			}
			if s := p.Snapshot(); s.Retried != 1 || s.FailedAttempts != 2 {
				t.Errorf("Retried %d, FailedAttempts %d; want 1 (the retry that ran), 2", s.Retried, s.FailedAttempts)
			}
		})
	})
	t.Run("batcher shutdown", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b := mustBatcher(t, func(context.Context, int, []int) error { return errBusy }, WithWorkers(1, 1),
				WithRetry(RetryPolicy{MaxAttempts: 3, Base: time.Hour, NoJitter: true}))
			letters := collectBatch(b)
			_ = b.Submit(context.Background(), 1, 1)
			synctest.Wait()
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			var ce *BatchCloseError[int, int]
			if err := b.Close(ctx); !errors.As(err, &ce) || ce.Shutdown != 1 {
				t.Fatalf("Close: %v, want a BatchCloseError with 1 shut down", err)
			}
			if dls := letters(); len(dls) != 1 || dls[0].Reason != ReasonShutdown {
				t.Fatalf("letters %+v, want one Shutdown", dls)
			}
			if s := b.Snapshot(); s.Retried != 0 || s.FailedAttempts != 1 {
				t.Errorf("Retried %d, FailedAttempts %d; want 0, 1: the retry never ran", s.Retried, s.FailedAttempts)
			}
		})
	})
}

// TestRetryParksShard: while a task waits for its retry, later tasks of its
// shard wait, other shards run, and the backoff grows.
func TestRetryParksShard(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := mustNew[int](t, WithWorkers(1, 1), WithShards(2),
			WithRetry(RetryPolicy{MaxAttempts: 3, Base: 100 * time.Millisecond, NoJitter: true}))
		_, letters := collect(p)
		start := time.Now()
		var at []time.Duration
		var order []string
		var mu sync.Mutex
		log := func(s string) { mu.Lock(); order = append(order, s); mu.Unlock() }
		g, other := 0, 1
		for p.ShardOf(other) == p.ShardOf(g) {
			other++
		}
		_ = p.Submit(context.Background(), g, func(context.Context) error {
			at = append(at, time.Since(start))
			log("flaky")
			return errors.New("nope")
		})
		_ = p.Submit(context.Background(), g, func(context.Context) error { log("next"); return nil })
		_ = p.Submit(context.Background(), other, func(context.Context) error { log("other"); return nil })
		if err := p.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		want := []time.Duration{0, 100 * time.Millisecond, 300 * time.Millisecond}
		if fmt.Sprint(at) != fmt.Sprint(want) {
			t.Fatalf("attempts at %v, want %v", at, want)
		}
		if got := fmt.Sprint(order); got != "[flaky other flaky flaky next]" {
			t.Fatalf("order %s", got)
		}
		dls := letters()
		if len(dls) != 1 || dls[0].Reason != ReasonFailed || dls[0].Attempts != 3 {
			t.Fatalf("letters %+v", dls)
		}
		if s := p.Snapshot(); s.Retried != 2 || s.FailedAttempts != 3 {
			t.Fatalf("retried %d failed %d", s.Retried, s.FailedAttempts)
		}
	})
}

// TestDeadLetterStall: a full dead-letter channel makes the worker wait, and
// the wait is counted; nothing is dropped.
func TestDeadLetterStall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := mustNew[int](t, WithWorkers(1, 1), WithDeadLetterBuffer(1))
		var handled atomic.Int64
		for i := range 5 {
			_ = p.Submit(context.Background(), i, func(context.Context) error {
				return Permanent(errors.New("x"))
			})
		}
		_ = p.Submit(context.Background(), 99, func(context.Context) error { handled.Add(1); return nil })
		synctest.Wait()
		s := p.Snapshot()
		if s.DeadLetterStalls == 0 {
			t.Fatalf("no stall counted: %+v", s.DeadLetters)
		}
		_, letters := collect(p)
		if err := p.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if n := len(letters()); n+1 < 5 { // one may have been read by nobody: buffer
			t.Fatalf("%d letters", n)
		}
		if p.Snapshot().DeadLetters.Failed != 5 || handled.Load() != 1 {
			t.Fatal("letters or tasks lost")
		}
	})
}

func TestPanicHandler(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var got atomic.Value
		p := mustNew[int](t, WithWorkers(1, 1), WithPanicHandler(func(v any, stack []byte) {
			got.Store(fmt.Sprint(v))
			panic("and again")
		}))
		_, letters := collect(p)
		_ = p.Submit(context.Background(), 1, func(context.Context) error { panic("boom") })
		var ran atomic.Bool
		_ = p.Submit(context.Background(), 1, func(context.Context) error { ran.Store(true); return nil })
		if err := p.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		dls := letters()
		if got.Load() != "boom" || !ran.Load() || len(dls) != 1 || dls[0].Reason != ReasonPanicked {
			t.Fatalf("handler saw %v, next ran %v, letters %+v", got.Load(), ran.Load(), dls)
		}
		var pe *PanicError
		if !errors.As(dls[0].Err, &pe) || pe.Value != "boom" {
			t.Fatalf("letter error %v", dls[0].Err)
		}
	})
}

func TestTune(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// The CPU sample reads every busy worker as blocked, as it is
		// (see TestBatcherIsolation).
		p := mustNew[int](t, WithWorkers(1, 2), withCPUReader(blockedCPU))
		gate := make(chan struct{})
		for g := range 16 {
			_ = p.Submit(context.Background(), g, func(context.Context) error { <-gate; return nil })
		}
		if runtime.GOMAXPROCS(0) == 1 {
			// The second worker is past GOMAXPROCS: the monitor's
			// first sample gives it room, at its tick.
			time.Sleep(2 * monitorTick)
		}
		synctest.Wait()
		if r := p.Snapshot().Workers.Running; r != 2 {
			t.Fatalf("running %d, want max 2", r)
		}
		if err := p.Tune(4, 6); err != nil {
			t.Fatal(err)
		}
		// Past GOMAXPROCS, workers beyond min start within the growth
		// room: at once as far as the last sample allows, the rest at
		// the monitor's next tick.
		time.Sleep(2 * monitorTick)
		synctest.Wait()
		if r := p.Snapshot().Workers.Running; r != 6 {
			t.Fatalf("running %d after Tune(4, 6) in a burst, want 6", r)
		}
		close(gate)
		synctest.Wait()
		if err := p.Tune(1, 1); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if s := p.Snapshot(); s.Workers.Running != 1 || s.Workers.Max != 1 {
			t.Fatalf("after Tune(1, 1): %+v", s.Workers)
		}
		if err := p.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}

// fakeMemory is a backpressure.Source with a settable use.
type fakeMemory struct{ used atomic.Int64 }

func (f *fakeMemory) Read(r *backpressure.Reading) { r.Used = f.used.Load() }

// underPressure returns a pool whose own breaker (closed at the end of the
// test) refuses for memory pressure; call it inside a synctest bubble.
func underPressure(t *testing.T) *Pool[int] {
	t.Helper()
	src := &fakeMemory{}
	src.used.Store(10)
	b, err := backpressure.NewBreaker(backpressure.WithBudget(1000), backpressure.WithSource(src))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	p := mustNew[int](t, WithBreaker(b))
	src.used.Store(990)
	time.Sleep(time.Second) // the breaker's sampler runs
	synctest.Wait()
	return p
}

func TestBreakerRejects(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := underPressure(t)
		defer p.Close(context.Background())
		noop := func(context.Context) error { return nil }
		err := p.Submit(context.Background(), 1, noop)
		var re *RejectError
		if !errors.Is(err, ErrMemoryPressure) || !errors.As(err, &re) || re.Reason != RejectMemoryPressure {
			t.Fatalf("Submit under pressure: %v", err)
		}
		if err := p.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if s := p.Snapshot(); s.Rejected.MemoryPressure != 1 {
			t.Fatalf("rejections %+v", s.Rejected)
		}
	})
}

// TestGoexit: a task that calls runtime.Goexit becomes a Panicked letter;
// its group goes on and the worker count holds.
func TestGoexit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := mustNew[int](t, WithWorkers(1, 1))
		_, letters := collect(p)
		_ = p.Submit(context.Background(), 1, func(context.Context) error { runtime.Goexit(); return nil })
		var ran atomic.Bool
		_ = p.Submit(context.Background(), 1, func(context.Context) error { ran.Store(true); return nil })
		synctest.Wait()
		if s := p.Snapshot(); s.Workers.Running != 1 || !ran.Load() {
			t.Fatalf("running %d, next ran %v", s.Workers.Running, ran.Load())
		}
		if err := p.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		dls := letters()
		if len(dls) != 1 || dls[0].Reason != ReasonPanicked || !errors.Is(dls[0].Err, ErrGoexit) {
			t.Fatalf("letters %+v", dls)
		}
	})
}

// TestCanceledNotRetried: a task that returns context.Canceled is a
// Canceled letter at once, without retries.
func TestCanceledNotRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := mustNew[int](t, WithRetry(RetryPolicy{MaxAttempts: 5}))
		_, letters := collect(p)
		_ = p.Submit(context.Background(), 1, func(context.Context) error {
			return fmt.Errorf("gave up: %w", context.Canceled)
		})
		if err := p.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		dls := letters()
		if len(dls) != 1 || dls[0].Reason != ReasonCanceled || dls[0].Attempts != 1 {
			t.Fatalf("letters %+v", dls)
		}
	})
}

// TestGoSpreads: Go accepts tasks without a group, spreads them over
// shards, and runs them all.
func TestGoSpreads(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := mustNew[int](t, WithWorkers(1, 1), WithShards(64))
		gate := make(chan struct{})
		_ = p.Go(context.Background(), func(context.Context) error { <-gate; return nil })
		synctest.Wait()
		var n atomic.Int64
		for range 200 {
			if err := p.Go(context.Background(), func(context.Context) error { n.Add(1); return nil }); err != nil {
				t.Fatal(err)
			}
		}
		used := 0
		for _, q := range p.Snapshot().ShardQueued {
			if q != 0 {
				used++
			}
		}
		close(gate)
		if err := p.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if used < 32 || n.Load() != 200 {
			t.Fatalf("200 tasks queued on %d of 64 shards; ran %d", used, n.Load())
		}
	})
}

// TestZeroMinWorkers: with min 0 every worker exits when idle, and the next
// submission starts one again.
func TestZeroMinWorkers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := mustNew[int](t, WithWorkers(0, 2), WithIdleTimeout(time.Second))
		done := make(chan struct{})
		_ = p.Submit(context.Background(), 1, func(context.Context) error { close(done); return nil })
		<-done
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if r := p.Snapshot().Workers.Running; r != 0 {
			t.Fatalf("running %d after idling with min 0", r)
		}
		again := make(chan struct{})
		_ = p.Submit(context.Background(), 2, func(context.Context) error { close(again); return nil })
		<-again
		if err := p.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}

// TestCloseUndelivered: when nobody reads the dead letters, Close's
// deadline still ends it, and the letters that found no room are returned
// instead of dropped.
func TestCloseUndelivered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := mustNew[int](t, WithWorkers(1, 1), WithShards(1), WithDeadLetterBuffer(1))
		const n = 6
		for range n {
			_ = p.Submit(context.Background(), 1, func(context.Context) error { return Permanent(errors.New("x")) })
		}
		synctest.Wait() // one letter buffered, the worker blocked on the second
		// A deadline shorter than DeadLetterWait: the waiting letter is
		// still the worker's when Close gives up.
		ctx, cancel := context.WithTimeout(context.Background(), DeadLetterWait/2)
		defer cancel()
		err := p.Close(ctx)
		var ce *CloseError[int]
		if !errors.As(err, &ce) {
			t.Fatalf("Close: %v", err)
		}
		buffered := 0
		for range p.DeadLetters() {
			buffered++
		}
		if buffered+len(ce.Undelivered) != n || ce.Shutdown != n-2 {
			t.Fatalf("buffered %d + undelivered %d != %d; shutdown %d", buffered, len(ce.Undelivered), n, ce.Shutdown)
		}
		s := p.Snapshot()
		if s.DeadLetters.Failed != 2 || s.DeadLetters.Shutdown != n-2 || s.DeadLetterStalls == 0 {
			t.Fatalf("letters %+v stalls %d", s.DeadLetters, s.DeadLetterStalls)
		}
	})
}
