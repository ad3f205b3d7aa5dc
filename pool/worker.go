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
//     of the shard without a trip through the run queue.
//   - A task that fails and will be retried stays at its queue's head; its
//     group stays held, parked on its timer, until the timer hands it back
//     to the ready list. No later task of the group starts before it.
//   - The batch a holder copied out (w.batch) belongs to that holder; the
//     queue's buffer keeps the same tasks until finish drops them.

import (
	"context"
	"errors"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/shoal-go/shoal/shard"
)

// maxTurn bounds a group's turn in time: after a task that ends once the
// coarse clock moved by this much, the group yields its worker.
const maxTurn = 2 * time.Millisecond

func (p *Pool[K]) startWorker() {
	w := &worker{wake: make(chan struct{}, 1), timer: time.NewTimer(time.Hour)}
	w.timer.Stop()
	p.ctl.register(w)
	// Counts the goroutine that stop waits for.
	p.ctl.wg.Add(1)
	go p.workerMain(w)
}

// turnState is what a worker keeps while it holds a group.
type turnState[K shard.Key] struct {
	batch []entry[K]
	g     *gqueue[K]
	s     *shardq[K]
	idx   uint32
	done  uint32 // tasks of batch finished (completed or lettered)
}

func (p *Pool[K]) workerMain(w *worker) {
	defer p.ctl.wg.Done()
	ts := new(turnState[K])
	defer func() {
		if w.goexit {
			p.afterGoexit(w, ts)
		}
	}()
	for {
		idx, ok := p.ctl.findWork(w)
		if !ok {
			break
		}
		if p.run(w, ts, idx) < p.ctl.yieldBelow {
			// A short batch: let goroutines waiting for a processor
			// (producers, most likely) run before this worker takes the
			// next shard, so that the next turns find more tasks.
			runtime.Gosched()
		}
		if p.ctl.running.Load() > p.ctl.maxW.Load() && p.ctl.exitIfAbove(p.ctl.maxLimit) {
			break
		}
	}
	w.stats.flush()
	p.ctl.retire(w)
}

