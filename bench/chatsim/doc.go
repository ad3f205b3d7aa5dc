// Package chatsim simulates a chat backend's load and runs it through shoal
// or through a peer pool, checking what shoal promises.
//
// The load: Rooms rooms whose activity follows a Zipf distribution (a few
// very busy rooms, a long tail of quiet ones); Poisson arrivals whose rate
// follows a compressed day (a quiet night at about 0.15 × the mean, an
// evening peak at 3 × the mean); a simulated persist write (0.2–2 ms of I/O)
// and, per message, a fan-out whose CPU grows with the room's size. A
// fraction of the messages fail their persist on every attempt, and a
// smaller one panics in its fan-out.
//
// Persist is batched, as real chat backends write a room's pending messages
// in one write: shoal runs the load through a pool.Batcher, one group per
// room, and each call of its function is one write of the room's queued
// messages (at most MaxBatch), costing one persist time drawn as for a
// single message; after the write succeeded, the messages fan out one by
// one, in order. The report shows the number of writes and the distribution
// of their sizes (mean, then median, p99 and largest as power-of-two bucket
// bounds). shoal's breaker reserves 4 KiB per queued message
// (backpressure.WithBytesPerTask) instead of its 64 KiB default for a task:
// a room's backlog is the Batcher's working set, not a sign of memory
// pressure.
//
// Faults in a batch: a message with an injected persist failure fails the
// whole write that carries it, on every attempt, as a transaction or a
// multi-row insert would. shoal retries the write whole (three attempts in
// all, the room's later messages waiting), then the Batcher hands every
// message of it to the dead letters as one Failed letter: the messages that
// shared the write are lost with the faulty one. A backend that cannot
// afford this would split a failed batch inside its function and write the
// messages one by one, at one write each; the simulation does not, so that
// the report shows what the Batcher's all-or-nothing call costs. A panic in
// a message's fan-out ends the call: the messages fanned out before it were
// delivered, the panicking message and those after it become one Panicked
// letter (the simulation counts only the undelivered ones). Result.Bystanders
// counts the dead letters without a fault of their own.
//
// The peers (-compare): ants and pond with, per room, a mutex and a pending
// slice, as a user would write batching by hand. Submit appends the message
// to its room's slice and submits a task; the task takes the room's mutex
// and writes the pending messages (at most MaxBatch per write) until none
// is left, so the tasks of messages an earlier task took find nothing.
// Taking under the mutex keeps a room's messages in order, which a mutex
// per message does not (it gives mutual exclusion only: unbatched, the load
// at -rate 58000 put 10,000 to 12,000 messages out of order). The peers do not retry: a
// failed write or a panic is a dead letter at once. Batching them too makes
// -compare measure the schedulers, not batching against no batching.
//
// The checks: every room's messages must start in sequence order and calls
// of a room must never overlap (the order checker counts both kinds of
// violation, for every variant; a retry must carry the same messages again),
// and every accepted message must be delivered or counted as a dead letter
// (Result.Lost is 0). The figures: throughput, end-to-end latency
// percentiles, generator lag, writes and batch sizes, breaker transitions,
// peak RSS and workers over the day.
//
// The generator runs on the caller's goroutine, sleeps only when the next
// message is due a millisecond or more later, and then submits in one burst
// what became due: its cost is a few hundred nanoseconds per message, and
// Result.GeneratorLagP99 shows whether it kept up.
//
// The command bench/cmd/chatsim runs the default load and prints Format's
// report; -compare adds ants and pond.
package chatsim
