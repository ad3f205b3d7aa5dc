package pool

// Invariants:
//
//   - Every group with work has one queue (gqueue): its tasks, in
//     acceptance order, are one[0] if inl, then hc.e[head], hc.e[head+1],
//     … on through the chunks linked from hc to tc (n in all). Every slot
//     outside those n is zero, and a chunk is in one queue or on one
//     shard's free list, never both; head is chunkLen only in the last
//     chunk, with no task in the chunks. A queue is live while it has a
//     task queued, running, or waiting for a retry, or a submitter waiting
//     for room in it. A queue that stops being live joins its shard's idle
//     list (idle set) and stays in the table; the idle list holds at most
//     idleCap queues, oldest first, and a queue leaves it when its group
//     gets a task again, when a new group reuses it, or when it is evicted
//     (out of the table, to the garbage collector). Queues of Go's tasks
//     (anon) are never in the table.
//   - Every field of a shardq and of its queues is guarded by shardq.mu,
//     except attempts and lastErr (in rs), which only the group's holder
//     touches.
//   - held says the group is on its shard's ready list, or held by one
//     worker, or parked on its retry timer: exactly one of the three. It is
//     set by the submitter that finds it clear, and cleared only by the
//     holder when the queue is empty; only the holder (or the timer of a
//     parked group) hands the group on. So one group's tasks never overlap
//     and start in buffer order.
//   - The holder copies up to a turn of tasks out of buf (taken) and runs
//     them outside the lock; they stay counted in n until finish removes
//     them. The group's bound counts n - taken: the tasks not yet handed
//     to a worker.
//   - inRunq says the shard's index is in the run queue or is being popped
//     from it by a worker that has not yet taken mu. A non-empty ready list
//     implies inRunq, so no ready group goes unseen; a worker that pops a
//     shard whose ready list another worker emptied does nothing.
//   - credit is pool-wide room this shard reserved (see takeCredit): every
//     accepted task spends one unit, every finished task returns one.

import (
	"sync"
	"time"

	"github.com/shoal-go/shoal/shard"
)

// idleCap bounds the empty queues a shard keeps (idle list): they stay in
// the shard's table, so a group that comes back soon finds its queue
// without touching the table, and a new group reuses the oldest of them
// without an allocation. 64 per shard is at most about 10 MiB at 1024 shards; the
// monitor empties the idle lists when the pool goes idle (trimIdle), so an
// idle pool keeps none.
const idleCap = 64

// freeCap bounds the empty chunks a shard keeps for its queues (free
// list): 64 chunks, 18 KiB, per shard, so at most 18 MiB at 1,024 shards;
// the monitor empties the free lists with the idle lists when the pool
// goes idle.
const freeCap = 64

// remapAfter: a shard's table that held this many groups is dropped when
// it empties (table.go), so a burst of groups leaves no large table behind.
const remapAfter = 64

// gqueue is the queue of one group.
type gqueue[K shard.Key, P any] struct {
	// The fields a lookup and the submitter and the holder touch for
	// every task come first: the first 64 bytes of a 128-byte queue (so
	// one cache line) for a Pool with 8-byte keys on 64-bit platforms.
	//
	// hc and tc are the head and tail chunks (nil: none), head the index
	// of the first task in hc; next links the ready list; key is the
	// group, which a lookup compares.
	hc, tc *chunk[K, P]
	next   *gqueue[K, P]
	key    K
	head   uint32
	n      uint32 // tasks queued, taken ones included
	taken  uint32 // tasks at head copied out by the holder
	idx    uint32 // the shard
	// waiters counts submitters waiting for room in this queue; spaceCh
	// (below) is closed when room is freed while some wait.
	waiters int32
	// retryLen is how many tasks at head a Batcher's call that will be
	// retried holds (0: none); owned by the holder, cleared with attempts.
	retryLen uint32
	// inl: the first task is in one, not in a chunk. held, anon, parked:
	// see Invariants. idle: on the idle list, at position idlePos.
	idlePos uint32
	inl     bool
	held    bool
	idle    bool
	anon    bool
	parked  bool
	// one holds the first task of a queue without chunks, so that a group
	// with one task at a time needs no chunk.
	one [1]entry[K, P]

	spaceCh chan struct{}
	// rs is the retry state, allocated at the group's first failed attempt
	// that will be retried and kept with the queue; nil before.
	rs *retryState[K, P]
}

