package backpressure

import (
	"math"
	"strconv"
	"time"
)

// State is the admission state of a Breaker.
type State int32

// The states, in order of increasing pressure except Probe, which is the way
// out of Reject.
const (
	// Normal admits everything.
	Normal State = iota
	// Throttle admits through a token bucket whose rate falls linearly to
	// zero as pressure nears the reject threshold; a task whose reservation
	// would pass the reject threshold is refused with ErrMemoryPressure.
	Throttle
	// Reject refuses everything with ErrMemoryPressure.
	Reject
	// Probe admits a trickle after pressure stayed below the recover
	// threshold for the hold time; it returns to Reject if pressure rises to
	// the reject threshold again.
	Probe
)

// numStates is the number of states, for per-state counters.
const numStates = 4

// String returns the state's name, e.g. "Throttle".
func (s State) String() string {
	switch s {
	case Normal:
		return "Normal"
	case Throttle:
		return "Throttle"
	case Reject:
		return "Reject"
	case Probe:
		return "Probe"
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// machine is the state machine. It is owned by the holder of
// Breaker.refreshing; nothing in it is shared.
type machine struct {
	state      State
	since      time.Duration // when state was entered
	belowSince time.Duration // start of the current run below Recover; -1 when above

	gcInit                  bool
	gcAt                    time.Duration
	gcStartGC, gcStartTotal float64
	gcShare                 float64
}

func (m *machine) init() {
	*m = machine{state: Normal, belowSince: -1}
}

// inputs are the figures one sample gives the state machine.
type inputs struct {
	effective    int64   // measured + reservation, bytes
	pressure     float64 // effective / budget; 0 without a budget
	secondary    bool    // GC CPU share or goroutine ceiling demands Throttle
	rate         float64 // token-bucket rate for Throttle
	bytesPerTask int64
}

// observe turns a reading and the in-flight count into inputs, updating the
// GC window; cpuOK says r's CPU totals come from a good reading (the first
// window starts at the first one).
func (m *machine) observe(c *config, now time.Duration, r Reading, n int64, cpuOK bool) inputs {
	bpt := c.bytesPerTask
	in := inputs{bytesPerTask: bpt}
	in.effective = effectiveUse(r.Used, n, bpt)
	if c.budget > 0 {
		in.pressure = float64(in.effective) / float64(c.budget)
	}

	if !m.gcInit {
		// Not from the zero pair a bad first reading left (!cpuOK): that
		// window would average the GC's share since the process started.
		if cpuOK {
			m.gcInit, m.gcAt, m.gcStartGC, m.gcStartTotal = true, now, r.GCCPUSeconds, r.TotalCPUSeconds
		}
	} else if now-m.gcAt >= c.gcWindow {
		// The runtime advances these totals only at a GC's stop-the-world
		// points, so a window in which they did not move had no GC: share 0.
		m.gcShare = 0
		if dt := r.TotalCPUSeconds - m.gcStartTotal; dt > 0 {
			m.gcShare = min(max((r.GCCPUSeconds-m.gcStartGC)/dt, 0), 1)
		}
		m.gcAt, m.gcStartGC, m.gcStartTotal = now, r.GCCPUSeconds, r.TotalCPUSeconds
	}

	th := c.thresholds
	in.rate = c.throttleRate
	if in.pressure >= th.Reject {
		in.rate = 0
	} else if in.pressure > th.Throttle {
		in.rate *= (th.Reject - in.pressure) / (th.Reject - th.Throttle)
	}
	if m.gcShare > c.gcBound {
		in.secondary = true
		in.rate *= (1 - m.gcShare) / (1 - c.gcBound)
	}
	if c.maxGoroutines > 0 && r.Goroutines >= c.maxGoroutines {
		in.secondary = true
		in.rate = 0
	}
	return in
}

// effectiveUse is measured use plus the reservation for n tasks in flight.
func effectiveUse(used, n, bytesPerTask int64) int64 {
	return int64(min(float64(used)+float64(n)*float64(bytesPerTask), math.MaxInt64/2))
}

// roomReaching returns the in-flight count at which the pressure observe
// computes reaches level: the fewest tasks whose reservation, added to used,
// is at or above level × budget. budget must be positive.
func roomReaching(level float64, budget, used, bytesPerTask int64) int64 {
	n := clampInt64(math.Ceil((level*float64(budget) - float64(used)) / float64(bytesPerTask)))
	// The division and the products round: correct by a step or two to
	// the count observe's own arithmetic puts at level.
	reaches := func(n int64) bool {
		return float64(effectiveUse(used, n, bytesPerTask))/float64(budget) >= level
	}
	for range 2 {
		if n == math.MaxInt64 || reaches(n) {
			break
		}
		n++
	}
	for range 2 {
		if n == 0 || !reaches(n-1) {
			break
		}
		n--
	}
	return n
}

// step moves the state machine for one sample and reports the transition.
//
//	Normal   → Reject at ≥ Reject; → Throttle at ≥ Throttle or a second signal
//	Throttle → Reject at ≥ Reject; → Normal below Resume with no second signal
//	Reject   → Probe after a hold time below Recover
//	Probe    → Reject at ≥ Reject; after a hold time in Probe below Recover,
//	           → Throttle (≥ Throttle or a second signal) or Normal
func (m *machine) step(c *config, now time.Duration, in inputs) (from, to State, changed bool) {
	th, p := c.thresholds, in.pressure
	if p < th.Recover {
		if m.belowSince < 0 {
			m.belowSince = now
		}
	} else {
		m.belowSince = -1
	}
	heldBelow := func(since time.Duration) bool {
		return m.belowSince >= 0 && now-max(m.belowSince, since) >= c.hold
	}
	next := m.state
	switch m.state {
	case Normal:
		if p >= th.Reject {
			next = Reject
		} else if p >= th.Throttle || in.secondary {
			next = Throttle
		}
	case Throttle:
		if p >= th.Reject {
			next = Reject
		} else if p < th.Resume && !in.secondary {
			next = Normal
		}
	case Reject:
		if heldBelow(0) {
			next = Probe
		}
	case Probe:
		if p >= th.Reject {
			next = Reject
		} else if heldBelow(m.since) {
			next = Normal
			if p >= th.Throttle || in.secondary {
				next = Throttle
			}
		}
	}
	from = m.state
	if next != from {
		m.state, m.since = next, now
	}
	return from, next, next != from
}
