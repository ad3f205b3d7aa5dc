package pool

import (
	"bytes"
	"context"
	"testing"
	"unsafe"

	"github.com/shoal-go/shoal/shard"
)

// TestShardLayout checks that a shard is a whole number of cache-line
// pairs, that the fields a submission writes lie in its first 64 bytes,
// and that the table's header, which it reads, lies in its first pair.
func TestShardLayout(t *testing.T) {
	var s shardq[uint64, Task]
	if n := unsafe.Sizeof(s); n%cacheLine != 0 {
		t.Errorf("a shard is %d bytes, not a whole number of %d-byte lines", n, cacheLine)
	}
	written := map[string]uintptr{
		"mu":        unsafe.Offsetof(s.mu) + unsafe.Sizeof(s.mu),
		"inRunq":    unsafe.Offsetof(s.inRunq) + unsafe.Sizeof(s.inRunq),
		"sealed":    unsafe.Offsetof(s.sealed) + unsafe.Sizeof(s.sealed),
		"live":      unsafe.Offsetof(s.live) + unsafe.Sizeof(s.live),
		"readyHead": unsafe.Offsetof(s.readyHead) + unsafe.Sizeof(s.readyHead),
		"readyTail": unsafe.Offsetof(s.readyTail) + unsafe.Sizeof(s.readyTail),
		"credit":    unsafe.Offsetof(s.credit) + unsafe.Sizeof(s.credit),
		"nidle":     unsafe.Offsetof(s.nidle) + unsafe.Sizeof(s.nidle),
		"submitted": unsafe.Offsetof(s.submitted) + unsafe.Sizeof(s.submitted),
		"queued":    unsafe.Offsetof(s.queued) + unsafe.Sizeof(s.queued),
		"free":      unsafe.Offsetof(s.free) + unsafe.Sizeof(s.free),
	}
	checkWithin(t, "shardq", written, 64)
	read := map[string]uintptr{
		"slots":   unsafe.Offsetof(s.slots) + unsafe.Sizeof(s.slots),
		"ngroups": unsafe.Offsetof(s.ngroups) + unsafe.Sizeof(s.ngroups),
	}
	checkWithin(t, "shardq", read, cacheLine)
}

// checkWithin fails t for each field of typ whose end (in ends) lies past
// byte limit.
func checkWithin(t *testing.T, typ string, ends map[string]uintptr, limit uintptr) {
	t.Helper()
	for name, end := range ends {
		if end > limit {
			t.Errorf("%s.%s ends at byte %d, past byte %d", typ, name, end, limit)
		}
	}
}

// TestQueueLayout checks that what a lookup, a submission and a turn
// read or write in a queue with 8-byte keys lies in its first 64 bytes:
// one cache line, since a 128-byte queue starts on one.
func TestQueueLayout(t *testing.T) {
	var g gqueue[uint64, Task]
	ends := map[string]uintptr{
		"hc":       unsafe.Offsetof(g.hc) + unsafe.Sizeof(g.hc),
		"tc":       unsafe.Offsetof(g.tc) + unsafe.Sizeof(g.tc),
		"next":     unsafe.Offsetof(g.next) + unsafe.Sizeof(g.next),
		"key":      unsafe.Offsetof(g.key) + unsafe.Sizeof(g.key),
		"head":     unsafe.Offsetof(g.head) + unsafe.Sizeof(g.head),
		"n":        unsafe.Offsetof(g.n) + unsafe.Sizeof(g.n),
		"taken":    unsafe.Offsetof(g.taken) + unsafe.Sizeof(g.taken),
		"waiters":  unsafe.Offsetof(g.waiters) + unsafe.Sizeof(g.waiters),
		"retryLen": unsafe.Offsetof(g.retryLen) + unsafe.Sizeof(g.retryLen),
		"inl":      unsafe.Offsetof(g.inl) + unsafe.Sizeof(g.inl),
		"held":     unsafe.Offsetof(g.held) + unsafe.Sizeof(g.held),
		"idle":     unsafe.Offsetof(g.idle) + unsafe.Sizeof(g.idle),
	}
	checkWithin(t, "gqueue", ends, 64)
}

