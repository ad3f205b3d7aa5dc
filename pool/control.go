package pool

// Invariants:
//
//   - running counts worker goroutines that have been started and have not
//     decided to exit. It grows only by CAS in grow/ensure (never above max
//     at the time of the CAS) and shrinks only under mu, so the idle-timeout
//     check "running > floor" and the decrement are one step.
//   - A worker is on idleList iff w.parked, both guarded by mu; idle equals
//     len(idleList). Whoever clears w.parked (a waker, Tune, stop, w's idle
//     timer) sends exactly one token on w.wake; the worker receives it
//     before it looks for work again, so w.wake (capacity 1) never holds a
//     stale token.
//   - spinning counts workers looking for work without being parked. A
//     producer that sees at least as many spinners as shards waiting after
//     its push wakes nobody: each spinner re-checks the run queue after it
//     stops spinning (sequentially consistent atomics), so the push is seen
//     by one of them.
//   - Parking is announce / re-check / block: a worker joins idleList (idle
//     store), then re-checks the run queue; a producer pushes, then loads
//     idle. One of them sees the other.
//   - So a shard pushed while some worker is awake (running - idle > 0) is
//     seen by an awake worker before it parks, and wake may leave it there
//     when no more shards wait than workers are free (awake, less the slow
//     workers in a batch counted in busy). If those workers are stuck in
//     long tasks, the monitor (kicked by every such push, see monitor.go)
//     wakes or starts workers at its next tick, past GOMAXPROCS within
//     the growth room, and without it once no worker has taken a shard
//     for stallAfter.
//   - busy counts exactly the workers between run's increment and its
//     decrement (or afterGoexit's, for a goroutine that ends in a task).
//   - The run queue holds each shard with ready groups at most once (see
//     inRunq in queue.go), so it never holds more than the number of shards
//     and a push never finds it full.

import (
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoal-go/shoal/internal/proccpu"
	"github.com/shoal-go/shoal/ringbuf"
)

// spinRounds bounds how long a worker that ran out of work keeps looking
// before it parks: each round yields the processor once (runtime.Gosched)
// and re-checks the run queue. 256 is a middle: BenchmarkSubmitRules
// measured 4 and 1024 rounds within 1 ns of it (docs/ARCHITECTURE.md); it
// catches the next submission of a busy producer without the wake-up of a
// parked goroutine, and an idle pool still parks within microseconds.
const spinRounds = 256

// worker is one worker goroutine's handle.
type worker struct {
	// wake carries the one token of a waker that took this worker off the
	// idle list. Capacity 1 so that the waker never blocks, even before the
	// worker has reached its receive; the invariant above keeps it from
	// ever holding two.
	wake chan struct{}
	// parked and idleIdx (w's index in idleList while parked) are guarded
	// by control.mu; so is allIdx, w's index in control.all. (32 bits:
	// workers are at most 1<<20, and it keeps a workerSlot small.)
	parked  bool
	idleIdx int32
	allIdx  int32
	// timer is the idle timer (idleExpired), created at the first timed
	// park and reused. idleUntil is when the current idle spell ends, and
	// armedUntil when the timer fires, both on control.clock (zero:
	// untimed, and not pending). A wake does not stop the timer, and a
	// park does not reset one that fires no later than the new spell ends:
	// its firing sets it for the rest of the spell, or finds w awake and
	// disarms it. So a worker that parks after every task touches the
	// runtime's timers about once per idle spell instead of twice per
	// park. retire says the timer ended w's life. All guarded by mu,
	// retire read by w after the token.
	timer      *time.Timer
	idleUntil  int64
	armedUntil int64
	retire     bool
	// stats are the worker's counters (see stats.go).
	stats workerStats
	// goexit is set when the running task called runtime.Goexit.
	goexit bool
	// pace: tick is the coarse clock when the worker's current interval
	// began and drains the batches it completed since; timed says a whole
	// interval is being counted (the first tick seen opens it); slow says
	// the previous interval had fewer than slowDrains batches (its tasks
	// block or run long), or, before the first, that the worker was started
	// past GOMAXPROCS; inBusy says the current batch is counted in busy.
	tick   int64
	drains int32
	timed  bool
	slow   bool
	inBusy bool
	// The fields below change with every task, so they come last: in a
	// workerSlot they share cache lines with the turn state's per-task
	// fields. finished counts tasks that left the pool during the current
	// batch; completed counts completed tasks (a Batcher's: messages)
	// until flush adds them to stats.
	finished  int64
	completed uint64
}

