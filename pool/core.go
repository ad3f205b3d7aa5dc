package pool

// Invariants:
//
//   - A Pool's configuration, shards and channels are set by New and never
//     replaced; everything that changes after New lives in the shards
//     (queue.go, guarded by their mutexes), in control (control.go), or in
//     the atomics below, each with its own rule where it is declared.
//   - Tune publishes min and max under control.mu, so an exiting worker
//     sees both or neither.

import (
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/shoal-go/shoal/internal/metrics"
	"github.com/shoal-go/shoal/shard"
)

// core is the scheduler both faces share: a Pool runs its groups' tasks
// (P = Task) one by one, a Batcher hands its groups' queued messages (P = M)
// to one call. L is the face's dead letter.
type core[K shard.Key, P any, L any] struct {
	cfg     config
	turn    turnFunc[K, P]
	turnMax int
	// noCtx: entries keep no context (a Batcher's messages have no
	// deadline; Submit's ctx bounds only its wait).
	noCtx bool
	// oneCall: a turn is one call of the face's turn function with up to
	// turnMax tasks (a Batcher's), not turnMax tasks in all.
	oneCall bool
	// unwound, if set, runs on a worker whose goroutine ends without
	// w.goexit set, before workerExit looks at it: the face finishes a
	// task that ended in runtime.Goexit after endCall recovered a panic
	// (Pool.unwound, Batcher.unwound).
	unwound func(w *worker, ts *turnState[K, P])
	// onAbandon, if set, runs when Close's context ends before the
	// backlog drained (a Batcher cancels its calls' context).
	onAbandon func()
	shards    []shardq[K, P]
	nshards   uint64
	// groupMax bounds one group's queue (WithGroupQueueSize).
	groupMax uint32
	ctl      control
	dl       chan L
	epoch    time.Time
	clock    Clock
	breaker  admitter

	// inFlight counts accepted tasks not yet finished, kept only when a
	// breaker needs it (trackInFlight), so a pool without one pays nothing.
	// A task is counted before the unlock that makes it visible to
	// workers (submit), so the count never reads below zero.
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

	// room is the pool-wide room not reserved by a shard (submit.go);
	// shards take it in chunks of creditChunk and keep at most creditKeep.
	_           [cacheLine]byte
	room        atomic.Int64
	_           [cacheLine - 8]byte
	roomWaiters atomic.Int32
	creditChunk int64
	creditKeep  int64
	roomMu      sync.Mutex
	roomCh      chan struct{}

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

	// dlHandler is WithDeadLetterHandler's function, nil without it.
	// untaken counts letters nobody took; untakenLog paces their log lines.
	dlHandler  func(L)
	untaken    atomic.Uint64
	untakenLog rate.Sometimes

	undeliveredMu sync.Mutex
	undelivered   []L
	shutdownCount atomic.Int64
}

// turnFunc runs the first k tasks a worker copied out of its group's
// queue (ts.batch) until the turn's end (ts.turnEnd); it reports true if
// the group must be parked for a retry. Each face has its own.
type turnFunc[K shard.Key, P any] func(w *worker, ts *turnState[K, P], k uint32) bool

// parseOptions applies opts to the defaults.
func parseOptions(opts []Option) (config, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		if o == nil {
			return cfg, invalid("nil Option")
		}
		if err := o.apply(&cfg); err != nil {
			return cfg, err
		}
	}
	return cfg, nil
}

// init sets up p with cfg and starts it: the monitor, the minimum of
// workers, the scaler. turn runs the face's turns; turnMax is the most
// tasks a turn takes.
func (p *core[K, P, L]) init(cfg config, turn turnFunc[K, P], turnMax int) error {
	p.cfg = cfg
	p.turn, p.turnMax = turn, turnMax
	p.shards = make([]shardq[K, P], cfg.shards)
	p.nshards = uint64(cfg.shards)
	p.groupMax = uint32(cfg.groupQueueSize)
	p.dl = make(chan L, cfg.dlBuffer)
	p.clock = cfg.clock
	p.closingCh = make(chan struct{})
	p.abandonCh = make(chan struct{})
	p.progress = make(chan struct{}, 1)
	p.closeDone = make(chan struct{})
	if p.clock != nil {
		p.epoch = p.clock.Now()
	} else {
		p.epoch = time.Now()
	}
	p.room.Store(int64(cfg.maxQueued))
	p.creditChunk = min(64, int64(cfg.maxQueued)/(16*int64(cfg.shards)))
	if p.creditChunk < 2 {
		// Small bounds are kept exactly: no shard holds spare room.
		p.creditChunk, p.creditKeep = 1, 0
	} else {
		p.creditKeep = p.creditChunk
	}
	p.exactStamps = cfg.clock != nil || cfg.onTask != nil
	if cfg.dlHandler != nil {
		h, ok := cfg.dlHandler.(func(L))
		if !ok {
			var l L
			return invalid("dead-letter handler %T does not take this pool's letters (%T)", cfg.dlHandler, l)
		}
		p.dlHandler = h
	}
	p.untakenLog = rate.Sometimes{Interval: time.Second}
	var err error
	if p.obs, err = newObserver[K](&cfg); err != nil {
		return err
	}
	if p.sampleTimes = cfg.timings == nil; p.sampleTimes {
		p.timings = new(Timings)
	}
	if cfg.topGroups {
		p.top = new(metrics.TopK[K])
	}
	p.rates.start(p.now())
	ctlClock := p.nanotime
	if p.clock != nil {
		// An injected clock dates tasks and judges their deadlines; the
		// scheduler's own pacing (turn ends, the monitor's tick and stall
		// rule) keeps real time: a frozen test clock must not stop turns.
		start := time.Now()
		ctlClock = func() int64 { return int64(time.Since(start)) }
	}
	if err := p.ctl.init(cfg.shards, cfg.minWorkers, cfg.maxWorkers, cfg.idleTimeout, ctlClock); err != nil {
		return invalid("%v", err)
	}
	p.ctl.spinRounds, p.ctl.yieldBelow, p.ctl.yieldBehind = cfg.spinRounds, cfg.yieldBelow, cfg.yieldBehind
	if err := p.setupBreaker(); err != nil {
		return err
	}
	if q, ok := cfg.cpuLimit(); ok && q < p.ctl.capacity {
		// A CPU quota below the processors: the share of the CPU the
		// process used is a share of the quota.
		p.ctl.capacity = q
	}
	p.ctl.readCPU = cfg.cpuReader
	p.ctl.hook = cfg.schedHook
	if cfg.cpuReader != nil {
		// A test's readings stand alone, unless it fakes the usage too.
		p.ctl.readUsage = cfg.usageReader
	}
	p.ctl.start = p.startWorker
	p.ctl.onIdle = p.trimIdle
	go p.ctl.monitor()
	p.ctl.ensure(int32(cfg.minWorkers))
	if cfg.scaler != nil {
		p.stopScaler = cfg.scaler(&p.ctl, p)
	}
	return nil
}

