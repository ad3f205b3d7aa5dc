package pool

import (
	"context"
	"math"
	"math/rand/v2"
	"runtime/debug"
	"time"

	"github.com/shoal-go/shoal/shard"
)

// Task is a unit of work. The context carries the submitter's values and
// deadline, but not its later cancellation: once accepted, a task belongs to
// the pool. A non-nil error is retried according to the pool's RetryPolicy.
type Task func(ctx context.Context) error

// Pool runs tasks of many groups: tasks of one group one at a time in
// submission order, tasks of different groups in parallel. See the package
// documentation for the guarantees and costs.
//
// A Pool must be created with New and closed with Close.
type Pool[K shard.Key] struct {
	c core[K, Task, DeadLetter[K]]
}

// New returns a running pool configured by opts. The workers of the minimum
// count start at once; the others start on demand.
func New[K shard.Key](opts ...Option) (*Pool[K], error) {
	cfg, err := parseOptions(opts)
	if err != nil {
		return nil, err
	}
	if cfg.maxBatchSet {
		return nil, invalid("WithMaxBatch is for a Batcher (NewBatcher); a Pool's turn is WithBatchSize")
	}
	p := new(Pool[K])
	p.c.unwound = p.unwound
	if err := p.c.init(cfg, p.runTurn, cfg.batchSize); err != nil {
		return nil, err
	}
	return p, nil
}

// Submit enqueues t to run after the tasks of group submitted before it.
// When the group's queue is full (WithGroupQueueSize), or the pool holds
// WithMaxQueued tasks, it waits for room until ctx is done (then the error
// matches ErrQueueFull and ctx.Err()), or, with WithNonblocking, returns an
// error matching ErrQueueFull at once. Only the submitters of a full group
// wait: other groups' submissions go on. A nil error means the task was
// accepted: it will complete or reach DeadLetters. A non-nil error means it
// was not accepted.
//
// A task that submits to its own group waits on itself when the group is
// full: its worker holds the group until it returns. Use TrySubmit there,
// or a ctx that ends.
//
// If ctx is already done, Submit returns ctx.Err() and accepts nothing. If
// ctx's deadline passes before the task starts, the task does not run and
// becomes an Expired dead letter.
//
// Submit does not allocate while the pool is busy: queues are reused. The
// first task of a group after the pool went idle allocates its queue
// (128 bytes), and a group with more than one task waiting takes chunks
// of 8 tasks from its shard, which keeps those that drained.
//
// While more goroutines wait for a processor than there are processors,
// a Submit that leaves its group eight tasks behind (queued and not yet
// taken by a worker) yields its processor once (runtime.Gosched) before it
// returns, so that submitters outnumbering the processors let the workers
// catch up. TrySubmit and a pool WithNonblocking never yield.
func (p *Pool[K]) Submit(ctx context.Context, group K, t Task) error {
	if t == nil {
		return ErrNilTask
	}
	return p.c.submit(ctx, shard.Hash(group), group, false, t, !p.c.cfg.nonblocking)
}

// TrySubmit is Submit with context.Background() that never waits: a full
// queue is an error matching ErrQueueFull.
func (p *Pool[K]) TrySubmit(group K, t Task) error {
	if t == nil {
		return ErrNilTask
	}
	return p.c.submit(context.Background(), shard.Hash(group), group, false, t, false)
}

// Go runs t, which belongs to no group, as soon as a worker is free. It
// keeps no order with other tasks; otherwise it behaves as Submit. Its dead
// letters carry the zero group.
func (p *Pool[K]) Go(ctx context.Context, t Task) error {
	if t == nil {
		return ErrNilTask
	}
	var zero K
	return p.c.submit(ctx, rand.Uint64(), zero, true, t, !p.c.cfg.nonblocking)
}

// ShardOf returns the shard of the group table that holds group's queue,
// in [0, shards): the shard of Stats.ShardQueued and of the profiler label.
func (p *Pool[K]) ShardOf(group K) int { return int(p.c.shardOfHash(shard.Hash(group))) }

// DeadLetters returns the channel of tasks that did not complete. It is
// closed by Close after the last letter, so `for dl := range
// p.DeadLetters()` ends. Read it (or set WithDeadLetterHandler): when it is
// full, workers wait up to DeadLetterWait for room.
func (p *Pool[K]) DeadLetters() <-chan DeadLetter[K] { return p.c.dl }

