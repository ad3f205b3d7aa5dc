package metrics_test

import (
	"math"
	"sync"
	"testing"
	"time"

	"github.com/shoal-go/shoal/internal/metrics"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func TestRateSteadyAndStep(t *testing.T) {
	r := metrics.NewRate(10 * time.Second)
	r.Tick(t0)
	now := t0
	for range 30 { // 100 events per second for 30 s
		r.Add(100)
		now = now.Add(time.Second)
		r.Tick(now)
	}
	if got := r.Rate(); math.Abs(got-100) > 1e-9 {
		t.Fatalf("steady 100/s reads %v", got)
	}
	// Drop to zero for one window: the average keeps e^-1 of the old rate,
	// whatever the tick interval.
	for range 20 {
		now = now.Add(500 * time.Millisecond)
		r.Tick(now)
	}
	if got, want := r.Rate(), 100*math.Exp(-1); math.Abs(got-want) > 1e-6 {
		t.Fatalf("after one window at zero: %v, want %v", got, want)
	}
}

func TestRateFirstTicks(t *testing.T) {
	var r metrics.Rate // zero value: default window
	r.Add(5)
	if r.Rate() != 0 {
		t.Fatal("rate before any Tick is not zero")
	}
	r.Tick(t0)                                      // start
	r.Tick(t0)                                      // no time passed: nothing changes
	r.Tick(t0.Add(-time.Second))                    // time went back: nothing changes
	r.Tick(t0.Add(2 * time.Second))                 // 5 events over 2 s seed the average
	if got := r.Rate(); math.Abs(got-2.5) > 1e-12 { // seeded, not climbing from zero
		t.Fatalf("first rate %v, want 2.5", got)
	}
}

func TestRateConcurrentLosesNothing(t *testing.T) {
	// A window far below the tick interval makes each Tick report exactly
	// the events since the previous one, so the rates sum to the total.
	r := metrics.NewRate(time.Nanosecond)
	r.Tick(t0)
	var wg sync.WaitGroup
	const adders, n = 4, 10000
	for range adders {
		wg.Go(func() {
			for range n {
				r.Add(1)
			}
		})
	}
	now := t0
	total := 0.0
	tick := func() {
		now = now.Add(time.Second)
		r.Tick(now)
		total += r.Rate() * 1 // events in the last 1 s interval
	}
	for range 50 {
		tick()
	}
	wg.Wait()
	tick()
	if total != adders*n {
		t.Fatalf("ticks folded %v events, want %d", total, adders*n)
	}
}

func TestRateDoesNotAllocate(t *testing.T) {
	var r metrics.Rate
	now := t0
	if n := testing.AllocsPerRun(1000, func() {
		r.Add(1)
		now = now.Add(time.Millisecond)
		r.Tick(now)
		_ = r.Rate()
	}); n != 0 {
		t.Fatalf("Add/Tick/Rate allocate %v times", n)
	}
}
