package pool

// The scaling engine (WithScaling) decides how many workers a pool keeps
// warm.
//
// It is pure decision logic: no goroutines, no clock, no I/O. The pool's
// scaler goroutine samples its counters every ScalingPolicy.Interval, hands them to
// scalingEngine.Step as a scalingSample, and applies the ScalingDecision's Target. Time comes
// only from scalingSample.Now, so the same samples always give the same decisions
// and tests can replay a whole day in microseconds.
//
// Signals:
//
//   - arrivals per second, as an exponentially weighted moving average (EWMA)
//     of the cumulative arrival counter, with weight ScalingPolicy.Alpha per
//     interval;
//   - a baseline: the mean arrival rate over a sliding window
//     (ScalingPolicy.Window, default 60 s), kept in a fixed ring of
//     interval-sized buckets allocated once;
//   - queued tasks as a share of queue capacity, shards waiting for a worker,
//     and busy workers (also smoothed with Alpha).
//
// Rules:
//
// Grow the target by GrowStep (at least +1) when any of these holds:
//   - queued > GrowQueueRatio × capacity;
//   - arrivals > GrowArrivalFactor × baseline and shards are waiting;
//   - shards are waiting, every worker is busy, and the busy average is at
//     least SaturationRatio × target (saturation, not a momentary stall);
//   - the busy average is at least target + 1 (a pool that starts workers on
//     demand runs more than the target: keep warm what is in use).
//
// Growth goes at least to Headroom × the busy average. The arrival rule alone
// is capped: unless the workers are saturated (the third rule's condition),
// it grows the target to at most GrowBusyCap × the busy average, rounded up,
// plus one. Rising arrivals with workers to spare call for a little more
// headroom, not for max; without the cap a long ramp grew the target to max
// with half of it idle.
//
// Shrink it by ShrinkStep (at least −1) when queued ≤ ShrinkQueueRatio ×
// capacity, no shard is waiting, and either arrivals < ShrinkArrivalFactor ×
// baseline or the busy average has stayed at most ShrinkBusyRatio × target
// over the last ShrinkCooldown (sustained idleness, where the baseline itself
// falls to zero and the arrival rule no longer fires). A shrink never goes
// below Headroom × the peak of the busy average over the last ShrinkCooldown
// (a stabilisation window, as in Kubernetes' HPA): the target follows falling
// load down to what was recently in use, then stops, which is what keeps a
// steady noisy load from oscillating.
//
// The target always stays within the [min, max] passed to each Step; a change
// of bounds (the pool's Tune) applies at the next Step regardless of
// cooldowns. Between two changes at least Cooldown passes, and a shrink waits
// ShrinkCooldown after any change: growing late costs latency, shrinking late
// only costs idle workers.
//
// Cost:
//
// Step does a constant amount of work per call except when a sample arrives
// after a gap, which clears at most Window/Interval buckets; it never
// allocates.

import (
	"math"
	"time"
)

