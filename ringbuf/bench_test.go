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

// BenchmarkPushPop moves b.N items from P producers to C consumers; ns/op is
// the cost per item. Consumers of "ring" park while it is empty (announce,
// re-check, block on a channel) and producers yield while it is full;
// "ring-batch" drains with PopBatch; "chan" and "chan-batch" are
// a buffered channel of the same capacity with blocking operations, the
// latter draining whatever is buffered after each blocking receive.
func BenchmarkPushPop(b *testing.B) {
	for _, sh := range benchShapes {
		for _, impl := range []string{"chan", "ring", "chan-batch", "ring-batch"} {
			b.Run(fmt.Sprintf("%s/P%dC%d", impl, sh.p, sh.c), func(b *testing.B) {
				switch impl {
				case "chan":
					benchChan(b, sh.p, sh.c, 1)
				case "chan-batch":
					benchChan(b, sh.p, sh.c, benchBatch)
				case "ring":
					benchRing(b, sh.p, sh.c, 1)
				case "ring-batch":
					benchRing(b, sh.p, sh.c, benchBatch)
				}
			})
		}
	}
}

// parker lets benchmark consumers sleep while the ring is empty, the way a
// caller of Ring is meant to wait: announce, re-check, block. Producers pay
// one atomic load per push while nobody sleeps.
type parker struct {
	sleepers atomic.Int32  // consumers announced as sleeping and not yet woken
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
	select {
	case <-pk.wake:
		return true
	case <-pk.quit:
		return false
	}
}

// notify wakes one sleeper, if any; called after each successful push.
func (pk *parker) notify() {
	// Reads the announcement count; the push before it is visible to a
	// sleeper's re-check, or this load sees the sleeper.
	for s := pk.sleepers.Load(); s > 0; s = pk.sleepers.Load() {
		// Turns one announcement into a token.
		if pk.sleepers.CompareAndSwap(s, s-1) {
			pk.wake <- struct{}{}
			return
		}
	}
}

func benchRing(b *testing.B, producers, consumers, batch int) {
	r, err := ringbuf.New[uint64](benchSize)
	if err != nil {
		b.Fatal(err)
	}
	pk := &parker{wake: make(chan struct{}, consumers), quit: make(chan struct{})}
	ready := func() bool { return r.Len() > 0 }
	var prod, cons sync.WaitGroup
	b.ResetTimer()
	for c := 0; c < consumers; c++ {
		cons.Go(func() {
			buf := make([]uint64, batch)
			var sum uint64
			for {
				if batch == 1 {
					if v, ok := r.TryPop(); ok {
						sum += v
						continue
					}
				} else if n := r.PopBatch(buf); n > 0 {
					for _, v := range buf[:n] {
						sum += v
					}
					continue
				}
				if !pk.park(ready) && r.Len() == 0 {
					break // every push has returned and the ring is empty
				}
			}
			sink.Add(sum)
		})
	}
	for p := 0; p < producers; p++ {
		prod.Go(func() {
			for i := share(b.N, producers, p); i > 0; i-- {
				for !r.TryPush(uint64(i)) {
					runtime.Gosched()
				}
				pk.notify()
			}
		})
	}
	prod.Wait()
	close(pk.quit)
	cons.Wait()
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
	b.Run("ring-batch", func(b *testing.B) {
		r, _ := ringbuf.New[uint64](benchSize)
		buf := make([]uint64, benchBatch)
		for i := 0; i < b.N; i += benchBatch {
			for j := 0; j < benchBatch; j++ {
				r.TryPush(uint64(j))
			}
			r.PopBatch(buf)
		}
	})
}
