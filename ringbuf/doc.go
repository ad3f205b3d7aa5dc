// Package ringbuf provides Ring, a bounded lock-free FIFO queue that any
// number of goroutines may push to and pop from at once.
//
// Ring follows Dmitry Vyukov's bounded multi-producer multi-consumer queue:
// a power-of-two array of slots, each with a sequence number that says
// whether it is free or filled for a given lap, and two cursors — one for
// producers, one for consumers — on separate cache lines. A push or pop
// claims its position with one compare-and-swap and publishes it with one
// atomic store; PopBatch claims a whole run of items with one
// compare-and-swap, which is how a consumer drains many items per wake-up.
//
// The ring never blocks, spins or sleeps. TryPush reports false when the
// ring is full and TryPop and PopBatch report nothing when it is empty;
// parking and waking goroutines is left to the caller.
package ringbuf
