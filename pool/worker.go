package pool

// Invariants:
//
//   - A worker serves one shard it popped from the run queue: it takes the
//     first ready group of the shard and becomes its holder. If more groups
//     are ready it pushes the shard back at once, so that other workers
//     serve them while this one runs: a group that blocks holds back only
//     its own later tasks.
//   - A turn of a group is at most batchSize tasks and ends early when the
//     coarse clock has moved by maxTurn; then, if the group still has
//     tasks and some group waits for a worker (on the shard's ready list or
//     in the run queue), it goes to the back of its shard's ready list
//     (fairness); if none waits, a new turn begins at once.
//     Within the same budget the worker may go on with the next ready group
//     of the shard without a trip through the run queue, unless more
//     workers than max run. A Batcher's turn
//     (oneCall) is one call of up to turnMax tasks.
//   - A task that fails and will be retried stays at its queue's head; its
//     group stays held, parked on its timer, until the timer hands it back
//     to the ready list. No later task of the group starts before it.
//   - The batch a holder copied out (ts.batch) belongs to that holder; the
//     queue's buffer keeps the same tasks until finish drops them. For a
//     Pool a worker copies at most copyMax tasks at a time (see
//     firstCopy).
//   - Under a running task sit only workerMain, run, serve, the face's turn
//     function and the call: everything between two tasks is done in
//     functions that return first (openTurn, take, nextTurn; a Pool's
//     begin and settle), so that a task that blocks at once does not grow
//     the worker's starting stack.

import (
	"context"
	"runtime/pprof"
	"time"

	"github.com/shoal-go/shoal/shard"
)

// maxTurn bounds a group's turn in time: after a task that ends once the
// coarse clock moved by this much, the group yields its worker.
const maxTurn = 2 * time.Millisecond

// firstCopy is the most tasks a new worker copies out of a group at once
// (a Pool's; a Batcher's call takes what it may). A worker doubles it, up
// to the pool's batch size, each time it runs all it copied within one
// turn, and brings it back to what the turn ran (at least firstCopy) when
// the turn ends on the clock with copies left: a worker of quick tasks
// copies many at once after a few turns, and one whose tasks block, whose
// turn ends after a task or two, never copies, nor keeps a buffer for,
// more than it runs.
const firstCopy = 4

// workerSlot is a worker and its turn state, allocated together.
type workerSlot[K shard.Key, P any] struct {
	w  worker
	ts turnState[K, P]
}

func (p *core[K, P, L]) startWorker() {
	slot := &workerSlot[K, P]{}
	w, ts := &slot.w, &slot.ts
	w.wake = make(chan struct{}, 1)
	// A worker started past GOMAXPROCS was started because the others
	// block (see sampleCPU) or stall (rescue), and its tasks most likely
	// block too: it starts slow, so that while its first task blocks
	// producers do not count on it (wake), until its first whole interval
	// judges it (see slowDrains).
	w.slow = p.ctl.running.Load() > p.ctl.procs
	ts.w, ts.copyMax = w, uint32(min(firstCopy, p.turnMax))
	if p.oneCall {
		// A Batcher's call takes what it may, and its sizes are counted
		// (Stats.Batches.Sizes).
		ts.copyMax = uint32(p.turnMax)
		w.stats.sizes = new(sizeStats)
	}
	ts.batch = ts.first[:]
	if !p.ctl.register(w) {
		// Close's stop has begun: the place counted for this worker
		// goes back.
		p.ctl.running.Add(-1)
		return
	}
	go p.workerMain(w, ts)
}

// turnState is what a worker keeps while it holds a group.
type turnState[K shard.Key, P any] struct {
	// The fields read or written for every task come first, beside the
	// worker's own (see workerSlot) and before the first batch.
	//
	// w is the worker that owns this turnState; g is the group it holds;
	// batch holds the tasks it copied out, done of which finished
	// (completed or lettered); the turn's time is up at turnEnd.
	w       *worker
	g       *gqueue[K, P]
	batch   []entry[K, P]
	turnEnd int64
	done    uint32
	// A Pool's attempt in progress (see Pool.runTurn): whether the task
	// returned, and whether it panicked; the attempts before it and the
	// last one's error, its start time, the cancel of its context, its
	// entry while it runs.
	returned bool
	panicked bool
	prev     int
	prevErr  error
	start    int64
	cancel   context.CancelFunc
	cur      *entry[K, P]
	// Read or written for every turn: the shard, the turn's budget
	// (what is left of serve's), whether the shard must go back to the
	// run queue (other groups of it are ready), and the most tasks take
	// copies at once (see firstCopy).
	s       *shardq[K, P]
	idx     uint32
	budget  uint32
	copyMax uint32
	repush  bool
	// first is the batch until a turn copies more than firstCopy tasks:
	// beside the state a task's end reads, and no allocation.
	first [firstCopy]entry[K, P]

	// vals holds a Batcher's messages of the turn, the slice its function
	// receives; reused.
	vals []P
	// The observer's start time of the attempt, and a recovered panic.
	obsStart int64
	pv       any
	stack    []byte
	// stopped is the clock when a task (a Batcher's call) that did not
	// return stopped, read before its letter: the attempt's end should
	// the call come back (panic(nil) under GODEBUG=panicnil=1).
	stopped int64
}

