package pool

// The worker side of control (control.go, whose invariants hold here):
// how a worker finds work, spins, parks, is woken, and exits.

import (
	"runtime"
	"time"
)

// wakeOne wakes the most recently parked worker, if any.
func (c *control) wakeOne() bool {
	c.mu.Lock()
	n := len(c.idleList)
	if n == 0 {
		c.mu.Unlock()
		return false
	}
	w := c.idleList[n-1]
	c.idleList[n-1] = nil
	c.idleList = c.idleList[:n-1]
	w.parked = false
	// Withdraws the parked worker from the count producers read.
	c.idle.Add(-1)
	c.mu.Unlock()
	w.wake <- struct{}{}
	return true
}

// wakeAll wakes every parked worker, so that each re-reads stopping, max and
// the run queue.
func (c *control) wakeAll() {
	c.mu.Lock()
	for i, w := range c.idleList {
		w.parked = false
		c.idleList[i] = nil
		w.wake <- struct{}{}
	}
	c.idleList = c.idleList[:0]
	// Withdraws every parked worker from the count.
	c.idle.Store(0)
	c.mu.Unlock()
}

// unpark takes w off the idle list if nobody has; it reports whether it did.
func (c *control) unpark(w *worker) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !w.parked {
		return false
	}
	c.unlist(w)
	// Withdraws w from the parked count.
	c.idle.Add(-1)
	return true
}

// unlist takes parked worker w off the idle list in O(1): the last parked
// worker takes its place. The caller holds c.mu and adjusts the counts.
func (c *control) unlist(w *worker) {
	w.parked = false
	last := len(c.idleList) - 1
	if i := int(w.idleIdx); i != last {
		x := c.idleList[last]
		c.idleList[i] = x
		x.idleIdx = int32(i)
	}
	c.idleList[last] = nil
	c.idleList = c.idleList[:last]
}

// exitIfAbove lets w exit if more than limit() workers run; it reports
// whether w must exit (running has then been decremented).
func (c *control) exitIfAbove(limit func() int32) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running.Load() > limit() {
		// Gives up w's place; done under mu so that two workers cannot both
		// see room to exit.
		c.running.Add(-1)
		return true
	}
	return false
}

func (c *control) maxLimit() int32 { return c.maxW.Load() }

// afterRun is what w does after it ran a batch of n tasks: it yields its
// processor after a short batch. Whether w must exit because more workers
// than max run is looked at when it takes its next shard (findWork).
func (c *control) afterRun(w *worker, n int64) {
	if n < c.yieldBelow && !w.slow {
		// A short batch: let goroutines waiting for a processor
		// (producers, most likely) run before this worker takes the next
		// shard, so that the next turns find more tasks. A slow worker
		// does not: its tasks blocked, which let them run already, and
		// with thousands of such workers the yields queue on the
		// scheduler's global run queue.
		runtime.Gosched()
	}
}

// findWork returns the next shard for w, or false when w must exit (running
// already decremented).
//
// Every shard w pops is checked against max after the pop (within): a
// check before it would let w take a shard above a max that Tune lowered
// in between, whether w comes from a batch, spins, or was just started by
// a growth that read the old max. The check is the one afterRun made
// before, moved, so a batch costs no more.
func (c *control) findWork(w *worker) (uint32, bool) {
	for {
		// A worker just started or woken does not wake the next one when it
		// finds work (the Go scheduler's spinning M does): measured, that
		// kept all max workers awake for no-op tasks from 8 submitters, 148
		// against 72 ns/task. Producers and the monitor's tick grow the pool
		// instead.
		if idx, ok := c.runq.TryPop(); ok {
			return idx, c.within(idx)
		}
		if c.stopping.Load() {
			return 0, !c.exitIfAbove(func() int32 { return -1 })
		}
		if c.running.Load() > c.maxW.Load() && c.exitIfAbove(c.maxLimit) {
			c.handOn()
			return 0, false
		}
		// A slow worker parks at once: its next task is unlikely to arrive
		// within the few microseconds of spinning, which would cost a
		// processor for nothing on every idle spell.
		if !w.slow {
			if idx, ok := c.spin(); ok {
				return idx, c.within(idx)
			}
		}
		if !c.park(w) {
			return 0, false
		}
		// Woken: by Tune, maybe, which wakes every parked worker to re-read
		// a lower max. Above it w leaves before it takes a shard (another
		// worker is told of any that waits).
		if c.running.Load() > c.maxW.Load() && c.exitIfAbove(c.maxLimit) {
			c.handOn()
			return 0, false
		}
	}
}

