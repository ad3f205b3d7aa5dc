package pool

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// ErrInvalidScalingPolicy is matched (errors.Is) by every error that
// ScalingPolicy.Validate returns, and, together with ErrInvalidOption, by
// the error New returns for WithScaling with a policy out of range;
// errors.As finds a *ScalingPolicyError that names the field.
var ErrInvalidScalingPolicy = errors.New("shoal: invalid scaling policy")

// maxBuckets bounds Window/Interval, the length of the baseline ring, so that
// a policy cannot ask for an unbounded allocation (8 MiB of buckets at most).
const maxBuckets = 1 << 20

// ScalingPolicy holds every number of the predictive scaler (WithScaling):
// the sampling interval, the EWMA weight, the baseline window, the growth
// and shrink thresholds and steps, and the cooldowns. Start from
// DefaultScalingPolicy and change fields; the zero value is not valid.
// docs/SCALING.md explains the rules and how to choose a policy.
type ScalingPolicy struct {
	// Interval is the sampling period of the scaler goroutine and the width of
	// one baseline bucket. Default 100 ms.
	Interval time.Duration

	// Alpha is the EWMA weight of the newest interval for the arrival rate and
	// the busy-worker average, in (0, 1]. 1 means no smoothing. A sample that
	// arrives after k intervals weighs 1 − (1 − Alpha)^k. Default 0.2, a time
	// constant of about 4.5 intervals.
	Alpha float64

	// Window is the length of the sliding window whose mean arrival rate is
	// the baseline. At least Interval, at most 2^20 intervals. Default 60 s.
	Window time.Duration

	// GrowQueueRatio: grow when queued tasks exceed this share of the queue
	// capacity, in (0, 1]. Default 0.8.
	GrowQueueRatio float64

	// GrowArrivalFactor: grow when the arrival rate exceeds this multiple of
	// the baseline while shards are waiting for a worker; > 1. Default 1.5.
	GrowArrivalFactor float64

	// SaturationRatio: growth on saturation (shards waiting while every
	// worker is busy at the sample) also needs the busy average to be at
	// least this share of the target, so that a momentary stall does not
	// count as saturation; in (ShrinkBusyRatio, 1]. Default 0.9.
	SaturationRatio float64

	// GrowStep is the relative growth of one decision: the target grows by
	// ceil(target × GrowStep), at least 1; in (0, 10]. Default 0.25.
	GrowStep float64

	// ShrinkQueueRatio: shrink only when queued tasks are below this share of
	// the queue capacity; in [0, GrowQueueRatio). Default 0.2.
	ShrinkQueueRatio float64

	// ShrinkArrivalFactor: shrink when the arrival rate falls below this
	// multiple of the baseline; in (0, 1). Default 0.7.
	ShrinkArrivalFactor float64

	// ShrinkBusyRatio: shrink when the busy-worker average has stayed at most
	// this share of the target over the last ShrinkCooldown, which covers
	// sustained idleness (the baseline then falls to zero and the arrival
	// rule no longer fires); in [0, 1). Default 0.5.
	ShrinkBusyRatio float64

	// ShrinkStep is the relative shrink of one decision: the target falls by
	// ceil(target × ShrinkStep), at least 1; in (0, 1). Default 0.15.
	ShrinkStep float64

	// Headroom: a shrink never takes the target below Headroom × the peak of
	// the busy-worker average over the last ShrinkCooldown, rounded; growth
	// goes at least to Headroom × the busy average. In [1, 1000]. Default 1.25.
	Headroom float64

	// GrowBusyCap bounds the growth of the arrival rule unless the workers
	// are saturated (see SaturationRatio): it takes the target no higher
	// than GrowBusyCap × the busy average, rounded up, plus one. Rising
	// arrivals while workers are to spare call for a few more warm workers,
	// not for max: without the cap, a ramp that keeps the arrival rate above
	// GrowArrivalFactor × the baseline grows the target by GrowStep every
	// Cooldown, up to max, with about half of those workers idle (see
	// docs/SCALING.md). The average, not the sample, so that a momentary
	// burst of busy workers does not lift the cap. The queue and saturation
	// rules are not capped: there the busy count understates the need. 0
	// turns the cap off; otherwise in [1, 1000]. Default 1.25.
	GrowBusyCap float64

	// Cooldown is the least time between two changes of the target; ≥ 0.
	// Default 200 ms.
	Cooldown time.Duration

	// ShrinkCooldown is the least time between any change and a following
	// shrink, and the span over which the busy peak is taken; ≥ Cooldown, at
	// most 2^20 intervals. Default 1 s.
	ShrinkCooldown time.Duration
}