func (p *core[K, P, L]) workerMain(w *worker, ts *turnState[K, P]) {
	// A goroutine inherits its creator's profiler labels, and a worker is
	// started by whichever submitter or hand-off grows the pool: without
	// this, every later task of any group would be credited to them.
	pprof.SetGoroutineLabels(context.Background())
	defer p.workerExit(w, ts)
	for {
		idx, ok := p.ctl.findWork(w)
		if !ok {
			return
		}
		p.ctl.afterRun(w, p.run(w, ts, idx))
	}
}

// workerExit ends a worker's goroutine: its counters published and its
// place given up, or, when its task called runtime.Goexit, handed on by
// afterGoexit.
func (p *core[K, P, L]) workerExit(w *worker, ts *turnState[K, P]) {
	if !w.goexit && p.unwound != nil {
		// A Goexit that a deferred panic interrupted: endCall took it
		// for a panic, and call never returned (see Pool.unwound).
		p.unwound(w, ts)
	}
	if w.goexit {
		p.afterGoexit(w, ts)
	} else {
		w.flush()
		p.ctl.retire(w)
	}
	p.ctl.wg.Done()
}

// run serves shard idx with the worker's bookkeeping: the busy count of a
// slow worker, its counters, the breaker's reservation, and its pace
// (slowDrains). It returns the number of tasks it finished.
func (p *core[K, P, L]) run(w *worker, ts *turnState[K, P], idx uint32) int64 {
	c := &p.ctl
	if w.inBusy = w.slow; w.inBusy {
		// Tells producers not to count on this worker for a while.
		c.busy.Add(1)
	}
	p.serve(w, ts, idx)
	n := p.endBatch(w)
	// A new tick of the coarse clock closes the pace interval; the first
	// tick a worker sees only opens one, so it is judged on whole intervals.
	if t := c.coarse.Load(); t != w.tick {
		if w.timed {
			w.slow = w.drains < slowDrains
		}
		w.timed = true
		w.tick, w.drains = t, 0
	}
	w.drains++
	return n
}

// endBatch closes w's batch: out of the busy count, counters published, the
// breaker's reservation of the finished tasks released. It returns how many
// tasks the batch finished since the last publish.
func (p *core[K, P, L]) endBatch(w *worker) int64 {
	if w.inBusy {
		p.ctl.busy.Add(-1)
		w.inBusy = false
	}
	return p.publish(w)
}

// publish makes w's counts visible to Snapshot and releases the breaker's
// reservation of the tasks w finished since the last publish; it returns
// their number.
func (p *core[K, P, L]) publish(w *worker) int64 {
	w.flush()
	n := w.finished
	if p.trackInFlight && n != 0 {
		// Releases the breaker's reservation for the finished tasks.
		p.inFlight.Add(-n)
	}
	w.finished = 0
	return n
}

// serve runs turns of the ready groups of shard idx, up to batchSize tasks
// in all. The turns run from this small frame: the work between them is in
// openTurn, nextTurn and take, so that a task runs close to the top of its
// worker's stack (see Pool.runTurn).
func (p *core[K, P, L]) serve(w *worker, ts *turnState[K, P], idx uint32) {
	k, ok := p.openTurn(ts, idx)
	for ok {
		parked := p.turn(w, ts, k)
		k, ok = p.nextTurn(ts, parked)
	}
}

// openTurn takes the first ready group of shard idx and copies out its
// first tasks (take); it reports false if the shard has no ready group.
func (p *core[K, P, L]) openTurn(ts *turnState[K, P], idx uint32) (uint32, bool) {
	s := &p.shards[idx]
	ts.s, ts.idx = s, idx
	s.mu.Lock()
	s.inRunq = false
	g := s.popReady()
	if g == nil {
		s.mu.Unlock()
		return 0, false
	}
	ts.repush = s.readyHead != nil
	if ts.repush {
		s.inRunq = true
	}
	ts.g = g
	p.freshTurn(ts)
	return p.take(ts), true
}

