package pool

// Extension points
//
// Other files of this package (the predictive scaler in scaling*.go, the
// metrics in stats_metrics*.go) hook into the pool through these unexported
// fields and methods; they cost nothing when unused.
//
// Scaling. p.ctl is the non-generic *control shared with a scaler:
//   - p.ctl.target (atomic.Int32): the worker count kept warm. Idle workers
//     exit after the idle timeout only while running > floor(), where
//     floor() = target clamped to [min, max]. Store a new target and call
//     p.ctl.ensure(n) to start workers up to it at once.
//   - p.ctl.minW, p.ctl.maxW (atomic.Int32): the bounds; Tune sets them.
//   - p.ctl.running, p.ctl.idle, p.ctl.spinning (atomic.Int32): started,
//     parked and spinning workers; busy = running - idle - spinning.
//   - p.ctl.runq.Len(): shards scheduled and waiting for a worker.
//   - p.arrivals(): accepted submissions since New (monotonic; O(shards)).
//   - p.queued(): tasks waiting in shard queues (O(shards)).
//   - cfg.scaler: an Option sets it to func(*control, scalingSource) (stop
//     func()); New calls it with the pool as the source after the workers of
//     min have started, Close calls stop before draining. The scaler owns
//     its goroutine and must have ended it when stop returns; it registers
//     itself in p.ctl.scaler, where Pool.Scaling and Snapshot find it.
//   Reactive scaling is built in: when a shard becomes ready and no worker is
//   free, or more shards wait than workers are free, a parked worker is
//   woken or a new one starts at once, up to max; the monitor (monitor.go)
//   does the same every millisecond while shards wait.
//
// Metrics.
//   - entry.enq is each task's acceptance time (ns since p.epoch, also
//     DeadLetter.EnqueuedAt) with two flags in its low bits (enqTime strips
//     them); queue wait = start - enqTime(enq). It is the coarse clock
//     p.ctl.coarse (about 1 ms resolution) unless p.exactStamps, or unless
//     the task is one of the sampled 1 in TimingSampleEvery (stampTimed,
//     picked by its lane position in submit), which the worker times into
//     p.timings, the default histograms of Stats (stats_metrics.go).
//   - cfg.onTask, when an Option sets it, is called by the worker after
//     each attempt with the shard, the queue wait and the run time. Setting
//     it makes acceptance times exact (p.exactStamps); clocks are read for
//     it only when it is set or the task is sampled.
//   - p.top (WithTopGroups) counts sampled waiting tasks per group
//     (stampTop): submit counts, attempt uncounts.
//   - Stats is an immutable value built by Snapshot; add fields there.
//
// Admission. cfg.breaker (admitter: Admit() error) is called first by every
// submission; a non-nil error becomes *RejectError with reason
// MemoryPressure or Throttled.

// Invariants:
//
//   - Every accepted task (push returned pushOK) is, at any instant, in its
//     lane, in its lane's retry slot, being run by the worker holding its
//     lane, or being delivered as a dead letter by that worker; it leaves
//     the pool only as a completion or a letter (or, after Close's deadline,
//     in CloseError.Undelivered).
//   - closing is set once, before the lanes are sealed; abandon is set once,
//     after closing, when Close's context ends. closingCh and abandonCh are
//     closed right after their flag is stored.
//   - The dead-letter channel is closed by Close after every worker has
//     exited, so no send can follow the close.

