package pool

import (
	"errors"
	"fmt"
	"time"
)

// A pool at rest, then a burst that saturates its workers, then quiet again.
// Only the decisions that move the target are printed. The workers here are
// the target alone (no on-demand workers), so the busy average trails each
// growth and GrowBusyCap keeps each step of the arrival rule near it.
func Example_scalingEngine() {
	p := DefaultScalingPolicy()
	s, err := newScalingEngine(p)
	if err != nil {
		panic(err)
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := start
	var arrivals uint64
	step := func(perTick uint64, queued, busy int) {
		arrivals += perTick
		x := scalingSample{
			Now: now, Arrivals: arrivals, Queued: queued, Capacity: 1 << 16,
			ShardsWaiting: min(queued, 1024), Busy: busy, Running: max(s.Target(), busy),
		}
		if d := s.Step(x, 2, 16); d.Changed() {
			fmt.Printf("at %4.1fs: %2d -> %2d (%s)\n", now.Sub(start).Seconds(), d.Previous, d.Target, d.Reason)
		}
		now = now.Add(p.Interval)
	}
	for range 50 { // 5 s, a task now and then
		step(1, 0, 0)
	}
	for range 20 { // 2 s of a burst: every worker busy, shards waiting
		step(400, 500, s.Target())
	}
	for range 100 { // 10 s of quiet
		step(0, 0, 0)
	}
	// Output:
	// at  0.0s:  0 ->  2 (start)
	// at  5.2s:  2 ->  3 (grow: arrivals)
	// at  5.4s:  3 ->  4 (grow: arrivals)
	// at  5.6s:  4 ->  5 (grow: arrivals)
	// at  5.8s:  5 ->  6 (grow: arrivals)
	// at  6.0s:  6 ->  7 (grow: arrivals)
	// at  6.2s:  7 ->  8 (grow: arrivals)
	// at  6.4s:  8 ->  9 (grow: arrivals)
	// at  6.6s:  9 -> 11 (grow: arrivals)
	// at  6.8s: 11 -> 12 (grow: arrivals)
	// at  7.9s: 12 -> 10 (shrink: arrivals)
	// at  8.9s: 10 ->  8 (shrink: arrivals)
	// at  9.9s:  8 ->  6 (shrink: arrivals)
	// at 10.9s:  6 ->  5 (shrink: arrivals)
	// at 11.9s:  5 ->  4 (shrink: arrivals)
	// at 12.9s:  4 ->  3 (shrink: arrivals)
	// at 13.9s:  3 ->  2 (shrink: arrivals)
}

// Validate names the field that is out of range.
func ExampleScalingPolicy_Validate() {
	p := DefaultScalingPolicy()
	p.ShrinkStep = 1.5
	err := p.Validate()
	var pe *ScalingPolicyError
	fmt.Println(errors.Is(err, ErrInvalidScalingPolicy), errors.As(err, &pe) && pe.Field == "ShrinkStep")
	fmt.Println(err)
	// Output:
	// true true
	// shoal: invalid scaling policy: ShrinkStep = 1.5, want in (0, 1)
}