// take copies the next tasks of ts.g out (they stay in its queue), with
// the shard's mu held, which it releases; it then hands the shard on if
// other groups of it are ready (ts.repush). It returns how many it copied.
func (p *core[K, P, L]) take(ts *turnState[K, P]) uint32 {
	g, s := ts.g, ts.s
	k := min(g.n, ts.budget, ts.copyMax)
	if g.retryLen != 0 {
		// A retried batch is the same messages as the failed one.
		k = min(k, g.retryLen)
	}
	if int(k) > len(ts.batch) {
		// The batch grows with the turns the worker sees, so a worker of
		// one-task turns keeps a small one.
		ts.batch = make([]entry[K, P], min(p.turnMax, max(int(k), 2*len(ts.batch), 4)))
	}
	it := g.first()
	for i := range k {
		e := it.next()
		if e.enq&stampTop != 0 {
			// The task no longer waits: out of the top-groups count,
			// once.
			p.uncountTop(e, g.key)
		}
		ts.batch[i] = *e
	}
	g.taken = k
	if g.waiters != 0 {
		// The taken tasks no longer count against the group's bound.
		g.signalRoom()
	}
	ts.done = 0
	s.mu.Unlock()
	p.handOn(ts)
	return k
}

// freshTurn starts a turn: the whole budget, and maxTurn from now.
func (p *core[K, P, L]) freshTurn(ts *turnState[K, P]) {
	ts.budget = uint32(p.turnMax)
	ts.turnEnd = p.ctl.coarse.Load() + int64(maxTurn)
}

// handOn puts the shard back in the run queue when other groups of it are
// ready (ts.repush), after its mu is released.
func (p *core[K, P, L]) handOn(ts *turnState[K, P]) {
	if ts.repush {
		p.ctl.push(ts.idx)
		p.ctl.wake()
		ts.repush = false
	}
}

// nextTurn ends the turn that ran (parked: its group waits for a retry)
// and decides what the worker does next: more of the same group, the next
// ready group of the shard (both within the budget of serve), or nothing
// (false). Fairness: a group whose turn used up the budget or the time
// goes behind the other ready groups, unless none waits.
func (p *core[K, P, L]) nextTurn(ts *turnState[K, P], parked bool) (uint32, bool) {
	g, s := ts.g, ts.s
	done := ts.done
	if p.oneCall {
		ts.budget = 0
	} else {
		ts.budget -= min(ts.budget, max(done, 1))
		switch {
		case parked:
		case done == ts.copyMax && !ts.w.slow:
			// All it copied ran within the turn: copy more next time,
			// unless the worker's tasks block (slow), whose turns fit
			// in the coarse clock's lag only while it lags.
			ts.copyMax = min(2*ts.copyMax, uint32(p.turnMax))
		case done < g.taken:
			// The turn ended on the clock with copies left: copy no
			// more than it ran.
			ts.copyMax = max(firstCopy, done)
		}
	}
	s.mu.Lock()
	p.finish(s, g, done)
	switch {
	case parked && p.abandon.Load():
		// Close's deadline passed while the attempt ran: the retry would
		// not run, and its timer would hold Close up. The group goes back
		// to the ready list, whose next turn letters its tasks (Shutdown);
		// startAbandon sets abandon before it takes any shard's mutex, so
		// a group parked before that is one it unparks.
		ts.repush = s.pushReady(g)
		ts.budget = 0
	case parked:
		p.parkRetry(s, g)
	case g.n == 0:
		p.releaseHeld(s, g)
	case ts.budget == 0 || p.ctl.coarse.Load() >= ts.turnEnd:
		if s.readyHead == nil && p.ctl.runq.Len() == 0 && p.ctl.running.Load() <= p.ctl.maxW.Load() {
			// Nobody waits for a worker: a new turn, without the
			// hand-off. The worker may stay on this group for as long
			// as it gets tasks (a Batcher's call after call): what it
			// finished is published now, not when it leaves the shard.
			// Not above max (Tune lowered it): the worker hands the
			// group on and leaves (findWork).
			p.freshTurn(ts)
			k := p.take(ts)
			p.publish(ts.w)
			return k, true
		}
		// Fairness: the group goes behind the other ready groups.
		ts.repush = s.pushReady(g)
		ts.budget = 0
	default:
		return p.take(ts), true
	}
	ts.g = nil
	// Not above max (Tune lowered it): another group of the shard waits
	// for a worker within max, as the shard in the run queue does (the
	// ready list is not empty, so the shard is there, see inRunq); the
	// worker leaves (findWork).
	if ts.budget > 0 && s.readyHead != nil && p.ctl.running.Load() <= p.ctl.maxW.Load() {
		if g = s.popReady(); g != nil {
			if s.readyHead != nil && !s.inRunq {
				s.inRunq, ts.repush = true, true
			}
			ts.g = g
			return p.take(ts), true
		}
	}
	s.mu.Unlock()
	p.handOn(ts)
	return 0, false
}