import (
	"context"
	"errors"
	"math/bits"
	"math/rand/v2"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoal-go/shoal/internal/metrics"
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
	cfg     config
	lanes   []lane[K]
	nshards uint64
	ctl     control
	dl      chan DeadLetter[K]
	epoch   time.Time
	clock   Clock
	breaker admitter

	// inFlight counts accepted tasks not yet finished, kept only when a
	// breaker needs it (trackInFlight), so a pool without one pays nothing.
	trackInFlight bool
	inFlight      atomic.Int64

	// exactStamps: read the real clock for every acceptance (see stamp).
	exactStamps bool
	// obs runs WithSlowTask and WithProfilerLabels around each attempt
	// (observe.go); nil without them.
	obs *observer[K]
	// sampleTimes: time one task in TimingSampleEvery into timings, the
	// pool's own (false with WithTimings, which times every task).
	sampleTimes bool
	timings     *Timings
	// top counts the sampled queued tasks per group (WithTopGroups), nil
	// without it. rates averages arrivals and completions at Snapshot.
	top   *metrics.TopK[K]
	rates rates

	rejects [numRejectReasons]atomic.Uint64

	closing   atomic.Bool
	closingCh chan struct{}
	abandon   atomic.Bool
	abandonCh chan struct{}
	// progress (capacity 1) tells a waiting Close that a worker released a
	// shard; one pending token is enough, Close re-checks everything.
	progress chan struct{}

	closeMu      sync.Mutex
	closeStarted bool
	closeDone    chan struct{}
	stopScaler   func()

	undeliveredMu sync.Mutex
	undelivered   []DeadLetter[K]
	shutdownCount atomic.Int64
}

// New returns a running pool configured by opts. The workers of the minimum
// count start at once; the others start on demand.
func New[K shard.Key](opts ...Option) (*Pool[K], error) {
	cfg := defaultConfig()
	for _, o := range opts {
		if o == nil {
			return nil, invalid("nil Option")
		}
		if err := o.apply(&cfg); err != nil {
			return nil, err
		}
	}
	p := &Pool[K]{
		cfg:       cfg,
		lanes:     make([]lane[K], cfg.shards),
		nshards:   uint64(cfg.shards),
		dl:        make(chan DeadLetter[K], cfg.dlBuffer),
		clock:     cfg.clock,
		closingCh: make(chan struct{}),
		abandonCh: make(chan struct{}),
		progress:  make(chan struct{}, 1),
		closeDone: make(chan struct{}),
	}
	if p.clock != nil {
		p.epoch = p.clock.Now()
	} else {
		p.epoch = time.Now()
	}
	for i := range p.lanes {
		p.lanes[i].init(cfg.queueSize)
	}
	p.exactStamps = cfg.clock != nil || cfg.onTask != nil
	var err error
	if p.obs, err = newObserver[K](&cfg); err != nil {
		return nil, err
	}
	if p.sampleTimes = cfg.timings == nil; p.sampleTimes {
		p.timings = new(Timings)
	}
	if cfg.topGroups {
		p.top = new(metrics.TopK[K])
	}
	p.rates.start(p.now())
	if err := p.ctl.init(cfg.shards, cfg.minWorkers, cfg.maxWorkers, cfg.idleTimeout, p.nanotime); err != nil {
		return nil, invalid("%v", err)
	}
	p.ctl.spinRounds, p.ctl.yieldBelow = cfg.spinRounds, cfg.yieldBelow
	if err := p.setupBreaker(); err != nil {
		return nil, err
	}
	p.ctl.start = p.startWorker
	go p.ctl.monitor()
	p.ctl.ensure(int32(cfg.minWorkers))
	if cfg.scaler != nil {
		p.stopScaler = cfg.scaler(&p.ctl, p)
	}
	return p, nil
}

// ShardOf returns the shard that group's tasks run on, in [0, shards).
func (p *Pool[K]) ShardOf(group K) int { return int(p.shardOf(group)) }

// shardOf maps group to a shard with Lemire's multiply-shift range
// reduction of its hash: uniform for a well-mixed hash and about 1 ns. The
// shard count is fixed for a pool's lifetime, so the consistency of jump
// hash on resizing buys nothing here, and its loop costs 25–40 ns at 1024
// shards.
func (p *Pool[K]) shardOf(group K) uint32 { return p.shardOfHash(shard.Hash(group)) }

