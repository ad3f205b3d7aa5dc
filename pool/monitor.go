package pool

// Invariants:
//
//   - The monitor is one goroutine per pool, started by New and stopped by
//     Close after the workers. While the pool has work it ticks every
//     monitorTick; when it has seen no awake worker and no waiting shard for
//     two ticks it sets asleep and blocks on monWake, so an idle pool costs
//     no CPU.
//   - Whoever clears asleep (CAS true→false) sends the one token on monWake
//     (capacity 1), and only the monitor sets asleep, after which it
//     re-checks for work before it blocks; so the token is never lost and
//     never doubled.
//   - While shards wait, stalledSince is the last tick at which the run
//     queue was empty or a worker had taken a shard since the tick before
//     (the queue's pops moved); the monitor starts workers without growth
//     room only when that is stallAfter old and it could wake or start
//     none within the room.
//   - util is written only by the monitor, from readings of the
//     process's CPU time it alone keeps (usage); they start over each
//     time it sleeps, so util never covers a span the monitor slept
//     through, and it is -1 until they span utilWindow.
//   - coarse is the pool clock (ns since the epoch) as of the last tick, or
//     as of the last wake-up of the monitor: a producer that sees asleep
//     stores the real time before it clears asleep. So a reader of coarse
//     lags the real clock by at most about one tick.

import (
	"os"
	"runtime/metrics"
	"time"

	"github.com/shoal-go/shoal/internal/cgroup"
)

// monitorTick is the monitor's period: the resolution of the coarse clock
// and the longest a waiting shard goes unnoticed when every awake worker is
// stuck in a long task. It is not shorter than a millisecond: shoal never
// sleeps below that to wait.
const monitorTick = time.Millisecond

// monitorWakeBatch is the least number of workers one tick may start or
// wake while shards wait; past GOMAXPROCS a tick may start up to growRoom
// (see sampleCPU), so a pool whose workers block in I/O doubles each
// millisecond until the waiting shards are served.
const monitorWakeBatch = 4

// stallAfter is how long shards may wait in the run queue with no worker
// taking any before the monitor starts workers without growth room (up to
// monitorWakeBatch a tick, within max). The room counts the goroutines
// that want a processor as if they were workers, so when other goroutines
// fill the CPUs a pool whose workers are all blocked would otherwise get
// none: this bounds how long a room waits behind blocked ones to about
// the Go scheduler's time slice. A pool whose workers run long CPU-bound
// tasks may grow by a few workers per stallAfter while rooms wait.
const stallAfter = 10 * time.Millisecond

// kick makes sure the monitor runs; producers call it after they scheduled
// a shard.
func (c *control) kick() {
	// Reads whether the monitor sleeps; read-mostly, so this costs a shared
	// cache line while the pool is busy.
	if c.asleep.Load() {
		// Refreshes the clock the monitor no longer keeps, before anyone can
		// see the monitor awake.
		c.coarse.Store(c.nanotime())
		// Takes the right to wake the monitor.
		if c.asleep.CompareAndSwap(true, false) {
			c.monWake <- struct{}{}
		}
	}
}

// monitor is the pool's housekeeper: it keeps the coarse clock and, like the
// Go runtime's sysmon, starts or wakes workers when shards wait while every
// awake worker is busy (for instance blocked in I/O).
func (c *control) monitor() {
	defer close(c.monDone)
	t := time.NewTicker(monitorTick)
	defer t.Stop()
	quiet := 0
	sample := newCPUSample()
	// The run queue's pops as of stalledSince, the time the monitor last
	// saw a worker take a shard while shards waited (see stallAfter).
	var popped uint64
	var stalledSince int64
	var use usage
	for {
		select {
		case <-c.monStop:
			return
		case <-t.C:
		}
		// Publishes the time for producers and workers.
		now := c.nanotime()
		c.coarse.Store(now)
		c.util.Store(use.read(c.readUsage, c.capacity))
		c.sampleCPU(sample, 1)
		if n := c.runq.Len(); n > 0 {
			quiet = 0
			if p := c.runq.Popped(); p != popped {
				popped, stalledSince = p, now
			}
			if c.spinning.Load() == 0 {
				started := 0
				for range min(n, max(monitorWakeBatch, int(c.growRoom.Load()))) {
					if !(c.idle.Load() != 0 && c.wakeOne()) && !c.growIfCPU() {
						break
					}
					started++
				}
				if started == 0 && now-stalledSince >= int64(stallAfter) {
					c.rescue(n)
					stalledSince = now
				}
			}
			continue
		}
		stalledSince = now
		if c.running.Load() != c.idle.Load() {
			quiet = 0
			continue
		}
		if quiet++; quiet < 2 {
			continue
		}
		quiet = 0
		// Announces the sleep, then re-checks: a producer that scheduled a
		// shard before the announcement is seen here, one after it kicks.
		c.asleep.Store(true)
		if c.runq.Len() > 0 || c.running.Load() != c.idle.Load() {
			if c.asleep.CompareAndSwap(true, false) {
				continue
			}
			<-c.monWake // a producer cleared asleep; take its token
			continue
		}
		t.Stop()
		use.reset()
		c.util.Store(-1)
		c.crowded.Store(false)
		if c.onIdle != nil {
			c.onIdle()
		}
		select {
		case <-c.monWake:
		case <-c.monStop:
			return
		}
		t.Reset(monitorTick)
		// Shards that wait now were pushed after the sleep.
		stalledSince = c.nanotime()
	}
}

