package ringbuf

// Invariants:
//
//   - len(slots) == mask+1 is a power of two in [2, MaxCapacity]; slot i
//     serves the positions p with p&mask == i, one lap after another.
//   - head <= tail at every instant: a consumer claims position p only after
//     it has seen slot p's sequence say "filled", which a producer writes only
//     after it has claimed p by moving tail past it. tail-head <= len(slots).
//   - head and tail only grow (modulo 2^64). Positions are compared through
//     int64 differences, so wrap-around of the uint64 counters is harmless as
//     long as fewer than 2^63 positions separate any two compared values.
//   - slot[p&mask].seq says who owns the slot for position p:
//     seq == p                 free: the producer that claims p may write val;
//     seq == p+1               filled: the consumer that claims p may read val;
//     seq == p+len(slots)      freed again: ready for position p+len(slots).
//     These three differ only if len(slots) >= 2: with one slot, "filled
//     for p" and "free for p+1" would be the same number, so New never
//     makes a ring of one slot.
//     Any other value means the slot is owned by someone else right now (a
//     producer or consumer between its claim and its release), or belongs to
//     an earlier or later lap.
//   - A position is claimed by exactly one goroutine: producers claim by
//     CAS on tail, consumers by CAS on head, one position at a time
//     (TryPush, TryPop) or a run [p, p+n) at once (PushBatch, PopBatch),
//     which succeeds only if every slot of the run was seen free (filled)
//     for exactly its position before the CAS. Between the claim and the
//     store to seq, only the claimer touches val.
//   - A batch publishes (or frees) the slots of its run from the last to
//     the first. Since a consumer (producer) scans from its cursor and
//     stops at the first slot that is not ready, it sees none of a run or
//     all of it: seeing the first slot's store means every later slot's
//     store happened before.
//   - Only the producers' CAS writes the cache line of tail, and only the
//     consumers' CAS writes that of head; pops never read tail and pushes
//     never read head (they read the slot they will write anyway), so the
//     two cursors' lines move between cores only for Len.
//   - A popped slot's val holds the zero T, so the ring retains no pointer
//     to an item it has handed out.

import (
	"errors"
	"fmt"
	"sync/atomic"
	"unsafe"
)

// MaxCapacity is the largest capacity New accepts (after rounding up to a
// power of two).
const MaxCapacity = 1 << 30

// maxBytes bounds the memory of the slot array, so that New reports an error
// instead of letting make panic for very large element types: 1 GiB on 32-bit
// platforms, 1 TiB on 64-bit ones.
const maxBytes = 1 << (30 + 10*(^uint(0)>>63))

// ErrCapacity is matched (errors.Is) by the error New returns for a capacity
// that is zero, negative, above MaxCapacity, or whose slot array would not
// fit in memory; the error says which.
var ErrCapacity = errors.New("ringbuf: capacity must be between 1 and MaxCapacity")

// cacheLine is the padding unit. 128 bytes rather than 64: x86 fetches cache
// lines in adjacent pairs, so cursors 64 bytes apart still interfere.
const cacheLine = 128

// slot holds one item and the sequence number that says who owns it.
type slot[T any] struct {
	seq atomic.Uint64
	val T
}

// Ring is a bounded, lock-free multi-producer multi-consumer FIFO queue of T
// (after Dmitry Vyukov's bounded MPMC queue). Its capacity is fixed at New.
//
// Any number of goroutines may call TryPush, TryPop and PopBatch at the same
// time. None of them spins, sleeps or blocks: when the ring is full or empty
// they report it and return, and waiting is the caller's business. A
// contended call may retry its compare-and-swap, but each failed retry means
// another goroutine made progress.
//
// A successful TryPush of v is synchronized before the TryPop or PopBatch
// that returns v. Items pushed by one goroutine are claimed by consumers in
// the order it pushed them; with a single consumer (or consumers that take
// turns) they are also received in that order.
//
// A Ring must be created with New; the zero Ring is not usable.
type Ring[T any] struct {
	_ [cacheLine]byte
	// tail is the next position producers will claim.
	tail atomic.Uint64
	_    [cacheLine - 8]byte
	// head is the next position consumers will claim.
	head atomic.Uint64
	_    [cacheLine - 8]byte
	// mask and slots are written once by New and only read afterwards.
	mask  uint64
	slots []slot[T]
	_     [cacheLine - 32]byte
}