// Close stops admission at once (submissions fail with ErrClosed, blocked
// ones included), lets the queued tasks run until ctx is done, and returns
// when every goroutine the pool started has exited; the dead-letter channel
// is then closed.
//
// If ctx ends first, the tasks still queued (and those waiting for a retry)
// become Shutdown dead letters, tasks already running finish (one that
// then fails with an error the policy would retry is a Shutdown letter at
// once, not a retry that Close waits for), and Close
// returns a *CloseError that says how many were shut down and holds any
// letters the dead-letter channel had no room for. A second Close waits for
// the first and returns nil once it has finished, or its own ctx's error if
// that ends first.
//
// Close waits for the pool's tasks and callbacks: called from one of them
// (a task, the dead-letter or panic handler), it waits for itself and
// never returns, past its deadline too. Call it from elsewhere (a
// goroutine the task starts will do).
func (p *Pool[K]) Close(ctx context.Context) error {
	a, err := p.c.close(ctx)
	if a == nil {
		return err
	}
	return &CloseError[K]{Err: a.err, Shutdown: a.shutdown, Undelivered: a.undelivered}
}

// Tune sets the bounds of the worker count at run time. It takes effect at
// once: workers start up to the new minimum, shards already waiting get
// workers up to a higher maximum as the pool's own growth allows (past
// GOMAXPROCS, while busy workers must be blocked), workers above the new maximum
// exit as soon as they finish their current batch (or stop looking for
// work): once Tune has returned, no worker takes a shard while more than
// the new maximum run. Without a scaler, idle workers above a lower
// minimum exit after the idle timeout.
func (p *Pool[K]) Tune(minWorkers, maxWorkers int) error { return p.c.tune(minWorkers, maxWorkers) }

// Snapshot returns the pool's counters, timings, rates and breaker figures.
// It costs O(shards + workers) (about 2 µs more for the histograms), holds
// each shard's lock for a few loads, and may be called at any time, also
// after Close.
func (p *Pool[K]) Snapshot() Stats { return p.c.snapshot() }

// letter delivers a dead letter of group's task e.
func (p *Pool[K]) letter(w *worker, group K, e *entry[K, Task], r Reason, err error, attempts int, pv any, stack []byte) {
	w.stats.local[cDead+int(r)]++
	dl := DeadLetter[K]{
		Group: group, Task: e.val, Err: err, Reason: r, Attempts: attempts,
		Panic: pv, Stack: stack,
		EnqueuedAt: p.c.epoch.Add(time.Duration(enqTime(e.enq))), FailedAt: p.c.now(),
	}
	p.c.deliver(w, dl, letterInfo[K]{group: group, reason: r, attempts: attempts, err: err})
}

// runTurn runs the first k copied tasks of ts.g, stopping when a task is
// parked for a retry (it reports true) or when the turn's time is up after
// at least one task. ts.done counts the tasks that finished.
//
// The task runs three frames below this one (call, then the task), and the
// work before and after an attempt is in functions that are not inlined
// here: a worker then runs a task that blocks at once (a time.Sleep, a
// channel receive) on its starting stack, without growing it
// (TestTaskRunsOnStartingStack).
func (p *Pool[K]) runTurn(w *worker, ts *turnState[K, Task], k uint32) bool {
	for i := range k {
		e := &ts.batch[i]
		counted := false
		if p.begin(w, ts, e, i == 0) {
			err := p.call(ts, e)
			if w.goexit {
				// call came back, so the task did not call
				// runtime.Goexit: it panicked with nil under
				// GODEBUG=panicnil=1, which endCall's recover stopped
				// and took for a Goexit. endCall lettered and counted it;
				// the attempt still ends for the observer.
				w.goexit, counted = false, true
				p.endAttempt(ts, e, ts.prev+1, ts.stopped)
			} else if p.settle(w, ts, e, err) {
				// The parked task and those after it stay in g's buffer.
				clear(ts.batch[i:k])
				return true
			}
		}
		*e = entry[K, Task]{}
		if !counted {
			ts.done++
			w.finished++
		}
		if i+1 < k && p.c.ctl.coarse.Load() >= ts.turnEnd {
			clear(ts.batch[i+1 : k])
			return false
		}
	}
	return false
}

