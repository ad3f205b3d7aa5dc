package pool

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestCloseWithBlockedSubmittersLosesNoTask: many submitters blocked on
// tiny group and pool bounds, some with contexts that end, tasks that
// complete, fail, panic or take a while, a dead-letter reader that lags
// or is absent, and Close with a short deadline at a random moment. After
// Close every task whose Submit returned nil ran to completion or was
// lettered (channel, Undelivered or counted untaken) exactly once, no
// refused task ran or was lettered, and the counters balance:
// Submitted = Completed + DeadLetters.Total() + Queued, Rejected by
// reason = the refusals the submitters saw.
func TestCloseWithBlockedSubmittersLosesNoTask(t *testing.T) {
	for seed := range uint64(40) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { closeStress(t, seed) })
		})
	}
}

func closeStress(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 7))
	opts := []Option{
		WithShards(1 + rng.IntN(3)),
		WithMaxQueued(1 + rng.IntN(6)),
		WithGroupQueueSize(1 + rng.IntN(2)),
		WithWorkers(1, 1+rng.IntN(3)),
		WithDeadLetterBuffer(1),
		withCPUReader(blockedCPU),
	}
	if rng.IntN(2) == 0 {
		opts = append(opts, WithRetry(RetryPolicy{MaxAttempts: 3, Base: time.Millisecond, Max: 5 * time.Millisecond}))
	}
	p := mustNew[int](t, opts...)

	const submitters, perSubmitter = 12, 6
	var mu sync.Mutex
	ran := map[int]int{} // id → successful runs
	tl := newTally()     // what the submitters saw

	reader := rng.IntN(3) // 0 reads, 1 lags, 2 never reads until Close
	var letters []DeadLetter[int]
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		if reader == 2 {
			return
		}
		for dl := range p.DeadLetters() {
			if reader == 1 {
				time.Sleep(3 * time.Millisecond)
			}
			letters = append(letters, dl)
		}
	}()

	task := func(id int, kind int, d time.Duration) Task {
		return func(context.Context) error {
			time.Sleep(d)
			switch kind {
			case 0:
				panic("boom")
			case 1:
				return errors.New("fail")
			}
			mu.Lock()
			ran[id]++
			mu.Unlock()
			return nil
		}
	}
	var wg sync.WaitGroup
	for s := range submitters {
		srng := rand.New(rand.NewPCG(seed, uint64(s)+100))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perSubmitter {
				id := s*perSubmitter + i
				kind := srng.IntN(8)
				d := time.Duration(srng.IntN(4)) * time.Millisecond
				ctx := context.Background()
				var cancel context.CancelFunc = func() {}
				if srng.IntN(3) == 0 {
					ctx, cancel = context.WithTimeout(ctx, time.Duration(1+srng.IntN(5))*time.Millisecond)
				}
				var err error
				switch srng.IntN(4) {
				case 0:
					err = p.Go(ctx, task(id, kind, d))
				case 1:
					err = p.TrySubmit(srng.IntN(4), task(id, kind, d))
				default:
					err = p.Submit(ctx, srng.IntN(4), task(id, kind, d))
				}
				ctxErr := ctx.Err()
				cancel()
				tl.record(t, id, err, ctxErr)
			}
		}()
	}

	time.Sleep(time.Duration(rng.IntN(8)) * time.Millisecond)
	cctx, ccancel := context.WithTimeout(context.Background(), time.Duration(rng.IntN(4))*time.Millisecond)
	cerr := p.Close(cctx)
	ccancel()
	wg.Wait() // every submitter must have returned
	<-readerDone

	var undelivered []DeadLetter[int]
	shutdown := -1
	if cerr != nil {
		var ce *CloseError[int]
		if !errors.As(cerr, &ce) {
			t.Fatalf("Close: %v", cerr)
		}
		undelivered, shutdown = ce.Undelivered, ce.Shutdown
	}
	if reader == 2 {
		// Nobody read: drain what the channel held at Close.
		for dl := range p.DeadLetters() {
			letters = append(letters, dl)
		}
	}

	st := p.Snapshot()
	// Every accepted task is accounted for once.
	shutdownLetters := 0
	for _, dl := range append(letters, undelivered...) {
		if dl.Reason == ReasonShutdown {
			shutdownLetters++
		}
	}
	nAccepted := 0
	nRan := 0
	for id := range tl.accepted {
		nAccepted++
		if ran[id] > 1 {
			t.Errorf("task %d ran %d times", id, ran[id])
		}
		if ran[id] == 1 {
			nRan++
		}
	}
	for id := range ran {
		if !tl.accepted[id] {
			t.Errorf("task %d ran but its Submit failed", id)
		}
	}
	total := len(letters) + len(undelivered) + int(st.DeadLettersUntaken)
	if nRan+total != nAccepted {
		t.Errorf("accepted %d = ran %d + letters %d (channel %d, undelivered %d, untaken %d)? no",
			nAccepted, nRan, total, len(letters), len(undelivered), st.DeadLettersUntaken)
	}
	if st.Submitted != uint64(nAccepted) {
		t.Errorf("Submitted %d, accepted %d", st.Submitted, nAccepted)
	}
	if st.Completed != uint64(nRan) {
		t.Errorf("Completed %d, ran %d", st.Completed, nRan)
	}
	if st.Queued != 0 {
		t.Errorf("Queued %d after Close", st.Queued)
	}
	if st.Submitted != st.Completed+st.DeadLetters.Total()+uint64(st.Queued) {
		t.Errorf("Submitted %d != Completed %d + DeadLetters %d + Queued %d",
			st.Submitted, st.Completed, st.DeadLetters.Total(), st.Queued)
	}
	if st.DeadLetters.Total() != uint64(total) {
		t.Errorf("DeadLetters.Total %d, letters seen %d", st.DeadLetters.Total(), total)
	}
	if shutdown >= 0 && uint64(shutdown) != st.DeadLetters.Shutdown {
		t.Errorf("CloseError.Shutdown %d, Stats Shutdown %d", shutdown, st.DeadLetters.Shutdown)
	}
	if reader != 2 && shutdown >= 0 && shutdownLetters+int(st.DeadLettersUntaken) < shutdown {
		t.Errorf("Shutdown %d, Shutdown letters seen %d", shutdown, shutdownLetters)
	}
	if got, want := st.Rejected.Closed, uint64(tl.closed); got != want {
		t.Errorf("Rejected.Closed %d, want %d", got, want)
	}
	if got, want := st.Rejected.QueueFull, uint64(tl.full); got != want {
		t.Errorf("Rejected.QueueFull %d, want %d (full %d, ctx %d)", got, want, tl.full, tl.ctx)
	}
}