// TestAllocSizes checks that the objects the pool allocates as it grows
// fill their size classes: a worker's slot (a worker and its turn state)
// 640 bytes (a Pool's, without a Batcher's call-size counters), a chunk of
// Tasks 288 (256 bytes of tasks and its link), a
// queue 128.
func TestAllocSizes(t *testing.T) {
	if n := unsafe.Sizeof(gqueue[uint64, Task]{}); n > 128 {
		t.Errorf("a queue is %d bytes, past the 128-byte size class", n)
	}
	if n := unsafe.Sizeof(gqueue[string, Task]{}); n > 128 {
		t.Errorf("a queue with string keys is %d bytes, past the 128-byte size class", n)
	}
	if n := unsafe.Sizeof(workerSlot[uint64, Task]{}); n > 640 {
		t.Errorf("a worker's slot is %d bytes, past the 640-byte size class", n)
	}
	if n := unsafe.Sizeof(chunk[uint64, Task]{}); n > 288 {
		t.Errorf("a chunk is %d bytes, past the 288-byte size class", n)
	}
}

// FuzzGroupQueue drives one group's queue with pushes, takes, drops
// (finish after a turn) and releases (when empty) against a slice model:
// the tasks come out in push order, n and taken agree, no slot outside the
// queue (in its chunks or on the free list) holds a task, the queue holds
// no chunk it does not need, and a chunk is never both in the queue and on
// the free list.
func FuzzGroupQueue(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 2, 0, 0, 0, 0, 0, 3, 1, 2, 2})
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 9, 2, 9})
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 7, 2, 7, 1, 3, 2, 3, 3, 0, 0})
	f.Fuzz(func(t *testing.T, ops []byte) {
		s := &shardq[int, Task]{}
		g := &gqueue[int, Task]{}
		var model []int64 // the enq stamps of the queued tasks, in order
		next := int64(0)
		for i := 0; i < len(ops); i++ {
			switch ops[i] % 4 {
			case 0: // push
				next++
				e := entry[int, Task]{enq: next, ctx: context.Background()}
				g.push(s, &e)
				model = append(model, next)
			case 1: // take up to k (a holder copies them out)
				k := uint32(1)
				if i+1 < len(ops) {
					i++
					k = uint32(ops[i]%(2*chunkLen)) + 1
				}
				k = min(k, g.n)
				it := g.first()
				for j := range k {
					if got := it.next().enq; got != model[j] {
						t.Fatalf("take: task %d is %d, want %d", j, got, model[j])
					}
				}
				g.taken = k
			case 2: // finish: drop some of the taken tasks
				d := g.taken
				if i+1 < len(ops) && d > 0 {
					i++
					d = uint32(ops[i]) % (g.taken + 1)
				}
				g.drop(s, d)
				model = model[d:]
			case 3: // release when empty
				if g.n == 0 {
					g.dropChunks(s)
				}
			}
			checkGroupQueue(t, s, g, model)
		}
	})
}

