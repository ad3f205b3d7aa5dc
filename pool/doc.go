// Package pool runs tasks per group: tasks of one group (a room, a channel,
// an inbox) run one at a time, in the order their Submit calls returned;
// tasks of different groups run in parallel on a bounded, self-sizing set of
// worker goroutines. A slow or overloaded group delays only itself.
//
//	p, err := pool.New[string](pool.WithRetry(pool.RetryPolicy{MaxAttempts: 3}))
//	...
//	err = p.Submit(ctx, roomID, func(ctx context.Context) error { return deliver(ctx, msg) })
//	...
//	go func() { for dl := range p.DeadLetters() { log(dl) } }()
//	err = p.Close(ctx)
//
// A Batcher[K, M] is the same scheduler with a second face: it hands the
// messages a group has queued to one call of a BatchFunc (up to
// WithMaxBatch), so a room that persists its messages in one write runs as
// fast as its backlog allows:
//
//	b, err := pool.NewBatcher(func(ctx context.Context, room string, msgs []Message) error {
//		return db.InsertMany(ctx, room, msgs) // one write for the batch
//	})
//	...
//	err = b.Submit(ctx, roomID, msg)
//
// Use a Pool when each message is its own piece of work (a push, a call to
// another service); use a Batcher when a group's messages can be handled
// together more cheaply than one by one (a database write, a socket
// flush). The guarantees below hold for both, a Batcher's calls standing
// for tasks: a failed call is retried whole, with the same messages (or,
// when it returns Partial, only those it did not handle), and becomes one
// BatchDeadLetter carrying them.
//
// # Guarantees
//
//  1. Order: for one group, tasks start in the order their Submit calls
//     returned nil, and never overlap. Retries keep that order.
//  2. Isolation: a task that blocks or runs long holds back only its own
//     group's later tasks, while fewer groups block at once than the most
//     workers (WithWorkers): with every worker blocked, other groups wait
//     for one to come free. A full group makes only its own submitters
//     wait (WithGroupQueueSize). A group with a deep queue yields its
//     worker after a turn of WithBatchSize tasks or 2 ms.
//  3. Nothing lost: every accepted task completes or becomes one dead
//     letter with a reason (Failed, Panicked, Canceled, Expired, Shutdown),
//     also across Close: on DeadLetters() or at WithDeadLetterHandler's
//     function; after a Close deadline, letters the channel had no room
//     for are returned in CloseError.Undelivered; a letter nobody takes
//     within DeadLetterWait is counted in Stats.DeadLettersUntaken and
//     logged. A Submit that returns an error did not accept the task.
//  4. A panicking task never kills a worker and never stalls its group
//     (a task that calls runtime.Goexit ends its worker's goroutine, and a
//     new worker takes its place, unless Tune lowered max below the
//     workers running).
//  5. Close stops admission, drains, and returns after every goroutine the
//     pool started has exited; DeadLetters() is closed after its last letter.
//  6. Submit of a plain task does not allocate while the pool is busy:
//     queues are reused (the first task of a group after the pool went idle
//     allocates its queue). An idle pool uses no CPU and keeps no idle
//     queues.
//  7. Bad input gets an error matching ErrInvalidOption, ErrNilTask,
//     ErrNilContext or ErrClosed, never a panic.
//
// # Shape
//
// Every group with work has its own FIFO queue, kept in one of WithShards
// shards (default 1024) of a table keyed by group, each shard with its own
// mutex. Submit appends to the group's queue; a group that was not held
// joins its shard's ready list, and a shard with ready groups is in the run
// queue. A worker takes a shard, holds its first ready group and, if more
// are ready, hands the shard back at once, so other workers serve them
// while it runs. A group's turn ends after WithBatchSize tasks or 2 ms;
// then it goes behind the other ready groups. A task waiting for a retry
// keeps its group held on a timer while the worker moves on. An emptied
// queue stays in its shard's table on an idle list (up to 64 per shard),
// so a group that comes back, or a new group, costs no allocation; the
// idle lists are dropped when the pool goes idle.
//
// # Workers
//
// Workers run between min and max (WithWorkers; max defaults to
// DefaultMaxWorkers, 1024, or 4×GOMAXPROCS where that is more). They start
// on demand: a Submit that readies a group wakes or starts one when none is
// free (a worker whose tasks block counts as busy while it runs one), and a
// monitor goroutine, ticking every millisecond while the pool has work,
// starts or wakes more while groups wait, so a group behind a worker stuck
// in a long task waits about a millisecond. Past GOMAXPROCS workers, a
// worker starts only while the runtime counts fewer goroutines running or
// waiting for a processor than busy workers (runtime/metrics): some of
// them must be blocked. So tasks that wait on I/O get the workers they
// need, the pool doubling each millisecond, and CPU-bound tasks do not
// oversubscribe the processors. Other goroutines that fill the processors
// hide blocked workers from that count, so the monitor also starts a few
// workers when waiting groups have gone 10 ms with no worker taking any.
// Workers above the kept-warm count exit after WithIdleTimeout without
// work. While more goroutines wait for a processor than there are
// processors, and fewer workers than processors are in a batch of tasks
// that block, a Submit that may wait yields its processor once
// (runtime.Gosched) as its group falls eight tasks behind, so that
// submitters which outnumber the processors let the workers catch up.
// docs/TUNING.md ("Workers") gives each rule with its exceptions and
// measurements.
//
// # Costs
//
// About 95–420 ns per no-op task submitted and run on a 2-vCPU virtual
// machine (BenchmarkSubmit and shoalbench), between 0.35× and 1.08× pond
// v2's time in the same runs: the figures move with where the host places
// the CPUs (the README says how); about
// 160 bytes per queued task with one task in each of 1,000,000 groups
// (BenchmarkGroupMemory). docs/ARCHITECTURE.md has the measurements.
//
// # Time
//
// DeadLetter.EnqueuedAt comes from a coarse clock that the monitor updates
// every millisecond while the pool is busy, so it is exact to about a
// millisecond; with WithClock or an option that observes every task it is
// exact. Deadlines are checked against the pool's clock. Timers use package
// time, which tests control by running the pool inside a testing/synctest
// bubble.
package pool