// retryState is what a queue keeps for retries, out of the queue itself
// (which stays within 128 bytes for a Pool on 64-bit platforms).
type retryState[K shard.Key, P any] struct {
	// attempts and lastErr describe the task at head after a failed
	// attempt: owned by the holder.
	attempts int
	lastErr  error
	// delay is the wait before the retry, decided with it (judge).
	delay time.Duration
	// timer is the retry timer, created at the first retry and reused.
	timer *time.Timer
	// prevP/nextP link the parked list.
	prevP, nextP *gqueue[K, P]
}

// failures returns the failed attempts of the task at head and the last
// one's error (0, nil: none).
func (g *gqueue[K, P]) failures() (int, error) {
	if g.rs == nil {
		return 0, nil
	}
	return g.rs.attempts, g.rs.lastErr
}

// setFailures records that the task at head failed attempts times, last
// with err. The caller is the holder.
func (g *gqueue[K, P]) setFailures(attempts int, err error, delay time.Duration) {
	if g.rs == nil {
		g.rs = new(retryState[K, P])
	}
	g.rs.attempts, g.rs.lastErr, g.rs.delay = attempts, err, delay
}

// clearFailures forgets the failed attempts of the task at head.
func (g *gqueue[K, P]) clearFailures() {
	if g.rs != nil {
		g.rs.attempts, g.rs.lastErr = 0, nil
	}
}

// shardq is one shard of the group table.
type shardq[K shard.Key, P any] struct {
	// The first 64 bytes hold what Submit writes for every task, the next
	// 64 what it reads (the table's header, written only when a group
	// joins or leaves it) beside what changes as groups go idle: a shard
	// is one 128-byte pair of cache lines (on 64-bit platforms), which the
	// hardware fetches together, so where the shard array starts on a
	// line (a page, for the default 1,024 shards) a submission touches one
	// pair.
	mu     sync.Mutex
	inRunq bool
	sealed bool
	// live counts live queues (anon ones included).
	live int32
	// ready is the FIFO of groups waiting for a worker.
	readyHead, readyTail *gqueue[K, P]
	credit               int32
	// nidle counts the queues on the idle list.
	nidle int32
	// queued counts tasks waiting to start; submitted counts accepted
	// tasks since New (the sampling position of stampTimed).
	submitted uint64
	queued    int
	// free is the free list of chunks (linked by next).
	free *chunk[K, P]

	// slots is the table of groups (table.go), holding ngroups, the most
	// it held since it was last emptied being peak.
	slots   []gslot[K, P]
	ngroups int32
	peak    int32
	// parked is the list of groups waiting on a retry timer.
	parked *gqueue[K, P]
	// idle is the idle list, a ring of idleCap slots for positions
	// [idleHead, idleTail), oldest first. A queue that leaves the list
	// leaves its slot as it is: a slot counts only while its queue is idle
	// at that position (idleAt), so taking a queue off the list writes only
	// the queue. Allocated at the first release, dropped by trimIdle.
	idle               *[idleCap]*gqueue[K, P]
	idleHead, idleTail uint32
	// nfree is the length of the free list.
	nfree int32
	_     [128 - 124]byte
}

// revive makes g, found in the table, live again if it was on the idle
// list.
func (s *shardq[K, P]) revive(g *gqueue[K, P]) {
	if g.idle {
		s.unlinkIdle(g)
		s.live++
	}
}

// alloc returns a new live queue for the shard idx: the oldest idle one
// while the idle list is at least half full, a new one otherwise (so that
// the idle list fills up to its cap before queues are reused).
func (s *shardq[K, P]) alloc(idx uint32) *gqueue[K, P] {
	s.live++
	if s.nidle >= idleCap/2 {
		g := s.popOldestIdle()
		s.forget(g)
		return g
	}
	return &gqueue[K, P]{idx: idx}
}

