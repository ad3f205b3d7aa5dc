package pool

// Invariants (beside those of the core: queue.go, submit.go, worker.go):
//
//   - A turn of a Batcher's group is one call of fn with the messages its
//     holder copied out (at most WithMaxBatch), in queue order (oneCall);
//     then the group goes behind the other ready groups, or, if none
//     waits, its holder makes the next call at once.
//   - A failed call that will be retried leaves its messages at the head of
//     the queue and records their number in retryLen; the retry takes
//     exactly those messages, so a call is retried whole and no later
//     message of the group is handed to fn before it succeeds or becomes a
//     dead letter.
//   - Each message ends in exactly one successful call or in exactly one
//     letter: a turn's messages are finished together (ts.done = k) once
//     its call returned without a retry, or once they were lettered.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"runtime/debug"
	"time"

	"github.com/shoal-go/shoal/shard"
)

// BatchBytesPerMessage is what the breaker of a Batcher made with
// WithMemoryBudget reserves for each accepted message not yet handled: a
// message is data already on the heap, not a closure about to allocate, so
// it reserves far less than a Pool's task (backpressure's default, 64 KiB).
// A breaker given with WithBreaker keeps its own WithBytesPerTask.
const BatchBytesPerMessage = 4 << 10

// DefaultMaxBatch is the default bound of the messages handed to one call
// of a Batcher's function (WithMaxBatch).
const DefaultMaxBatch = 256

// BatchFunc handles messages of one group: those queued when the call
// starts (at most WithMaxBatch), in Submit order. Calls for one group never
// overlap. A non-nil error fails the whole call; it is retried with the same
// messages, in the same order, according to the RetryPolicy.
//
// msgs belongs to the Batcher and is reused after the call returns: fn must
// not keep it (copy what it needs). fn may reorder or overwrite it: a retry
// and a dead letter get the messages as they were submitted. ctx is the Batcher's: it carries no
// deadline and is canceled when Close's context ends before the backlog
// drained, so that a hanging write can give up (its messages then become
// a Canceled letter if fn returns ctx.Err()).
type BatchFunc[K shard.Key, M any] func(ctx context.Context, group K, msgs []M) error

// Batcher hands the queued messages of each group to one call of its
// BatchFunc: a chat backend that persists a room's pending messages in one
// write runs a room as fast as its backlog allows, not at one message per
// round trip. Groups are isolated as in a Pool: a slow or failing group
// holds back only its own messages. It shares the Pool's scheduler, options,
// backpressure, breaker, scaling and Stats.
//
// Messages of one group reach fn in Submit order, one call at a time per
// group; each accepted message is handled by exactly one call (one that
// returned nil, or reported it handled with Partial) or is in exactly one
// dead letter (BatchDeadLetter, one per failed call, with its messages).
// A Batcher must be created with NewBatcher and closed with Close.
type Batcher[K shard.Key, M any] struct {
	c  core[K, M, BatchDeadLetter[K, M]]
	fn BatchFunc[K, M]
	// ctx is the calls' context, canceled when Close gives up waiting.
	ctx    context.Context
	cancel context.CancelFunc
}

// BatchDeadLetter is a failed call's messages, with why: one letter per
// call that failed for good (its last attempt, a Permanent error, a panic),
// or per batch Close shut down.
type BatchDeadLetter[K shard.Key, M any] struct {
	// Group is the messages' group.
	Group K
	// Msgs are the messages of the call as they were submitted, in Submit
	// order, whatever fn did to its slice; the slice is the letter's own.
	Msgs []M
	// Err is the last error: fn's, an error describing the panic for
	// Panicked, ErrClosed for Shutdown when the messages were never handed
	// to fn.
	Err error
	// Reason says why the messages are here (never Expired: a Batcher's
	// messages have no deadline).
	Reason Reason
	// Attempts is how many times fn was called with these messages.
	Attempts int
	// Panic is the recovered value for Panicked, nil otherwise.
	Panic any
	// Stack is the panicking goroutine's stack for Panicked.
	Stack []byte
	// EnqueuedAt is when the first of the messages was accepted.
	EnqueuedAt time.Time
	// FailedAt is when the messages became a dead letter.
	FailedAt time.Time
}

