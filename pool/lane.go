package pool

// Invariants:
//
//   - A lane is the queue of one shard: many producers (Submit), and at most
//     one consumer at a time, the worker that holds the shard (see state
//     below). Positions are uint64 counters that only grow; slot p&mask
//     serves position p, one lap after another.
//   - tail (without the sealed bit) is the next position producers claim, by
//     CAS. Close sets the sealed bit; a CAS that would claim a position
//     fails from then on, so no task is accepted after the seal.
//   - head is the next position the consumer reads. Only the shard's holder
//     writes it; it is stored once per batch, so other goroutines (stats,
//     Close) read a value that may lag the holder's by at most one batch.
//   - slot[p&mask].seq == p: free for the producer that claims p;
//     == p+1: filled, readable by the holder; == p+cap: freed for the next
//     lap. A filled slot's entry is written before seq (release), read after
//     (acquire).
//   - state is stateIdle or stateScheduled. Scheduled means exactly one of:
//     the shard's index is in the run queue once; a worker holds it; it is
//     parked on a retry timer. Only the goroutine that moves it to scheduled
//     (CAS from idle) or holds it may hand it on; only the holder sets idle.
//   - No lost wake-up: a producer publishes its slot, then loads state; the
//     holder stores idle, then checks the next slot. Both are sequentially
//     consistent atomics, so at least one of them sees the other.

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoal-go/shoal/shard"
)

const (
	stateIdle uint32 = iota
	stateScheduled
)

// sealed is the bit of tail that Close sets to stop admission.
const sealed = uint64(1) << 63

// entry is one accepted task as it waits in a lane.
type entry[K shard.Key] struct {
	task  Task
	ctx   context.Context
	group K
	enq   int64 // nanoseconds since the pool's epoch
	// plain: ctx.Done() was nil at Submit, so ctx has no deadline and can
	// never be canceled; the task gets ctx itself and no deadline check.
	// A slot, with its sequence, is 56 bytes for integer keys and 64 for
	// strings on 64-bit platforms; padding the first to 64 was slower (see
	// Costs in doc.go).
	plain bool
}

type lslot[K shard.Key] struct {
	seq atomic.Uint64
	e   entry[K]
}

// retrying is the task at the head of a parked shard, waiting for its next
// attempt.
type retrying[K shard.Key] struct {
	e        entry[K]
	attempts int
	err      error
}

type pushResult uint8

const (
	pushOK pushResult = iota
	pushFull
	pushSealed
)

// lane is a shard: its queue, its schedule state, and what its holder keeps
// between batches. Producer-written, holder-written and read-only fields sit
// on separate cache lines.
type lane[K shard.Key] struct {
	_ [cacheLine]byte
	// tail: claimed by producers (CAS); sealed bit set by Close. Nothing
	// else lives on this line, so the holder never reads it on its fast
	// path and a lone producer keeps it in its cache.
	tail atomic.Uint64
	_    [cacheLine - 8]byte
	// state: idle→scheduled by a producer's CAS; →idle by the holder.
	state atomic.Uint32
	// waiters counts producers blocked on a full lane: written only on that
	// slow path, read by the holder after each batch.
	waiters atomic.Int32
	_       [cacheLine - 8]byte
	// head: next position to read; written by the holder only.
	head atomic.Uint64
	// retry is the parked head task; read and written by the holder only.
	retry *retrying[K]
	_     [cacheLine - 16]byte
	// slots and mask are written once by New.
	slots []lslot[K]
	mask  uint64

	// mu guards timer and spaceCh (slow paths only).
	mu sync.Mutex
	// timer is the retry timer of a parked shard, nil otherwise.
	timer *time.Timer
	// spaceCh is closed by the holder when it frees room while producers
	// wait; nil when nobody waits.
	spaceCh chan struct{}
}

// cacheLine is the padding unit: x86 fetches lines in adjacent pairs.
const cacheLine = 128

func (l *lane[K]) init(size int) {
	// At least 2 slots: with one, "filled for p" (p+1) and "free for p+1"
	// would be the same sequence value.
	n := 2
	for n < size {
		n <<= 1
	}
	l.slots = make([]lslot[K], n)
	l.mask = uint64(n - 1)
	for i := range l.slots {
		// Marks slot i free for position i; published by New's return.
		l.slots[i].seq.Store(uint64(i))
	}
}

// push appends e. Any number of goroutines may call it.
func (l *lane[K]) push(e *entry[K]) pushResult {
	// Reads the next position; the CAS below decides who gets it.
	pos := l.tail.Load()
	for {
		if pos&sealed != 0 {
			return pushSealed
		}
		s := &l.slots[pos&l.mask]
		// Acquires the slot: seq == pos means the previous lap's reader is done.
		seq := s.seq.Load()
		switch d := int64(seq - pos); {
		case d == 0:
			// Claims position pos; fails if another producer or the seal won.
			if l.tail.CompareAndSwap(pos, pos+1) {
				s.e = *e
				// Publishes the entry to the holder.
				s.seq.Store(pos + 1)
				return pushOK
			}
			pos = l.tail.Load()
		case d < 0:
			return pushFull
		default:
			pos = l.tail.Load()
		}
	}
}

// pop reads the entry at pos if it is published. Only the holder calls it.
func (l *lane[K]) pop(pos uint64) (entry[K], bool) {
	s := &l.slots[pos&l.mask]
	// Acquires the producer's entry.
	if s.seq.Load() != pos+1 {
		return entry[K]{}, false
	}
	e := s.e
	s.e = entry[K]{}
	// Frees the slot for the producer of the next lap.
	s.seq.Store(pos + l.mask + 1)
	return e, true
}

// ready reports whether the entry at pos is published. Only the holder
// calls it.
func (l *lane[K]) ready(pos uint64) bool {
	// Acquires: pairs with push's publishing store.
	return l.slots[pos&l.mask].seq.Load() == pos+1
}

// length is the number of claimed, unread positions (approximate while
// producers and the holder run).
func (l *lane[K]) length() int {
	// Reads the claimed positions, then the holder's published position.
	t := l.tail.Load() &^ sealed
	h := l.head.Load()
	if t < h {
		return 0
	}
	return int(t - h)
}

// waitSpace returns a channel that is closed when the holder frees room,
// after registering the caller as a waiter. The caller must call
// doneWaiting once it stops waiting.
func (l *lane[K]) waitSpace() <-chan struct{} {
	l.mu.Lock()
	// Announces the waiter before the caller re-checks the lane; pairs with
	// the holder's load in signalSpace.
	l.waiters.Add(1)
	if l.spaceCh == nil {
		l.spaceCh = make(chan struct{})
	}
	ch := l.spaceCh
	l.mu.Unlock()
	return ch
}

func (l *lane[K]) doneWaiting() {
	// Withdraws the announcement of waitSpace.
	l.waiters.Add(-1)
}

// signalSpace wakes producers that wait for room. The holder calls it after
// it freed slots.
func (l *lane[K]) signalSpace() {
	// Reads the announcements of waitSpace; the freed slots were published
	// before this load.
	if l.waiters.Load() == 0 {
		return
	}
	l.mu.Lock()
	if l.spaceCh != nil {
		close(l.spaceCh)
		l.spaceCh = nil
	}
	l.mu.Unlock()
}