// nanotime returns the time since the pool's epoch.
func (p *core[K, P, L]) nanotime() int64 {
	if p.clock != nil {
		return int64(p.clock.Now().Sub(p.epoch))
	}
	return int64(time.Since(p.epoch))
}

func (p *core[K, P, L]) now() time.Time { return p.epoch.Add(time.Duration(p.nanotime())) }

// tune sets the bounds of the worker count (Pool.Tune).
func (p *core[K, P, L]) tune(minWorkers, maxWorkers int) error {
	if err := checkWorkers(minWorkers, maxWorkers); err != nil {
		return err
	}
	if p.closing.Load() {
		return ErrClosed
	}
	p.ctl.mu.Lock()
	// Publishes the bounds to workers (idle exit, exit above max) and to
	// wake/grow; under mu so that an exiting worker sees both or neither.
	p.ctl.minW.Store(int32(minWorkers))
	p.ctl.maxW.Store(int32(maxWorkers))
	if p.ctl.scaler.Load() == nil {
		// Without a scaler the floor kept warm is min (see floor): a
		// lower min lets idle workers above it exit.
		p.ctl.target.Store(int32(minWorkers))
	}
	p.ctl.mu.Unlock()
	p.ctl.ensure(int32(minWorkers))
	// Parked workers re-read the bounds: those above max exit, the others
	// re-arm their idle timers against the new floor.
	p.ctl.wakeAll()
	// A higher max serves shards already waiting at once, past GOMAXPROCS
	// within the growth room, as the pool's own growth (the monitor's tick
	// goes on from there).
	for range p.ctl.runq.Len() {
		if !p.ctl.growIfCPU() {
			break
		}
	}
	return nil
}

// snapshot returns the counters, timings, rates and breaker figures
// (Pool.Snapshot).
func (p *core[K, P, L]) snapshot() Stats {
	s := Stats{Taken: p.now(), ShardQueued: make([]int, len(p.shards)), Closed: p.closing.Load()}
	for i := range p.shards {
		sh := &p.shards[i]
		sh.mu.Lock()
		q, sub := sh.queued, sh.submitted
		sh.mu.Unlock()
		s.Submitted += sub
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
	s.FailedAttempts = c[cFailed]
	s.Retried = c[cRetried]
	s.Panicked = c[cPanicked]
	s.DeadLetterStalls = c[cStalls]
	s.Batches.Calls, s.Batches.Messages = c[cCalls], c[cMsgs]
	copy(s.Batches.Sizes[:], c[cSizes:cSizes+batchBuckets])
	s.DeadLettersUntaken = p.untaken.Load()
	s.DeadLetters = ReasonCounts{
		Failed:   c[cDead+int(ReasonFailed)],
		Panicked: c[cDead+int(ReasonPanicked)],
		Canceled: c[cDead+int(ReasonCanceled)],
		Expired:  c[cDead+int(ReasonExpired)],
		Shutdown: c[cDead+int(ReasonShutdown)],
	}
	// Reads the refusal counters and, below, the worker counts; each value
	// is read on its own, so a snapshot under load is not one instant.
	s.Rejected = RejectCounts{
		QueueFull:      p.rejects[RejectQueueFull].Load(),
		Closed:         p.rejects[RejectClosed].Load(),
		MemoryPressure: p.rejects[RejectMemoryPressure].Load(),
		Throttled:      p.rejects[RejectThrottled].Load(),
	}
	s.WaitingShards = p.ctl.runq.Len()
	w := &s.Workers
	// The three counts are read one after the other, while workers move
	// between them: each is clamped to what the ones before leave, so that
	// Busy, Idle and Spinning always sum to Running.
	w.Running = int(p.ctl.running.Load())
	w.Idle = min(max(int(p.ctl.idle.Load()), 0), w.Running)
	w.Spinning = min(max(int(p.ctl.spinning.Load()), 0), w.Running-w.Idle)
	w.Busy = w.Running - w.Idle - w.Spinning
	w.Min = int(p.ctl.minW.Load())
	w.Max = int(p.ctl.maxW.Load())
	w.Target = int(p.ctl.floor())
	s.Scaling = p.scaling()
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

// trimIdle evicts every shard's idle queues; the monitor calls it when the
// pool goes idle.
func (p *core[K, P, L]) trimIdle() {
	for i := range p.shards {
		p.shards[i].trimIdle()
	}
}