// Partial tells a Batcher that the first n messages of a failed call were
// handled: they count as completed, and only the rest is retried (or
// becomes a dead letter), still before any later message of the group. err
// is the failure of message n; errors.Is and errors.As see through the
// wrapper, and Permanent(Partial(n, err)) retries nothing. n ≤ 0 is a
// failure of the whole call; n ≥ len(msgs) is a success. Partial(n, nil)
// is nil.
func Partial(n int, err error) error {
	if err == nil {
		return nil
	}
	return &partialError{n: n, err: err}
}

// partialError is Partial's error.
type partialError struct {
	n   int
	err error
}

// Error implements error.
func (e *partialError) Error() string {
	return fmt.Sprintf("shoal: batch failed after %d messages: %v", e.n, e.err)
}

// Unwrap returns the error of the failed message.
func (e *partialError) Unwrap() error { return e.err }

// handledOf returns how many of k messages err reports handled (Partial).
func handledOf(err error, k uint32) uint32 {
	var pe *partialError
	if !errors.As(err, &pe) || pe.n <= 0 {
		return 0
	}
	return uint32(min(pe.n, int(k)))
}

// BatchCloseError is what Batcher.Close returns when its context ended
// before every accepted message was handled.
type BatchCloseError[K shard.Key, M any] struct {
	// Err is the error of Close's context.
	Err error
	// Shutdown is the number of accepted messages that became Shutdown
	// dead letters: those never handed to fn, and those whose call had
	// failed and waited for a retry (their letters carry fn's last error
	// and its attempts).
	Shutdown int
	// Undelivered holds the letters the dead-letter channel had no room
	// for after the deadline, when the Batcher no longer waits for a
	// reader (an unbuffered channel has room only while a reader is
	// receiving).
	Undelivered []BatchDeadLetter[K, M]
}

// Error implements error.
func (e *BatchCloseError[K, M]) Error() string {
	return fmt.Sprintf("shoal: close: %v: %d queued messages shut down, %d letters undelivered",
		e.Err, e.Shutdown, len(e.Undelivered))
}

// Unwrap returns the context's error.
func (e *BatchCloseError[K, M]) Unwrap() error { return e.Err }

// NewBatcher returns a running Batcher that calls fn with the queued
// messages of each group, configured by opts: WithMaxBatch bounds a call,
// and the Pool's options apply (WithGroupQueueSize, WithMaxQueued,
// WithWorkers, WithRetry, WithMemoryBudget, …) except WithBatchSize,
// which WithMaxBatch replaces (NewBatcher refuses it). With
// WithMemoryBudget, the Batcher's breaker reserves BatchBytesPerMessage per
// accepted message, not a Pool's 64 KiB per task.
func NewBatcher[K shard.Key, M any](fn BatchFunc[K, M], opts ...Option) (*Batcher[K, M], error) {
	if fn == nil {
		return nil, invalid("NewBatcher: nil BatchFunc")
	}
	cfg, err := parseOptions(opts)
	if err != nil {
		return nil, err
	}
	if cfg.batchSizeSet {
		return nil, invalid("WithBatchSize is for a Pool; a Batcher's call is bounded by WithMaxBatch")
	}
	b := &Batcher[K, M]{fn: fn}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.c.noCtx, b.c.oneCall, b.c.onAbandon = true, true, b.cancel
	b.c.unwound = b.unwound
	if err := b.c.init(cfg, b.runTurn, cfg.maxBatch); err != nil {
		b.cancel()
		return nil, err
	}
	return b, nil
}

