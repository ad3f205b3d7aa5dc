package metrics_test

import (
	"fmt"
	"math"
	"sync"
	"testing"

	"github.com/shoal-go/shoal/internal/metrics"
)

// hashOf gives group i a hash whose cells differ from every other small i's
// in both sketch rows, so counts are exact.
func hashOf(i int) uint64 { return uint64(i)<<32 | uint64(i) }

func TestTopKFindsHeaviest(t *testing.T) {
	var k metrics.TopK[string]
	k.SetSampleEvery(1)
	// 1000 light groups with one queued task each, and 20 heavy groups with
	// 10·j tasks: the table holds the 16 heaviest, in order.
	for i := 1; i <= 1000; i++ {
		if !k.Inc(hashOf(i), fmt.Sprint("light-", i)) {
			t.Fatal("Inc with SampleEvery(1) did not sample")
		}
	}
	for j := 1; j <= 20; j++ {
		for range 10 * j {
			k.Inc(hashOf(2000+j), fmt.Sprint("heavy-", j))
		}
	}
	top := k.Top(nil)
	if len(top) != metrics.TopKSlots {
		t.Fatalf("Top has %d groups, want %d: %v", len(top), metrics.TopKSlots, top)
	}
	for i, g := range top {
		j := 20 - i
		if g.Group != fmt.Sprint("heavy-", j) || g.Queued != int64(10*j) {
			t.Fatalf("Top[%d] = %+v, want heavy-%d with %d", i, g, j, 10*j)
		}
	}
	// Drain the heaviest: it leaves the table, and the next Top shows the
	// others.
	for range 200 {
		k.Dec(hashOf(2020))
	}
	top = k.Top(top[:0])
	if top[0].Group != "heavy-19" || len(top) != metrics.TopKSlots-1 {
		t.Fatalf("after draining heavy-20: %v", top)
	}
	// A new group heavier than the lightest tracked one gets in.
	for range 1000 {
		k.Inc(hashOf(3000), "burst")
	}
	top = k.Top(top[:0])
	if top[0].Group != "burst" || top[0].Queued != 1000 {
		t.Fatalf("burst group not on top: %v", top)
	}
}

func TestTopKRefreshAfterDrain(t *testing.T) {
	var k metrics.TopK[int]
	k.SetSampleEvery(1)
	for g := 1; g <= metrics.TopKSlots; g++ {
		for range 100 {
			k.Inc(hashOf(g), g)
		}
	}
	// All tracked groups drain; the floor is stale until Top refreshes it.
	for g := 1; g <= metrics.TopKSlots; g++ {
		for range 100 {
			k.Dec(hashOf(g))
		}
	}
	if top := k.Top(nil); len(top) != 0 {
		t.Fatalf("drained groups still reported: %v", top)
	}
	for range 5 {
		k.Inc(hashOf(500), 500)
	}
	if top := k.Top(nil); len(top) != 1 || top[0].Group != 500 || top[0].Queued != 5 {
		t.Fatalf("after refresh, new group: %v", top)
	}
}

func TestTopKSampledEstimate(t *testing.T) {
	var k metrics.TopK[string]
	if k.SampleEvery() != metrics.DefaultSampleEvery {
		t.Fatalf("zero TopK samples every %d", k.SampleEvery())
	}
	const queued = 20000
	sampled := 0
	for range queued {
		if k.Inc(hashOf(7), "hot") {
			sampled++
		}
	}
	// Binomial(20000, 1/8): sd ≈ 47 samples, ≈ 2.4 % after scaling; 15 %
	// is over six sd.
	top := k.Top(nil)
	if len(top) != 1 || math.Abs(float64(top[0].Queued)/queued-1) > 0.15 {
		t.Fatalf("estimate %v for %d queued", top, queued)
	}
	if int64(sampled)*metrics.DefaultSampleEvery != top[0].Queued {
		t.Fatalf("Inc reported %d sampled, estimate %d", sampled, top[0].Queued)
	}
}

func TestTopKConcurrent(t *testing.T) {
	var k metrics.TopK[int]
	k.SetSampleEvery(2)
	n := 20000
	if testing.Short() {
		n = 2000
	}
	var wg sync.WaitGroup
	tops := make(chan []metrics.TopGroup[int], 1)
	for w := range 4 {
		wg.Go(func() {
			var held []uint64
			for i := range n {
				g := (i*31 + w) % 100
				if h := hashOf(g + 1); k.Inc(h, g) {
					held = append(held, h)
				}
				if len(held) > 50 {
					for _, h := range held[:25] {
						k.Dec(h)
					}
					held = held[25:]
				}
			}
			for _, h := range held {
				k.Dec(h)
			}
		})
	}
	wg.Go(func() {
		var dst []metrics.TopGroup[int]
		for range 200 {
			dst = k.Top(dst[:0])
		}
		tops <- dst
	})
	wg.Wait()
	<-tops
	if top := k.Top(nil); len(top) != 0 {
		t.Fatalf("every task left the queue, Top still reports %v", top)
	}
}

func TestTopKHotPathDoesNotAllocate(t *testing.T) {
	var k metrics.TopK[string]
	k.SetSampleEvery(1)
	keys := make([]string, 64)
	for i := range keys {
		keys[i] = fmt.Sprint("room-", i)
	}
	i := 0
	if n := testing.AllocsPerRun(1000, func() {
		i++
		h := hashOf(i%64 + 1)
		k.Inc(h, keys[i%64])
		k.IncSeq(h, keys[i%64], uint64(i))
		k.Dec(h)
	}); n != 0 {
		t.Fatalf("Inc/Dec allocate %v times", n)
	}
	dst := make([]metrics.TopGroup[string], 0, metrics.TopKSlots)
	if n := testing.AllocsPerRun(100, func() { dst = k.Top(dst[:0]) }); n != 0 {
		t.Fatalf("Top into a large enough slice allocates %v times", n)
	}
}

// TestTopKIncSeqSamplingRate checks that IncSeq samples one task in eight
// whatever the pattern of seq: consecutive, strided by the sampling rate
// (a group that gets every 8th position of its queue), or by large powers
// of two.
func TestTopKIncSeqSamplingRate(t *testing.T) {
	const n = 80000
	for _, stride := range []uint64{1, 8, 64, 1 << 20} {
		for _, h := range []uint64{hashOf(1), hashOf(77), 0xdeadbeef} {
			var k metrics.TopK[int]
			sampled := 0
			for i := range uint64(n) {
				if k.IncSeq(h, 1, i*stride) {
					sampled++
				}
			}
			// Expect n/8 = 10000; sd ≈ 94. Allow 10 %.
			if got := float64(sampled) / (n / 8); got < 0.9 || got > 1.1 {
				t.Errorf("stride %d hash %#x: sampled %d of %d, want about %d", stride, h, sampled, n, n/8)
			}
		}
	}
	var k metrics.TopK[int]
	k.SetSampleEvery(1)
	for i := range uint64(5) {
		if !k.IncSeq(hashOf(3), 3, i) {
			t.Fatal("IncSeq with SampleEvery(1) did not sample")
		}
	}
	if top := k.Top(nil); len(top) != 1 || top[0].Queued != 5 {
		t.Fatalf("IncSeq counts: %v", top)
	}
}
