// Package pool runs tasks per group: tasks of one group (a room, a channel,
// an inbox) run one at a time, in the order their Submit calls returned;
// tasks of different groups run in parallel on a bounded, self-sizing set of
// worker goroutines.
//
// # Shape
//
// A group maps to one of WithShards shards for the pool's lifetime. A shard
// is a lane: a bounded lock-free queue with many producers and at most one
// consumer at a time, plus a schedule state. Submit pushes the task into its
// shard's lane; if the shard was idle, it flips it to scheduled and hands its
// index to the run queue of ready shards. A worker takes a ready shard, runs
// up to WithBatchSize of its tasks one by one, and passes it on: back to the
// end of the run queue if tasks remain (fairness), parked on a timer while
// its head task waits for a retry, or idle.
//
// # Guarantees
//
//  1. Order: for one group, tasks start in the order their Submit calls
//     returned nil, and never overlap. Retries keep that order.
//  2. Nothing lost: every accepted task completes or arrives on
//     DeadLetters() with a reason, also across Close.
//  3. A panicking task never kills a worker and never stalls its group.
//  4. Close stops admission, drains, and returns after every goroutine the
//     pool started has exited; DeadLetters() is closed after its last letter.
//  5. Submit of a plain task does not allocate; an idle pool uses no CPU.
//  6. Bad input gets an error matching ErrInvalidOption, ErrNilTask,
//     ErrNilContext or ErrClosed, never a panic.
package pool