// Submit queues msg for group, to be handed to fn after the messages of
// group submitted before it. When the group's queue is full
// (WithGroupQueueSize) or the Batcher holds WithMaxQueued messages, it waits
// for room until ctx is done (then the error matches ErrQueueFull and
// ctx.Err()), or, with WithNonblocking, returns an error matching
// ErrQueueFull at once. ctx bounds only this wait: an accepted message
// belongs to the Batcher. A nil error means msg was accepted: it will be
// in a successful call or in a dead letter.
//
// Submit does not allocate while the Batcher is busy. Like Pool.Submit,
// it yields its processor once when it leaves its group eight messages
// behind while goroutines queue for the processors.
func (b *Batcher[K, M]) Submit(ctx context.Context, group K, msg M) error {
	return b.c.submit(ctx, shard.Hash(group), group, false, msg, !b.c.cfg.nonblocking)
}

// TrySubmit is Submit that never waits: a full queue is an error matching
// ErrQueueFull.
func (b *Batcher[K, M]) TrySubmit(group K, msg M) error {
	return b.c.submit(context.Background(), shard.Hash(group), group, false, msg, false)
}

// DeadLetters returns the channel of failed calls' messages. It is closed
// by Close after the last letter. Read it (or set
// WithBatchDeadLetterHandler): when it is full, workers wait up to
// DeadLetterWait for room.
func (b *Batcher[K, M]) DeadLetters() <-chan BatchDeadLetter[K, M] { return b.c.dl }

// Close stops admission at once (submissions fail with ErrClosed, blocked
// ones included), lets the queued messages be handled until ctx is done,
// and returns when every goroutine the Batcher started has exited; the
// dead-letter channel is then closed.
//
// If ctx ends first, the context of the calls running is canceled, the
// messages still queued (and those waiting for a retry) become Shutdown
// dead letters, and Close returns a *BatchCloseError once the running
// calls returned; a running call that then fails with an error the policy
// would retry has its messages shut down at once, not retried. A second
// Close waits for the first and returns nil once it has finished, or its
// own ctx's error if that ends first.
func (b *Batcher[K, M]) Close(ctx context.Context) error {
	a, err := b.c.close(ctx)
	if a == nil {
		if err == nil {
			b.cancel()
		}
		return err
	}
	return &BatchCloseError[K, M]{Err: a.err, Shutdown: a.shutdown, Undelivered: a.undelivered}
}

// Tune sets the bounds of the worker count at run time, as Pool.Tune.
func (b *Batcher[K, M]) Tune(minWorkers, maxWorkers int) error {
	return b.c.tune(minWorkers, maxWorkers)
}

// Snapshot returns the Batcher's counters, as Pool.Snapshot. Submitted,
// Completed, Queued and DeadLetters count messages; FailedAttempts, Retried,
// Panicked and SlowTasks count calls; DeadLettersUntaken counts letters (a
// letter holds a call's messages); Batches holds the calls' sizes. Timings'
// wait is from a message's acceptance to the start of its call, and its run
// time the call's (each message of a call is one sample).
func (b *Batcher[K, M]) Snapshot() Stats { return b.c.snapshot() }

// ShardOf returns the shard of the group table that holds group's queue,
// as Pool.ShardOf.
func (b *Batcher[K, M]) ShardOf(group K) int {
	return int(b.c.shardOfHash(shard.Hash(group)))
}