// DefaultScalingPolicy returns the default policy: sample every 100 ms,
// EWMA weight 0.2, a 60 s baseline; grow by 25 % (at least 1) when queued >
// 80 % of capacity, arrivals > 1.5 × baseline with shards waiting (then,
// unless the workers are saturated, to at most 1.25 × the busy average + 1),
// or the workers are saturated; shrink by 15 % when queued < 20 % and
// arrivals < 0.7 × baseline or the workers are mostly idle; 200 ms between
// changes, 1 s before a shrink.
func DefaultScalingPolicy() ScalingPolicy {
	return ScalingPolicy{
		Interval:            100 * time.Millisecond,
		Alpha:               0.2,
		Window:              60 * time.Second,
		GrowQueueRatio:      0.8,
		GrowArrivalFactor:   1.5,
		SaturationRatio:     0.9,
		GrowStep:            0.25,
		ShrinkQueueRatio:    0.2,
		ShrinkArrivalFactor: 0.7,
		ShrinkBusyRatio:     0.5,
		ShrinkStep:          0.15,
		Headroom:            1.25,
		GrowBusyCap:         1.25,
		Cooldown:            200 * time.Millisecond,
		ShrinkCooldown:      time.Second,
	}
}

// ScalingPolicyError names the field of a ScalingPolicy that is out of
// range, its value and the range wanted. It matches ErrInvalidScalingPolicy
// with errors.Is.
type ScalingPolicyError struct {
	Field string // the ScalingPolicy field, e.g. "Alpha"
	Value string // its value as given
	Want  string // the accepted range, e.g. "in (0, 1]"
}

// Error implements error.
func (e *ScalingPolicyError) Error() string {
	return fmt.Sprintf("shoal: invalid scaling policy: %s = %s, want %s", e.Field, e.Value, e.Want)
}

// Is reports whether target is ErrInvalidScalingPolicy.
func (e *ScalingPolicyError) Is(target error) bool { return target == ErrInvalidScalingPolicy }

// Validate reports the first field out of range as a *ScalingPolicyError,
// or nil.
func (p ScalingPolicy) Validate() error {
	bad := func(field string, v any, want string) error {
		return &ScalingPolicyError{Field: field, Value: fmt.Sprint(v), Want: want}
	}
	// in reports whether lo < v < hi, with each end included when its flag says so;
	// NaN is never in range.
	in := func(v, lo float64, loIn bool, hi float64, hiIn bool) bool {
		if math.IsNaN(v) {
			return false
		}
		okLo := v > lo || (loIn && v == lo)
		okHi := v < hi || (hiIn && v == hi)
		return okLo && okHi
	}
	switch {
	case p.Interval <= 0:
		return bad("Interval", p.Interval, "> 0")
	case !in(p.Alpha, 0, false, 1, true):
		return bad("Alpha", p.Alpha, "in (0, 1]")
	case p.Window < p.Interval:
		return bad("Window", p.Window, fmt.Sprintf(">= Interval (%v)", p.Interval))
	case p.Window/p.Interval > maxBuckets:
		return bad("Window", p.Window, fmt.Sprintf("<= %d × Interval", maxBuckets))
	case !in(p.GrowQueueRatio, 0, false, 1, true):
		return bad("GrowQueueRatio", p.GrowQueueRatio, "in (0, 1]")
	case !in(p.GrowArrivalFactor, 1, false, math.Inf(1), false):
		return bad("GrowArrivalFactor", p.GrowArrivalFactor, "> 1 and finite")
	case !in(p.GrowStep, 0, false, 10, true):
		return bad("GrowStep", p.GrowStep, "in (0, 10]")
	case !in(p.ShrinkQueueRatio, 0, true, p.GrowQueueRatio, false):
		return bad("ShrinkQueueRatio", p.ShrinkQueueRatio,
			fmt.Sprintf("in [0, GrowQueueRatio (%v))", p.GrowQueueRatio))
	case !in(p.ShrinkArrivalFactor, 0, false, 1, false):
		return bad("ShrinkArrivalFactor", p.ShrinkArrivalFactor, "in (0, 1)")
	case !in(p.ShrinkBusyRatio, 0, true, 1, false):
		return bad("ShrinkBusyRatio", p.ShrinkBusyRatio, "in [0, 1)")
	case !in(p.SaturationRatio, p.ShrinkBusyRatio, false, 1, true):
		return bad("SaturationRatio", p.SaturationRatio,
			fmt.Sprintf("in (ShrinkBusyRatio (%v), 1]", p.ShrinkBusyRatio))
	case !in(p.ShrinkStep, 0, false, 1, false):
		return bad("ShrinkStep", p.ShrinkStep, "in (0, 1)")
	case !in(p.Headroom, 1, true, 1000, true):
		return bad("Headroom", p.Headroom, "in [1, 1000]")
	case p.GrowBusyCap != 0 && !in(p.GrowBusyCap, 1, true, 1000, true):
		return bad("GrowBusyCap", p.GrowBusyCap, "0 (off) or in [1, 1000]")
	case p.Cooldown < 0:
		return bad("Cooldown", p.Cooldown, ">= 0")
	case p.ShrinkCooldown < p.Cooldown:
		return bad("ShrinkCooldown", p.ShrinkCooldown, fmt.Sprintf(">= Cooldown (%v)", p.Cooldown))
	case p.ShrinkCooldown/p.Interval > maxBuckets:
		return bad("ShrinkCooldown", p.ShrinkCooldown, fmt.Sprintf("<= %d × Interval", maxBuckets))
	}
	return nil
}

// buckets is the length of the baseline ring for a valid policy.
func (p ScalingPolicy) buckets() int { return int(p.Window / p.Interval) }