// release makes an empty, unheld queue without waiters idle; the oldest
// idle queue is evicted when the list is full.
func (s *shardq[K, P]) release(g *gqueue[K, P]) {
	s.live--
	g.dropChunks(s)
	if s.idle == nil {
		s.idle = new([idleCap]*gqueue[K, P])
	}
	if s.idleTail-s.idleHead == idleCap {
		// The ring is full: its oldest slot goes, evicting its queue
		// if it is still there.
		if old := s.idleAt(s.idleHead); old != nil {
			old.idle = false
			s.nidle--
			s.forget(old)
		}
		s.idleHead++
	}
	g.idle, g.idlePos = true, s.idleTail
	s.idle[s.idleTail%idleCap] = g
	s.idleTail++
	s.nidle++
}

// unlinkIdle takes g off the idle list; its slot stays as it is (see
// idleAt).
func (s *shardq[K, P]) unlinkIdle(g *gqueue[K, P]) {
	g.idle = false
	s.nidle--
}

// idleAt returns the queue idle at ring position pos, or nil when the
// slot's queue left the list (or went idle again at a later position).
func (s *shardq[K, P]) idleAt(pos uint32) *gqueue[K, P] {
	g := s.idle[pos%idleCap]
	if g == nil || !g.idle || g.idlePos != pos {
		return nil
	}
	return g
}

// popOldestIdle takes the oldest queue off the idle list, which must not
// be empty.
func (s *shardq[K, P]) popOldestIdle() *gqueue[K, P] {
	for {
		g := s.idleAt(s.idleHead)
		s.idle[s.idleHead%idleCap] = nil
		s.idleHead++
		if g != nil {
			g.idle = false
			s.nidle--
			return g
		}
	}
}

// forget takes a queue that is not live out of the table, to be reused or
// collected.
func (s *shardq[K, P]) forget(g *gqueue[K, P]) {
	if !g.anon {
		s.remove(shard.Hash(g.key), g)
	}
	var zero K
	g.key, g.anon = zero, false
}

// trimIdle evicts every idle queue and drops the idle ring.
func (s *shardq[K, P]) trimIdle() {
	s.mu.Lock()
	for s.nidle > 0 {
		s.forget(s.popOldestIdle())
	}
	s.idle, s.idleHead, s.idleTail = nil, 0, 0
	s.free, s.nfree = nil, 0
	s.mu.Unlock()
}

// pushReady appends a held group to the ready list; it reports whether the
// shard must be pushed to the run queue (it was not there).
func (s *shardq[K, P]) pushReady(g *gqueue[K, P]) bool {
	g.next = nil
	if s.readyTail == nil {
		s.readyHead = g
	} else {
		s.readyTail.next = g
	}
	s.readyTail = g
	if s.inRunq {
		return false
	}
	s.inRunq = true
	return true
}

// popReady takes the first ready group, or nil.
func (s *shardq[K, P]) popReady() *gqueue[K, P] {
	g := s.readyHead
	if g == nil {
		return nil
	}
	s.readyHead = g.next
	if s.readyHead == nil {
		s.readyTail = nil
	}
	g.next = nil
	return g
}

// park adds g to the parked list.
func (s *shardq[K, P]) park(g *gqueue[K, P]) {
	g.parked = true
	g.rs.prevP, g.rs.nextP = nil, s.parked
	if s.parked != nil {
		s.parked.rs.prevP = g
	}
	s.parked = g
}

// unpark removes g from the parked list.
func (s *shardq[K, P]) unpark(g *gqueue[K, P]) {
	g.parked = false
	rs := g.rs
	if rs.prevP != nil {
		rs.prevP.rs.nextP = rs.nextP
	} else {
		s.parked = rs.nextP
	}
	if rs.nextP != nil {
		rs.nextP.rs.prevP = rs.prevP
	}
	rs.prevP, rs.nextP = nil, nil
}

// chunkLen is the number of tasks in one chunk of a queue: 256 bytes of
// Tasks on 64-bit platforms, so a chunk and its link fit the 288-byte size
// class.
const chunkLen = 8

// chunk is a block of a group's queue. Chunks of a queue are linked from
// its head (hc) to its tail (tc); a chunk that a queue no longer needs goes
// to its shard's free list (freeChunk).
type chunk[K shard.Key, P any] struct {
	e    [chunkLen]entry[K, P]
	next *chunk[K, P]
}

