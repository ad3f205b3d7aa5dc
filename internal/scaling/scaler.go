package scaling

import (
	"math"
	"time"
)

// Sample is what the pool observes at one instant. Negative counts are read
// as zero.
type Sample struct {
	// Now is the time of the sample. Samples should come about every
	// Policy.Interval; one that is not after the previous sample changes no
	// signal (only bounds apply).
	Now time.Time
	// Arrivals is the cumulative number of tasks accepted since the pool
	// started. A value below the previous one is read as a restart of the
	// counter: nothing arrived in between.
	Arrivals uint64
	// Queued is the number of tasks waiting in the shard queues.
	Queued int
	// Capacity is the number of tasks the shard queues can hold in all. At
	// most 0 means unknown: the queue-ratio growth rule is off and a shrink
	// needs Queued == 0.
	Capacity int
	// ShardsWaiting is the number of shards that have work and no worker yet.
	ShardsWaiting int
	// Busy is the number of workers running a task.
	Busy int
	// Running is the number of workers alive, busy or idle.
	Running int
}

// Reason says why a [Decision] was taken.
type Reason uint8

// Reasons. The first four leave the target unchanged.
const (
	ReasonNone     Reason = iota // no sample seen yet
	ReasonSteady                 // no rule fired
	ReasonCooldown               // a rule fired within the cooldown
	ReasonLimit                  // a rule fired but a bound, the busy floor or the busy cap held the target

	ReasonStart          // the first sample set the target to min
	ReasonGrowQueue      // queued > GrowQueueRatio × capacity
	ReasonGrowArrivals   // arrivals > GrowArrivalFactor × baseline, shards waiting
	ReasonGrowSaturated  // shards waiting, every worker busy, busy average ≥ SaturationRatio × target
	ReasonGrowBusy       // busy average ≥ target + 1: workers started on demand stay in use
	ReasonShrinkArrivals // arrivals < ShrinkArrivalFactor × baseline, queues low
	ReasonShrinkIdle     // recent busy peak ≤ ShrinkBusyRatio × target, queues low
	ReasonMin            // the target was below min (bounds changed)
	ReasonMax            // the target was above max (bounds changed)
)

var reasonNames = [...]string{
	ReasonNone:           "none",
	ReasonSteady:         "steady",
	ReasonCooldown:       "cooldown",
	ReasonLimit:          "limit",
	ReasonStart:          "start",
	ReasonGrowQueue:      "grow: queue",
	ReasonGrowArrivals:   "grow: arrivals",
	ReasonGrowSaturated:  "grow: saturated",
	ReasonGrowBusy:       "grow: busy",
	ReasonShrinkArrivals: "shrink: arrivals",
	ReasonShrinkIdle:     "shrink: idle",
	ReasonMin:            "min",
	ReasonMax:            "max",
}

// String returns a short lower-case name, e.g. "grow: queue".
func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return "unknown"
}

// Decision is the outcome of one [Scaler.Step].
type Decision struct {
	Target   int       // workers to keep warm from now on
	Previous int       // the target before this step
	Reason   Reason    // why
	At       time.Time // the sample's time
	Rate     float64   // arrivals per second (EWMA) at At
	Baseline float64   // mean arrivals per second over the window at At
}

// Changed reports whether the decision moved the target.
func (d Decision) Changed() bool { return d.Target != d.Previous }

// Scaler turns samples into target worker counts under a [Policy]. It is not
// safe for concurrent use: one goroutine (the pool's scaler) owns it.
type Scaler struct {
	p      Policy
	win    window
	target int

	rate float64 // arrivals per second, EWMA
	busy float64 // busy workers, EWMA
	// recent is the busy EWMA's peak over the last ShrinkCooldown: a shrink
	// never goes below Headroom times it (a stabilisation window, as in
	// Kubernetes' HPA), so a dip in the noise does not shrink a target that
	// the next peak needs.
	recent peak

	started      bool // a first sample was seen
	haveRate     bool // rate holds a measurement
	lastAt       time.Time
	lastArrivals uint64
	lastChange   time.Time // time of the last rule-driven change
	last         Decision  // the last decision that changed the target
}