// handOn runs when a worker leaves above max without a shard (its place
// already given up): a producer that pushed a shard meanwhile may have
// counted it as free and woken nobody, so a shard waiting is handed to
// another worker (wake), as aboveMax does, rather than left to the
// monitor's tick. Read after the decrement: a producer that pushes after
// it counts one free worker less.
func (c *control) handOn() {
	if c.runq.Len() > 0 {
		c.wake()
	}
}

// within reports whether the worker that popped shard idx may serve it:
// no more workers than max run. Read after the pop: a Tune that returned
// before it is seen. Small enough to inline; above max, aboveMax decides.
func (c *control) within(idx uint32) bool {
	return c.running.Load() <= c.maxW.Load() || c.aboveMax(idx)
}

// aboveMax is within's rare case: more workers than max run. Unless
// another worker has left meanwhile, the worker gives up its place and the
// shard goes back to the run queue, with a wake for a worker within max
// (false: the worker must exit, running already decremented).
func (c *control) aboveMax(idx uint32) bool {
	if !c.exitIfAbove(c.maxLimit) {
		return true
	}
	// Hands the shard back; the popped slot left room for it.
	c.push(idx)
	c.wake()
	return false
}

// spin looks for work for a bounded number of rounds, if not too many
// workers spin already.
func (c *control) spin() (uint32, bool) {
	if c.spinning.Load() >= c.maxSpinning {
		return 0, false
	}
	// Announces a spinner: producers skip waking while it is non-zero.
	c.spinning.Add(1)
	for range c.spinRounds {
		runtime.Gosched()
		if c.hook != nil {
			c.hook(hookSpin)
		}
		if idx, ok := c.runq.TryPop(); ok {
			c.foundWhileSpinning()
			return idx, true
		}
		if c.stopping.Load() {
			break
		}
	}
	// Withdraws the spinner, then re-checks: a producer that saw it did not
	// wake anyone.
	c.spinning.Add(-1)
	if idx, ok := c.runq.TryPop(); ok {
		if c.runq.Len() > 0 {
			c.wake()
		}
		return idx, true
	}
	return 0, false
}

// foundWhileSpinning ends spinning after a spinner found work: if more work
// waits, another worker must look (the Go scheduler's resetspinning).
func (c *control) foundWhileSpinning() {
	// Withdraws the spinner.
	c.spinning.Add(-1)
	if c.runq.Len() > 0 {
		c.wake()
	}
}

// park blocks w until it is woken or, when more workers than min run, until
// the idle timeout; then w exits if more workers than the floor run, and
// parks again otherwise. Comparing with the floor when the timeout ends,
// rather than when w parks, lets a scaler lower the target without waking
// parked workers: those above it exit within two idle timeouts. With a
// scaler, a worker that parks while more workers than the floor run waits
// at most aboveTargetIdle (see idleFor). It reports false when w must exit
// (running already decremented).
//
// The timeout is the worker's own timer, a function timer (idleExpired)
// rather than a channel: the worker blocks on its wake channel alone, and
// the timer, when it ends the idle spell, takes the worker off the idle
// list and sends the token itself, with w.retire set.
func (c *control) park(w *worker) bool {
	c.mu.Lock()
	if c.stopping.Load() {
		c.mu.Unlock()
		return true // findWork handles stopping
	}
	if c.running.Load() > c.maxW.Load() {
		// Tune lowered max while w spun, out of reach of its wakeAll:
		// w exits rather than park above max (as exitIfAbove, under mu).
		c.running.Add(-1)
		c.mu.Unlock()
		c.handOn()
		return false
	}
	w.parked = true
	w.idleIdx = int32(len(c.idleList))
	c.idleList = append(c.idleList, w)
	// Announces w as parked before the re-check below.
	c.idle.Add(1)
	// Reads the count and the bound; a parked worker at or below min
	// sleeps without a timer (an idle pool uses no CPU).
	w.idleUntil = 0
	if c.running.Load() > c.minW.Load() {
		d := c.idleFor()
		w.idleUntil = c.clock() + int64(d)
		if w.timer == nil {
			// Created at the first timed park (a worker that never
			// parks above min needs none), unarmed, under mu, where
			// idleExpired reads it.
			w.timer = time.AfterFunc(time.Duration(1<<63-1), func() { c.idleExpired(w) })
		}
		if w.armedUntil == 0 || w.idleUntil < w.armedUntil {
			// Not pending, or pending past this spell's end (a
			// shorter spell: a scaler's target, see idleFor).
			c.arm(w, d)
		}
	}
	c.mu.Unlock()

	if c.runq.Len() > 0 || c.stopping.Load() {
		if !c.unpark(w) {
			// A waker (or the timer) took w off the list; take its token.
			return c.woken(w)
		}
		return true
	}
	return c.woken(w)
}

