// Invariants:
//   - cells[r][c] is the number of sampled tasks queued, summed over the
//     groups whose hash maps to cell c of row r. Inc adds before the task
//     can be dequeued and Dec subtracts after, so a cell is never below the
//     true count of any one of its groups (count-min: estimates only err
//     upward, by what colliding groups hold).
//   - slotHash[i] is 0 for an empty slot, else the hash of slotKey[i]. Both
//     are written only under mu; slotHash is atomic so that Inc can ask
//     "already tracked?" without the lock.
//   - floor is the estimate at which Inc offers a group to the table; it is
//     recomputed under mu on every offer and every Top.

package metrics

import (
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
)

const (
	// TopKSlots is the number of groups a TopK tracks.
	TopKSlots = 16
	// DefaultSampleEvery is the share of tasks a zero TopK counts: one in 8.
	DefaultSampleEvery = 8

	sketchWidth = 4096 // cells per row: 2 rows of 4096 int32 = 32 KiB
	sketchMask  = sketchWidth - 1
	minFloor    = 2 // sampled tasks a group needs before it is offered
)

// TopGroup is one entry of TopK.Top.
type TopGroup[K comparable] struct {
	// Group is the group's key.
	Group K
	// Queued estimates the group's queued tasks: sampled count times the
	// sampling rate; it errs upward by what colliding groups hold and, for
	// small counts, by sampling noise.
	Queued int64
}

// TopK finds the groups with the most queued tasks at a bounded cost.
//
// Each task is sampled with probability 1/SampleEvery; a sampled task adds
// one to two counters (a count-min sketch of 2×4096 cells indexed by the
// group's hash) when queued and subtracts one when it leaves the queue.
// When a group's estimate reaches the table's floor, Inc offers the group to
// a 16-slot table under a mutex; the floor is one more than the smallest
// tracked estimate once the table is full, so only groups heavier than a
// tracked one take the lock, and each takes it once while tracked.
//
// Hot-path cost: Inc is a random draw (≈ 6 ns, math/rand/v2's per-thread
// generator, so goroutines do not contend) for unsampled tasks, IncSeq a
// multiplication (≈ 1 ns) on a number the caller has, plus two
// atomic adds and, for a group at or above the floor, a scan of 16 hashes
// for sampled ones; Dec is two atomic adds. Neither allocates.
//
// Accuracy: Top reports tracked groups by current estimate. A group is
// noticed on a sampled Inc once its estimate reaches the floor; the floor is
// refreshed on every Top call, so a group that grew while the table was full
// of groups that have since drained is noticed on its first sampled Inc
// after the next Top.
//
// The zero value is ready and samples one task in DefaultSampleEvery.
type TopK[K comparable] struct {
	cells [2][sketchWidth]atomic.Int32
	floor atomic.Int32 // 0 means minFloor
	every uint64       // sampling rate, a power of two; 0 means DefaultSampleEvery; set before use

	mu       sync.Mutex
	slotHash [TopKSlots]atomic.Uint64
	slotKey  [TopKSlots]K // guarded by mu
}

// SetSampleEvery sets the sampling rate to one task in n, rounded up to a
// power of two (n <= 1 counts every task). Call it before the first Inc.
func (t *TopK[K]) SetSampleEvery(n int) {
	p := uint64(1)
	for p < uint64(max(n, 1)) {
		p <<= 1
	}
	t.every = p
}

// SampleEvery returns the sampling rate: one task in SampleEvery is counted.
func (t *TopK[K]) SampleEvery() int {
	if t.every == 0 {
		return DefaultSampleEvery
	}
	return int(t.every)
}

// Inc counts one task of group key (whose hash is h) entering the queue.
// It returns whether the task was sampled; the caller must call Dec(h) for
// exactly the tasks Inc returned true for, after they leave the queue (and
// if the enqueue fails). Call Inc before the task can be dequeued.
func (t *TopK[K]) Inc(h uint64, key K) bool {
	if mask := uint64(t.SampleEvery()) - 1; mask != 0 && rand.Uint64()&mask != 0 {
		return false
	}
	t.count(h, key)
	return true
}