// checkGroupQueue checks g against model and s's free list against g.
func checkGroupQueue(t *testing.T, s *shardq[int, Task], g *gqueue[int, Task], model []int64) {
	t.Helper()
	if int(g.n) != len(model) {
		t.Fatalf("n = %d, model holds %d", g.n, len(model))
	}
	it := g.first()
	for j := range g.n {
		if got := it.next().enq; got != model[j] {
			t.Fatalf("task %d is %d, want %d", j, got, model[j])
		}
	}
	if !g.inl && g.one[0].ctx != nil {
		t.Fatal("the inline slot holds a task outside the queue")
	}
	m := g.n
	if g.inl {
		m--
	}
	if g.head >= chunkLen && m > 0 {
		t.Fatalf("head %d with %d tasks in the chunks: a spent chunk was kept", g.head, m)
	}
	// The queue's chunks: slots before head and after the last task are
	// zero; there are as many chunks as its tasks span (one, kept, when
	// none).
	inQueue := map[*chunk[int, Task]]bool{}
	pos := uint32(0)
	for c := g.hc; c != nil; c = c.next {
		inQueue[c] = true
		for j := range uint32(chunkLen) {
			at := pos + j
			queued := at >= g.head && at < g.head+m
			if !queued && c.e[j].ctx != nil {
				t.Fatalf("chunk slot %d (head %d, %d in chunks) holds a task outside the queue", at, g.head, m)
			}
		}
		pos += chunkLen
		if c.next == nil && c != g.tc {
			t.Fatal("the last chunk is not tc")
		}
	}
	want := (g.head + m + chunkLen - 1) / chunkLen
	if m == 0 {
		want = min(uint32(len(inQueue)), 1)
	}
	if uint32(len(inQueue)) != want {
		t.Fatalf("%d chunks for %d tasks from head %d, want %d", len(inQueue), m, g.head, want)
	}
	nfree := int32(0)
	for c := s.free; c != nil; c = c.next {
		nfree++
		if inQueue[c] {
			t.Fatal("a chunk of the queue is on the free list")
		}
		for j := range c.e {
			if c.e[j].ctx != nil {
				t.Fatalf("a free chunk holds a task in slot %d", j)
			}
		}
	}
	if nfree != s.nfree || nfree > freeCap {
		t.Fatalf("free list holds %d chunks, nfree %d, cap %d", nfree, s.nfree, freeCap)
	}
}

// FuzzIdleRing drives a shard's idle ring with releases, revivals and
// allocations against a set model: nidle counts the idle queues, none is
// idle twice, the ring never holds more than idleCap, and a queue out of
// the idle set is out of the table unless it is live, also across the
// wrap of the ring's positions.
func FuzzIdleRing(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 2, 1, 0, 2}, false)
	f.Add([]byte{0, 0, 0, 1, 2, 1, 0, 2}, true)
	// Enough releases to fill the ring and pass the wrap.
	f.Add(bytes.Repeat([]byte{0, 0, 1, 2, 3, 1}, 40), true)
	f.Fuzz(func(t *testing.T, ops []byte, nearWrap bool) {
		s := &shardq[int, Task]{}
		if nearWrap {
			// Ring positions count modulo 2^32: start a few short of it.
			s.idleHead, s.idleTail = 1<<32-5, 1<<32-5
		}
		live := map[int]*gqueue[int, Task]{}
		nextKey := 0
		for i := 0; i < len(ops); i++ {
			switch ops[i] % 3 {
			case 0: // a new group gets a queue
				g := s.alloc(0)
				addGroup(s, nextKey, g)
				live[nextKey] = g
				nextKey++
			case 1: // a live group empties
				for k, g := range live {
					delete(live, k)
					s.release(g)
					break
				}
			case 2: // an idle group comes back
				if i+1 < len(ops) {
					i++
				}
				k := int(ops[i]) % (nextKey + 1)
				if _, ok := live[k]; ok {
					continue
				}
				if g := s.lookup(shard.Hash(k), k); g != nil {
					if g.key != k {
						t.Fatalf("lookup(%d) found the queue of %d", k, g.key)
					}
					live[k] = g
				}
			}
			idle := 0
			groups := tableOf(t, s)
			for k, g := range groups {
				if g.idle {
					idle++
				} else if _, ok := live[k]; !ok {
					t.Fatalf("group %d is in the table, neither live nor idle", k)
				}
			}
			if idle != int(s.nidle) || s.nidle > idleCap || int(s.live) != len(live) {
				t.Fatalf("%d idle in the table, nidle %d (cap %d), live %d, model %d", idle, s.nidle, idleCap, s.live, len(live))
			}
			// Each idle queue owns the slot of its position in the ring,
			// and only idle queues own one.
			owned := 0
			for pos := s.idleHead; pos != s.idleTail; pos++ {
				if g := s.idleAt(pos); g != nil {
					owned++
					if groups[g.key] != g || !g.idle || g.idlePos != pos {
						t.Fatalf("ring position %d holds the queue of %d (idle %v at %d), not an idle queue of the table", pos, g.key, g.idle, g.idlePos)
					}
				}
			}
			if owned != idle {
				t.Fatalf("the ring holds %d idle queues, the table %d", owned, idle)
			}
		}
		s.trimIdle()
		if n := len(tableOf(t, s)); s.nidle != 0 || n != len(live) {
			t.Fatalf("after trim: nidle %d, table %d, live %d", s.nidle, n, len(live))
		}
	})
}