// flush publishes the worker's counts (see workerStats.flush).
func (w *worker) flush() {
	w.stats.local[cCompleted] += w.completed
	w.completed = 0
	w.stats.flush()
}

// slowDrains is the number of batches per monitor tick (a millisecond)
// below which a worker counts as slow: on average more than about 60 µs per
// batch, typically tasks that wait for I/O. A slow worker is counted in
// control.busy while it runs a batch, so producers do not count on it to
// come back soon, and it parks without spinning when it runs out of work.
const slowDrains = 16

// yieldBelow is the batch size under which a worker yields its processor
// (runtime.Gosched) before it takes the next shard. A worker that keeps up
// with its producers finds a task or two per shard and pays the shard's
// hand-off for each; yielding lets runnable producers fill shards first, so
// batches grow: about 20 % less per no-op task in BenchmarkSubmitRules
// (figures in docs/ARCHITECTURE.md). With nothing else runnable it costs
// one scheduler round trip.
const yieldBelow = 16

// yieldBehind is how many tasks of one group, not yet taken by a worker,
// make a blocking submitter yield its processor (runtime.Gosched) once, as
// its task becomes the yieldBehind-th, while more goroutines queue for
// the processors than there are, and fewer slow workers are in a batch
// (control.crowded).
// Submitters that outnumber the processors and never wait otherwise keep
// the workers off them: the backlog then spreads over every group in
// memory no cache holds, and each task pays for it twice, in its push and
// in its take. Yielding as a room falls that far behind lets the workers
// catch up while the backlog is still warm: eight producers of no-op
// tasks on two processors took about 0.8× the time (docs/ARCHITECTURE.md,
// "Submitters yield when their room falls behind"). A lone submitter
// beside idle processors never yields, nor does one beside workers whose
// tasks block: those queued are then mostly workers their I/O readied, and
// a submitter that yielded would queue behind all of them, milliseconds
// at the seed's scale (docs/ARCHITECTURE.md, the same section).
const yieldBehind = 8

