package pool

import (
	"runtime"
	"runtime/metrics"
	"time"

	"github.com/shoal-go/shoal/backpressure"
	"github.com/shoal-go/shoal/shard"
)

// Option configures a Pool. Options are applied in order by New; the first
// invalid one makes New return an error wrapping ErrInvalidOption.
type Option interface{ apply(*config) error }

type optionFunc func(*config) error

func (f optionFunc) apply(c *config) error { return f(c) }

// config holds every setting of a pool. defaultConfig is the one place that
// holds the defaults.
type config struct {
	shards         int
	minWorkers     int
	maxWorkers     int
	groupQueueSize int
	maxQueued      int
	batchSize      int
	maxBatch       int
	// batchSizeSet and maxBatchSet say the option was given, so that the
	// face it does not apply to refuses it.
	batchSizeSet, maxBatchSet bool
	nonblocking               bool
	idleTimeout               time.Duration
	retry                     RetryPolicy
	dlBuffer                  int
	// dlHandler is WithDeadLetterHandler's func(DeadLetter[K]); New checks
	// its type against the pool's.
	dlHandler any
	// cpuReader, set only by tests, replaces the runtime/metrics reading
	// of the CPU sample (control.readCPU).
	cpuReader func([]metrics.Sample) (running, runnable uint64, ok bool)
	// usageReader, set only by tests, replaces the process's CPU time
	// (control.readUsage); with cpuReader set and this nil, none is read.
	usageReader func() (time.Duration, bool)
	// overdrawn, set only by tests, runs in takeCredit between an overdraw
	// of the pool-wide room that failed and its rollback.
	overdrawn func()
	// schedHook, set only by tests, runs at the scheduler's points named
	// by hookPoint (control.hook).
	schedHook func(hookPoint)
	// cpuLimit reads the process's CPU quota in thousandths of a CPU
	// (internal/cgroup.CPULimit); tests replace it.
	cpuLimit func() (int64, bool)
	// dlWait bounds how long a worker waits for room in the dead-letter
	// channel (see WithDeadLetterBuffer).
	dlWait       time.Duration
	panicHandler func(v any, stack []byte)
	clock        Clock
	// breaker is asked by every submission; ownBreaker is the one
	// WithMemoryBudget creates, closed by Close.
	breaker    *backpressure.Breaker
	ownBreaker *backpressure.Breaker
	budget     int64

	// scaler, when set by an option of scaling*.go, is started by New with
	// the pool's control and the pool itself as the source of its arrivals
	// and queues, and stopped by Close.
	scaler func(c *control, src scalingSource) (stop func())
	// onTask, when set, is called by the worker after each task with the
	// shard, its queue wait and its run time; WithTimings sets it.
	onTask func(shard int, wait, run time.Duration)
	// slowAfter, slowFn (a func(SlowTask[K])) and labels are set by the
	// options of observe.go; New builds the pool's observer from them.
	slowAfter time.Duration
	slowFn    any
	labels    int
	// timings is the Timings of WithTimings (every task timed), reported by
	// Snapshot instead of the pool's sampled one; topGroups asks for
	// Stats.TopGroups (stats_metrics.go).
	timings *Timings
	// timingsAll holds every Timings given to WithTimings, each recorded
	// into once.
	timingsAll []*Timings
	topGroups  bool
	// spinRounds, yieldBelow and yieldBehind are the worker and submitter
	// rules of control.go; only benchmarks change them
	// (BenchmarkSubmitRules).
	spinRounds  int
	yieldBelow  int64
	yieldBehind uint32
}

func defaultConfig() config {
	procs := runtime.GOMAXPROCS(0)
	return config{
		shards:         1024,
		minWorkers:     1,
		maxWorkers:     max(DefaultMaxWorkers, 4*procs),
		groupQueueSize: DefaultGroupQueueSize,
		maxQueued:      DefaultMaxQueued,
		batchSize:      64,
		maxBatch:       DefaultMaxBatch,
		idleTimeout:    10 * time.Second,
		retry:          RetryPolicy{MaxAttempts: 1},
		dlBuffer:       256,
		dlWait:         DeadLetterWait,
		spinRounds:     spinRounds,
		yieldBelow:     yieldBelow,
		yieldBehind:    yieldBehind,
		cpuLimit:       hostCPULimit,
	}
}

// DefaultMaxWorkers is the default bound of the worker count (or
// 4×GOMAXPROCS where that is more). It is high because chat tasks mostly
// wait on a database or a socket: a worker blocked in I/O costs a goroutine
// (a few KiB), and a pool that runs too few of them lets every room wait
// for the slowest. CPU-bound tasks do not reach it: past GOMAXPROCS the
// pool starts a worker only while some busy worker must be blocked (see
// WithWorkers). Memory is guarded by the breaker (WithMemoryBudget).
const DefaultMaxWorkers = 1024

// DefaultGroupQueueSize is the default bound of one group's queue. A room
// with 1,024 messages waiting is seconds behind at chat speeds (a few ms per
// message): making its senders wait is better than queueing more, and it
// caps what one room can hold at about 40 KiB of queued tasks.
const DefaultGroupQueueSize = 1024