// rescue starts up to monitorWakeBatch workers for n waiting shards, past
// GOMAXPROCS and without growth room (see stallAfter), within max.
func (c *control) rescue(n int) {
	for range min(n, monitorWakeBatch) {
		if !c.grow() {
			return
		}
	}
}

// The scheduler metrics of Go 1.26 that sampleCPU reads: goroutines on a
// processor and goroutines ready to run but waiting for one. Reading them
// costs about a microsecond and stops nothing.
const (
	runningMetric  = "/sched/goroutines/running:goroutines"
	runnableMetric = "/sched/goroutines/runnable:goroutines"
)

// cpuQueuePerProc is how many goroutines per processor may wait for one
// before sampleCPU calls the processors full, whatever the busy workers:
// a few always wait in passing (the garbage collector's workers, timers
// that fired together), and a pool of a few workers must still grow.
const cpuQueuePerProc = 4

// newCPUSample returns the sample sampleCPU reads into.
func newCPUSample() []metrics.Sample {
	return []metrics.Sample{{Name: runningMetric}, {Name: runnableMetric}}
}

// usage turns the process's CPU time, read once a tick, into the share of
// the processors it used over the last utilWindow or so. A shorter window
// would mislead: Linux adds a running thread's time to the process's only
// at its own scheduler tick (every 4 ms at HZ=250), so a thread that
// computes without pause shows 0 or 4 ms in a window of one millisecond;
// over utilWindow the error is at most one such tick per processor.
//
// A reading that comes lateTick or more after the one before says the
// monitor waited that long for a processor, or the whole process stood
// still (a cgroup's CPU quota spent until the next period, a virtual
// machine's CPU taken by the host): the processors were not idle, though
// the process used little CPU meanwhile. While such a reading is within
// the span averaged, usage reports no share.
type usage struct {
	ring [usageReadings]reading
	n    int // readings held, at most len(ring)
	next int // where the next reading goes
	// late is the time of the last reading that came lateTick or more
	// after the one before (zero: none).
	late time.Time
}

// reading is one reading of the process's CPU time, at a time of the
// monotonic clock.
type reading struct {
	at  time.Time
	cpu time.Duration
}

const (
	// usageReadings is how many readings usage keeps: at one a tick,
	// about twice utilWindow.
	usageReadings = 32
	// utilWindow is the least span of readings over which usage reports
	// a share; less, it reports none.
	utilWindow = 16 * time.Millisecond
	// utilTrusted is the share of the processors (per mille) below which
	// sampleCPU trusts the process's CPU time over its count of
	// goroutines waiting for a processor (see there). With the error of
	// utilWindow (up to a quarter of the processors' time on 2 of them,
	// an eighth on 4), a pool whose processors are all busy reads well
	// above it.
	utilTrusted = 500
	// lateTick is the gap between two readings, four monitor ticks, that
	// marks the processors as contended (see usage).
	lateTick = 4 * monitorTick
)

// read reads the process's CPU time with read and returns the share (per
// mille, at most 1000) of capacity (in thousandths of a CPU: the
// processors, or the CPU quota where that is less) it used from the
// oldest reading it keeps until now, or -1 where read is nil or fails, or
// the readings span less than utilWindow.
func (u *usage) read(read func() (time.Duration, bool), capacity int64) int32 {
	if read == nil {
		return -1
	}
	cpu, ok := read()
	if !ok {
		u.reset()
		return -1
	}
	// The real clock, not the pool's: WithClock's may be a fake, and the
	// CPU time is real.
	now := time.Now()
	oldest := u.ring[0]
	if u.n == len(u.ring) {
		oldest = u.ring[u.next]
	}
	if u.n > 0 {
		if last := u.ring[(u.next+len(u.ring)-1)%len(u.ring)]; now.Sub(last.at) >= lateTick {
			u.late = now
		}
	}
	u.ring[u.next] = reading{at: now, cpu: cpu}
	u.next = (u.next + 1) % len(u.ring)
	u.n = min(u.n+1, len(u.ring))
	d := now.Sub(oldest.at)
	if u.n == 1 || d < utilWindow || u.late.After(oldest.at) {
		return -1
	}
	return int32(min(1000, max(0, int64(cpu-oldest.cpu)*1_000_000/(int64(d)*max(1, capacity)))))
}