// begin prepares an attempt of e, the first task of the turn if first: it
// records the earlier attempts (ts.prev, ts.prevErr) and the start time,
// and reports false if e becomes a dead letter instead (the pool gave up in
// Close, or e's deadline passed).
//
//go:noinline
func (p *Pool[K]) begin(w *worker, ts *turnState[K, Task], e *entry[K, Task], first bool) bool {
	g := ts.g
	ts.prev, ts.prevErr = 0, nil
	if first && g.rs != nil {
		ts.prev, ts.prevErr = g.failures()
		g.clearFailures()
		if ts.prev != 0 {
			// A retry (Stats.Retried): counted here, off the path
			// of a task without failures; the letter paths below,
			// where it does not run, take the count back before the
			// worker can publish it.
			w.stats.local[cRetried]++
		}
	}
	if p.c.abandon.Load() {
		// Counts the task for CloseError.Shutdown.
		p.c.shutdownCount.Add(1)
		err := ts.prevErr
		if err == nil {
			err = ErrClosed
		}
		if ts.prev != 0 {
			w.stats.local[cRetried]-- // the retry does not run
		}
		p.letter(w, g.key, e, ReasonShutdown, err, ts.prev, nil, nil)
		return false
	}
	if !e.plain() && p.c.expired(e) {
		err := ts.prevErr
		if err == nil {
			err = context.DeadlineExceeded
		}
		if ts.prev != 0 {
			w.stats.local[cRetried]-- // the retry does not run
		}
		p.letter(w, g.key, e, ReasonExpired, err, ts.prev, nil, nil)
		return false
	}
	ts.start = 0
	if p.c.cfg.onTask != nil || e.enq&stampTimed != 0 { // one task in TimingSampleEvery
		ts.start = p.c.nanotime()
	}
	if p.c.obs != nil {
		ts.obsStart = p.c.obs.before(&p.c, ts.idx, g.key)
	}
	return true
}

// settle records the attempt of e begin started and call ran, which
// returned err: a completion, a dead letter, or a retry. It reports true if
// the group must be parked for a retry (the attempts are then recorded in
// the queue).
//
//go:noinline
func (p *Pool[K]) settle(w *worker, ts *turnState[K, Task], e *entry[K, Task], err error) bool {
	g := ts.g
	attempts := ts.prev + 1
	if e.enq&stampTimed != 0 || p.c.cfg.onTask != nil || p.c.obs != nil {
		p.endAttempt(ts, e, attempts, endNow)
	}
	if ts.panicked {
		pv, stack := ts.pv, ts.stack
		ts.cur, ts.panicked, ts.pv, ts.stack = nil, false, nil, nil
		w.stats.local[cPanicked]++
		p.letter(w, g.key, e, ReasonPanicked, &PanicError{Value: pv}, attempts, pv, stack)
		if h := p.c.cfg.panicHandler; h != nil {
			callHandler(h, pv, stack)
		}
		return false
	}
	if err == nil {
		w.completed++
		return false
	}
	w.stats.local[cFailed]++
	if !e.plain() && p.c.expired(e) {
		p.letter(w, g.key, e, ReasonExpired, err, attempts, nil, nil)
		return false
	}
	// Judging runs the application's code (Retryable, Backoff, the
	// error's methods), which may call runtime.Goexit: then judge never
	// returns, and workerExit letters e from this (unwound).
	ts.cur, ts.panicked, ts.pv = e, true, ErrGoexit
	r, retry, delay, pv, ok := p.c.cfg.retry.judge(err, attempts)
	ts.cur, ts.panicked, ts.pv = nil, false, nil
	if !ok {
		// Judging the error panicked: the task's error is as broken as
		// a panic (see judge).
		w.stats.local[cPanicked]++
		p.letter(w, g.key, e, ReasonPanicked, &PanicError{Value: pv}, attempts, pv, nil)
		if h := p.c.cfg.panicHandler; h != nil {
			callHandler(h, pv, nil)
		}
		return false
	}
	if !retry {
		p.letter(w, g.key, e, r, err, attempts, nil, nil)
		return false
	}
	if !e.plain() && p.c.expiresWithin(e, delay) {
		// The retry would come due at or past the deadline, and be
		// lettered Expired then: it is now, and the group goes on
		// instead of waiting out the delay.
		p.letter(w, g.key, e, ReasonExpired, err, attempts, nil, nil)
		return false
	}
	g.setFailures(attempts, err, delay)
	return true
}

// endNow, as endAttempt's stopped, says the attempt ends now: the pool's
// clock never reads it.
const endNow = math.MinInt64