// DefaultMaxQueued is the default pool-wide bound on queued tasks: about
// 40 MiB of queue entries, plus what the tasks' closures hold. It is a
// backstop; the memory breaker is the guard that knows the process's
// budget.
const DefaultMaxQueued = 1 << 20

// WithShards sets the number of shards of the group table (default 1024).
// Each shard has its own lock; more shards let more submitters work at
// once at a few hundred bytes each. Shards do not serialize groups: every
// group has its own queue.
func WithShards(n int) Option {
	return optionFunc(func(c *config) error {
		if n <= 0 || n > 1<<20 {
			return invalid("WithShards(%d): want 1..%d", n, 1<<20)
		}
		c.shards = n
		return nil
	})
}

// WithWorkers sets the bounds of the worker count (default 1 and
// DefaultMaxWorkers, or 4×GOMAXPROCS where that is more). 0 <= min <= max, max >= 1. Workers start when groups
// are ready and none is free; past GOMAXPROCS, only while some busy
// workers must be blocked (more of them than goroutines running or
// waiting for a processor) and the processors are not full (no more
// goroutines wait for one than half the busy workers), so tasks that block
// in I/O get more workers and CPU-bound ones do not oversubscribe the
// CPUs, or once ready groups have waited 10 ms with no worker taking any,
// so that blocked workers do not hold other groups up while other
// goroutines fill the CPUs. Workers above min exit after the idle timeout.
func WithWorkers(minWorkers, maxWorkers int) Option {
	return optionFunc(func(c *config) error {
		if err := checkWorkers(minWorkers, maxWorkers); err != nil {
			return err
		}
		c.minWorkers, c.maxWorkers = minWorkers, maxWorkers
		return nil
	})
}

func checkWorkers(minWorkers, maxWorkers int) error {
	if minWorkers < 0 || maxWorkers < 1 || minWorkers > maxWorkers || maxWorkers > 1<<20 {
		return invalid("workers (%d, %d): want 0 <= min <= max, 1 <= max <= %d", minWorkers, maxWorkers, 1<<20)
	}
	return nil
}

// WithGroupQueueSize bounds the tasks one group may have waiting for a
// worker (default DefaultGroupQueueSize); the worker that holds the group
// has up to WithBatchSize more in hand. When a group is full, Submit
// waits for room (or, with WithNonblocking and in TrySubmit, returns
// ErrQueueFull) for that group's submitters only; other groups go on.
func WithGroupQueueSize(n int) Option {
	return optionFunc(func(c *config) error {
		if n <= 0 || n > 1<<24 {
			return invalid("WithGroupQueueSize(%d): want 1..%d", n, 1<<24)
		}
		c.groupQueueSize = n
		return nil
	})
}

// WithQueueSize is WithGroupQueueSize.
//
// Deprecated: use WithGroupQueueSize; queues are per group, not per shard.
func WithQueueSize(n int) Option { return WithGroupQueueSize(n) }

// WithMaxQueued bounds the tasks the whole pool holds, queued or running
// (default DefaultMaxQueued). Submissions beyond it wait or fail as for a
// full group. Shards reserve room in chunks of up to 64 so that Submit does
// not touch a shared counter, so a refusal may come when up to 1/16 of the
// bound is reserved but unused; bounds under 32 × shards are kept exactly.
func WithMaxQueued(n int) Option {
	return optionFunc(func(c *config) error {
		if n <= 0 || n > 1<<40 {
			return invalid("WithMaxQueued(%d): want 1..%d", n, 1<<40)
		}
		c.maxQueued = n
		return nil
	})
}

// WithBatchSize sets the longest turn of a group: how many tasks a worker
// runs from one group (and from the ready groups of one shard) before the
// group goes behind the other ready groups (default 64). A turn also ends
// after the task that finishes 2 ms after it began. Larger turns cost less
// per task; smaller ones bound how long a heavy group holds a worker.
// NewBatcher refuses it: a Batcher's turn is one call (WithMaxBatch).
func WithBatchSize(n int) Option {
	return optionFunc(func(c *config) error {
		if n <= 0 || n > 1<<16 {
			return invalid("WithBatchSize(%d): want 1..%d", n, 1<<16)
		}
		c.batchSize, c.batchSizeSet = n, true
		return nil
	})
}

// WithMaxBatch sets the most messages a Batcher hands to one call of its
// function (default DefaultMaxBatch, 256): a call receives the group's
// queued messages up to this bound. Larger calls amortize more of a write's
// fixed cost; smaller ones bound a call's time and the memory of a failed
// call's letter. New refuses it: a Pool's turn is WithBatchSize.
func WithMaxBatch(n int) Option {
	return optionFunc(func(c *config) error {
		if n <= 0 || n > 1<<16 {
			return invalid("WithMaxBatch(%d): want 1..%d", n, 1<<16)
		}
		c.maxBatch, c.maxBatchSet = n, true
		return nil
	})
}

