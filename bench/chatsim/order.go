package chatsim

import "sync/atomic"

// Invariants:
//   - rooms[r].last is the highest sequence number of room r whose call has
//     begun; it only grows (CAS loop), so the checker needs no lock even when a
//     broken scheduler runs one room's messages at the same time.
//   - rooms[r].first is the first sequence number of the last first attempt
//     that began: a retry must hand over [first, last] again.
//   - rooms[r].running counts the calls of room r that began and have not
//     ended; a begin that raises it above one is an overlap, whichever
//     call it overlaps (the first, or one that overlapped it).
//   - The checker observes; it never makes a scheduler correct. Under a
//     correct scheduler begin and end of one room are ordered by the
//     scheduler's own hand-off, and every count stays zero.

// orderChecker checks that the messages of every room start in sequence order
// (1, 2, 3, ...) and that the calls of a room never overlap. A call carries
// one message or a batch of them; a retry (attempt > 0) must carry the
// messages of the room's last call again.
type orderChecker struct {
	rooms      []roomOrder
	outOfOrder atomic.Uint64
	overlaps   atomic.Uint64
}

// roomOrder is padded to a cache line so that two rooms running on two cores
// do not share one.
type roomOrder struct {
	last    atomic.Uint64
	first   atomic.Uint64
	running atomic.Int32
	_       [64 - 8 - 8 - 4]byte
}

func newOrderChecker(rooms int) *orderChecker {
	return &orderChecker{rooms: make([]roomOrder, rooms)}
}

// begin records that attempt (0 for the first) of a call carrying batch, in
// the order the call handles it, starts for room. It reports whether every
// message of it was in order and the call alone. Each message out of order
// counts once.
func (c *orderChecker) begin(room uint32, batch []*item, attempt int) bool {
	r := &c.rooms[room]
	ok := true
	if r.running.Add(1) > 1 { // another call of the room runs
		c.overlaps.Add(1) // a counter
		ok = false
	}
	if attempt > 0 {
		// The last call that began, handed over again, whole and in its
		// order: first, first+1, ..., last (a room's sequence numbers
		// have no holes).
		first, last := r.first.Load(), r.last.Load()
		same := batch[len(batch)-1].seq == last
		for i, it := range batch {
			same = same && it.seq == first+uint64(i)
		}
		if !same {
			c.outOfOrder.Add(uint64(len(batch))) // a counter
			ok = false
		}
		return ok
	}
	r.first.Store(batch[0].seq) // a hint for the next retry check; only correct schedulers rely on it
	for _, it := range batch {
		ok = c.next(r, it.seq) && ok
	}
	return ok
}

// next records that message seq of r begins, and reports whether it comes
// after every message of r that began before it.
func (c *orderChecker) next(r *roomOrder, seq uint64) bool {
	for {
		prev := r.last.Load() // the last message that began
		if seq <= prev {
			c.outOfOrder.Add(1) // a counter
			return false
		}
		if r.last.CompareAndSwap(prev, seq) { // publishes seq as begun
			return true
		}
	}
}

// end records that a call of room returned (or panicked).
func (c *orderChecker) end(room uint32) {
	c.rooms[room].running.Add(-1) // the call no longer runs
}

// violations returns the out-of-order starts and the overlaps seen so far.
func (c *orderChecker) violations() (outOfOrder, overlaps uint64) {
	return c.outOfOrder.Load(), c.overlaps.Load() // counters
}
