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
// within [min, max]) exit after WithIdleTimeout without work; with a scaler
// (WithScaling), workers above its target exit after 10 ms without work.
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
// Measured on a 2-vCPU AMD EPYC virtual machine, Go 1.26, 1,000,000 tasks
// over 10,000 groups, submit to completion, ns per task, side by side with a
// bare channel feeding GOMAXPROCS workers (no order, no retries, no dead
// letters):
//
//	go test -run '^$' -bench '^BenchmarkSubmit$' -benchtime=1000000x -count 5 ./pool/
//
// On this machine the time to move a cache line between the two CPUs is
// either about 60–70 ns or about 220–250 ns, switching every few tens of
// seconds as the host places the virtual CPUs (on two hyperthreads of one
// core, or on two cores), and every row moves with it. Each result reports
// that time as xcore-ns, measured right after it (internal/xcore). Six
// passes of the command gave 30 results per row; the table gives the
// medians of those measured under each placement (10 to 20 per cell):
//
//	                          xcore ≈ 70 ns           xcore ≈ 230 ns
//	                       shoal  channel  ratio   shoal  channel  ratio
//	no-op, 8 submitters      44      65    0.68     123     137    0.90
//	no-op, 1 submitter       51      56    0.91     134      64    2.1
//	~1 µs CPU, 8 submitters  186     227   0.82     253     713    0.36
//	~1 µs CPU, 1 submitter   195     263   0.74     240     494    0.49
//
// The 1-submitter no-op row is itself bimodal under the 70 ns placement
// (35–38 or 65–81 ns). Compare rows of like xcore-ns only. Submit allocates
// nothing.
//
// Where the no-op nanoseconds go at 1024 shards: with 10,000 groups spread
// evenly, a worker that keeps up with its producers finds one or two tasks
// per lane visit, so nearly every task pays the idle → scheduled transition
// and a run-queue hand-off, each a few lines moving between CPUs. Two rules
// make batches longer. A worker yields its processor (runtime.Gosched) after
// a batch of fewer than 16 tasks, so that runnable producers fill lanes
// first: under the 230 ns placement 125 against 160 ns (8 submitters) and
// 139 against 172 (1 submitter), under the 70 ns one 43 against 47 and 36
// against 39 (medians of BenchmarkSubmitRules, three passes with -count 4,
// split by xcore-ns). And producers wake nobody
// while a worker spins or enough workers are free. Submit writes no shared
// counter (arrivals and queue lengths are read from lane positions by
// Snapshot; the in-flight count exists only with a breaker). With one
// submitter the channel pool keeps its lone receiver on the sender's CPU
// (the runtime runs a goroutine that a channel send readies on the sender's
// processor), so nothing crosses between CPUs; shoal's workers take lanes
// from the other CPU, which costs little under the 70 ns placement and
// doubles its time under the 230 ns one.
//
// Measured and rejected, alternating binaries: padding integer-keyed slots
// from 56 to 64 bytes (190 against 140 ns, 8 submitters), lane fields
// packed into one cache line (5 % faster with GOMAXPROCS=1, 10–15 %
// slower with 2), a lane whose consumer never writes the slot lines (its
// producers check room against a cached head; no faster, and finished tasks
// would stay reachable until overwritten), workers that keep the lanes they
// emptied and poll them (no transitions for producers; 1.2–2× faster under
// one placement, 10–20 % slower under the other, and a blocked worker
// delays the lanes it keeps), a worker that has just been woken waking the
// next one when more shards wait (148 against 72 ns, every worker kept
// awake), reading the real clock for every acceptance (35 ns), and 4, 32 or
// 1024 spin rounds instead of 256 (BenchmarkSubmitRules: 4 and 1024 within
// 1 ns of 256 under either placement). A first version that woke a parked
// worker for most transitions measured 620–930 ns/task. Fewer shards batch
// better: WithShards(64) measured 68 (8 submitters) and 92 ns (1 submitter)
// in a run where 1024 shards measured 103 and 108, at the price of
// isolation.
package pool