// WithNonblocking makes Submit and Go return ErrQueueFull at once when the
// group's queue or the pool is full, instead of waiting for room.
func WithNonblocking() Option {
	return optionFunc(func(c *config) error { c.nonblocking = true; return nil })
}

// WithIdleTimeout sets how long a worker above the target count waits for
// work before it exits (default 10 s). With WithScaling, a worker that
// parks while more workers run than the scaler's target waits at most
// 10 ms; one parked before the target fell exits within about two idle
// timeouts (see WithScaling).
func WithIdleTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) error {
		if d <= 0 {
			return invalid("WithIdleTimeout(%v): want > 0", d)
		}
		c.idleTimeout = d
		return nil
	})
}

// WithRetry sets the retry policy for tasks that return an error. The
// default runs each task once.
func WithRetry(p RetryPolicy) Option {
	return optionFunc(func(c *config) error {
		if err := p.validate(); err != nil {
			return err
		}
		c.retry = p
		return nil
	})
}

// DeadLetterWait is how long a worker waits for room in a full
// dead-letter channel before it gives the letter up: counted in
// Stats.DeadLettersUntaken and logged through log/slog (at most one line a
// second), so a pool whose owner never reads DeadLetters() slows down but
// never stalls, and no letter disappears without a trace.
const DeadLetterWait = time.Second

// WithDeadLetterBuffer sets the capacity of the DeadLetters channel
// (default 256; 0 makes it unbuffered). When it is full, the worker that
// has a letter waits for room, up to DeadLetterWait, so a reader that lags
// slows the pool down instead of losing letters; each such wait is counted
// in Stats.DeadLetterStalls. A letter still without room after the wait is
// counted in Stats.DeadLettersUntaken and logged. Once Close's deadline
// has passed the worker no longer waits: a letter the channel has no room
// for at once is returned in CloseError.Undelivered. Unbuffered, that is
// every letter no reader is receiving at that instant, such as those made
// while the reader handles the previous one. Use WithDeadLetterHandler
// instead of a reader to take every letter. The buffer is allocated by
// New, about 140 bytes a slot (n at most 2^24: 2.3 GB).
func WithDeadLetterBuffer(n int) Option {
	return optionFunc(func(c *config) error {
		if n < 0 || n > 1<<24 {
			return invalid("WithDeadLetterBuffer(%d): want 0..%d", n, 1<<24)
		}
		c.dlBuffer = n
		return nil
	})
}

// WithPanicHandler sets a function that the worker calls after a task
// panicked, with the panic value and the task's stack. The task also goes to
// the dead letters as Panicked. A panic inside h is recovered and ignored,
// and a runtime.Goexit inside h (t.Fatal in a test) ends only h: it runs
// on a goroutine of its own, which the worker waits for.
func WithPanicHandler(h func(v any, stack []byte)) Option {
	return optionFunc(func(c *config) error {
		if h == nil {
			return invalid("WithPanicHandler(nil)")
		}
		c.panicHandler = h
		return nil
	})
}

// Clock is the source of timestamps: DeadLetter.EnqueuedAt and FailedAt, and
// the check that a task's deadline has passed before it starts.
type Clock interface {
	Now() time.Time
}

// WithClock replaces time.Now as the source of timestamps and of the expiry
// check. Timers (retry backoff, idle timeout) and the scheduler's own
// pacing (a turn's 2 ms, the monitor's tick) always use package time: tests
// that need to control them run the pool inside a testing/synctest bubble,
// where package time is virtual, and most need no Clock at all.
func WithClock(c Clock) Option {
	return optionFunc(func(cf *config) error {
		if c == nil {
			return invalid("WithClock(nil)")
		}
		cf.clock = c
		return nil
	})
}

// WithDeadLetterHandler makes the pool call h with each dead letter, on the
// worker that made it, instead of sending it on the DeadLetters channel
// (which then stays empty and is closed by Close). h must not block for
// long: the group of the letter waits while it runs. A panic or a
// runtime.Goexit in h (h runs on a goroutine of its own, which the worker
// waits for) is counted in Stats.DeadLettersUntaken, and the letter is
// logged. K must be the pool's group type, or New fails.
func WithDeadLetterHandler[K shard.Key](h func(DeadLetter[K])) Option {
	return optionFunc(func(c *config) error {
		if h == nil {
			return invalid("WithDeadLetterHandler(nil)")
		}
		c.dlHandler = h
		return nil
	})
}

// WithBatchDeadLetterHandler is WithDeadLetterHandler for a Batcher: h
// receives each failed call's letter instead of DeadLetters(). K and M
// must be the Batcher's, or NewBatcher fails.
func WithBatchDeadLetterHandler[K shard.Key, M any](h func(BatchDeadLetter[K, M])) Option {
	return optionFunc(func(c *config) error {
		if h == nil {
			return invalid("WithBatchDeadLetterHandler(nil)")
		}
		c.dlHandler = h
		return nil
	})
}