// IncSeq is Inc with the sampling decided by seq, any number the caller
// already has that differs between consecutive tasks (a queue position, a
// per-shard counter), instead of a random draw: about 1 ns instead of 6 for
// an unsampled task. seq is mixed with h, so regular patterns in either do
// not make a group always or never sampled.
func (t *TopK[K]) IncSeq(h uint64, key K, seq uint64) bool {
	if mask := uint64(t.SampleEvery()) - 1; mask != 0 && ((seq^h)*0x9E3779B97F4A7C15)>>32&mask != 0 {
		return false
	}
	t.count(h, key)
	return true
}

// count adds one sampled task of the group and offers it to the table when
// its estimate reaches the floor.
func (t *TopK[K]) count(h uint64, key K) {
	a := t.cells[0][h&sketchMask].Add(1)       // counts the task in row 0
	b := t.cells[1][(h>>32)&sketchMask].Add(1) // counts the task in row 1
	est := min(a, b)
	if est >= max(t.floor.Load(), minFloor) && !t.tracked(h) { // floor published by offer/Top
		t.offer(h, key)
	}
}

// Dec counts one sampled task of the group with hash h leaving the queue.
func (t *TopK[K]) Dec(h uint64) {
	t.cells[0][h&sketchMask].Add(-1)       // uncounts the task in row 0
	t.cells[1][(h>>32)&sketchMask].Add(-1) // uncounts the task in row 1
}

// estimate returns the sketch's (sampled) count for hash h.
func (t *TopK[K]) estimate(h uint64) int32 {
	a := t.cells[0][h&sketchMask].Load()       // row 0 count
	b := t.cells[1][(h>>32)&sketchMask].Load() // row 1 count
	return min(a, b)
}

// tracked reports whether a slot holds h. Hash 0 counts as tracked, so it
// never enters the table (it marks empty slots).
func (t *TopK[K]) tracked(h uint64) bool {
	if h == 0 {
		return true
	}
	for i := range t.slotHash {
		if t.slotHash[i].Load() == h { // published under mu by offer
			return true
		}
	}
	return false
}

// offer puts the group in the table if there is room or it is heavier than
// the lightest tracked group.
func (t *TopK[K]) offer(h uint64, key K) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.tracked(h) {
		return
	}
	est := t.estimate(h)
	victim, victimEst := -1, int32(0)
	for i := range t.slotHash {
		sh := t.slotHash[i].Load() // stable: only written under mu
		if sh == 0 {
			victim, victimEst = i, -1
			break
		}
		if e := t.estimate(sh); victim < 0 || e < victimEst {
			victim, victimEst = i, e
		}
	}
	if victimEst < est {
		t.slotKey[victim] = key
		t.slotHash[victim].Store(h) // makes the slot visible to tracked()
	}
	t.refreshFloorLocked()
}

// refreshFloorLocked sets the floor to one more than the lightest tracked
// estimate once the table is full, or to minFloor while it has room.
func (t *TopK[K]) refreshFloorLocked() {
	lowest := int32(-1)
	for i := range t.slotHash {
		sh := t.slotHash[i].Load() // stable under mu
		if sh == 0 {
			t.floor.Store(minFloor) // room left: any group reaching minFloor is offered
			return
		}
		if e := t.estimate(sh); lowest < 0 || e < lowest {
			lowest = e
		}
	}
	t.floor.Store(max(lowest+1, minFloor)) // only heavier groups are offered
}

// Top appends the tracked groups with a positive estimate to dst, heaviest
// first, and returns the extended slice. Groups whose tasks have all left
// the queue are dropped from the table. It costs O(TopKSlots) and does not
// allocate when dst has room for TopKSlots more entries.
func (t *TopK[K]) Top(dst []TopGroup[K]) []TopGroup[K] {
	scale := int64(t.SampleEvery())
	t.mu.Lock()
	start := len(dst)
	for i := range t.slotHash {
		sh := t.slotHash[i].Load() // stable under mu
		if sh == 0 {
			continue
		}
		e := t.estimate(sh)
		if e <= 0 {
			var zero K
			t.slotKey[i] = zero    // lets go of the key
			t.slotHash[i].Store(0) // frees the slot
			continue
		}
		dst = append(dst, TopGroup[K]{Group: t.slotKey[i], Queued: int64(e) * scale})
	}
	t.refreshFloorLocked()
	t.mu.Unlock()
	slices.SortStableFunc(dst[start:], func(a, b TopGroup[K]) int {
		switch {
		case a.Queued > b.Queued:
			return -1
		case a.Queued < b.Queued:
			return 1
		}
		return 0
	})
	return dst
}
