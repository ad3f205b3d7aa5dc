// Package ringbuf provides Ring, a bounded lock-free FIFO queue that any
// number of goroutines may push to and pop from at once.
//
// Ring follows Dmitry Vyukov's bounded multi-producer multi-consumer queue:
// a power-of-two array of slots, each with a sequence number that says
// whether it is free or filled for a given lap, and two cursors — one for
// producers, one for consumers — on separate cache lines. A push or pop
// claims its position with one compare-and-swap and publishes it with one
// atomic store; PushBatch and PopBatch claim a whole run of slots with one
// compare-and-swap and publish each slot with one atomic store, which is how
// a producer hands over, and a consumer drains, many items per wake-up.
// Popped slots are cleared, so the ring keeps no pointer to an item it has
// handed out.
//
// The ring never blocks, spins or sleeps. TryPush and PushBatch report
// false or 0 when the ring is full and TryPop and PopBatch report nothing
// when it is empty; parking and waking goroutines is left to the caller
// (announce, re-check, block: see benchRing in bench_test.go for one way).
//
// # Costs
//
// Measured on a shared, noisy 2-core amd64 VM (Go 1.26), medians of 5 runs
// of `go test -run '^$' -bench . -benchtime 0.3s ./ringbuf/`, per item:
//
//   - one goroutine: push then pop, ring 25 ns, buffered channel 35 ns;
//     64 TryPush then PopBatch(64), 20 ns; PushBatch(64) then PopBatch(64),
//     14 ns. Each item costs one atomic store on each side (on amd64 every
//     Go atomic store is a locked exchange, about 9 ns here even on a cache
//     line the core owns), and a single-item push or pop a compare-and-swap
//     too, which sets the floor.
//   - producers → consumers across the two cores, P→C, in the benchmark's
//     harness (waiting sides look again a few times, then park):
//     PushBatch(64) with PopBatch(64): 1→1 13 ns, 4→1 13 ns, 4→4 12 ns;
//     TryPush with PopBatch(64): 31 / 68 / 62 ns; TryPush with TryPop:
//     36 / 46 / 69 ns; buffered channel: 60 / 81 / 96 ns. Consumers that
//     park as soon as the ring is empty pay 19 / 23 / 22 ns with batches on
//     both sides, but 30 / 80 / 159 ns with single-item pushes, and spikes
//     of several hundred ns when the machine is loaded.
//
// These figures move by up to 2× between runs on a loaded machine. The
// batched figures depend on whole runs changing hands: PushBatch publishes
// its run from the last slot to the first (and PopBatch frees it the same
// way), so the other side takes all of it with one claim rather than
// chasing the loop slot by slot across cores. Hand items over in bursts,
// and let a waiting side look again briefly before it sleeps.
//
// No operation allocates.
package ringbuf