// NewScaler returns a Scaler for p, or p's validation error.
func NewScaler(p Policy) (*Scaler, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &Scaler{
		p:      p,
		win:    newWindow(p.Interval, p.buckets()),
		recent: newPeak(p.Interval, int(p.ShrinkCooldown/p.Interval)),
	}, nil
}

// Policy returns the policy the Scaler was made with.
func (s *Scaler) Policy() Policy { return s.p }

// Target returns the current target.
func (s *Scaler) Target() int { return s.target }

// Last returns the last decision that changed the target (Reason
// [ReasonNone] before the first Step).
func (s *Scaler) Last() Decision { return s.last }

// Rate returns the smoothed arrival rate per second.
func (s *Scaler) Rate() float64 { return s.rate }

// Step takes one sample and the current bounds and returns the decision. The
// target always ends within [lo, hi]; lo below 0 is read as 0 and hi below lo
// as lo. The first call sets the target to lo. Step never allocates.
func (s *Scaler) Step(x Sample, lo, hi int) Decision {
	lo = max(lo, 0)
	hi = max(hi, lo)
	x.Queued = max(x.Queued, 0)
	x.ShardsWaiting = max(x.ShardsWaiting, 0)
	x.Busy = max(x.Busy, 0)
	x.Running = max(x.Running, 0)

	if !s.started {
		s.started = true
		s.lastAt, s.lastArrivals = x.Now, x.Arrivals
		s.lastChange = x.Now.Add(-s.p.ShrinkCooldown) // no cooldown at start
		s.busy = float64(x.Busy)
		s.win.reset(x.Now)
		s.recent.reset(x.Now)
		s.recent.add(x.Now, s.busy)
		return s.change(x.Now, lo, ReasonStart)
	}

	if dt := x.Now.Sub(s.lastAt); dt > 0 {
		s.observe(x, dt)
	}

	// Bounds first: a Tune applies now, whatever the cooldown.
	switch {
	case s.target < lo:
		return s.change(x.Now, lo, ReasonMin)
	case s.target > hi:
		return s.change(x.Now, hi, ReasonMax)
	}

	since := x.Now.Sub(s.lastChange)
	if r := s.growReason(x); r != ReasonNone {
		want := s.grown()
		if r == ReasonGrowArrivals && s.p.GrowBusyCap > 0 && !s.saturated(x) {
			// Arrivals rise while workers are to spare: grow to what the
			// busy workers use, with headroom, not by a whole step.
			want = min(want, s.capped())
		}
		if want > hi {
			want = hi
		}
		switch {
		case want <= s.target:
			return s.hold(x.Now, ReasonLimit)
		case since < s.p.Cooldown:
			return s.hold(x.Now, ReasonCooldown)
		}
		s.lastChange = x.Now
		return s.change(x.Now, want, r)
	}
	if r := s.shrinkReason(x); r != ReasonNone {
		want := max(s.shrunk(), s.need(s.recent.max()), lo)
		switch {
		case want >= s.target:
			return s.hold(x.Now, ReasonLimit)
		case since < s.p.ShrinkCooldown:
			return s.hold(x.Now, ReasonCooldown)
		}
		s.lastChange = x.Now
		return s.change(x.Now, want, r)
	}
	return s.hold(x.Now, ReasonSteady)
}

// observe updates the rate, the busy average and the baseline for a sample
// taken dt after the previous one.
func (s *Scaler) observe(x Sample, dt time.Duration) {
	var n uint64
	if x.Arrivals >= s.lastArrivals {
		n = x.Arrivals - s.lastArrivals
	}
	s.lastAt, s.lastArrivals = x.Now, x.Arrivals
	s.win.add(x.Now, n)

	// Weight of this sample: Alpha per interval, compounded over dt so that a
	// late tick weighs what the missed ticks would have weighed together.
	a := 1 - math.Pow(1-s.p.Alpha, float64(dt)/float64(s.p.Interval))
	inst := float64(n) / dt.Seconds()
	if !s.haveRate {
		s.rate, s.haveRate = inst, true
	} else {
		s.rate += a * (inst - s.rate)
	}
	s.busy += a * (float64(x.Busy) - s.busy)
	s.recent.add(x.Now, s.busy)
}

