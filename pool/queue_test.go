package pool

import (
	"context"
	"testing"
	"unsafe"
)

// TestShardLayout checks that a shard is a whole number of cache lines and
// that the fields a submission reads or writes lie in its first line.
func TestShardLayout(t *testing.T) {
	var s shardq[uint64, Task]
	if n := unsafe.Sizeof(s); n%cacheLine != 0 {
		t.Errorf("a shard is %d bytes, not a whole number of %d-byte lines", n, cacheLine)
	}
	ends := map[string]uintptr{
		"mu":        unsafe.Offsetof(s.mu) + unsafe.Sizeof(s.mu),
		"inRunq":    unsafe.Offsetof(s.inRunq) + unsafe.Sizeof(s.inRunq),
		"sealed":    unsafe.Offsetof(s.sealed) + unsafe.Sizeof(s.sealed),
		"live":      unsafe.Offsetof(s.live) + unsafe.Sizeof(s.live),
		"groups":    unsafe.Offsetof(s.groups) + unsafe.Sizeof(s.groups),
		"readyHead": unsafe.Offsetof(s.readyHead) + unsafe.Sizeof(s.readyHead),
		"readyTail": unsafe.Offsetof(s.readyTail) + unsafe.Sizeof(s.readyTail),
		"credit":    unsafe.Offsetof(s.credit) + unsafe.Sizeof(s.credit),
		"nidle":     unsafe.Offsetof(s.nidle) + unsafe.Sizeof(s.nidle),
		"submitted": unsafe.Offsetof(s.submitted) + unsafe.Sizeof(s.submitted),
		"queued":    unsafe.Offsetof(s.queued) + unsafe.Sizeof(s.queued),
	}
	for name, end := range ends {
		if end > cacheLine {
			t.Errorf("shardq.%s ends at byte %d, past the first line", name, end)
		}
	}
}

// FuzzGroupQueue drives one group's queue with pushes, takes and drops
// (finish after a turn) against a slice model: the tasks come out in push
// order, n and taken agree, and the buffer never holds a dropped task.
func FuzzGroupQueue(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 2, 0, 0, 0, 0, 0, 3, 1, 2, 2})
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 9, 2, 9})
	f.Fuzz(func(t *testing.T, ops []byte) {
		g := &gqueue[int, Task]{}
		g.buf = g.one[:]
		var model []int64 // the enq stamps of the queued tasks, in order
		next := int64(0)
		for i := 0; i < len(ops); i++ {
			switch ops[i] % 3 {
			case 0: // push
				next++
				e := entry[int, Task]{enq: next, ctx: context.Background()}
				g.push(&e)
				model = append(model, next)
			case 1: // take up to k (a holder copies them out)
				k := uint32(1)
				if i+1 < len(ops) {
					i++
					k = uint32(ops[i]%8) + 1
				}
				k = min(k, g.n)
				for j := range k {
					if got := g.at(j).enq; got != model[j] {
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
				g.drop(d)
				model = model[d:]
			}
			if int(g.n) != len(model) {
				t.Fatalf("n = %d, model holds %d", g.n, len(model))
			}
			if len(g.buf)&(len(g.buf)-1) != 0 {
				t.Fatalf("buffer length %d is not a power of two", len(g.buf))
			}
		}
		for j := range g.n {
			if got := g.at(j).enq; got != model[j] {
				t.Fatalf("end: task %d is %d, want %d", j, got, model[j])
			}
		}
		// Slots outside the queue hold no task.
		for j := g.n; j < uint32(len(g.buf)); j++ {
			if g.at(j).ctx != nil {
				t.Fatalf("slot %d after the queue still holds a task", j)
			}
		}
	})
}

// FuzzIdleRing drives a shard's idle ring with releases, revivals and
// allocations against a set model: nidle counts the idle queues, none is
// idle twice, the ring never holds more than idleCap, and a queue out of
// the idle set is out of the table unless it is live.
func FuzzIdleRing(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 2, 1, 0, 2})
	f.Fuzz(func(t *testing.T, ops []byte) {
		s := &shardq[int, Task]{groups: map[int]*gqueue[int, Task]{}}
		live := map[int]*gqueue[int, Task]{}
		nextKey := 0
		for i := 0; i < len(ops); i++ {
			switch ops[i] % 3 {
			case 0: // a new group gets a queue
				g := s.alloc(0)
				g.key = nextKey
				s.groups[nextKey] = g
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
				if g := s.lookup(k); g != nil {
					if g.key != k {
						t.Fatalf("lookup(%d) found the queue of %d", k, g.key)
					}
					live[k] = g
				}
			}
			idle := 0
			for k, g := range s.groups {
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
					if s.groups[g.key] != g {
						t.Fatalf("ring position %d holds the idle queue of %d, not in the table", pos, g.key)
					}
				}
			}
			if owned != idle {
				t.Fatalf("the ring holds %d idle queues, the table %d", owned, idle)
			}
		}
		s.trimIdle()
		if s.nidle != 0 || len(s.groups) != len(live) {
			t.Fatalf("after trim: nidle %d, table %d, live %d", s.nidle, len(s.groups), len(live))
		}
	})
}