// TestBlockedSubmittersOnFullPoolSleep: two Submits blocked on a full pool
// (WithMaxQueued) must wait, not wake each other: a failed take of room
// that gave nothing back must not wake the other waiters, whose own
// failed retry would wake it in turn, for ever (a busy loop while the
// pool stays full). The hook counts failed takes; past 1,000 it frees the
// pool so that the test ends.
func TestBlockedSubmittersOnFullPoolSleep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var failed atomic.Int64
		gate := make(chan struct{})
		var once sync.Once
		p := mustNew[int](t, WithShards(1), WithMaxQueued(1), WithWorkers(1, 1), withCPUReader(blockedCPU),
			optionFunc(func(c *config) error {
				c.overdrawn = func() {
					if failed.Add(1) == 1000 {
						once.Do(func() { close(gate) })
					}
				}
				return nil
			}))
		if err := p.Submit(context.Background(), 1, func(context.Context) error { <-gate; return nil }); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		errs := make(chan error, 2)
		for g := range 2 {
			go func() { errs <- p.Submit(context.Background(), 2+g, func(context.Context) error { return nil }) }()
		}
		synctest.Wait()
		n := failed.Load()
		once.Do(func() { close(gate) })
		for range 2 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		closePool(t, p)
		if n > 10 {
			t.Fatalf("%d failed takes of pool-wide room by 2 blocked submitters: they wake each other instead of waiting", n)
		}
	})
}