func (s *Scaler) growReason(x Sample) Reason {
	switch {
	case x.Capacity > 0 && float64(x.Queued) > s.p.GrowQueueRatio*float64(x.Capacity):
		return ReasonGrowQueue
	case x.ShardsWaiting > 0 && s.rate > s.p.GrowArrivalFactor*s.win.rate(x.Now):
		return ReasonGrowArrivals
	case s.saturated(x):
		return ReasonGrowSaturated
	case s.busy >= float64(s.target)+1:
		// A pool that starts workers on demand runs more than the target
		// without shards waiting; keep warm what is in use. The margin of a
		// whole worker keeps this apart from the shrink rules at small
		// targets.
		return ReasonGrowBusy
	}
	return ReasonNone
}

func (s *Scaler) shrinkReason(x Sample) Reason {
	if x.ShardsWaiting > 0 {
		return ReasonNone
	}
	if x.Capacity > 0 {
		if float64(x.Queued) > s.p.ShrinkQueueRatio*float64(x.Capacity) {
			return ReasonNone
		}
	} else if x.Queued > 0 {
		return ReasonNone
	}
	switch {
	case s.rate < s.p.ShrinkArrivalFactor*s.win.rate(x.Now):
		return ReasonShrinkArrivals
	case s.recent.max() <= s.p.ShrinkBusyRatio*float64(s.target):
		return ReasonShrinkIdle
	}
	return ReasonNone
}

// grown is the target after one growth step, at least the busy floor; it may
// exceed any bound (the caller clamps) but not the range of int.
func (s *Scaler) grown() int {
	t := float64(s.target)
	g := t + max(1, math.Ceil(t*s.p.GrowStep))
	g = max(g, float64(s.need(s.busy)))
	if g >= math.MaxInt32 {
		return math.MaxInt32
	}
	return int(g)
}

// saturated reports whether shards wait while every kept-warm worker and
// every worker alive is busy (Busy < Running means an idle worker is about to
// take them), and they have been busy on average: not a momentary stall.
func (s *Scaler) saturated(x Sample) bool {
	return x.ShardsWaiting > 0 && x.Busy >= s.target && x.Busy >= x.Running &&
		s.busy >= s.p.SaturationRatio*float64(s.target)
}

// capped is the most the arrival rule may grow the target to:
// GrowBusyCap × the busy average, rounded up, plus one.
func (s *Scaler) capped() int {
	c := math.Ceil(s.busy*s.p.GrowBusyCap) + 1
	if c >= math.MaxInt32 {
		return math.MaxInt32
	}
	return int(c)
}

// shrunk is the target after one shrink step, never below 0.
func (s *Scaler) shrunk() int {
	t := float64(s.target)
	return max(0, s.target-int(max(1, math.Ceil(t*s.p.ShrinkStep))))
}

// need is busy workers with headroom, rounded: the workers in use.
func (s *Scaler) need(busy float64) int {
	n := math.Round(busy * s.p.Headroom)
	if n >= math.MaxInt32 {
		return math.MaxInt32
	}
	return int(n)
}

func (s *Scaler) change(now time.Time, target int, r Reason) Decision {
	d := s.decision(now, r)
	d.Target = target
	s.target = target
	s.last = d
	return d
}

func (s *Scaler) hold(now time.Time, r Reason) Decision { return s.decision(now, r) }

func (s *Scaler) decision(now time.Time, r Reason) Decision {
	return Decision{
		Target:   s.target,
		Previous: s.target,
		Reason:   r,
		At:       now,
		Rate:     s.rate,
		Baseline: s.win.rate(now),
	}
}