// New returns an empty Ring that holds up to capacity items, rounded up to
// the next power of two, and to at least 2. It returns ErrCapacity if capacity is not in
// [1, MaxCapacity] or the slots would take more than 1 TiB (1 GiB on 32-bit
// platforms).
func New[T any](capacity int) (*Ring[T], error) {
	if capacity <= 0 || capacity > MaxCapacity {
		return nil, fmt.Errorf("%w: got %d", ErrCapacity, capacity)
	}
	n := uint64(2)
	for n < uint64(capacity) {
		n <<= 1
	}
	if size := uint64(unsafe.Sizeof(slot[T]{})); n > maxBytes/size {
		return nil, fmt.Errorf("%w: %d slots of %d bytes exceed the %d bytes a ring may take",
			ErrCapacity, n, size, uint64(maxBytes))
	}
	r := &Ring[T]{mask: n - 1, slots: make([]slot[T], n)}
	for i := range r.slots {
		// Marks slot i free for position i. Published to other goroutines
		// by whatever hands them r.
		r.slots[i].seq.Store(uint64(i))
	}
	return r, nil
}

// TryPush appends v to the ring and reports true, or reports false, leaving
// the ring unchanged, if the ring is full. It is safe for any number of
// concurrent callers.
func (r *Ring[T]) TryPush(v T) bool {
	// Reads the next position to claim; no hand-over, the CAS below decides.
	pos := r.tail.Load()
	for {
		s := &r.slots[pos&r.mask]
		// Acquires the slot's state: if it is free for pos, the consumer of
		// the previous lap has finished with val.
		seq := s.seq.Load()
		switch d := int64(seq - pos); {
		case d == 0:
			// Claims position pos for this producer alone.
			if r.tail.CompareAndSwap(pos, pos+1) {
				s.val = v
				// Publishes val: hands the slot to the consumer of pos.
				s.seq.Store(pos + 1)
				return true
			}
			// Another producer claimed pos; try the position after it.
			pos = r.tail.Load()
		case d < 0:
			// The slot still holds (or is being emptied of) the item from
			// one lap earlier: the ring is full.
			return false
		default:
			// Another producer claimed pos and filled it already; catch up.
			pos = r.tail.Load()
		}
	}
}

// TryPop removes and returns the oldest item and true, or returns the zero T
// and false if the ring is empty. It is safe for any number of concurrent
// callers.
func (r *Ring[T]) TryPop() (T, bool) {
	// Reads the next position to claim; no hand-over, the CAS below decides.
	pos := r.head.Load()
	for {
		s := &r.slots[pos&r.mask]
		// Acquires the slot's state: if it is filled for pos, the producer's
		// write of val is visible.
		seq := s.seq.Load()
		switch d := int64(seq - (pos + 1)); {
		case d == 0:
			// Claims position pos for this consumer alone.
			if r.head.CompareAndSwap(pos, pos+1) {
				v := s.val
				var zero T
				s.val = zero
				// Frees the slot: hands it to the producer of pos+cap.
				s.seq.Store(pos + r.mask + 1)
				return v, true
			}
			// Another consumer claimed pos; try the position after it.
			pos = r.head.Load()
		case d < 0:
			// Nothing published at pos yet: the ring is empty (or its
			// producer is between claim and publish).
			var zero T
			return zero, false
		default:
			// Another consumer took pos already; catch up.
			pos = r.head.Load()
		}
	}
}