// TestChunksRecycled: a queue that grows to several chunks and drains
// takes its chunks from its shard's free list the next time (no
// allocation), and a free list full at freeCap lets the rest go.
func TestChunksRecycled(t *testing.T) {
	s := &shardq[int, Task]{}
	g := &gqueue[int, Task]{}
	e := entry[int, Task]{ctx: context.Background()}
	cycle := func(n uint32) {
		for range n {
			g.push(s, &e)
		}
		g.drop(s, n)
		g.dropChunks(s)
	}
	const deep = 5*chunkLen + 3
	cycle(deep)
	if s.nfree != 6 {
		t.Fatalf("after one cycle of %d tasks the free list holds %d chunks, want 6", deep, s.nfree)
	}
	if a := testing.AllocsPerRun(100, func() { cycle(deep) }); a != 0 {
		t.Fatalf("a queue refilled from the free list allocates %v times per cycle", a)
	}
	cycle((freeCap + 10) * chunkLen)
	if s.nfree != freeCap {
		t.Fatalf("free list holds %d chunks after a cycle of %d chunks, want the cap %d", s.nfree, freeCap+10, freeCap)
	}
}

// FuzzReadyList drives a shard's ready list with pushes, pops and a
// worker's pop of the shard from the run queue against a slice: groups come
// out in the order they went in, the list's head says whether any is left,
// and a push asks for the shard to be scheduled exactly when it is not in
// the run queue.
func FuzzReadyList(f *testing.F) {
	f.Add([]byte{0, 0, 1, 0, 1, 1, 1})
	f.Add(bytes.Repeat([]byte{0, 0, 0, 1, 0, 1}, 20))
	f.Add([]byte{0, 2, 0, 1, 1, 2, 0, 0, 2, 1})
	f.Fuzz(func(t *testing.T, ops []byte) {
		s := &shardq[int, Task]{}
		var model []*gqueue[int, Task]
		inRunq := false
		key := func(g *gqueue[int, Task]) int { // -1: none
			if g == nil {
				return -1
			}
			return g.key
		}
		for i, op := range ops {
			switch op % 3 {
			case 0:
				g := &gqueue[int, Task]{key: i}
				if sched := s.pushReady(g); sched == inRunq {
					t.Fatalf("op %d: pushReady asked to schedule the shard: %v, with the shard in the run queue: %v", i, sched, inRunq)
				}
				inRunq = true
				model = append(model, g)
			case 2:
				// A worker popped the shard from the run queue (openTurn).
				s.inRunq, inRunq = false, false
			default:
				g := s.popReady()
				var want *gqueue[int, Task]
				if len(model) > 0 {
					want, model = model[0], model[1:]
				}
				if g != want {
					t.Fatalf("op %d: popReady gave the group pushed at op %d, want op %d", i, key(g), key(want))
				}
				if g != nil && g.next != nil {
					t.Fatalf("op %d: a popped group still links to another", i)
				}
			}
			if (s.readyHead != nil) != (len(model) > 0) || (s.readyTail != nil) != (len(model) > 0) {
				t.Fatalf("op %d: head %p, tail %p with %d ready", i, s.readyHead, s.readyTail, len(model))
			}
		}
	})
}

// lookup returns group's queue, live, or nil: find, then revive.
func (s *shardq[K, P]) lookup(h uint64, group K) *gqueue[K, P] {
	g := s.find(h, group)
	if g != nil {
		s.revive(g)
	}
	return g
}