// control is the non-generic half of a pool: the run queue of ready shards,
// the workers, and the counters a scaler samples (scaling*.go).
type control struct {
	runq *ringbuf.Ring[uint32]

	_ [cacheLine]byte
	// These are read on every schedule and written rarely (spinning and idle
	// on every park/unpark, the rest on scaling).
	running  atomic.Int32
	idle     atomic.Int32
	spinning atomic.Int32
	minW     atomic.Int32
	maxW     atomic.Int32
	target   atomic.Int32
	stopping atomic.Bool
	_        [cacheLine - 28]byte
	// coarse is the pool clock kept by the monitor, and asleep says that the
	// monitor is blocked (see monitor.go). Producers read both on every
	// submission; they change at most once a millisecond.
	coarse atomic.Int64
	asleep atomic.Bool
	// crowded says that the monitor's last sample found more goroutines
	// waiting for a processor than there are processors, and fewer slow
	// workers in a batch (see sampleCPU): a submitter whose group falls
	// yieldBehind tasks behind then yields.
	crowded atomic.Bool
	_       [cacheLine - 16]byte
	// busy counts slow workers running a batch (see slowDrains): written
	// twice per batch by slow workers only, read by producers on every
	// schedule.
	busy atomic.Int32
	// growRoom is how many workers may still start past GOMAXPROCS until
	// the monitor's next sample (sampleCPU): about as many as busy workers
	// that must be blocked, none while the CPUs are saturated.
	growRoom atomic.Int32
	// noRoom counts growIfCPU's refusals; sampleMu guards sample, which
	// growIfCPU reads into every 32nd refusal.
	noRoom atomic.Uint32
	// cpuFull says the last sample found the processors full (see
	// sampleCPU): growIfCPU then takes no sample of its own, since workers
	// started now would only wait for a processor.
	cpuFull  atomic.Bool
	sampleMu sync.Mutex
	sample   []metrics.Sample
	// readCPU replaces readCPUMetrics in tests (set before the monitor
	// starts, then only read).
	readCPU func([]metrics.Sample) (running, runnable uint64, ok bool)
	_       [cacheLine - 8]byte
	procs   int32
	// util is the share of the processors (per mille) the process used
	// over the monitor's last utilWindow or so, or -1 where it is not
	// known (see usage); written by the monitor, read by sampleCPU.
	// readUsage reads the process's CPU time (proccpu.Read; in tests a
	// fake, or nil for none).
	util      atomic.Int32
	readUsage func() (time.Duration, bool)
	// capacity is the CPU the process may use, in thousandths of a CPU:
	// GOMAXPROCS processors, or the cgroup's CPU quota where that is
	// less (read once, at New). util is a share of it.
	capacity int64

	// nanotime reads the real pool clock (the idle spells' too, see
	// clock).
	nanotime func() int64
	// monWake (capacity 1) carries the token of whoever cleared asleep;
	// monStop is closed to stop the monitor, which closes monDone.
	monWake chan struct{}
	monStop chan struct{}
	monDone chan struct{}

	idleTimeout time.Duration
	maxSpinning int32
	// spinRounds, yieldBelow and yieldBehind default to the constants of
	// those names; BenchmarkSubmitRules sets them through the config to
	// compare (yieldBehind 0: submitters never yield).
	spinRounds  int
	yieldBelow  int64
	yieldBehind uint32
	// yield gives up the submitter's processor: runtime.Gosched, or a
	// test's counter.
	yield func()
	// start launches one worker goroutine; running has already been counted.
	start func()
	// onIdle runs on the monitor when the pool goes idle (it drops the
	// free lists of the group table).
	onIdle func()
	// hook, set only by tests, runs at the points named by hookPoint. Nil
	// otherwise, at the cost of a nil check at each point: off the
	// per-task path but for hookAccepted, which a pool with a breaker
	// checks on every accepted submission (a read of a field written only
	// by New and a branch always predicted).
	hook func(hookPoint)
	// scaler is the pool's autoscaler from its start to its stop, nil
	// without one (see scaling.go).
	scaler atomic.Pointer[autoscaler]

	mu       sync.Mutex
	idleList []*worker
	all      []*worker
	retired  counters // counters of exited workers, guarded by mu
	wg       sync.WaitGroup
}

func (c *control) init(nshards, minW, maxW int, idleTimeout time.Duration, nanotime func() int64) error {
	q, err := ringbuf.New[uint32](nshards)
	if err != nil {
		return err
	}
	c.runq = q
	c.minW.Store(int32(minW))
	c.maxW.Store(int32(maxW))
	c.target.Store(int32(minW))
	c.idleTimeout = idleTimeout
	c.procs = int32(runtime.GOMAXPROCS(0))
	c.capacity = 1000 * int64(c.procs)
	c.sample = newCPUSample()
	c.util.Store(-1)
	c.readUsage = proccpu.Read
	c.maxSpinning = max(1, c.procs/2)
	c.nanotime = nanotime
	c.spinRounds = spinRounds
	c.yieldBelow = yieldBelow
	c.yieldBehind = yieldBehind
	c.yield = runtime.Gosched
	c.coarse.Store(nanotime())
	c.monWake = make(chan struct{}, 1)
	c.monStop = make(chan struct{})
	c.monDone = make(chan struct{})
	return nil
}

// hookPoint names a point of the scheduler where a test's hook runs
// (control.hook), to force an interleaving.
type hookPoint uint8

const (
	// hookSpin: a spinning worker, before each look at the run queue.
	hookSpin hookPoint = iota
	// hookGrow: grow, between its check of max and its CAS of running.
	hookGrow
	// hookAccepted: a submission of a pool with a breaker, right after
	// the shard's unlock that made its task visible to workers.
	hookAccepted
	// hookArm: a worker's idle timer is set (arm), under control.mu.
	hookArm
)

// floor is the number of workers kept warm: the target, within [min, max].
func (c *control) floor() int32 {
	return max(c.minW.Load(), min(c.target.Load(), c.maxW.Load()))
}

// push hands a scheduled shard to the run queue; the caller held it or moved
// it to scheduled.
func (c *control) push(idx uint32) {
	// Hands the shard (and everything its holder wrote) to the worker that
	// pops it. The queue has room for every shard, so this loop runs once.
	for !c.runq.TryPush(idx) {
		runtime.Gosched()
	}
}

