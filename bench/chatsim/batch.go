package chatsim

import (
	"math/bits"
	"sync/atomic"

	"github.com/shoal-go/shoal/pool"
)

// Invariants:
//   - Every field of batchCounter is an atomic counter; record runs on any
//     number of goroutines at once. stats is read once the scheduler has
//     closed, when no record runs any more.

// sizeBuckets is the number of buckets of pool.BatchStats.Sizes.
const sizeBuckets = len(pool.BatchStats{}.Sizes)

// batchCounter counts persist writes and their sizes in the buckets of
// pool.BatchStats, so that the peers' writes read like the Batcher's.
type batchCounter struct {
	calls, msgs atomic.Uint64
	sizes       [sizeBuckets]atomic.Uint64
}

// sizeBucket returns the bucket of a write of n messages, as
// pool.BatchStats.Sizes documents it: bucket 0 holds 1, bucket i holds
// (2^(i-1), 2^i], the last also every larger size.
func sizeBucket(n int) int {
	return min(bits.Len(uint(n-1)), sizeBuckets-1)
}

// record counts one write of n messages.
func (b *batchCounter) record(n int) {
	b.calls.Add(1)                // a counter
	b.msgs.Add(uint64(n))         // a counter
	b.sizes[sizeBucket(n)].Add(1) // a counter
}

// stats returns the counts as a pool.BatchStats.
func (b *batchCounter) stats() pool.BatchStats {
	s := pool.BatchStats{Calls: b.calls.Load(), Messages: b.msgs.Load()} // counters
	for i := range b.sizes {
		s.Sizes[i] = b.sizes[i].Load() // a counter
	}
	return s
}
