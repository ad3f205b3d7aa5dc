package chatsim

import "sync/atomic"

// Invariants:
//   - rooms[r].last is the highest sequence number of room r whose work has
//     begun; it only grows (CAS loop), so the checker needs no lock even when a
//     broken scheduler runs one room's messages at the same time.
//   - rooms[r].busy is true while a message of room r runs; a second begin
//     that finds it true is an overlap.
//   - The checker observes; it never makes a scheduler correct. Under a
//     correct scheduler begin and end of one room are ordered by the
//     scheduler's own hand-off, and every count stays zero.

// orderChecker checks that the messages of every room start in sequence order
// (1, 2, 3, ...) and never overlap. A retry of a message (attempt > 0) must
// carry the sequence number of the last message that began.
type orderChecker struct {
	rooms      []roomOrder
	outOfOrder atomic.Uint64
	overlaps   atomic.Uint64
}

// roomOrder is padded to a cache line so that two rooms running on two cores
// do not share one.
type roomOrder struct {
	last atomic.Uint64
	busy atomic.Bool
	_    [64 - 8 - 4]byte
}

func newOrderChecker(rooms int) *orderChecker {
	return &orderChecker{rooms: make([]roomOrder, rooms)}
}

// begin records that attempt (0 for the first) of message seq of room starts.
// It reports whether the start was in order and alone.
func (c *orderChecker) begin(room uint32, seq uint64, attempt int) bool {
	r := &c.rooms[room]
	ok := true
	if !r.busy.CompareAndSwap(false, true) { // claims the room; fails if another message of it runs
		c.overlaps.Add(1) // a counter
		ok = false
	}
	if attempt > 0 {
		if r.last.Load() != seq { // the last message that began
			c.outOfOrder.Add(1) // a counter
			ok = false
		}
		return ok
	}
	for {
		prev := r.last.Load() // the last message that began
		if seq <= prev {
			c.outOfOrder.Add(1) // a counter
			return false
		}
		if r.last.CompareAndSwap(prev, seq) { // publishes seq as begun
			return ok
		}
	}
}

// end records that the running message of room returned (or panicked).
func (c *orderChecker) end(room uint32) {
	c.rooms[room].busy.Store(false) // releases the room to its next message
}

// violations returns the out-of-order starts and the overlaps seen so far.
func (c *orderChecker) violations() (outOfOrder, overlaps uint64) {
	return c.outOfOrder.Load(), c.overlaps.Load() // counters
}