// run serves shard idx with the worker's bookkeeping: the busy count of a
// slow worker, its counters, the breaker's reservation, and its pace
// (slowDrains). It returns the number of tasks it finished.
func (p *Pool[K]) run(w *worker, ts *turnState[K], idx uint32) int64 {
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
// tasks the batch finished.
func (p *Pool[K]) endBatch(w *worker) int64 {
	if w.inBusy {
		p.ctl.busy.Add(-1)
		w.inBusy = false
	}
	w.stats.flush()
	n := w.finished
	if p.trackInFlight && n != 0 {
		// Releases the breaker's reservation for the finished tasks.
		p.inFlight.Add(-n)
	}
	w.finished = 0
	return n
}

// serve runs turns of the ready groups of shard idx, up to batchSize tasks
// in all.
func (p *Pool[K]) serve(w *worker, ts *turnState[K], idx uint32) {
	s := &p.shards[idx]
	ts.s, ts.idx = s, idx
	s.mu.Lock()
	s.inRunq = false
	g := s.popReady()
	if g == nil {
		s.mu.Unlock()
		return
	}
	repush := s.readyHead != nil
	if repush {
		s.inRunq = true
	}
	budget := uint32(p.cfg.batchSize)
	turnEnd := p.ctl.coarse.Load() + int64(maxTurn)
	for {
		// Copies the next tasks of g out; they stay in its buffer. The
		// batch grows with the turns the worker sees, so a worker of
		// one-task turns keeps a small one.
		k := min(g.n, budget)
		if int(k) > len(ts.batch) {
			ts.batch = make([]entry[K], min(p.cfg.batchSize, max(int(k), 2*len(ts.batch), 4)))
		}
		for i := range k {
			ts.batch[i] = *g.at(i)
		}
		g.taken = k
		if g.waiters != 0 {
			// The taken tasks no longer count against the group's bound.
			g.signalRoom()
		}
		ts.g, ts.done = g, 0
		s.mu.Unlock()
		if repush {
			p.ctl.push(idx)
			p.ctl.wake()
			repush = false
		}
		parked := p.runTurn(w, ts, k, turnEnd)
		done := ts.done
		budget -= min(budget, max(done, 1))
		s.mu.Lock()
		p.finish(s, g, done)
		switch {
		case parked:
			p.parkRetry(s, g)
		case g.n == 0:
			p.releaseHeld(s, g)
		case budget == 0 || p.ctl.coarse.Load() >= turnEnd:
			if s.readyHead == nil && p.ctl.runq.Len() == 0 {
				// Nobody waits for a worker: a new turn, without the
				// hand-off.
				budget = uint32(p.cfg.batchSize)
				turnEnd = p.ctl.coarse.Load() + int64(maxTurn)
				continue
			}
			// Fairness: the group goes behind the other ready groups.
			repush = s.pushReady(g)
			budget = 0
		default:
			continue
		}
		ts.g = nil
		if budget > 0 {
			if g = s.popReady(); g != nil {
				if s.readyHead != nil && !s.inRunq {
					s.inRunq, repush = true, true
				}
				continue
			}
		}
		s.mu.Unlock()
		if repush {
			p.ctl.push(idx)
			p.ctl.wake()
		}
		return
	}
}

// finish drops the done first tasks of g after its holder ran them. The
// caller holds s.mu.
func (p *Pool[K]) finish(s *shardq[K], g *gqueue[K], done uint32) {
	g.drop(done)
	s.queued -= int(done)
	if done != 0 {
		p.returnCredit(s, int64(done))
	}
	// No room to signal: the group's bound counts n - taken, which take
	// lowered (and signalled) and this cannot lower further.
}

// releaseHeld ends the turn of a group whose queue is empty. The caller
// holds s.mu.
func (p *Pool[K]) releaseHeld(s *shardq[K], g *gqueue[K]) {
	g.held = false
	if g.waiters == 0 {
		s.release(g)
	}
	// Tells a waiting Close that a group finished.
	if s.live == 0 && p.closing.Load() {
		p.notifyProgress()
	}
}

// runTurn runs the first k copied tasks of ts.g, stopping when a task is
// parked for a retry (it reports true) or when the turn's time is up after
// at least one task. ts.done counts the tasks that finished.
func (p *Pool[K]) runTurn(w *worker, ts *turnState[K], k uint32, turnEnd int64) bool {
	g := ts.g
	for i := range k {
		e := &ts.batch[i]
		prev, prevErr := 0, error(nil)
		if i == 0 && g.attempts != 0 {
			prev, prevErr = g.attempts, g.lastErr
		}
		if p.attempt(w, ts, e, prev, prevErr) {
			// The parked task and those after it stay in g's buffer.
			clear(ts.batch[i:k])
			return true
		}
		if i == 0 {
			g.attempts, g.lastErr = 0, nil
		}
		*e = entry[K]{}
		ts.done++
		w.finished++
		if i+1 < k && p.ctl.coarse.Load() >= turnEnd {
			clear(ts.batch[i+1 : k])
			return false
		}
	}
	return false
}

// parkRetry parks g, held, on its retry timer. The caller holds s.mu.
func (p *Pool[K]) parkRetry(s *shardq[K], g *gqueue[K]) {
	s.park(g)
	d := p.cfg.retry.delay(g.attempts)
	if g.timer == nil {
		g.timer = time.AfterFunc(d, func() { p.resume(g) })
		return
	}
	g.timer.Reset(d)
}

// resume hands a group whose retry timer fired back to the ready list.
func (p *Pool[K]) resume(g *gqueue[K]) {
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

// attempt runs one attempt of e, whose earlier attempts returned prevErr.
// It reports true if the group must be parked for a retry (the attempts
// are then recorded in the queue).
func (p *Pool[K]) attempt(w *worker, ts *turnState[K], e *entry[K], prev int, prevErr error) bool {
	g := ts.g
	if e.enq&stampTop != 0 {
		// The task no longer waits: out of the top-groups count, once.
		p.uncountTop(e, g.key)
	}
	if p.abandon.Load() {
		// Counts the task for CloseError.Shutdown.
		p.shutdownCount.Add(1)
		err := prevErr
		if err == nil {
			err = ErrClosed
		}
		p.letter(w, g.key, e, Shutdown, err, prev, nil, nil)
		return false
	}
	if !e.plain && p.expired(e) {
		err := prevErr
		if err == nil {
			err = context.DeadlineExceeded
		}
		p.letter(w, g.key, e, Expired, err, prev, nil, nil)
		return false
	}
	var start int64
	timed := e.enq&stampTimed != 0 // one task in TimingSampleEvery
	if p.cfg.onTask != nil || timed {
		start = p.nanotime()
	}
	var obsStart int64
	if p.obs != nil {
		obsStart = p.obs.before(p, ts.idx, g.key)
	}
	err, pv, stack, panicked := p.call(w, ts, e, prev+1)
	if p.obs != nil {
		p.obs.after(p, ts.idx, g.key, prev+1, obsStart)
	}
	if p.cfg.onTask != nil || timed {
		end := p.nanotime()
		if timed {
			p.timings.recordSample(ts.idx, e.enq, start, end)
		}
		if p.cfg.onTask != nil {
			p.cfg.onTask(int(ts.idx), time.Duration(start-enqTime(e.enq)), time.Duration(end-start))
		}
	}
	attempts := prev + 1
	switch {
	case panicked:
		w.stats.local[cPanicked]++
		p.letter(w, g.key, e, Panicked, &PanicError{Value: pv}, attempts, pv, stack)
		if h := p.cfg.panicHandler; h != nil {
			callHandler(h, pv, stack)
		}
		return false
	case err == nil:
		w.stats.local[cCompleted]++
		return false
	}
	w.stats.local[cFailed]++
	if !e.plain && p.expired(e) {
		p.letter(w, g.key, e, Expired, err, attempts, nil, nil)
		return false
	}
	if errors.Is(err, context.Canceled) {
		p.letter(w, g.key, e, Canceled, err, attempts, nil, nil)
		return false
	}
	if !p.cfg.retry.retryable(err, attempts) {
		p.letter(w, g.key, e, Failed, err, attempts, nil, nil)
		return false
	}
	w.stats.local[cRetried]++
	g.attempts, g.lastErr = attempts, err
	return true
}

// expired reports whether e's deadline has passed, by the pool's clock.
func (p *Pool[K]) expired(e *entry[K]) bool {
	d, ok := e.ctx.Deadline()
	return ok && !p.now().Before(d)
}

// call runs the task, recovering a panic. If the task calls
// runtime.Goexit, which cannot be stopped, the task becomes a Panicked
// letter (ErrGoexit) here and workerMain's deferred afterGoexit hands the
// group and the worker's place on before the goroutine ends.
func (p *Pool[K]) call(w *worker, ts *turnState[K], e *entry[K], attempts int) (err error, pv any, stack []byte, panicked bool) {
	ctx, cancel := e.ctx, context.CancelFunc(nil)
	if !e.plain {
		ctx, cancel = taskContext(e.ctx)
	}
	returned := false
	defer func() {
		if cancel != nil {
			cancel()
		}
		if r := recover(); r != nil {
			pv, stack, panicked = r, debug.Stack(), true
			return
		}
		if !returned {
			w.goexit = true
			w.stats.local[cPanicked]++
			p.letter(w, ts.g.key, e, Panicked, &PanicError{Value: ErrGoexit}, attempts, ErrGoexit, debug.Stack())
			if h := p.cfg.panicHandler; h != nil {
				callHandler(h, ErrGoexit, nil)
			}
		}
	}()
	err = e.task(ctx)
	returned = true
	return err, nil, nil, false
}

// afterGoexit runs on a worker whose task called runtime.Goexit, as the
// goroutine unwinds: the dying task is finished, the group goes back to
// the ready list (or is released), and a new worker takes the ending one's
// place (running is unchanged).
func (p *Pool[K]) afterGoexit(w *worker, ts *turnState[K]) {
	w.finished++
	g, s := ts.g, ts.s
	g.attempts, g.lastErr = 0, nil
	clear(ts.batch)
	s.mu.Lock()
	p.finish(s, g, ts.done+1)
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
	p.endBatch(w)
	w.stats.flush()
	p.ctl.retire(w)
	p.ctl.start()
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

// callHandler calls the panic handler, containing its own panic.
func callHandler(h func(any, []byte), v any, stack []byte) {
	defer func() { _ = recover() }()
	h(v, stack)
}