// shardOfHash is shardOf for a group whose hash is h.
func (p *Pool[K]) shardOfHash(h uint64) uint32 {
	hi, _ := bits.Mul64(h, p.nshards)
	return uint32(hi)
}

// Submit enqueues t to run after the tasks of group submitted before it.
// When the group's shard queue is full it waits for room until ctx is done
// (then the error matches ErrQueueFull and ctx.Err()), or, with
// WithNonblocking, returns an error matching ErrQueueFull at once. A nil
// error means the task was accepted: it will complete or reach DeadLetters.
// A non-nil error means it was not accepted.
//
// If ctx is already done, Submit returns ctx.Err() and accepts nothing. If
// ctx's deadline passes before the task starts, the task does not run and
// becomes an Expired dead letter.
//
// Submit does not allocate.
func (p *Pool[K]) Submit(ctx context.Context, group K, t Task) error {
	h := shard.Hash(group)
	return p.submit(ctx, p.shardOfHash(h), h, group, t, !p.cfg.nonblocking)
}

// TrySubmit is Submit with context.Background() that never waits: a full
// queue is an error matching ErrQueueFull.
func (p *Pool[K]) TrySubmit(group K, t Task) error {
	h := shard.Hash(group)
	return p.submit(context.Background(), p.shardOfHash(h), h, group, t, false)
}

// Go runs t, which belongs to no group, on a shard picked at random. It
// keeps no order with other tasks; otherwise it behaves as Submit. Its dead
// letters carry the zero group.
func (p *Pool[K]) Go(ctx context.Context, t Task) error {
	hi, _ := bits.Mul64(rand.Uint64(), p.nshards)
	var zero K
	return p.submit(ctx, uint32(hi), 0, zero, t, !p.cfg.nonblocking)
}