// wake makes sure some worker will look at the run queue after a push.
//
// Nothing is done if a worker spins (it re-checks the queue). Otherwise a
// worker is woken (or started, up to max) only if no worker is free, or if
// more shards wait than workers are free; in the remaining case the free
// workers come back to the queue after their batch, and the monitor wakes
// more within a tick if they do not. Free means awake and not a slow
// worker in a batch: a worker whose tasks wait for I/O is not counted on.
// This is the rule that keeps one producer spreading over many groups from
// paying a cross-core wake-up per task (docs/ARCHITECTURE.md, "Waking is
// the expensive event", has the figures), while a shard that arrives when
// every awake worker is blocked in I/O gets a worker at once.
//
// Past GOMAXPROCS workers, wake starts one (within the growth room) only
// while at most GOMAXPROCS shards wait: the case of a room that finds
// every worker blocked. While more wait the pool is ramping up, and the
// monitor's tick starts the workers, doubling them within the room: from
// every producer and hand-off as well, thousands of workers started
// within a tick from as many goroutines measured 1.08× the time of the
// sleep row (docs/ARCHITECTURE.md).
func (c *control) wake() {
	// Reads whether spinners will re-check the run queue (see Invariants):
	// enough of them for the shards waiting.
	if s := c.spinning.Load(); s != 0 && int32(c.runq.Len()) <= s {
		return
	}
	// Reads the parked count (pairs with park's announce) and the slow
	// workers in a batch.
	free := c.running.Load() - c.idle.Load() - c.busy.Load()
	n := int32(c.runq.Len())
	if free <= 0 || n > free {
		// Wakes a parked worker, or starts one where wake starts them
		// (see above).
		if !(c.idle.Load() != 0 && c.wakeOne()) && (n <= c.procs || c.running.Load() < c.procs) {
			c.growIfCPU()
		}
	}
	c.kick()
}

// resample counts a refusal for want of room and, every 32nd one, takes a
// new CPU sample; it reports whether there is room now.
func (c *control) resample() bool {
	if c.noRoom.Add(1)%32 != 0 || !c.sampleMu.TryLock() {
		return false
	}
	c.sampleCPU(c.sample, 0)
	c.sampleMu.Unlock()
	return c.growRoom.Load() > 0
}

// growIfCPU starts one worker if fewer than max run and, past GOMAXPROCS
// workers, only within growRoom: workers beyond the processors help only
// while others wait for I/O.
func (c *control) growIfCPU() bool {
	if c.running.Load() >= c.procs {
		// Reads the room first, so that a refusal (the common case of a
		// CPU-bound pool) writes only the refusal count. Every 32nd
		// refusal samples again: the monitor may be starved of CPU by the
		// very load that needs workers; but not while the last sample found
		// the processors full: a sample takes the scheduler's lock, and
		// under such a load every hand-off of a shard may call here.
		if c.growRoom.Load() <= 0 && (c.cpuFull.Load() || !c.resample()) {
			return false
		}
		// Takes one start from the room.
		if c.growRoom.Add(-1) < 0 {
			c.growRoom.Add(1)
			return false
		}
		if !c.grow() {
			c.growRoom.Add(1)
			return false
		}
		return true
	}
	return c.grow()
}

// wakeNow is wake for callers that must not wait for the monitor.
func (c *control) wakeNow() {
	if c.spinning.Load() != 0 {
		return
	}
	if !(c.idle.Load() != 0 && c.wakeOne()) {
		c.growIfCPU()
	}
	c.kick()
}

// grow starts one worker if fewer than max run.
func (c *control) grow() bool {
	for !c.stopping.Load() {
		n := c.running.Load()
		if n >= c.maxW.Load() {
			return false
		}
		if c.hook != nil {
			c.hook(hookGrow)
		}
		// Reserves the new worker's place under max.
		if c.running.CompareAndSwap(n, n+1) {
			c.start()
			return true
		}
	}
	return false
}

// ensure starts workers until at least n run (capped by max).
func (c *control) ensure(n int32) {
	for c.running.Load() < min(n, c.maxW.Load()) {
		if !c.grow() {
			return
		}
	}
}