// runTurn hands the k copied messages of ts.g to fn: one call, retried by
// parking the group, or lettered.
func (b *Batcher[K, M]) runTurn(w *worker, ts *turnState[K, M], k uint32) bool {
	c := &b.c
	g := ts.g
	if int(k) > cap(ts.vals) {
		ts.vals = make([]M, min(c.turnMax, max(int(k), 2*cap(ts.vals), 4)))
	}
	vals := ts.vals[:k]
	timed := c.cfg.onTask != nil
	for i := range vals {
		vals[i] = ts.batch[i].val
		timed = timed || ts.batch[i].enq&stampTimed != 0
	}
	defer b.clearTurn(ts, k)
	defer clear(vals)
	prev, prevErr := g.failures()
	if c.abandon.Load() {
		// Counts the messages for BatchCloseError.Shutdown.
		c.shutdownCount.Add(int64(k))
		if prevErr == nil {
			prevErr = ErrClosed
		}
		b.letter(w, ts, 0, k, ReasonShutdown, prevErr, prev, nil, nil)
		b.done(w, ts, k)
		return false
	}
	attempts := prev + 1
	if prev != 0 {
		// A retry that runs (Stats.Retried).
		w.stats.local[cRetried]++
	}
	w.stats.countCall(int(k))
	var start int64
	if timed {
		start = c.nanotime()
	}
	var obsStart int64
	if c.obs != nil {
		obsStart = c.obs.before(c, ts.idx, g.key)
	}
	pv, stack, panicked, err := b.call(w, ts, vals, attempts)
	if panicked {
		// call returned: the panic is settled here, not by unwound.
		ts.panicked, ts.pv, ts.stack = false, nil, nil
	}
	if w.goexit {
		// call came back, so fn did not call runtime.Goexit: it panicked
		// with nil under GODEBUG=panicnil=1, which call's recover stopped
		// and took for a Goexit. call lettered and counted the messages;
		// the call still ends for the timings and the observer, which
		// clears the profiler labels (else the worker would keep the
		// shard's label into its next turns), when it stopped, before
		// its letter and the panic handler (ts.stopped).
		w.goexit = false
		if c.obs != nil {
			c.obs.afterAt(ts.idx, g.key, attempts, obsStart, ts.stopped)
		}
		if timed {
			b.record(ts, k, start, ts.stopped)
		}
		return false
	}
	// The call's end is read before the slow-task callback runs: its
	// time is not the call's.
	var end int64
	if timed {
		end = c.nanotime()
	}
	if c.obs != nil {
		c.obs.after(c, ts.idx, g.key, attempts, obsStart)
	}
	if timed {
		b.record(ts, k, start, end)
	}
	switch {
	case panicked:
		w.stats.local[cPanicked]++
		b.letter(w, ts, 0, k, ReasonPanicked, &PanicError{Value: pv}, attempts, pv, stack)
		if h := c.cfg.panicHandler; h != nil {
			callHandler(h, pv, stack)
		}
	case err == nil:
		w.completed += uint64(k)
	default:
		// Partial: the first n are handled; the rest failed.
		// Judging runs the application's code (Retryable, Backoff,
		// the error's methods), which may call runtime.Goexit: then
		// judgeCall never returns, and workerExit letters the call
		// (unwound).
		ts.panicked, ts.pv = true, ErrGoexit
		n, r, retry, delay, pv, ok := b.judgeCall(err, k, attempts)
		ts.panicked, ts.pv = false, nil
		w.completed += uint64(n)
		if n == k {
			break
		}
		w.stats.local[cFailed]++
		if !ok {
			// Judging the error panicked (see RetryPolicy.judge): the
			// messages not reported handled are lettered, as for a
			// panic.
			w.stats.local[cPanicked]++
			b.letter(w, ts, n, k-n, ReasonPanicked, &PanicError{Value: pv}, attempts, pv, nil)
			if h := c.cfg.panicHandler; h != nil {
				callHandler(h, pv, nil)
			}
			break
		}
		if !retry {
			b.letter(w, ts, n, k-n, r, err, attempts, nil, nil)
			break
		}
		// The handled ones leave the queue (finish drops ts.done tasks);
		// the retry takes exactly the rest.
		ts.done += n
		w.finished += int64(n)
		g.setFailures(attempts, err, delay)
		g.retryLen = k - n
		return true
	}
	b.done(w, ts, k)
	return false
}

