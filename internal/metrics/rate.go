// Invariants:
//   - pending counts events added since the last Tick that moved time
//     forward; Tick swaps it to zero and folds it into the average, so every
//     event is folded exactly once.
//   - rate holds the float64 bits of the average; only Tick stores it, under
//     mu, and Rate reads it with one atomic load.

package metrics

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultRateWindow is the averaging window of a zero Rate.
const DefaultRateWindow = 10 * time.Second

// Rate is an exponentially weighted moving average of events per second.
// Add is the hot path (one atomic add); a caller ticks the average with an
// explicit time, typically once a second from a goroutine it already has.
//
// After each Tick the average moves toward the rate observed since the
// previous Tick by 1 − e^(−elapsed/window), so a step change is 63 % absorbed
// after one window, whatever the tick interval. The first Tick with events
// seeds the average with the observed rate instead of climbing from zero.
//
// The zero value is ready and averages over DefaultRateWindow.
type Rate struct {
	pending atomic.Uint64
	rate    atomic.Uint64 // math.Float64bits of events per second

	mu     sync.Mutex    // serializes Tick
	window time.Duration // guarded by mu; 0 means DefaultRateWindow
	last   time.Time     // guarded by mu; zero before the first Tick
	seeded bool          // guarded by mu
}

// NewRate returns a Rate that averages over window (DefaultRateWindow if
// window <= 0).
func NewRate(window time.Duration) *Rate {
	r := &Rate{}
	if window > 0 {
		r.window = window
	}
	return r
}

// Add counts n events. It never blocks and never allocates.
func (r *Rate) Add(n uint64) {
	r.pending.Add(n) // hands the events to the next Tick
}

// Tick folds the events counted since the previous Tick into the average,
// as if they arrived evenly between that Tick and now. The first Tick only
// records now as the start. A now that is not after the previous Tick
// changes nothing (the events wait for the next Tick). Tick may be called
// from any goroutine; calls are serialized.
func (r *Rate) Tick(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.last.IsZero() {
		r.last = now
		return
	}
	elapsed := now.Sub(r.last)
	if elapsed <= 0 {
		return
	}
	r.last = now
	n := r.pending.Swap(0) // takes every event added before this point
	observed := float64(n) / elapsed.Seconds()
	cur := math.Float64frombits(r.rate.Load())
	if !r.seeded {
		if n == 0 {
			return
		}
		r.seeded = true
		cur = observed
	} else {
		window := r.window
		if window <= 0 {
			window = DefaultRateWindow
		}
		alpha := 1 - math.Exp(-elapsed.Seconds()/window.Seconds())
		cur += alpha * (observed - cur)
	}
	r.rate.Store(math.Float64bits(cur)) // publishes the new average
}

// Rate returns the average in events per second as of the last Tick.
func (r *Rate) Rate() float64 {
	return math.Float64frombits(r.rate.Load()) // reads the last published average
}