// submit accepts t for group, whose hash is h (0 for Go's tasks), on shard
// idx.
func (p *Pool[K]) submit(ctx context.Context, idx uint32, h uint64, group K, t Task, block bool) error {
	if t == nil {
		return ErrNilTask
	}
	if ctx == nil {
		return ErrNilContext
	}
	if p.breaker != nil {
		if err := p.breaker.Admit(); err != nil {
			return p.reject(rejectReasonOf(err), err)
		}
	}
	plain := ctx.Done() == nil
	if !plain {
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	l := &p.lanes[idx]
	// Reads the lane's next position (push reads the same line next): it
	// picks the tasks sampled for the stats (stats_metrics.go).
	pos := l.tail.Load()
	e := entry[K]{task: t, ctx: ctx, group: group, enq: p.stamp(idx, pos), plain: plain}
	if p.top != nil {
		p.countTop(&e, h, pos)
	}
	r := l.push(&e)
	if r != pushOK && e.enq&stampTop != 0 {
		p.uncountTop(&e)
	}
	switch r {
	case pushOK:
		if p.trackInFlight {
			// Counts the task for the breaker's reservation.
			p.inFlight.Add(1)
		}
		p.accepted(idx, l)
		return nil
	case pushSealed:
		// Counts the refusal; rejection counters publish nothing else.
		p.rejects[Closed].Add(1)
		return rejectClosed
	}
	if !block {
		// Counts the refusal.
		p.rejects[QueueFull].Add(1)
		return rejectQueueFull
	}
	return p.waitAndPush(ctx, idx, l, &e)
}

// accepted schedules the lane after a successful push if it was idle.
func (p *Pool[K]) accepted(idx uint32, l *lane[K]) {
	// Loads before the CAS: a lane that is already scheduled (the common
	// case under load) costs a shared read, not a write to a line the
	// holder uses.
	if l.state.Load() == stateIdle && l.state.CompareAndSwap(stateIdle, stateScheduled) {
		p.ctl.push(idx)
		p.ctl.wake()
	}
}

// waitAndPush waits for room in a full lane.
func (p *Pool[K]) waitAndPush(ctx context.Context, idx uint32, l *lane[K], e *entry[K]) error {
	for {
		ch := l.waitSpace()
		// Reads the lane's next position for the sampling, as submit does.
		e.enq = p.stamp(idx, l.tail.Load())
		switch l.push(e) {
		case pushOK:
			l.doneWaiting()
			if p.trackInFlight {
				// Counts the task for the breaker's reservation.
				p.inFlight.Add(1)
			}
			p.accepted(idx, l)
			return nil
		case pushSealed:
			l.doneWaiting()
			// Counts the refusal.
			p.rejects[Closed].Add(1)
			return rejectClosed
		}
		select {
		case <-ch:
			l.doneWaiting()
		case <-ctx.Done():
			l.doneWaiting()
			return p.reject(QueueFull, ctx.Err())
		case <-p.closingCh:
			l.doneWaiting()
			// Counts the refusal.
			p.rejects[Closed].Add(1)
			return rejectClosed
		}
	}
}

func (p *Pool[K]) reject(r RejectReason, err error) error {
	// Counts the refusal.
	p.rejects[r].Add(1)
	return &RejectError{Reason: r, Err: err}
}

// stamp returns the acceptance time of the task at position pos of shard
// idx: the monitor's coarse clock (within about a millisecond, one shared
// load), or the real clock when a Clock or a per-task observer asked for
// exact times, or for the one task in TimingSampleEvery that the pool times
// (flagged stampTimed). Reading the real clock costs about 35 ns on a
// kvm-clock virtual machine, more than half of the whole per-task budget.
// The two low bits hold flags (stats_metrics.go).
func (p *Pool[K]) stamp(idx uint32, pos uint64) int64 {
	if p.sampleTimes && timingSampled(idx, pos) {
		return p.nanotime()&^stampFlags | stampTimed
	}
	if p.exactStamps {
		return p.nanotime() &^ stampFlags
	}
	// Reads whether the monitor keeps the clock; while it sleeps the clock
	// is stale (a lane parked on a retry timer can accept tasks without
	// waking it), so read the real one.
	if p.ctl.asleep.Load() {
		return p.nanotime() &^ stampFlags
	}
	// Reads the monitor's clock.
	return p.ctl.coarse.Load() &^ stampFlags
}

// nanotime returns the time since the pool's epoch.
func (p *Pool[K]) nanotime() int64 {
	if p.clock != nil {
		return int64(p.clock.Now().Sub(p.epoch))
	}
	return int64(time.Since(p.epoch))
}

func (p *Pool[K]) now() time.Time { return p.epoch.Add(time.Duration(p.nanotime())) }

// DeadLetters returns the channel of tasks that did not complete. It is
// closed by Close after the last letter, so `for dl := range
// p.DeadLetters()` ends. Read it: when it is full, workers wait.
func (p *Pool[K]) DeadLetters() <-chan DeadLetter[K] { return p.dl }

// Tune sets the bounds of the worker count at run time. It takes effect at
// once: workers start up to the new minimum, and workers above the new
// maximum exit as soon as they finish their current batch.
func (p *Pool[K]) Tune(minWorkers, maxWorkers int) error {
	if err := checkWorkers(minWorkers, maxWorkers); err != nil {
		return err
	}
	// Reads whether Close has begun.
	if p.closing.Load() {
		return ErrClosed
	}
	p.ctl.mu.Lock()
	// Publishes the bounds to workers (idle exit, exit above max) and to
	// wake/grow; under mu so that an exiting worker sees both or neither.
	p.ctl.minW.Store(int32(minWorkers))
	p.ctl.maxW.Store(int32(maxWorkers))
	p.ctl.mu.Unlock()
	p.ctl.ensure(int32(minWorkers))
	// Parked workers re-read the bounds: those above max exit, the others
	// re-arm their idle timers against the new floor.
	p.ctl.wakeAll()
	// A higher max serves shards already waiting at once.
	for range p.ctl.runq.Len() {
		if !p.ctl.grow() {
			break
		}
	}
	return nil
}

// arrivals returns the number of accepted submissions since New.
func (p *Pool[K]) arrivals() uint64 {
	var n uint64
	for i := range p.lanes {
		// Reads the lane's claimed positions; each is one accepted task.
		n += p.lanes[i].tail.Load() &^ sealed
	}
	return n
}

// queued returns the number of tasks in the shard queues.
func (p *Pool[K]) queued() int {
	n := 0
	for i := range p.lanes {
		n += p.lanes[i].length()
	}
	return n
}

// Snapshot returns the pool's counters, timings, rates and breaker figures.
// It costs O(shards + workers) (about 2 µs more for the histograms), takes
// no lock that submitters or running workers wait for, and may be called at
// any time, also after Close.
func (p *Pool[K]) Snapshot() Stats {
	// Reads whether Close has begun.
	s := Stats{Taken: p.now(), ShardQueued: make([]int, len(p.lanes)), Closed: p.closing.Load()}
	for i := range p.lanes {
		l := &p.lanes[i]
		// Reads the claimed positions: one per accepted task.
		s.Submitted += l.tail.Load() &^ sealed
		q := l.length()
		s.ShardQueued[i] = q
		s.Queued += q
	}
	var c counters
	p.ctl.mu.Lock()
	c = p.ctl.retired
	for _, w := range p.ctl.all {
		w.stats.addTo(&c)
	}
	p.ctl.mu.Unlock()
	s.Completed = c[cCompleted]
	s.Failed = c[cFailed]
	s.Retried = c[cRetried]
	s.Panicked = c[cPanicked]
	s.DeadLetterStalls = c[cStalls]
	s.DeadLetters = ReasonCounts{
		Failed:   c[cDead+int(Failed)],
		Panicked: c[cDead+int(Panicked)],
		Canceled: c[cDead+int(Canceled)],
		Expired:  c[cDead+int(Expired)],
		Shutdown: c[cDead+int(Shutdown)],
	}
	// Reads the refusal counters and, below, the worker counts; each value
	// is read on its own, so a snapshot under load is not one instant.
	s.Rejected = RejectCounts{
		QueueFull:      p.rejects[QueueFull].Load(),
		Closed:         p.rejects[Closed].Load(),
		MemoryPressure: p.rejects[MemoryPressure].Load(),
		Throttled:      p.rejects[Throttled].Load(),
	}
	s.WaitingShards = p.ctl.runq.Len()
	w := &s.Workers
	w.Running = int(p.ctl.running.Load())
	w.Idle = int(p.ctl.idle.Load())
	w.Spinning = int(p.ctl.spinning.Load())
	w.Busy = max(0, w.Running-w.Idle-w.Spinning)
	w.Min = int(p.ctl.minW.Load())
	w.Max = int(p.ctl.maxW.Load())
	w.Target = int(p.ctl.floor())
	s.Scaling = p.Scaling()
	s.SlowTasks = p.slowTasks()
	if t := p.cfg.timings; t != nil {
		s.Timings, s.TimingSampleEvery = t.Snapshot(), 1
	} else {
		s.Timings, s.TimingSampleEvery = p.timings.Snapshot(), TimingSampleEvery
	}
	s.ArrivalRate, s.CompletionRate = p.rates.update(s.Taken, s.Submitted, s.Completed+s.DeadLetters.Total())
	s.TopGroups = p.topGroups()
	if b := p.cfg.breaker; b != nil {
		bs := b.Stats()
		s.Breaker = &bs
	}
	return s
}

// Close stops admission at once (submissions fail with ErrClosed, blocked
// ones included), lets the queued tasks run until ctx is done, and returns
// when every goroutine the pool started has exited; the dead-letter channel
// is then closed.
//
// If ctx ends first, the tasks still queued (and those waiting for a retry)
// become Shutdown dead letters, tasks already running finish, and Close
// returns a *CloseError that says how many were shut down and holds any
// letters the dead-letter channel had no room for. A second Close waits for
// the first and returns nil.
func (p *Pool[K]) Close(ctx context.Context) error {
	if ctx == nil {
		return ErrNilContext
	}
	p.closeMu.Lock()
	if p.closeStarted {
		p.closeMu.Unlock()
		select {
		case <-p.closeDone:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	p.closeStarted = true
	p.closeMu.Unlock()

	// Stops admission: blocked submitters return, new pushes fail.
	p.closing.Store(true)
	close(p.closingCh)
	for i := range p.lanes {
		// Seals the lane: no CAS on tail succeeds from now on.
		p.lanes[i].tail.Or(sealed)
	}
	if p.stopScaler != nil {
		p.stopScaler()
	}
	done := ctx.Done()
	var cerr *CloseError[K]
	for !p.drained() {
		select {
		case <-p.progress:
		case <-done:
			done = nil
			cerr = &CloseError[K]{Err: ctx.Err()}
			p.startAbandon()
		}
	}
	p.ctl.stop()
	close(p.dl)
	if b := p.cfg.ownBreaker; b != nil {
		_ = b.Close()
	}
	if cerr != nil {
		// Reads the workers' count of shut-down tasks; they have all exited.
		cerr.Shutdown = int(p.shutdownCount.Load())
		p.undeliveredMu.Lock()
		cerr.Undelivered = p.undelivered
		p.undelivered = nil
		p.undeliveredMu.Unlock()
		close(p.closeDone)
		return cerr
	}
	close(p.closeDone)
	return nil
}

// drained reports whether every lane is idle and empty.
func (p *Pool[K]) drained() bool {
	for i := range p.lanes {
		l := &p.lanes[i]
		// Reads the holder's release and the final tail.
		if l.state.Load() != stateIdle || l.length() != 0 {
			return false
		}
	}
	return true
}

// startAbandon turns the remaining backlog into Shutdown letters: workers
// letter what they pop, and shards parked for a retry are woken now.
func (p *Pool[K]) startAbandon() {
	// Tells workers to letter instead of run; published before the channel
	// close that wakes letter senders.
	p.abandon.Store(true)
	close(p.abandonCh)
	for i := range p.lanes {
		l := &p.lanes[i]
		l.mu.Lock()
		if l.timer != nil && l.timer.Stop() {
			l.timer = nil
			l.mu.Unlock()
			p.ctl.push(uint32(i))
			p.ctl.wakeNow()
			continue
		}
		l.mu.Unlock()
	}
}

// notifyProgress tells a waiting Close to re-check.
func (p *Pool[K]) notifyProgress() {
	select {
	case p.progress <- struct{}{}:
	default:
	}
}

func (p *Pool[K]) startWorker() {
	w := &worker{wake: make(chan struct{}, 1), timer: time.NewTimer(time.Hour)}
	w.timer.Stop()
	p.ctl.register(w)
	// Counts the goroutine that stop waits for.
	p.ctl.wg.Add(1)
	go p.workerMain(w)
}

func (p *Pool[K]) workerMain(w *worker) {
	defer p.ctl.wg.Done()
	for {
		idx, ok := p.ctl.findWork(w)
		if !ok {
			break
		}
		if p.run(w, idx) < p.ctl.yieldBelow {
			// A short batch: let goroutines waiting for a processor
			// (producers, most likely) run before this worker takes the
			// next shard, so that the next batches find more tasks (see
			// yieldBelow).
			runtime.Gosched()
		}
		// Reads the count and the bound Tune may have lowered.
		if p.ctl.running.Load() > p.ctl.maxW.Load() && p.ctl.exitIfAbove(p.ctl.maxLimit) {
			break
		}
	}
	w.stats.flush()
	p.ctl.retire(w)
}

// run drains shard idx, which w holds, with the worker's bookkeeping: the
// busy count of a slow worker, its counters, the breaker's reservation, and
// its pace (slowDrains). It returns the number of tasks the batch finished.
func (p *Pool[K]) run(w *worker, idx uint32) int64 {
	c := &p.ctl
	if w.inBusy = w.slow; w.inBusy {
		// Tells producers not to count on this worker for a while.
		c.busy.Add(1)
	}
	p.drain(w, idx)
	n := p.endBatch(w)
	// Reads the monitor's clock: a new tick closes the interval. The first
	// tick a worker sees only opens one: its first interval began at some
	// point of a tick, so a new worker is judged on a whole interval.
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
		// Withdraws the worker from the busy count.
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

// drain runs up to a batch of tasks from the shard idx, which w holds, then
// passes the shard on: parked on a retry timer, back to the run queue, or
// idle.
func (p *Pool[K]) drain(w *worker, idx uint32) {
	l := &p.lanes[idx]
	// Reads the previous holder's position, handed over with the shard.
	pos := l.head.Load()
	defer func() {
		if w.goexit {
			p.afterGoexit(w, idx, l, pos)
		}
	}()
	if r := l.retry; r != nil {
		l.retry = nil
		if p.attempt(w, idx, l, &r.e, r.attempts, r.err) {
			return
		}
		w.finished++
	}
	for n := 0; n < p.cfg.batchSize; n++ {
		e, ok := l.pop(pos)
		if !ok {
			break
		}
		pos++
		if p.attempt(w, idx, l, &e, 0, nil) {
			// Publishes the consumed positions; the shard stays held by its
			// retry timer.
			l.head.Store(pos)
			l.signalSpace()
			return
		}
		w.finished++
	}
	// Publishes the consumed positions to length() readers.
	l.head.Store(pos)
	l.signalSpace()
	if l.ready(pos) {
		// Fairness: the shard goes behind the other ready shards.
		p.ctl.push(idx)
		return
	}
	// Releases the shard; a producer that publishes after this store sees
	// idle and schedules it.
	l.state.Store(stateIdle)
	if l.ready(pos) && l.state.CompareAndSwap(stateIdle, stateScheduled) {
		p.ctl.push(idx)
		return
	}
	// Reads whether Close waits for progress (see Close for the ordering).
	if p.closing.Load() {
		p.notifyProgress()
	}
}

// attempt runs one attempt of e, whose earlier attempts returned prevErr. It
// reports true if the shard was parked for a retry (e is then kept in
// l.retry).
func (p *Pool[K]) attempt(w *worker, idx uint32, l *lane[K], e *entry[K], prev int, prevErr error) bool {
	if e.enq&stampTop != 0 {
		// The task no longer waits: out of the top-groups count, once.
		p.uncountTop(e)
	}
	// Reads whether Close's deadline has passed.
	if p.abandon.Load() {
		// Counts the task for CloseError.Shutdown.
		p.shutdownCount.Add(1)
		err := prevErr
		if err == nil {
			err = ErrClosed
		}
		p.letter(w, e, Shutdown, err, prev, nil, nil)
		return false
	}
	if !e.plain && p.expired(e) {
		err := prevErr
		if err == nil {
			err = context.DeadlineExceeded
		}
		p.letter(w, e, Expired, err, prev, nil, nil)
		return false
	}
	var start int64
	timed := e.enq&stampTimed != 0 // one task in TimingSampleEvery
	if p.cfg.onTask != nil || timed {
		start = p.nanotime()
	}
	var obsStart int64
	if p.obs != nil {
		obsStart = p.obs.before(p, idx, e)
	}
	err, pv, stack, panicked := p.call(w, e, prev+1)
	if p.obs != nil {
		p.obs.after(p, idx, e, prev+1, obsStart)
	}
	if p.cfg.onTask != nil || timed {
		end := p.nanotime()
		if timed {
			p.timings.recordSample(idx, e.enq, start, end)
		}
		if p.cfg.onTask != nil {
			p.cfg.onTask(int(idx), time.Duration(start-enqTime(e.enq)), time.Duration(end-start))
		}
	}
	attempts := prev + 1
	switch {
	case panicked:
		w.stats.local[cPanicked]++
		p.letter(w, e, Panicked, &PanicError{Value: pv}, attempts, pv, stack)
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
		p.letter(w, e, Expired, err, attempts, nil, nil)
		return false
	}
	if errors.Is(err, context.Canceled) {
		p.letter(w, e, Canceled, err, attempts, nil, nil)
		return false
	}
	if !p.cfg.retry.retryable(err, attempts) {
		p.letter(w, e, Failed, err, attempts, nil, nil)
		return false
	}
	w.stats.local[cRetried]++
	l.retry = &retrying[K]{e: *e, attempts: attempts, err: err}
	d := p.cfg.retry.delay(attempts)
	l.mu.Lock()
	// The callback takes l.mu, so it cannot clear timer before it is set.
	l.timer = time.AfterFunc(d, func() { p.resume(idx) })
	l.mu.Unlock()
	return true
}

// expired reports whether e's deadline has passed, by the real clock.
func (p *Pool[K]) expired(e *entry[K]) bool {
	d, ok := e.ctx.Deadline()
	return ok && !p.now().Before(d)
}

// resume hands a shard whose retry timer fired back to the workers.
func (p *Pool[K]) resume(idx uint32) {
	l := &p.lanes[idx]
	l.mu.Lock()
	l.timer = nil
	l.mu.Unlock()
	p.ctl.push(idx)
	p.ctl.wakeNow()
}

// call runs the task, recovering a panic. If the task calls
// runtime.Goexit, which cannot be stopped, the task becomes a Panicked
// letter (ErrGoexit) here and drain's deferred afterGoexit hands the shard
// and the worker's place on before the goroutine ends.
func (p *Pool[K]) call(w *worker, e *entry[K], attempts int) (err error, pv any, stack []byte, panicked bool) {
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
			p.letter(w, e, Panicked, &PanicError{Value: ErrGoexit}, attempts, ErrGoexit, debug.Stack())
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
// goroutine unwinds: the shard, still held, goes back to the run queue, and
// a new worker takes the ending one's place (running is unchanged).
func (p *Pool[K]) afterGoexit(w *worker, idx uint32, l *lane[K], pos uint64) {
	w.finished++
	// Publishes the consumed positions, the dying task's included.
	l.head.Store(pos)
	l.signalSpace()
	p.ctl.push(idx)
	p.endBatch(w)
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

// letter delivers a dead letter. When the channel is full the worker waits
// (pressure flows back to submitters), unless Close's deadline has passed:
// then the letter is kept for CloseError.Undelivered.
func (p *Pool[K]) letter(w *worker, e *entry[K], r Reason, err error, attempts int, pv any, stack []byte) {
	w.stats.local[cDead+int(r)]++
	dl := DeadLetter[K]{
		Group: e.group, Task: e.task, Err: err, Reason: r, Attempts: attempts,
		Panic: pv, Stack: stack,
		EnqueuedAt: p.epoch.Add(time.Duration(enqTime(e.enq))), FailedAt: p.now(),
	}
	select {
	case p.dl <- dl:
		return
	default:
	}
	// Reads whether Close's deadline has passed: then no more waiting.
	if !p.abandon.Load() {
		// Publishes the stall at once: the worker may wait here for long.
		w.stats.pub[cStalls].Add(1)
		select {
		case p.dl <- dl:
			return
		case <-p.abandonCh:
		}
	}
	p.undeliveredMu.Lock()
	p.undelivered = append(p.undelivered, dl)
	p.undeliveredMu.Unlock()
}
