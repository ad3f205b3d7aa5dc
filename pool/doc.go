// Package pool runs tasks per group: tasks of one group (a room, a channel,
// an inbox) run one at a time, in the order their Submit calls returned;
// tasks of different groups run in parallel on a bounded, self-sizing set of
// worker goroutines.
//
//	p, err := pool.New[string](pool.WithRetry(pool.RetryPolicy{MaxAttempts: 3}))
//	...
//	err = p.Submit(ctx, roomID, func(ctx context.Context) error { return deliver(ctx, msg) })
//	...
//	go func() { for dl := range p.DeadLetters() { log(dl) } }()
//	err = p.Close(ctx)
//
// # Guarantees
//
//  1. Order: for one group, tasks start in the order their Submit calls
//     returned nil, and never overlap. Retries keep that order.
//  2. Nothing lost: every accepted task completes or arrives on
//     DeadLetters() with a reason (Failed, Panicked, Canceled, Expired,
//     Shutdown), also across Close; after a Close deadline, letters the
//     channel had no room for are returned in CloseError.Undelivered. A
//     Submit that returns an error did not accept the task.
//  3. A panicking task never kills a worker and never stalls its group
//     (a task that calls runtime.Goexit ends its worker's goroutine, and a
//     new worker takes its place).
//  4. Close stops admission, drains, and returns after every goroutine the
//     pool started has exited; DeadLetters() is closed after its last letter.
//  5. Submit of a plain task does not allocate; an idle pool uses no CPU.
//  6. Bad input gets an error matching ErrInvalidOption, ErrNilTask,
//     ErrNilContext or ErrClosed, never a panic.
//
// # Shape
//
// A group maps to one of WithShards shards (default 1024) for the pool's
// lifetime, by a multiply-shift of shard.Hash(group). A shard is a lane: a
// bounded lock-free queue with many producers and at most one consumer at a
// time, plus a schedule state. Submit pushes the task into its lane; if the
// lane was idle it flips it to scheduled (a load first, so a lane that is
// already scheduled costs no write) and hands its index to the run queue of
// ready shards. A worker takes a ready shard, runs up to WithBatchSize of
// its tasks one by one, and passes it on: back to the end of the run queue
// if tasks remain (fairness: another shard waits at most one batch), parked
// on a timer while its head task waits for a retry, or idle, with a re-check
// so that no wake-up is lost.
//
// A slow task delays only the groups of its own shard: many shards isolate
// groups better, and cost queue memory (shards × queue size × 64 bytes:
// 4 MiB by default) and some speed when few groups share a shard (see
// Costs). The shard count is fixed for a pool's lifetime, so routing needs
// no consistent hash: a multiply-shift of the hash costs about 1 ns where
// jump hash costs 25–40 ns at 1024 shards.
//
// # Workers and waking
//
// Workers run between min and max (WithWorkers). The expensive event in a
// pool like this is waking a parked goroutine on another core for every
// task; three rules keep it rare.
//
//   - Spinning (the Go scheduler's "spinning M"): a worker that runs out of
//     work keeps looking for 256 rounds of runtime.Gosched (microseconds)
//     before it parks, and while one spins, producers wake nobody. The
//     bound keeps an idle pool at zero CPU: the last worker parks a few
//     microseconds after the last task.
//   - A producer wakes (or starts, up to max: reactive scaling) a worker
//     only if no worker is free or more shards wait than workers are free.
//     Otherwise the free workers come back to the run queue after their
//     batch.
//   - Free means awake and not a slow worker in a batch. A worker that
//     completes fewer than 16 batches per millisecond (its tasks wait for
//     I/O or run long) counts as slow: while it runs a batch it is not
//     counted on, so a shard that arrives while every awake worker is
//     blocked gets a worker at once; and it parks without spinning when it
//     runs out of work. Workers of short tasks keep the rules above, which
//     are what keep their cost per task low.
//   - A monitor goroutine, ticking every millisecond only while the pool
//     has work, wakes or starts workers when shards still wait (say, a
//     worker of short tasks hit a long one), and keeps the coarse clock. It
//     blocks when the pool is idle.
//
// Parked workers wait on a one-slot channel each: the waker that takes a
// worker off the idle list sends exactly one token, so it never blocks and
// the token is never stale. Workers above the kept-warm count (the target,
// within [min, max]) exit after WithIdleTimeout.
//
// # Time
//
// DeadLetter.EnqueuedAt comes from a coarse clock that the monitor updates
// every millisecond while the pool is busy (and that the first submission
// after an idle spell refreshes), so it is exact to about a millisecond:
// reading the real clock costs about 35 ns on a kvm-clock virtual machine,
// more than half of the per-task budget. With WithClock or an option that
// observes every task (queue-wait histograms), acceptance times are exact.
// Deadlines are always checked against the real clock. WithClock replaces
// the source of timestamps only; timers use package time, which tests
// control by running the pool inside a testing/synctest bubble.
//
// # Costs
//
// Measured on a 2-core AMD EPYC virtual machine shared with other work (a
// two-goroutine CPU burner got 0.3–1 CPU of it while these ran), Go 1.26,
// 1,000,000 tasks over 10,000 groups, submit to completion, ns per task,
// medians of 10, side by side in one run with a bare channel feeding
// GOMAXPROCS workers (no order, no retries, no dead letters):
//
//	go test -run '^$' -bench Submit -benchtime=1000000x -count 10 ./pool/
//
//	                     shoal (ordered)   channel pool   ratio
//	no-op, 8 submitters        94               64        1.47
//	no-op, 1 submitter        142               59        2.4
//	~1 µs CPU, 8 submitters   458              374        1.22
//	~1 µs CPU, 1 submitter    422              348        1.21
//
// Other runs of the same command gave 70–150 ns (8 submitters) and 37–180
// ns (1 submitter) for the no-op rows; on a busier day, 12 alternating
// processes per row gave medians of 148 and 237 ns against the channel
// pool's 60 and 58, single runs ranging over 84–525 ns: compare rows of one
// run only. Submit allocates nothing.
//
// Where the no-op nanoseconds go at 1024 shards: with 10,000 groups spread
// evenly a worker finds about 2 tasks per lane visit (about 35 at 64
// shards), so nearly every task pays the idle → scheduled transition and a
// run-queue hand-off. Submit writes no shared counter (arrivals and queue
// lengths are read from lane positions by Snapshot; the in-flight count
// exists only with a breaker); half of all CPU samples are the first touch
// of the task's slot in push and in pop, a line the other core wrote last.
// Measured, alternating binaries in one run: padding integer-keyed slots
// from 56 to 64 bytes, 190 against 140 ns (8 submitters) and 248 against
// 157 (1 submitter), rejected; one slot array for all lanes with a spare
// slot between them (against 4 KiB aliasing of the per-lane arrays),
// skipping the run-queue length in wake when nobody can be woken, and a
// parking worker taking a refilled run queue without the announce round
// trip: no difference outside the noise, not kept. 4 or 32 spin rounds
// instead of 256, or at most 1 or 2 workers, left both rows within it too.
//
// With one submitter spreading over many groups, each lane holds one task at
// a time and every task pays the idle → scheduled transition and a
// run-queue hand-off between cores. A first version that also woke a parked
// worker for most of those transitions measured 620–930 ns/task here; the
// waking rules above (spinning, waking only when more shards wait than
// workers are awake) brought it to 100–180. Two measured rejections: a
// worker that has just been woken waking the next one when more shards
// wait (as the Go scheduler's spinning M does) kept every worker awake for
// no-op tasks, 148 against 72 ns/task (8 submitters, one run); reading the
// real clock for every acceptance costs 35 ns. Fewer shards batch better:
// WithShards(64) measured 68 (8 submitters) and 92 ns (1 submitter) in a run
// where 1024 shards measured 103 and 108, at the price of isolation.
package pool
