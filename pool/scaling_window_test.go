package pool

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// The ring against a plain list of every sample: random gaps, some longer
// than the window, some zero, some backwards.
func TestWindowMatchesModel(t *testing.T) {
	type event struct {
		at time.Time
		n  uint64
	}
	for seed := range uint64(30) {
		rng := rand.New(rand.NewPCG(seed, 11))
		iv := time.Duration(1+rng.IntN(100)) * time.Millisecond
		size := 1 + rng.IntN(50)
		w := newWindow(iv, size)
		w.reset(t0)
		var events []event
		now, head := t0, int64(0)
		for i := range 2000 {
			switch r := rng.IntN(100); {
			case r < 3:
				now = now.Add(time.Duration(size+rng.IntN(3*size)) * iv) // past the window
			case r < 6:
				now = now.Add(-time.Duration(rng.Int64N(int64(iv)))) // backwards
			case r < 10: // same time
			default:
				now = now.Add(time.Duration(rng.Int64N(int64(2 * iv))))
			}
			n := uint64(rng.IntN(100))
			w.add(now, n)
			// Model: a sample's bucket never goes below the newest one.
			k := max(bucket(now.Sub(t0), iv), head)
			head = k
			events = append(events, event{t0.Add(time.Duration(k)*iv + 1), n})
			// Drop what left the window for good (head never goes back).
			for len(events) > 0 && bucket(events[0].at.Sub(t0), iv) <= head-int64(size) {
				events = events[1:]
			}
			var sum uint64
			for _, e := range events {
				if b := bucket(e.at.Sub(t0), iv); b > head-int64(size) && b <= head {
					sum += e.n
				}
			}
			from := t0
			if oldest := head - int64(size) + 1; oldest > 0 {
				from = t0.Add(time.Duration(oldest) * iv)
			}
			want := 0.0
			if d := now.Sub(from); d > 0 {
				want = float64(sum) / d.Seconds()
			}
			if w.sum != sum || math.Abs(w.rate(now)-want) > 1e-9*max(1, want) {
				t.Fatalf("seed %d step %d: sum %d rate %v, model %d %v", seed, i, w.sum, w.rate(now), sum, want)
			}
		}
	}
}

func TestPeakMatchesModel(t *testing.T) {
	for seed := range uint64(30) {
		rng := rand.New(rand.NewPCG(seed, 13))
		iv := 10 * time.Millisecond
		size := 1 + rng.IntN(20)
		w := newPeak(iv, size)
		w.reset(t0)
		type event struct {
			k int64
			v float64
		}
		var events []event
		now, head := t0, int64(0)
		for i := range 1000 {
			if rng.IntN(20) == 0 {
				now = now.Add(time.Duration(size+rng.IntN(size)) * iv)
			} else {
				now = now.Add(time.Duration(rng.Int64N(int64(2 * iv))))
			}
			v := 100 * rng.Float64()
			w.add(now, v)
			head = max(head, bucket(now.Sub(t0), iv))
			events = append(events, event{head, v})
			for len(events) > 0 && events[0].k <= head-int64(size) {
				events = events[1:]
			}
			want := 0.0
			for _, e := range events {
				if e.k > head-int64(size) {
					want = max(want, e.v)
				}
			}
			if got := w.max(); got != want {
				t.Fatalf("seed %d step %d: max %v, model %v", seed, i, got, want)
			}
		}
	}
}

// A constant rate reads as that rate once the window is full, and as zero a
// window after it stops.
func TestWindowSteady(t *testing.T) {
	iv := 100 * time.Millisecond
	w := newWindow(iv, 600)
	w.reset(t0)
	now := t0
	for range 1200 {
		now = now.Add(iv)
		w.add(now, 25)
		if r := w.rate(now); math.Abs(r-250) > 1e-9 {
			t.Fatalf("at %v: rate %v, want 250", now.Sub(t0), r)
		}
	}
	for range 600 {
		now = now.Add(iv)
		w.add(now, 0)
	}
	if r := w.rate(now); r != 0 {
		t.Fatalf("a window after the stop: rate %v, want 0", r)
	}
}