// TestBatcherCloseWithBlockedSubmittersLosesNoMessage is
// TestCloseWithBlockedSubmittersLosesNoTask for a Batcher, whose messages
// can be told apart: every message whose Submit returned nil is handled
// by exactly one call or is in exactly one letter (channel or
// Undelivered, or its letter counted untaken), and no refused message is
// either; the counters balance and Rejected counts the refusals seen.
func TestBatcherCloseWithBlockedSubmittersLosesNoMessage(t *testing.T) {
	for seed := range uint64(40) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { batcherCloseStress(t, seed) })
		})
	}
}

func batcherCloseStress(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 11))
	var mu sync.Mutex
	handled := map[int]int{}
	fn := func(_ context.Context, _ int, msgs []int) error {
		time.Sleep(time.Duration(len(msgs)%3) * time.Millisecond)
		mu.Lock()
		defer mu.Unlock()
		switch msgs[0] % 7 {
		case 0:
			panic("boom")
		case 1:
			return errors.New("fail")
		case 2:
			if len(msgs) > 1 {
				handled[msgs[0]]++
				return Partial(1, errors.New("partial"))
			}
		}
		for _, m := range msgs {
			handled[m]++
		}
		return nil
	}
	opts := []Option{
		WithShards(1 + rng.IntN(3)),
		WithMaxQueued(1 + rng.IntN(6)),
		WithGroupQueueSize(1 + rng.IntN(3)),
		WithWorkers(1, 1+rng.IntN(3)),
		WithMaxBatch(1 + rng.IntN(4)),
		WithDeadLetterBuffer(1),
		withCPUReader(blockedCPU),
	}
	if rng.IntN(2) == 0 {
		opts = append(opts, WithRetry(RetryPolicy{MaxAttempts: 3, Base: time.Millisecond, Max: 5 * time.Millisecond}))
	}
	b, err := NewBatcher[int, int](fn, opts...)
	if err != nil {
		t.Fatal(err)
	}
	reader := rng.IntN(3)
	lettered := map[int]int{}
	letters := 0
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		if reader == 2 {
			return
		}
		for dl := range b.DeadLetters() {
			if reader == 1 {
				time.Sleep(3 * time.Millisecond)
			}
			letters++
			for _, m := range dl.Msgs {
				lettered[m]++
			}
		}
	}()
	const submitters, perSubmitter = 12, 6
	tl := newTally()
	var wg sync.WaitGroup
	for s := range submitters {
		srng := rand.New(rand.NewPCG(seed, uint64(s)+100))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perSubmitter {
				id := s*perSubmitter + i
				ctx := context.Background()
				var cancel context.CancelFunc = func() {}
				if srng.IntN(3) == 0 {
					ctx, cancel = context.WithTimeout(ctx, time.Duration(1+srng.IntN(5))*time.Millisecond)
				}
				var err error
				if srng.IntN(4) == 0 {
					err = b.TrySubmit(srng.IntN(4), id)
				} else {
					err = b.Submit(ctx, srng.IntN(4), id)
				}
				ctxErr := ctx.Err()
				cancel()
				tl.record(t, id, err, ctxErr)
			}
		}()
	}
	time.Sleep(time.Duration(rng.IntN(8)) * time.Millisecond)
	cctx, ccancel := context.WithTimeout(context.Background(), time.Duration(rng.IntN(4))*time.Millisecond)
	cerr := b.Close(cctx)
	ccancel()
	wg.Wait()
	<-readerDone
	if cerr != nil {
		var ce *BatchCloseError[int, int]
		if !errors.As(cerr, &ce) {
			t.Fatalf("Close: %v", cerr)
		}
		for _, dl := range ce.Undelivered {
			letters++
			for _, m := range dl.Msgs {
				lettered[m]++
			}
		}
	}
	if reader == 2 {
		for dl := range b.DeadLetters() {
			letters++
			for _, m := range dl.Msgs {
				lettered[m]++
			}
		}
	}
	st := b.Snapshot()
	missing := 0
	for id := range tl.accepted {
		n := handled[id] + lettered[id]
		switch {
		case n > 1:
			t.Errorf("message %d handled %d times and in %d letters", id, handled[id], lettered[id])
		case n == 0:
			missing++
		}
	}
	for id := range handled {
		if !tl.accepted[id] {
			t.Errorf("message %d handled but its Submit failed", id)
		}
	}
	for id := range lettered {
		if !tl.accepted[id] {
			t.Errorf("message %d lettered but its Submit failed", id)
		}
	}
	if st.DeadLettersUntaken == 0 && missing != 0 {
		t.Errorf("%d accepted messages neither handled nor lettered", missing)
	}
	if st.Submitted != uint64(len(tl.accepted)) {
		t.Errorf("Submitted %d, accepted %d", st.Submitted, len(tl.accepted))
	}
	if st.Queued != 0 || st.Submitted != st.Completed+st.DeadLetters.Total() {
		t.Errorf("Submitted %d != Completed %d + DeadLetters %d + Queued %d",
			st.Submitted, st.Completed, st.DeadLetters.Total(), st.Queued)
	}
	if st.Rejected.Closed != uint64(tl.closed) || st.Rejected.QueueFull != uint64(tl.full) {
		t.Errorf("Rejected %+v, seen closed %d full %d", st.Rejected, tl.closed, tl.full)
	}
}

