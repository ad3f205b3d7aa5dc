package backpressure

import (
	"sync/atomic"
	"testing"
)

// BenchmarkAdmit measures the admission fast path in Normal: without an
// in-flight count, with one (as the pool registers it), and from all
// procs at once.
func BenchmarkAdmit(b *testing.B) {
	newBreaker := func(b *testing.B) *Breaker {
		br, err := NewBreaker(WithBudget(1 << 50))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = br.Close() })
		return br
	}
	b.Run("plain", func(b *testing.B) {
		br := newBreaker(b)
		for b.Loop() {
			if br.Admit() != nil {
				b.Fatal("refused")
			}
		}
	})
	b.Run("inflight", func(b *testing.B) {
		br := newBreaker(b)
		var n atomic.Int64
		if err := br.SetInFlightFunc(n.Load); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if br.Admit() != nil {
				b.Fatal("refused")
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		br := newBreaker(b)
		var n atomic.Int64
		if err := br.SetInFlightFunc(n.Load); err != nil {
			b.Fatal(err)
		}
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if br.Admit() != nil {
					b.Fatal("refused")
				}
			}
		})
	})
	b.Run("reject", func(b *testing.B) {
		br, err := NewBreaker(WithSource(&fakeSource{r: Reading{Used: 990}}), WithBudget(1000))
		if err != nil {
			b.Fatal(err)
		}
		defer br.Close()
		for b.Loop() {
			if br.Admit() == nil {
				b.Fatal("admitted")
			}
		}
	})
}

// BenchmarkSample measures one sample: reading runtime/metrics and stepping
// the state machine, as an Admit that refreshes pays for it.
func BenchmarkSample(b *testing.B) {
	br, err := NewBreaker(WithBudget(1 << 50))
	if err != nil {
		b.Fatal(err)
	}
	defer br.Close()
	for b.Loop() {
		for !br.refreshing.CompareAndSwap(false, true) { // take the refresher's role
		}
		br.refresh(true)
	}
}