// judgeCall is RetryPolicy.judge for a failed call of k messages, with
// Partial's count of handled ones, n, read under the same guard: the
// Batcher retries or letters the k-n others. When judging panics (ok
// false), n is what Partial reported (0 if reading it panicked) and
// n < k.
func (b *Batcher[K, M]) judgeCall(err error, k uint32, attempts int) (n uint32, reason Reason, retry bool, delay time.Duration, pv any, ok bool) {
	defer func() {
		if !ok {
			pv = recover()
		}
	}()
	n = handledOf(err, k)
	if n < k {
		rp := &b.c.cfg.retry
		if reason, retry = rp.verdict(err, attempts); retry {
			delay = rp.delay(attempts)
		}
	}
	return n, reason, retry, delay, nil, true
}

// clearTurn clears the k copied messages of the turn after its call,
// unless the call ended in a runtime.Goexit after a recovered panic
// (ts.panicked still set): unwound letters them first, and afterGoexit
// clears them.
func (b *Batcher[K, M]) clearTurn(ts *turnState[K, M], k uint32) {
	if !ts.panicked {
		clear(ts.batch[:k])
	}
}

// unwound letters the call of a worker whose goroutine ends in the middle
// of it (ts.panicked): inside call, with a panic that call's recover
// stopped, which came from a deferred call while fn ran runtime.Goexit,
// which went on after the recover; or inside judgeCall, whose application
// code called runtime.Goexit (pv ErrGoexit). The call's messages (the group's taken ones) become one
// Panicked letter with that panic's value, and workerMain's deferred
// afterGoexit hands the group and the worker's place on.
func (b *Batcher[K, M]) unwound(w *worker, ts *turnState[K, M]) {
	if !ts.panicked {
		return
	}
	pv, stack := ts.pv, ts.stack
	ts.panicked, ts.pv, ts.stack = false, nil, nil
	if b.c.obs != nil {
		// The call ends here, before its letter and the panic handler, as
		// call's for a Goexit: the observer's end after call never ran
		// (or judgeCall's Goexit followed it; stop again is harmless).
		// Else the handler's goroutine inherits the shard's label.
		b.c.obs.stop()
	}
	prev, _ := ts.g.failures()
	// The call's k messages are the group's taken ones: take copied them.
	b.letterDying(w, ts, ts.g.taken, prev+1, pv, stack)
}

// letterDying finishes the k messages of the call whose worker's goroutine
// is ending (runtime.Goexit) as one Panicked letter with pv, and calls the
// panic handler; workerMain's deferred afterGoexit then hands the group and
// the worker's place on.
func (b *Batcher[K, M]) letterDying(w *worker, ts *turnState[K, M], k uint32, attempts int, pv any, stack []byte) {
	w.goexit = true
	w.stats.local[cPanicked]++
	b.letter(w, ts, 0, k, ReasonPanicked, &PanicError{Value: pv}, attempts, pv, stack)
	b.done(w, ts, k)
	if h := b.c.cfg.panicHandler; h != nil {
		callHandler(h, pv, stack)
	}
}

// done finishes the k messages of the turn.
func (b *Batcher[K, M]) done(w *worker, ts *turnState[K, M], k uint32) {
	g := ts.g
	g.clearFailures()
	g.retryLen = 0
	ts.done += k
	w.finished += int64(k)
}

// record times the call of the turn's k messages: the sampled ones into
// the Batcher's Timings, every one through WithTimings or the task hook.
func (b *Batcher[K, M]) record(ts *turnState[K, M], k uint32, start, end int64) {
	c := &b.c
	for i := range k {
		e := &ts.batch[i]
		if e.enq&stampTimed != 0 {
			c.timings.recordSample(ts.idx, e.enq, start, end)
		}
		if c.cfg.onTask != nil {
			c.cfg.onTask(int(ts.idx), time.Duration(start-enqTime(e.enq)), time.Duration(end-start))
		}
	}
}