// reset forgets the readings: the monitor calls it before it sleeps, so
// that a share reported after it wakes covers none of the idle time
// before (a burst of CPU-bound work would read as idle processors).
func (u *usage) reset() { u.n, u.next, u.late = 0, 0, time.Time{} }

// sampleCPU sets growRoom, the workers that may start past GOMAXPROCS
// until the next sample: twice the busy workers that cannot all be on a
// processor or waiting for one (so some must be blocked, in I/O most
// likely), or the idle processors while no goroutine waits for one. None
// while the processors are the bottleneck: more goroutines wait for one
// than half the busy workers (and than cpuQueuePerProc per processor),
// where a new worker's task, once it stops blocking, would wait for a
// processor too (cpuFull says so until the next sample). Where the
// metrics are missing, none: the safe side for CPU-bound work.
//
// self is how many of the goroutines on a processor are no demand for
// one: 1 for the monitor, which is on a processor while it samples, and 0
// for a producer or worker, whose own work is demand.
func (c *control) sampleCPU(sample []metrics.Sample, self int64) {
	room := int64(0)
	read := c.readCPU
	if read == nil {
		read = readCPUMetrics
	}
	if r, runnable, ok := read(sample); ok {
		running := max(0, int64(r)-self)
		wantCPU := running + int64(runnable)
		busy := int64(c.running.Load() - c.idle.Load() - c.spinning.Load())
		// Blocked workers, doubled: new workers are likely to block too,
		// so the pool may double each tick while its workers wait.
		room = 2 * max(0, busy-wantCPU)
		full := int64(runnable) > max(busy/2, cpuQueuePerProc*int64(c.procs))
		// Crowded: more goroutines wait for a processor than there are
		// processors, while fewer slow workers (tasks that block or run
		// long) are in a batch than there are processors, so that those
		// waiting are the pool's submitters and quick workers. Where
		// tasks block, the backlog drains at the pace of their I/O, and
		// the crowd is mostly workers that their I/O readied: a
		// submitter that yielded would only queue behind them, and a
		// rate-paced one falls behind its schedule (see yieldBehind).
		crowded := runnable > uint64(c.procs) && c.busy.Load() < c.procs
		if u := c.util.Load(); u >= 0 && u < utilTrusted {
			// The processors stood idle for half of the last utilWindow
			// or more, so the goroutines counted as waiting for one are
			// no queue: they were readied together, most often by timers
			// that fired with the monitor's own tick (workers whose tasks
			// sleep or wait with a timeout). Counted at that instant they
			// would hold the pool back with its processors idle (with one
			// processor and tasks that sleep a millisecond, at one worker
			// for good); the goroutines on a processor on average over
			// the window stand for the demand instead.
			onCPU := (int64(u)*c.capacity + 500_000) / 1_000_000
			room = 2 * max(0, busy-onCPU)
			full, crowded = false, false
		}
		if full {
			// The processors are full: more sleepers would only
			// queue for them.
			room = 0
		}
		c.cpuFull.Store(full)
		c.crowded.Store(crowded)
		if runnable == 0 {
			// Idle processors.
			room = max(room, int64(c.procs)-running)
		}
	}
	// Publishes the room to wake and the monitor's growth.
	c.growRoom.Store(int32(min(room, 1<<20)))
}

// readCPUMetrics reads the goroutines on a processor and those waiting for
// one; ok is false where the runtime lacks the metrics.
func readCPUMetrics(sample []metrics.Sample) (running, runnable uint64, ok bool) {
	metrics.Read(sample)
	run, rnb := sample[0].Value, sample[1].Value
	if run.Kind() != metrics.KindUint64 || rnb.Kind() != metrics.KindUint64 {
		return 0, 0, false
	}
	return run.Uint64(), rnb.Uint64(), true
}

// hostCPULimit reads the process's cgroup CPU quota, in thousandths of a
// CPU (none where there are no cgroups).
func hostCPULimit() (int64, bool) { return cgroup.CPULimit(os.ReadFile) }