// arm sets w's idle timer to fire in d, at the end of its idle spell
// (w.idleUntil). The caller holds c.mu.
func (c *control) arm(w *worker, d time.Duration) {
	if c.hook != nil {
		c.hook(hookArm)
	}
	w.armedUntil = w.idleUntil
	w.timer.Reset(d)
}

// clock is the idle spells' clock: the pool's real clock, never 0 (0
// means untimed).
func (c *control) clock() int64 { return c.nanotime() + 1 }

// woken receives the token of whoever took w off the idle list; it reports
// false when that was w's idle timer retiring it (running already
// decremented).
func (c *control) woken(w *worker) bool {
	<-w.wake
	// Read after the token: written by its sender before it sent it.
	if w.retire {
		w.retire = false
		return false
	}
	return true
}

// idleExpired runs when w's idle timer ends. If w is awake or parks
// untimed, the timer is disarmed (w's next timed park arms it); if w
// parked again since the timer was set, it is set for the rest of the
// current spell. Once a spell has run out, w exits when more workers than
// the floor run, parks untimed when no more than min run, and parks for
// another idle timeout otherwise.
func (c *control) idleExpired(w *worker) {
	c.mu.Lock()
	defer c.mu.Unlock()
	w.armedUntil = 0
	if !w.parked || w.idleUntil == 0 {
		return
	}
	now := c.clock()
	if now < w.idleUntil {
		c.arm(w, time.Duration(w.idleUntil-now))
		return
	}
	if c.running.Load() > c.floor() {
		c.unlist(w)
		// Withdraws w from the parked count and gives up its place.
		c.idle.Add(-1)
		c.running.Add(-1)
		w.retire = true
		w.wake <- struct{}{}
		return
	}
	if c.running.Load() <= c.minW.Load() {
		// At or below min no worker exits until Tune lowers min, and Tune
		// wakes every parked worker: w parks on without a timer, as park
		// would have it (an idle pool uses no CPU).
		w.idleUntil = 0
		return
	}
	d := c.idleFor()
	w.idleUntil = now + int64(d)
	c.arm(w, d)
}

// aboveTargetIdle bounds how long a worker parks, with a scaler, while more
// workers run than the scaler's target: the scaler sizes the pool, so the
// workers a burst called up beyond it leave soon after it, not after the
// whole idle timeout; but not at once, which would start and end a
// goroutine per task when the target sits just under the need.
const aboveTargetIdle = 10 * time.Millisecond

// idleFor is how long a worker parks before it checks whether to exit.
func (c *control) idleFor() time.Duration {
	if c.scaler.Load() != nil && c.running.Load() > c.floor() {
		return min(c.idleTimeout, aboveTargetIdle)
	}
	return c.idleTimeout
}

// register adds a started worker to the list Snapshot reads.
//
// It counts the goroutine in wg, under mu, unless stop has begun (false):
// stop sets stopping under mu before it waits, so every Add it does not
// see is refused, and no worker starts after stop returned.
func (c *control) register(w *worker) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopping.Load() {
		return false
	}
	w.allIdx = int32(len(c.all))
	c.all = append(c.all, w)
	c.wg.Add(1)
	return true
}

// retire removes an exiting worker and keeps its counters.
func (c *control) retire(w *worker) {
	c.mu.Lock()
	if w.timer != nil {
		// A wake may have left it pending (see worker.timer); w parks
		// no more.
		w.timer.Stop()
		w.armedUntil = 0
	}
	w.stats.addTo(&c.retired)
	last := len(c.all) - 1
	x := c.all[last]
	c.all[w.allIdx] = x
	x.allIdx = w.allIdx
	c.all[last] = nil
	c.all = c.all[:last]
	c.mu.Unlock()
}

// stop makes every worker exit once the run queue is empty, then stops the
// monitor, and waits for all of them.
func (c *control) stop() {
	// Tells workers to exit instead of parking, and refuses new ones (see
	// register).
	c.mu.Lock()
	c.stopping.Store(true)
	c.mu.Unlock()
	c.wakeAll()
	c.wg.Wait()
	close(c.monStop)
	<-c.monDone
}