// push appends e to g: in the inline slot if g is empty and has no chunk,
// else at the tail of its chunks, taking a chunk from s's free list (or a
// new one) when the tail chunk is full.
func (g *gqueue[K, P]) push(s *shardq[K, P], e *entry[K, P]) {
	m := g.n
	if g.inl {
		m--
	} else if m == 0 && g.hc == nil {
		g.one[0] = *e
		g.inl = true
		g.n = 1
		return
	}
	pos := g.head + m
	switch {
	case g.hc == nil:
		c := s.newChunk(e)
		g.hc, g.tc, g.head = c, c, 0
		g.n++
		return
	case m == 0:
		// Every task of the kept chunk ran: start it over.
		g.head, pos = 0, 0
	case pos%chunkLen == 0:
		c := s.newChunk(e)
		g.tc.next = c
		g.tc = c
		g.n++
		return
	}
	g.tc.e[pos%chunkLen] = *e
	g.n++
}

// cursor walks a queue's tasks from its head (first), without taking them.
type cursor[K shard.Key, P any] struct {
	c   *chunk[K, P]
	pos uint32
	g   *gqueue[K, P]
	inl bool
}

// first returns a cursor at g's head.
func (g *gqueue[K, P]) first() cursor[K, P] {
	return cursor[K, P]{c: g.hc, pos: g.head, g: g, inl: g.inl}
}

// next returns the task under the cursor and moves past it; the caller
// calls it at most n times.
func (it *cursor[K, P]) next() *entry[K, P] {
	if it.inl {
		it.inl = false
		return &it.g.one[0]
	}
	if it.pos == chunkLen {
		it.c, it.pos = it.c.next, 0
	}
	e := &it.c.e[it.pos]
	it.pos++
	return e
}

// drop removes the first k tasks; chunks they emptied, but the last, go to
// s's free list.
func (g *gqueue[K, P]) drop(s *shardq[K, P], k uint32) {
	g.n -= k
	g.taken = 0
	if g.inl && k > 0 {
		g.one[0] = entry[K, P]{}
		g.inl = false
		k--
	}
	for ; k > 0; k-- {
		g.hc.e[g.head] = entry[K, P]{}
		g.head++
		if g.head == chunkLen && g.hc.next != nil {
			// The head chunk is spent: head stays at chunkLen only in
			// the last chunk (push starts it over).
			c := g.hc
			g.hc, g.head = c.next, 0
			s.freeChunk(c)
		}
	}
}

// dropChunks gives an empty queue's chunk back to s's free list.
func (g *gqueue[K, P]) dropChunks(s *shardq[K, P]) {
	if g.hc != nil {
		s.freeChunk(g.hc)
		g.hc, g.tc, g.head = nil, nil, 0
	}
}

// newChunk returns a chunk from the free list, or a new one, with e in its
// first slot.
//
// A new chunk's memory may be fresh from the operating system, never
// touched. Its first access is a store of a word that holds no pointer
// (the acceptance time), so that the page is faulted in once, writable.
// A load first (the nil check of an indexed store, or a write barrier
// reading the slot's old pointers) would map the shared zero page, and
// the store after it would fault again and flush the page's mapping from
// every processor's TLB (BenchmarkBacklogFaults).
func (s *shardq[K, P]) newChunk(e *entry[K, P]) *chunk[K, P] {
	c := s.free
	if c == nil {
		c = new(chunk[K, P])
		c.e[0].enq = e.enq
	} else {
		s.free, c.next = c.next, nil
		s.nfree--
	}
	c.e[0] = *e
	return c
}

// freeChunk puts an emptied chunk (every slot zero) on the free list,
// unless the list holds freeCap chunks.
func (s *shardq[K, P]) freeChunk(c *chunk[K, P]) {
	if s.nfree >= freeCap {
		return
	}
	c.next, s.free = s.free, c
	s.nfree++
}

// waitRoom registers a submitter waiting for room in g and returns the
// channel closed when room is freed. The caller holds the shard's mu.
func (g *gqueue[K, P]) waitRoom() <-chan struct{} {
	g.waiters++
	if g.spaceCh == nil {
		g.spaceCh = make(chan struct{})
	}
	return g.spaceCh
}

// signalRoom wakes the submitters waiting for room in g. The caller holds
// the shard's mu.
func (g *gqueue[K, P]) signalRoom() {
	if g.spaceCh != nil {
		close(g.spaceCh)
		g.spaceCh = nil
	}
}