// finish drops the done first tasks of g after its holder ran them. The
// caller holds s.mu.
func (p *core[K, P, L]) finish(s *shardq[K, P], g *gqueue[K, P], done uint32) {
	g.drop(s, done)
	s.queued -= int(done)
	if done != 0 {
		p.returnCredit(s, int64(done))
	}
	// No room to signal: the group's bound counts n - taken, which take
	// lowered (and signalled) and this cannot lower further.
}

// releaseHeld ends the turn of a group whose queue is empty. The caller
// holds s.mu.
func (p *core[K, P, L]) releaseHeld(s *shardq[K, P], g *gqueue[K, P]) {
	g.held = false
	if g.waiters == 0 {
		s.release(g)
	}
	// Tells a waiting Close that a group finished.
	if s.live == 0 && p.closing.Load() {
		p.notifyProgress()
	}
}

// parkRetry parks g, held, on its retry timer. The caller holds s.mu.
func (p *core[K, P, L]) parkRetry(s *shardq[K, P], g *gqueue[K, P]) {
	s.park(g)
	rs := g.rs
	d := rs.delay
	if rs.timer == nil {
		rs.timer = time.AfterFunc(d, func() { p.resume(g) })
		return
	}
	rs.timer.Reset(d)
}

// resume hands a group whose retry timer fired back to the ready list.
func (p *core[K, P, L]) resume(g *gqueue[K, P]) {
	s := &p.shards[g.idx]
	s.mu.Lock()
	if !g.parked {
		// startAbandon took it first.
		s.mu.Unlock()
		return
	}
	s.unpark(g)
	sched := s.pushReady(g)
	s.mu.Unlock()
	if sched {
		p.ctl.push(g.idx)
		p.ctl.wakeNow()
	}
}

// expiresWithin reports whether e's deadline passes within d from now, by
// the pool's clock: a retry due after d would find it expired.
func (p *core[K, P, L]) expiresWithin(e *entry[K, P], d time.Duration) bool {
	dl, ok := e.ctx.Deadline()
	return ok && !p.now().Add(d).Before(dl)
}

// expired reports whether e's deadline has passed, by the pool's clock.
func (p *core[K, P, L]) expired(e *entry[K, P]) bool { return p.expiresWithin(e, 0) }

// afterGoexit runs on a worker whose task called runtime.Goexit, as the
// goroutine unwinds, after the face lettered the dying task or batch and
// counted it in ts.done and w.finished: the group goes back to
// the ready list (or is released), and a new worker takes the ending one's
// place (running is unchanged), or, above max, the place is given up.
func (p *core[K, P, L]) afterGoexit(w *worker, ts *turnState[K, P]) {
	g, s := ts.g, ts.s
	g.clearFailures()
	g.retryLen = 0
	clear(ts.batch)
	s.mu.Lock()
	p.finish(s, g, ts.done)
	sched := false
	if g.n == 0 {
		p.releaseHeld(s, g)
	} else {
		sched = s.pushReady(g)
	}
	s.mu.Unlock()
	if sched {
		p.ctl.push(ts.idx)
	}
	// Flushes the counters too.
	p.endBatch(w)
	p.ctl.retire(w)
	// A new worker takes the ending one's place, unless Tune lowered max
	// below the running count: then the place is given up, as findWork
	// would have.
	if !p.ctl.exitIfAbove(p.ctl.maxLimit) {
		p.ctl.start()
	}
	p.ctl.wakeNow()
}

// taskContext returns the context a task runs with: the submitter's values
// and deadline, without its cancellation.
func taskContext(ctx context.Context) (context.Context, context.CancelFunc) {
	c := context.WithoutCancel(ctx)
	if d, ok := ctx.Deadline(); ok {
		return context.WithDeadline(c, d)
	}
	return c, nil
}

// callHandler calls the panic handler, containing its own panic and
// runtime.Goexit (see contain).
func callHandler(h func(any, []byte), v any, stack []byte) {
	contain(func() { h(v, stack) })
}

// contain runs f, a callback of the application's (the panic or
// dead-letter handler, the slow-task callback), on a goroutine of its own
// and waits for it; it reports whether f returned. A panic in f is
// recovered there, and a runtime.Goexit in f (t.Fatal in a test's
// handler) ends only that goroutine, not the worker, which calls back in
// the middle of settling a task and must finish it. The goroutine costs
// about a microsecond, paid only on these rare paths.
func contain(f func()) bool {
	done := make(chan bool, 1)
	go func() {
		returned := false
		defer func() {
			_ = recover()
			done <- returned
		}()
		f()
		returned = true
	}()
	return <-done
}