// call calls fn, recovering a panic. If fn calls runtime.Goexit, the
// messages become a Panicked letter (ErrGoexit) here and workerMain's
// deferred afterGoexit hands the group and the worker's place on.
func (b *Batcher[K, M]) call(w *worker, ts *turnState[K, M], vals []M, attempts int) (pv any, stack []byte, panicked bool, err error) {
	returned := false
	defer func() {
		if r := recover(); r != nil {
			pv, stack, panicked = r, debug.Stack(), true
			// Kept in ts too: where the panic came from a deferred call
			// while fn ran runtime.Goexit, the Goexit goes on after this
			// recover and call never returns; workerExit then letters
			// the call (unwound).
			ts.pv, ts.stack, ts.panicked = pv, stack, true
			return
		}
		if !returned {
			// The call ends here, not after its letter and the panic
			// handler, should it come back (runTurn).
			ts.stopped = b.c.nanotime()
			if b.c.obs != nil {
				b.c.obs.stop()
			}
			b.letterDying(w, ts, uint32(len(vals)), attempts, ErrGoexit, debug.Stack())
		}
	}()
	err = b.fn(b.ctx, ts.g.key, vals)
	returned = true
	return nil, nil, false, err
}

// letter delivers n of the turn's messages, from off on, as one dead
// letter. They are copied from the turn's batch, not from the slice fn
// was given: fn may have reordered or overwritten that one.
func (b *Batcher[K, M]) letter(w *worker, ts *turnState[K, M], off, n uint32, r Reason, err error, attempts int, pv any, stack []byte) {
	c := &b.c
	w.stats.local[cDead+int(r)] += uint64(n)
	msgs := make([]M, n)
	for i := range msgs {
		msgs[i] = ts.batch[off+uint32(i)].val
	}
	dl := BatchDeadLetter[K, M]{
		Group: ts.g.key, Msgs: msgs, Err: err, Reason: r, Attempts: attempts,
		Panic: pv, Stack: stack,
		EnqueuedAt: c.epoch.Add(time.Duration(enqTime(ts.batch[off].enq))), FailedAt: c.now(),
	}
	c.deliver(w, dl, letterInfo[K]{group: ts.g.key, reason: r, attempts: attempts, err: err})
}

// batchBuckets is the number of buckets of BatchStats.Sizes.
const batchBuckets = 17

// batchBucket returns the bucket of a call of n messages: bucket i holds
// sizes in (2^(i-1), 2^i], bucket 0 size 1.
func batchBucket(n int) int {
	return min(bits.Len(uint(n-1)), batchBuckets-1)
}

// BatchStats describes the calls of a Batcher's function (zero for a
// Pool).
type BatchStats struct {
	// Calls counts calls of fn, retries included.
	Calls uint64
	// Messages counts the messages handed to those calls.
	Messages uint64
	// Sizes[i] counts the calls of 2^(i-1) < n <= 2^i messages (Sizes[0]:
	// one message); the last bucket also holds larger calls.
	Sizes [batchBuckets]uint64
}

// Mean returns the mean messages per call, 0 before the first.
func (s BatchStats) Mean() float64 {
	if s.Calls == 0 {
		return 0
	}
	return float64(s.Messages) / float64(s.Calls)
}

// Quantile returns an upper bound of the q-quantile of call sizes (0 ≤ q ≤
// 1; q outside is taken as the bound it passes, NaN gives 0): the top of
// the bucket that holds the ⌈q·n⌉-th smallest of the n calls in Sizes (the
// smallest for q = 0). It is 0 before the first call. n is Calls once the
// Batcher is quiet; a Snapshot taken while a worker publishes may count a
// call in Calls before its size.
func (s BatchStats) Quantile(q float64) int {
	var n uint64
	for _, c := range s.Sizes {
		n += c
	}
	if n == 0 || math.IsNaN(q) {
		return 0
	}
	q = min(max(q, 0), 1)
	rank := max(uint64(math.Ceil(q*float64(n))), 1)
	var seen uint64
	for i, n := range s.Sizes {
		seen += n
		if seen >= rank {
			return 1 << i
		}
	}
	return 1 << (batchBuckets - 1)
}