// TestBlockedSubmitWokenByItsShardsCredit: with one shard and a bound
// not kept exactly (WithMaxQueued(32): chunks of 2), a Submit waiting for
// pool-wide room must get in when a task of its own shard finishes: the
// room is the shard's own credit, which a TrySubmit takes at once. Before,
// the credit stayed in the shard until it passed a chunk, and the waiter
// slept on while the pool held 31 tasks of 32 (for ever, here, as the
// others wait for it).
func TestBlockedSubmitWokenByItsShardsCredit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := mustNew[int](t, WithShards(1), WithMaxQueued(32), WithWorkers(1, 1), withCPUReader(blockedCPU))
		if p.c.creditChunk < 2 {
			t.Fatalf("chunk %d: the bound is kept exactly", p.c.creditChunk)
		}
		first, rest := make(chan struct{}), make(chan struct{})
		if err := p.Submit(context.Background(), 0, func(context.Context) error { <-first; return nil }); err != nil {
			t.Fatal(err)
		}
		for range 31 {
			if err := p.Submit(context.Background(), 1, func(context.Context) error { <-rest; return nil }); err != nil {
				t.Fatal(err)
			}
		}
		waited := make(chan error, 1)
		go func() { waited <- p.Submit(context.Background(), 2, func(context.Context) error { return nil }) }()
		synctest.Wait()
		select {
		case err := <-waited:
			t.Fatalf("Submit on a full pool returned %v, want it to wait", err)
		default:
		}
		close(first) // one task finishes: room for one
		synctest.Wait()
		q := p.Snapshot().Queued
		select {
		case err := <-waited:
			if err != nil {
				t.Fatal(err)
			}
		default:
			close(rest)
			<-waited
			closePool(t, p)
			t.Fatalf("a Submit still waits with the pool holding %d tasks of 32", q)
		}
		close(rest)
		closePool(t, p)
	})
}

// tally counts what concurrent submitters were told: the ids accepted, and
// the refusals by kind.
type tally struct {
	mu                sync.Mutex
	accepted          map[int]bool
	closed, full, ctx int
}

func newTally() *tally { return &tally{accepted: map[int]bool{}} }

// record files err, the answer to the submission of id whose context's
// error after the call was ctxErr; an answer of any other kind fails t.
func (tl *tally) record(t *testing.T, id int, err, ctxErr error) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	switch {
	case err == nil:
		tl.accepted[id] = true
	case errors.Is(err, ErrClosed):
		tl.closed++
	case errors.Is(err, ErrQueueFull):
		tl.full++
	case ctxErr != nil && errors.Is(err, ctxErr):
		tl.ctx++
	default:
		t.Errorf("submission %d: unexpected error %v", id, err)
	}
}
