package ringbuf_test

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/shoal-go/shoal/ringbuf"
)

// benchSize is the capacity of the ring and of the channel it is compared to.
const benchSize = 1024

// benchBatch is the dst length of PopBatch in the batched benchmarks.
const benchBatch = 64

var benchShapes = []struct{ p, c int }{{1, 1}, {4, 1}, {4, 4}}

// share splits n items over k goroutines; goroutine i gets share(n, k, i).
func share(n, k, i int) int {
	s := n / k
	if i < n%k {
		s++
	}
	return s
}

var sink atomic.Uint64

// benchSpins is how many times a benchmark consumer that found the ring
// empty (or producer that found it full) yields the processor and looks
// again before it parks.
const benchSpins = 8

// ringMode says how a ring benchmark moves items: push and pop are the
// batch sizes of producers (TryPush for 1, PushBatch otherwise) and
// consumers (TryPop for 1, PopBatch otherwise); spins is benchSpins or 0.
type ringMode struct{ push, pop, spins int }

var ringModes = map[string]ringMode{
	"ring":            {1, 1, benchSpins},
	"ring-drain":      {1, benchBatch, benchSpins},
	"ring-drain-park": {1, benchBatch, 0},
	"ring-batch":      {benchBatch, benchBatch, benchSpins},
	"ring-batch-park": {benchBatch, benchBatch, 0},
}

// BenchmarkPushPop moves b.N items from P producers to C consumers; ns/op is
// the cost per item, from the first push to the last pop.
//
// The ring never waits, so the benchmark waits the way a reasonable caller
// would, and that is part of what it measures. A consumer that finds the
// ring empty looks again up to benchSpins times, yielding the processor in
// between, and then parks (announce, re-check, block on a channel); a
// producer that finds it full does the same and parks until a consumer has
// taken items. Each successful push or pop call wakes one parked goroutine
// of the other side, if any, at the cost of one atomic load when none is
// parked. So consumers keep draining while producers are active, sleep when
// they are not, and producers that outnumber the cores do not spin away the
// processor time the consumer needs, just as blocked channel senders do not.
// parks/item reports how often consumers blocked, items/pop how many items a
// successful pop call took on average (small: consumers chase producers).
//
//   - "ring": TryPush and TryPop.
//   - "ring-drain": TryPush, and consumers drain with PopBatch(64).
//   - "ring-batch": producers push with PushBatch(64), consumers drain with
//     PopBatch(64).
//   - "-park" variants: consumers park as soon as they find the ring empty,
//     without looking again, so that many more hand-overs pay a park and a
//     wake-up.
//   - "chan" and "chan-batch": a buffered channel of the same capacity with
//     blocking operations, the latter draining whatever is buffered after
//     each blocking receive.
func BenchmarkPushPop(b *testing.B) {
	for _, sh := range benchShapes {
		for _, impl := range []string{"chan", "chan-batch", "ring", "ring-drain", "ring-drain-park", "ring-batch", "ring-batch-park"} {
			b.Run(fmt.Sprintf("%s/P%dC%d", impl, sh.p, sh.c), func(b *testing.B) {
				switch impl {
				case "chan":
					benchChan(b, sh.p, sh.c, 1)
				case "chan-batch":
					benchChan(b, sh.p, sh.c, benchBatch)
				default:
					benchRing(b, sh.p, sh.c, ringModes[impl])
				}
			})
		}
	}
}

// parker lets benchmark consumers sleep while the ring is empty, or
// producers while it is full, the way a caller of Ring is meant to wait:
// announce, re-check, block. The other side pays one atomic load per call
// while nobody sleeps.
type parker struct {
	sleepers atomic.Int32  // consumers announced as sleeping and not yet woken
	blocked  atomic.Int64  // times a caller of park actually blocked
	wake     chan struct{} // one token per woken sleeper; capacity = consumers
	quit     chan struct{} // closed once every push has returned
}

// park blocks until a producer wakes the caller or quit is closed, unless
// ready reports work after the announcement. It reports false on quit.
func (pk *parker) park(ready func() bool) bool {
	// Announces the sleeper; ordered before the re-check below.
	pk.sleepers.Add(1)
	if ready() {
		// Withdraws the announcement, unless a producer already turned it
		// into a token, which is then ours to take.
		for s := pk.sleepers.Load(); s > 0; s = pk.sleepers.Load() {
			if pk.sleepers.CompareAndSwap(s, s-1) {
				return true
			}
		}
	}
	pk.blocked.Add(1) // a statistic only
	select {
	case <-pk.wake:
		return true
	case <-pk.quit:
		return false
	}
}

// notify wakes one sleeper, if any; called after each successful push call
// (for consumers) or pop call (for producers).
func (pk *parker) notify() {
	// Reads the announcement count; the push or pop before it is visible to
	// a sleeper's re-check, or this load sees the sleeper.
	for s := pk.sleepers.Load(); s > 0; s = pk.sleepers.Load() {
		// Turns one announcement into a token.
		if pk.sleepers.CompareAndSwap(s, s-1) {
			pk.wake <- struct{}{}
			return
		}
	}
}