// scalingSample is what the pool observes at one instant. Negative counts are read
// as zero.
type scalingSample struct {
	// Now is the time of the sample. Samples should come about every
	// ScalingPolicy.Interval; one that is not after the previous sample changes no
	// signal (only bounds apply).
	Now time.Time
	// Arrivals is the cumulative number of tasks accepted since the pool
	// started. A value below the previous one is read as a restart of the
	// counter: nothing arrived in between.
	Arrivals uint64
	// Queued is the number of tasks the shard queues hold: waiting,
	// parked for a retry, or running (as Stats.Queued).
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

// ScalingReason says why the scaler took a ScalingDecision.
type ScalingReason uint8

// The reasons of a ScalingDecision. Stats.Scaling holds only decisions
// that moved the target, so it never shows the unexported ones (no rule
// fired, a cooldown or a bound held the target).
const (
	ScalingNone     ScalingReason = iota // no decision has moved the target yet
	scalingSteady                        // no rule fired
	scalingCooldown                      // a rule fired within the cooldown
	scalingLimit                         // a rule fired but a bound, the busy floor or the busy cap held the target

	ScalingStart          // the first sample set the target to min
	ScalingGrowQueue      // queued > GrowQueueRatio × capacity
	ScalingGrowArrivals   // arrivals > GrowArrivalFactor × baseline, shards waiting
	ScalingGrowSaturated  // shards waiting, every worker busy, busy average ≥ SaturationRatio × target
	ScalingGrowBusy       // busy average ≥ target + 1: workers started on demand stay in use
	ScalingShrinkArrivals // arrivals < ShrinkArrivalFactor × baseline, queues low
	ScalingShrinkIdle     // recent busy peak ≤ ShrinkBusyRatio × target, queues low
	ScalingMin            // the target was below min (bounds changed)
	ScalingMax            // the target was above max (bounds changed)
)

var reasonNames = [...]string{
	ScalingNone:           "none",
	scalingSteady:         "steady",
	scalingCooldown:       "cooldown",
	scalingLimit:          "limit",
	ScalingStart:          "start",
	ScalingGrowQueue:      "grow: queue",
	ScalingGrowArrivals:   "grow: arrivals",
	ScalingGrowSaturated:  "grow: saturated",
	ScalingGrowBusy:       "grow: busy",
	ScalingShrinkArrivals: "shrink: arrivals",
	ScalingShrinkIdle:     "shrink: idle",
	ScalingMin:            "min",
	ScalingMax:            "max",
}

// String returns a short lower-case name, e.g. "grow: queue".
func (r ScalingReason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return "unknown"
}

// ScalingDecision is one decision of the scaler that moved the target
// (workers kept warm): the new target, the previous one, the reason, when,
// and the arrival rate and baseline it saw.
type ScalingDecision struct {
	Target   int           // workers to keep warm from now on
	Previous int           // the target before this step
	Reason   ScalingReason // why
	At       time.Time     // the sample's time
	Rate     float64       // arrivals per second (EWMA) at At
	Baseline float64       // mean arrivals per second over the window at At
}

// Changed reports whether the decision moved the target.
func (d ScalingDecision) Changed() bool { return d.Target != d.Previous }

// scalingEngine turns samples into target worker counts under a
// ScalingPolicy. It is not safe for concurrent use: one goroutine (the
// pool's autoscaler) owns it.
type scalingEngine struct {
	p      ScalingPolicy
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
	lastChange   time.Time       // time of the last rule-driven change
	last         ScalingDecision // the last decision that changed the target
}

// newScalingEngine returns an engine for p, or p's validation error.
func newScalingEngine(p ScalingPolicy) (*scalingEngine, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &scalingEngine{
		p:      p,
		win:    newWindow(p.Interval, p.buckets()),
		recent: newPeak(p.Interval, int(p.ShrinkCooldown/p.Interval)),
	}, nil
}

// Target returns the current target.
func (s *scalingEngine) Target() int { return s.target }

// Last returns the last decision that changed the target (Reason
// ScalingNone before the first Step).
func (s *scalingEngine) Last() ScalingDecision { return s.last }

// Rate returns the smoothed arrival rate per second.
func (s *scalingEngine) Rate() float64 { return s.rate }

// Step takes one sample and the current bounds and returns the decision. The
// target always ends within [lo, hi]; lo below 0 is read as 0 and hi below lo
// as lo. The first call sets the target to lo. Step never allocates.
func (s *scalingEngine) Step(x scalingSample, lo, hi int) ScalingDecision {
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
		return s.change(x.Now, lo, ScalingStart)
	}

	if dt := x.Now.Sub(s.lastAt); dt > 0 {
		s.observe(x, dt)
	}

	// Bounds first: a Tune applies now, whatever the cooldown.
	switch {
	case s.target < lo:
		return s.change(x.Now, lo, ScalingMin)
	case s.target > hi:
		return s.change(x.Now, hi, ScalingMax)
	}

	since := x.Now.Sub(s.lastChange)
	if r := s.growReason(x); r != ScalingNone {
		want := s.grown()
		if r == ScalingGrowArrivals && s.p.GrowBusyCap > 0 && !s.saturated(x) {
			// Arrivals rise while workers are to spare: grow to what the
			// busy workers use, with headroom, not by a whole step.
			want = min(want, s.capped())
		}
		if want > hi {
			want = hi
		}
		switch {
		case want <= s.target:
			return s.hold(x.Now, scalingLimit)
		case since < s.p.Cooldown:
			return s.hold(x.Now, scalingCooldown)
		}
		s.lastChange = x.Now
		return s.change(x.Now, want, r)
	}
	if r := s.shrinkReason(x); r != ScalingNone {
		want := max(s.shrunk(), s.need(s.recent.max()), lo)
		switch {
		case want >= s.target:
			return s.hold(x.Now, scalingLimit)
		case since < s.p.ShrinkCooldown:
			return s.hold(x.Now, scalingCooldown)
		}
		s.lastChange = x.Now
		return s.change(x.Now, want, r)
	}
	return s.hold(x.Now, scalingSteady)
}