// PopBatch removes up to len(dst) of the oldest items, stores them in
// dst[:n] in order, and returns n; n is 0 if the ring is empty or dst is.
// It claims every item it returns with a single compare-and-swap, which
// makes draining many items much cheaper than repeated TryPop calls. It is
// safe for any number of concurrent callers, mixed with TryPop.
//
// PopBatch returns only items that are published contiguously from the
// oldest one: it stops before the first position whose producer has claimed
// it but not finished writing.
func (r *Ring[T]) PopBatch(dst []T) int {
	if len(dst) == 0 {
		return 0
	}
	limit := min(uint64(len(dst)), r.mask+1)
	// Reads the next position to claim; no hand-over, the CAS below decides.
	pos := r.head.Load()
	for {
		// Count the filled slots from pos on. Each load acquires that slot's
		// published val.
		var n uint64
		for n < limit && r.slots[(pos+n)&r.mask].seq.Load() == pos+n+1 {
			n++
		}
		if n == 0 {
			// Either empty, or another consumer moved head past pos:
			// re-reads head to tell which; no hand-over.
			cur := r.head.Load()
			if cur == pos {
				return 0
			}
			pos = cur
			continue
		}
		// Claims positions [pos, pos+n) for this consumer alone. Success
		// means head was still pos, so none of them was claimed by another
		// consumer, and each was filled for exactly its position.
		if !r.head.CompareAndSwap(pos, pos+n) {
			// Another consumer claimed pos; start again where it left off.
			pos = r.head.Load()
			continue
		}
		// Free the run from its last slot to its first: a producer can
		// claim none of it before the first slot is free, and then finds
		// the whole run free instead of chasing this loop slot by slot.
		var zero T
		for i := n; i > 0; i-- {
			s := &r.slots[(pos+i-1)&r.mask]
			dst[i-1] = s.val
			s.val = zero
			// Frees the slot: hands it to the producer of pos+i-1+cap.
			s.seq.Store(pos + i - 1 + r.mask + 1)
		}
		return int(n)
	}
}

// PushBatch appends the items of src, in order, until the ring is full, and
// returns how many it appended: len(src) if there was room for all of them,
// 0 if the ring is full or src is empty. It claims every item it appends
// with a single compare-and-swap, which makes pushing many items much
// cheaper than repeated TryPush calls, and lets a consumer's PopBatch take
// them in one go. It is safe for any number of concurrent callers, mixed
// with TryPush.
//
// The items src[:n] are appended contiguously: no other producer's item
// lands between them, and consumers see none of them until all of them are
// published.
func (r *Ring[T]) PushBatch(src []T) int {
	if len(src) == 0 {
		return 0
	}
	limit := min(uint64(len(src)), r.mask+1)
	// Reads the next position to claim; no hand-over, the CAS below decides.
	pos := r.tail.Load()
	for {
		// Count the free slots from pos on. Each load acquires the slot's
		// release by the consumer of the previous lap, so its val is ours
		// to overwrite once the positions are claimed.
		var n uint64
		for n < limit && r.slots[(pos+n)&r.mask].seq.Load() == pos+n {
			n++
		}
		if n == 0 {
			// Either full, or another producer moved tail past pos:
			// re-reads tail to tell which; no hand-over. (A slot that is
			// filled for pos was published after tail moved past pos, so
			// this load sees the move.)
			cur := r.tail.Load()
			if cur == pos {
				return 0
			}
			pos = cur
			continue
		}
		// Claims positions [pos, pos+n) for this producer alone. Success
		// means tail was still pos, so none of them was claimed by another
		// producer, and each slot was free for exactly its position.
		if !r.tail.CompareAndSwap(pos, pos+n) {
			// Another producer claimed pos; start again where it left off.
			pos = r.tail.Load()
			continue
		}
		// Publish the run from its last slot to its first: a consumer can
		// take none of it before the first slot is published, and then
		// finds the whole run published instead of chasing this loop slot
		// by slot.
		for i := n; i > 0; i-- {
			s := &r.slots[(pos+i-1)&r.mask]
			s.val = src[i-1]
			// Publishes val: hands the slot to the consumer of pos+i-1.
			s.seq.Store(pos + i)
		}
		return int(n)
	}
}

// Len returns the number of items in the ring. Under concurrent use it is a
// snapshot that may be stale by the time it returns; it includes items
// whose push or pop is in progress. It reads both cursors, so a caller that
// calls it on every item pulls the other side's cursor line across cores;
// a caller that only needs "empty or not" should try a pop instead.
func (r *Ring[T]) Len() int {
	// Loads head before tail: tail only grows, so the difference is >= 0.
	h := r.head.Load()
	// Loads tail; no hand-over.
	t := r.tail.Load()
	n := t - h
	if n > r.mask+1 {
		// head was stale: consumers and producers moved on between the
		// two loads.
		n = r.mask + 1
	}
	return int(n)
}

// Popped returns how many items have been popped since New: the
// consumers' position. Comparing two readings tells whether any consumer
// took an item in between, without reading the producers' cursor.
func (r *Ring[T]) Popped() uint64 {
	// Reads the consumers' cursor; no hand-over.
	return r.head.Load()
}

// Cap returns the capacity: the most items the ring holds, a power of two
// and at least 2.
func (r *Ring[T]) Cap() int {
	return int(r.mask + 1)
}