func benchRing(b *testing.B, producers, consumers int, m ringMode) {
	r, err := ringbuf.New[uint64](benchSize)
	if err != nil {
		b.Fatal(err)
	}
	quit := make(chan struct{}) // closed once every push has returned
	// items wakes consumers after a push; space wakes producers after a pop.
	items := &parker{wake: make(chan struct{}, consumers), quit: quit}
	space := &parker{wake: make(chan struct{}, producers), quit: make(chan struct{})}
	hasItems := func() bool { return r.Len() > 0 }
	hasSpace := func() bool { return r.Len() < r.Cap() }
	var popCalls atomic.Int64
	var prod, cons sync.WaitGroup
	b.ResetTimer()
	for c := 0; c < consumers; c++ {
		cons.Go(func() {
			buf := make([]uint64, m.pop)
			var sum uint64
			var pops int64
			for idle := 0; ; {
				n := 0
				if m.pop == 1 {
					if v, ok := r.TryPop(); ok {
						sum += v
						n = 1
					}
				} else {
					n = r.PopBatch(buf)
					for _, v := range buf[:n] {
						sum += v
					}
				}
				if n > 0 {
					pops++
					space.notify()
					idle = 0
					continue
				}
				if idle < m.spins {
					idle++
					runtime.Gosched()
					continue
				}
				idle = 0
				if !items.park(hasItems) && r.Len() == 0 {
					break // every push has returned and the ring is empty
				}
			}
			sink.Add(sum)
			popCalls.Add(pops)
		})
	}
	// full waits for room after a push call found the ring full.
	full := func(idle *int) {
		if *idle < m.spins {
			*idle++
			runtime.Gosched()
			return
		}
		*idle = 0
		space.park(hasSpace)
	}
	for p := 0; p < producers; p++ {
		prod.Go(func() {
			idle := 0
			if m.push == 1 {
				for i := share(b.N, producers, p); i > 0; i-- {
					for !r.TryPush(uint64(i)) {
						full(&idle)
					}
					idle = 0
					items.notify()
				}
				return
			}
			src := make([]uint64, m.push)
			for left := share(b.N, producers, p); left > 0; {
				k := min(left, len(src))
				for j := range src[:k] {
					src[j] = uint64(left - j)
				}
				for done := 0; done < k; {
					n := r.PushBatch(src[done:k])
					if n == 0 {
						full(&idle)
						continue
					}
					idle = 0
					done += n
					items.notify()
				}
				left -= k
			}
		})
	}
	prod.Wait()
	close(quit)
	cons.Wait()
	b.ReportMetric(float64(items.blocked.Load())/float64(b.N), "parks/item")
	b.ReportMetric(float64(b.N)/float64(max(popCalls.Load(), 1)), "items/pop")
}

func benchChan(b *testing.B, producers, consumers, batch int) {
	ch := make(chan uint64, benchSize)
	var prod, cons sync.WaitGroup
	b.ResetTimer()
	for c := 0; c < consumers; c++ {
		cons.Go(func() {
			var sum uint64
			for v := range ch {
				sum += v
			drain:
				for i := 1; i < batch; i++ {
					select {
					case v, ok := <-ch:
						if !ok {
							break drain
						}
						sum += v
					default:
						break drain
					}
				}
			}
			sink.Add(sum)
		})
	}
	for p := 0; p < producers; p++ {
		prod.Go(func() {
			for i := share(b.N, producers, p); i > 0; i-- {
				ch <- uint64(i)
			}
		})
	}
	prod.Wait()
	close(ch)
	cons.Wait()
}

// BenchmarkUncontended measures one goroutine pushing and popping: the cost
// of the operations themselves, with no cache line moving between cores.
func BenchmarkUncontended(b *testing.B) {
	b.Run("chan", func(b *testing.B) {
		ch := make(chan uint64, benchSize)
		for i := 0; i < b.N; i++ {
			ch <- uint64(i)
			<-ch
		}
	})
	b.Run("ring", func(b *testing.B) {
		r, _ := ringbuf.New[uint64](benchSize)
		for i := 0; i < b.N; i++ {
			r.TryPush(uint64(i))
			r.TryPop()
		}
	})
	b.Run("ring-drain", func(b *testing.B) {
		r, _ := ringbuf.New[uint64](benchSize)
		buf := make([]uint64, benchBatch)
		for i := 0; i < b.N; i += benchBatch {
			for j := 0; j < benchBatch; j++ {
				r.TryPush(uint64(j))
			}
			r.PopBatch(buf)
		}
	})
	b.Run("ring-batch", func(b *testing.B) {
		r, _ := ringbuf.New[uint64](benchSize)
		buf := make([]uint64, benchBatch)
		for i := 0; i < b.N; i += benchBatch {
			r.PushBatch(buf)
			r.PopBatch(buf)
		}
	})
}
