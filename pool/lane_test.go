package pool

import (
	"context"
	"runtime"
	"sync"
	"testing"
)

// newTestLane returns a lane of capacity size whose positions start at
// base, as if base tasks had passed through it.
func newTestLane(size int, base uint64) *lane[int] {
	l := &lane[int]{}
	l.init(size)
	l.tail.Store(base)
	l.head.Store(base)
	for p := base; p < base+uint64(len(l.slots)); p++ {
		l.slots[p&l.mask].seq.Store(p)
	}
	return l
}

// laneBases are starting positions: zero, and large values whose low bits
// make the slot index wrap at once (positions stay below the sealed bit).
var laneBases = []uint64{0, sealed - 1<<20 - 3, 1<<62 + 5}

// TestLaneStress: many producers, one consumer at a time (handed over
// through a mutex, like a shard through the run queue); every value arrives
// exactly once, and each producer's values in its order.
func TestLaneStress(t *testing.T) {
	const producers = 4
	per := 20_000
	if raceEnabled || testing.Short() {
		per = 2_000
	}
	for _, base := range laneBases {
		l := newTestLane(8, base)
		var wg sync.WaitGroup
		for p := range producers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range per {
					e := entry[int]{group: p, enq: int64(i), ctx: context.Background()}
					for l.push(&e) != pushOK {
						runtime.Gosched()
					}
				}
			}()
		}
		var mu sync.Mutex // the "held" right
		next := make([]int64, producers)
		got := 0
		var cw sync.WaitGroup
		for range 2 {
			cw.Add(1)
			go func() {
				defer cw.Done()
				for {
					mu.Lock()
					if got == producers*per {
						mu.Unlock()
						return
					}
					pos := l.head.Load()
					start := pos
					for {
						e, ok := l.pop(pos)
						if !ok {
							break
						}
						pos++
						if e.enq != next[e.group] {
							t.Errorf("producer %d: got %d, want %d", e.group, e.enq, next[e.group])
						}
						next[e.group]++
						got++
					}
					l.head.Store(pos)
					mu.Unlock()
					if pos == start {
						// Nothing to read: let the producers run (with one
						// processor they would otherwise wait for preemption).
						runtime.Gosched()
					}
				}
			}()
		}
		wg.Wait()
		cw.Wait()
		if l.length() != 0 || l.tail.Load() != base+uint64(producers*per) {
			t.Fatalf("base %d: length %d tail %d", base, l.length(), l.tail.Load())
		}
	}
}

// FuzzLane drives a lane from one goroutine against a slice model: push
// (byte < 160), pop, or seal (byte == 255).
func FuzzLane(f *testing.F) {
	f.Add([]byte{1, 2, 3, 200, 200, 4, 200}, uint8(2), uint8(0))
	f.Add([]byte{1, 1, 1, 1, 1, 200, 1, 255, 1, 200}, uint8(3), uint8(1))
	f.Fuzz(func(t *testing.T, ops []byte, sizeLog, baseIdx uint8) {
		size := 1 << (sizeLog % 5)
		l := newTestLane(size, laneBases[int(baseIdx)%len(laneBases)])
		capacity := len(l.slots)
		var model []int64
		sealedNow := false
		pos := l.head.Load()
		for i, op := range ops {
			switch {
			case op == 255:
				l.tail.Or(sealed)
				sealedNow = true
			case op < 160:
				e := entry[int]{enq: int64(i)}
				got := l.push(&e)
				want := pushOK
				if sealedNow {
					want = pushSealed
				} else if len(model) == capacity {
					want = pushFull
				}
				if got != want {
					t.Fatalf("op %d: push = %v, want %v (len %d cap %d)", i, got, want, len(model), capacity)
				}
				if got == pushOK {
					model = append(model, int64(i))
				}
			default:
				e, ok := l.pop(pos)
				if ok != (len(model) > 0) {
					t.Fatalf("op %d: pop ok = %v with %d queued", i, ok, len(model))
				}
				if ok {
					if e.enq != model[0] {
						t.Fatalf("op %d: pop = %d, want %d", i, e.enq, model[0])
					}
					model = model[1:]
					pos++
					l.head.Store(pos)
				}
			}
			if l.length() != len(model) || l.ready(pos) != (len(model) > 0) {
				t.Fatalf("op %d: length %d ready %v, model %d", i, l.length(), l.ready(pos), len(model))
			}
		}
	})
}
