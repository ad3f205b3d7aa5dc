package ringbuf_test

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/shoal-go/shoal/ringbuf"
)

// item encodes a producer and that producer's sequence number.
func item(producer, seq int) uint64 { return uint64(producer)<<32 | uint64(seq) }

// stress runs producers × consumers over r, each producer pushing perProducer
// items, and checks that every item arrives exactly once and, with one
// consumer, that each producer's items arrive in the order it pushed them.
// Producers alternate between TryPush and PushBatch, consumers between
// TryPop and PopBatch. Waiting on full or empty
// yields the processor; the ring itself never waits.
func stress(t *testing.T, r *ringbuf.Ring[uint64], producers, consumers, perProducer int) {
	t.Helper()
	total := int64(producers * perProducer)
	var received atomic.Int64
	got := make([][]uint64, consumers)

	var pushing atomic.Int32 // producers that have not returned yet
	pushing.Store(int32(producers))

	var wg sync.WaitGroup
	for p := 0; p < producers; p++ {
		wg.Go(func() {
			defer pushing.Add(-1)
			// Producers alternate between TryPush and PushBatch with a
			// batch length of their own, which PushBatch may cut short.
			src := make([]uint64, 1+p*5%13)
			for s, i := 0, 0; s < perProducer; i++ {
				if i%2 == 0 {
					for !r.TryPush(item(p, s)) {
						runtime.Gosched()
					}
					s++
					continue
				}
				k := min(len(src), perProducer-s)
				for j := range src[:k] {
					src[j] = item(p, s+j)
				}
				for done := 0; done < k; {
					n := r.PushBatch(src[done:k])
					if n == 0 {
						runtime.Gosched()
					}
					done += n
				}
				s += k
			}
		})
	}
	for c := 0; c < consumers; c++ {
		wg.Go(func() {
			buf := make([]uint64, 1+c*3%17)
			var mine []uint64
			// misses counts failed pops in a row after every push has
			// returned. Then every item is published, so a correct ring
			// fails only while other consumers hold the last items; a
			// ring that lost items would keep failing, and the loss is
			// reported below instead of hanging the test.
			misses := 0
			for i := 0; received.Load() < total && misses < 100_000; i++ {
				if i%2 == 0 {
					if v, ok := r.TryPop(); ok {
						mine = append(mine, v)
						received.Add(1)
						misses = 0
						continue
					}
				} else if n := r.PopBatch(buf); n > 0 {
					mine = append(mine, buf[:n]...)
					received.Add(int64(n))
					misses = 0
					continue
				}
				if pushing.Load() == 0 {
					misses++
				}
				runtime.Gosched()
			}
			got[c] = mine
		})
	}
	wg.Wait()

	seen := make([][]bool, producers)
	for p := range seen {
		seen[p] = make([]bool, perProducer)
	}
	next := make([]int, producers) // per producer, the next expected seq (one consumer)
	for _, mine := range got {
		for _, v := range mine {
			p, s := int(v>>32), int(uint32(v))
			if p >= producers || s >= perProducer {
				t.Fatalf("received %#x, which no producer pushed", v)
			}
			if seen[p][s] {
				t.Fatalf("producer %d item %d received twice", p, s)
			}
			seen[p][s] = true
			if consumers == 1 {
				if s != next[p] {
					t.Fatalf("producer %d: got item %d, want %d (order broken)", p, s, next[p])
				}
				next[p]++
			}
		}
	}
	for p := range seen {
		for s, ok := range seen[p] {
			if !ok {
				t.Fatalf("producer %d item %d lost", p, s)
			}
		}
	}
	if r.Len() != 0 {
		t.Fatalf("Len %d after draining everything", r.Len())
	}
	if v, ok := r.TryPop(); ok {
		t.Fatalf("TryPop after draining everything = %#x", v)
	}
}

// stressShapes are the producer × consumer counts every stress test runs.
var stressShapes = []struct{ p, c int }{{1, 1}, {4, 1}, {1, 4}, {4, 4}, {8, 3}}

func stressItems() int {
	if testing.Short() {
		return 5_000
	}
	return 40_000
}

func TestStress(t *testing.T) {
	for _, sh := range stressShapes {
		for _, capacity := range []int{1, 8, 256} {
			t.Run(fmt.Sprintf("P%dxC%d/cap%d", sh.p, sh.c, capacity), func(t *testing.T) {
				r, err := ringbuf.New[uint64](capacity)
				if err != nil {
					t.Fatal(err)
				}
				stress(t, r, sh.p, sh.c, stressItems()/sh.p)
			})
		}
	}
}

// TestStressWrapAround starts the positions just below 2^64, so that the
// cursors and sequence numbers wrap while producers and consumers race.
func TestStressWrapAround(t *testing.T) {
	for _, sh := range stressShapes {
		for _, capacity := range []int{1, 8, 256} {
			t.Run(fmt.Sprintf("P%dxC%d/cap%d", sh.p, sh.c, capacity), func(t *testing.T) {
				// Wrap after about a quarter of the items.
				start := -uint64(stressItems() / 4)
				r, err := ringbuf.NewAt[uint64](capacity, start)
				if err != nil {
					t.Fatal(err)
				}
				stress(t, r, sh.p, sh.c, stressItems()/sh.p)
			})
		}
	}
}