// endAttempt ends attempt number attempts of e for whatever observes
// attempts: the timings (a sampled task), the slow-task callback and the
// observer, which clears the profiler labels. The attempt ended at stopped,
// or, when stopped is endNow, now. settle calls it (with endNow) only when one of
// them is on; runTurn calls it for an attempt that panicked with nil under
// GODEBUG=panicnil=1 (endCall lettered it as a Goexit, and call came back)
// with the time the task stopped (ts.stopped), before its letter and the
// panic handler: else the worker would keep the shard's label into its
// next turns. Out of line: most attempts need none of it.
//
//go:noinline
func (p *Pool[K]) endAttempt(ts *turnState[K, Task], e *entry[K, Task], attempts int, stopped int64) {
	// The attempt's end is read before the slow-task callback runs: its
	// time is not the task's.
	if timed := e.enq&stampTimed != 0; p.c.cfg.onTask != nil || timed {
		start, end := ts.start, stopped
		if end == endNow {
			end = p.c.nanotime()
		}
		if timed {
			p.c.timings.recordSample(ts.idx, e.enq, start, end)
		}
		if p.c.cfg.onTask != nil {
			p.c.cfg.onTask(int(ts.idx), time.Duration(start-enqTime(e.enq)), time.Duration(end-start))
		}
	}
	if p.c.obs == nil {
		return
	}
	if stopped == endNow {
		p.c.obs.after(&p.c, ts.idx, ts.g.key, attempts, ts.obsStart)
	} else {
		p.c.obs.afterAt(ts.idx, ts.g.key, attempts, ts.obsStart, stopped)
	}
}

// call runs the task; endCall, deferred, recovers a panic into ts. If the
// task calls runtime.Goexit, which cannot be stopped, the task becomes a
// Panicked letter (ErrGoexit) there and workerMain's deferred afterGoexit
// hands the group and the worker's place on before the goroutine ends.
func (p *Pool[K]) call(ts *turnState[K, Task], e *entry[K, Task]) error {
	ctx := e.ctx
	if !e.plain() {
		ctx, ts.cancel = taskContext(e.ctx)
	}
	ts.cur, ts.returned = e, false
	defer p.endCall(ts)
	err := e.val(ctx)
	ts.returned = true
	return err
}

// endCall ends call: it cancels the task's context, and records a panic in
// ts or, when the task did not return (runtime.Goexit), letters it.
func (p *Pool[K]) endCall(ts *turnState[K, Task]) {
	w, e := ts.w, ts.cur
	if ts.cancel != nil {
		ts.cancel()
		ts.cancel = nil
	}
	if r := recover(); r != nil {
		// ts.cur stays set until settle takes the panic: where the panic
		// came from a deferred call while the task ran runtime.Goexit,
		// the Goexit goes on after this recover and call never returns;
		// workerExit then finishes the task (unwound).
		ts.pv, ts.stack, ts.panicked = r, debug.Stack(), true
		return
	}
	ts.cur = nil
	if !ts.returned {
		// The attempt ends here, not after its letter and the panic
		// handler, should call come back (endAttempt).
		ts.stopped = p.c.nanotime()
		if p.c.obs != nil {
			p.c.obs.stop()
		}
		p.letterDying(w, ts, e, ErrGoexit, debug.Stack())
	}
}

// unwound finishes the task of a worker whose goroutine ends in the
// middle of it (ts.panicked): inside call, with a panic endCall recovered
// that came from a deferred call while the task ran runtime.Goexit, which
// went on after the recover, so settle never ran; or inside settle's
// judge, whose application code called runtime.Goexit (pv ErrGoexit).
// The task becomes a Panicked letter with that value, counted as endCall
// counts a Goexit, and workerMain's deferred afterGoexit hands the group
// and the worker's place on.
func (p *Pool[K]) unwound(w *worker, ts *turnState[K, Task]) {
	if !ts.panicked {
		return
	}
	e, pv, stack := ts.cur, ts.pv, ts.stack
	ts.cur, ts.panicked, ts.pv, ts.stack = nil, false, nil, nil
	if p.c.obs != nil {
		// The attempt ends here, before its letter and the panic handler,
		// as endCall's for a Goexit: settle, which would have ended it,
		// never ran (or judge's Goexit followed its end; stop again is
		// harmless). Else the handler's goroutine inherits the shard's
		// label.
		p.c.obs.stop()
	}
	p.letterDying(w, ts, e, pv, stack)
}

// letterDying finishes e, the task whose worker's goroutine is ending
// (runtime.Goexit), as one Panicked letter with pv, counted as finished,
// and calls the panic handler; workerMain's deferred afterGoexit then
// hands the group and the worker's place on.
func (p *Pool[K]) letterDying(w *worker, ts *turnState[K, Task], e *entry[K, Task], pv any, stack []byte) {
	w.goexit = true
	ts.done++
	w.finished++
	w.stats.local[cPanicked]++
	p.letter(w, ts.g.key, e, ReasonPanicked, &PanicError{Value: pv}, ts.prev+1, pv, stack)
	if h := p.c.cfg.panicHandler; h != nil {
		callHandler(h, pv, stack)
	}
}