// observe updates the rate, the busy average and the baseline for a sample
// taken dt after the previous one.
func (s *scalingEngine) observe(x scalingSample, dt time.Duration) {
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

func (s *scalingEngine) growReason(x scalingSample) ScalingReason {
	switch {
	case x.Capacity > 0 && float64(x.Queued) > s.p.GrowQueueRatio*float64(x.Capacity):
		return ScalingGrowQueue
	case x.ShardsWaiting > 0 && s.rate > s.p.GrowArrivalFactor*s.win.rate(x.Now):
		return ScalingGrowArrivals
	case s.saturated(x):
		return ScalingGrowSaturated
	case s.busy >= float64(s.target)+1:
		// A pool that starts workers on demand runs more than the target
		// without shards waiting; keep warm what is in use. The margin of a
		// whole worker keeps this apart from the shrink rules at small
		// targets.
		return ScalingGrowBusy
	}
	return ScalingNone
}

func (s *scalingEngine) shrinkReason(x scalingSample) ScalingReason {
	if x.ShardsWaiting > 0 {
		return ScalingNone
	}
	if x.Capacity > 0 {
		if float64(x.Queued) > s.p.ShrinkQueueRatio*float64(x.Capacity) {
			return ScalingNone
		}
	} else if x.Queued > 0 {
		return ScalingNone
	}
	switch {
	case s.rate < s.p.ShrinkArrivalFactor*s.win.rate(x.Now):
		return ScalingShrinkArrivals
	case s.recent.max() <= s.p.ShrinkBusyRatio*float64(s.target):
		return ScalingShrinkIdle
	}
	return ScalingNone
}

// grown is the target after one growth step, at least the busy floor; it may
// exceed any bound (the caller clamps) but not the range of int.
func (s *scalingEngine) grown() int {
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
func (s *scalingEngine) saturated(x scalingSample) bool {
	return x.ShardsWaiting > 0 && x.Busy >= s.target && x.Busy >= x.Running &&
		s.busy >= s.p.SaturationRatio*float64(s.target)
}

// capped is the most the arrival rule may grow the target to:
// GrowBusyCap × the busy average, rounded up, plus one.
func (s *scalingEngine) capped() int {
	c := math.Ceil(s.busy*s.p.GrowBusyCap) + 1
	if c >= math.MaxInt32 {
		return math.MaxInt32
	}
	return int(c)
}

// shrunk is the target after one shrink step, never below 0.
func (s *scalingEngine) shrunk() int {
	t := float64(s.target)
	return max(0, s.target-int(max(1, math.Ceil(t*s.p.ShrinkStep))))
}

// need is busy workers with headroom, rounded: the workers in use.
func (s *scalingEngine) need(busy float64) int {
	n := math.Round(busy * s.p.Headroom)
	if n >= math.MaxInt32 {
		return math.MaxInt32
	}
	return int(n)
}

func (s *scalingEngine) change(now time.Time, target int, r ScalingReason) ScalingDecision {
	d := s.decision(now, r)
	d.Target = target
	s.target = target
	s.last = d
	return d
}

func (s *scalingEngine) hold(now time.Time, r ScalingReason) ScalingDecision {
	return s.decision(now, r)
}

func (s *scalingEngine) decision(now time.Time, r ScalingReason) ScalingDecision {
	return ScalingDecision{
		Target:   s.target,
		Previous: s.target,
		Reason:   r,
		At:       now,
		Rate:     s.rate,
		Baseline: s.win.rate(now),
	}
}
