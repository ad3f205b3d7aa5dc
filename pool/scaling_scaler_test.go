package pool

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// primed returns a Scaler that has seen a steady minute at target workers,
// rate arrivals per second and busy workers, so that the rate, the baseline
// and the busy average equal them and no cooldown runs. It also returns the
// time and the arrival count of its last sample.
func primed(t *testing.T, p ScalingPolicy, target int, rate float64, busy int) (*scalingEngine, time.Time, uint64) {
	t.Helper()
	s, err := newScalingEngine(p)
	if err != nil {
		t.Fatal(err)
	}
	now, arrivals := t0, uint64(0)
	x := scalingSample{Now: now, Busy: busy, Running: target}
	if d := s.Step(x, target, target); d.Reason != ScalingStart || d.Target != target {
		t.Fatalf("first Step = %+v, want start at %d", d, target)
	}
	per := uint64(rate * p.Interval.Seconds())
	for range ticks(p.Window+p.ShrinkCooldown, p.Interval) {
		now = now.Add(p.Interval)
		arrivals += per
		x = scalingSample{Now: now, Arrivals: arrivals, Busy: busy, Running: target}
		if d := s.Step(x, target, target); d.Changed() {
			t.Fatalf("priming changed the target: %+v", d)
		}
	}
	if math.Abs(s.Rate()-rate) > 1e-6*rate || math.Abs(s.win.rate(now)-rate) > 1e-6*rate {
		t.Fatalf("primed rate %v baseline %v, want %v", s.Rate(), s.win.rate(now), rate)
	}
	return s, now, arrivals
}

// Each rule on its own, with Alpha = 1 so that one sample sets the signals.
func TestRules(t *testing.T) {
	p := DefaultScalingPolicy()
	p.Alpha = 1
	const target, base = 8, 100.0
	cases := []struct {
		name      string
		busyPrime int
		rate      float64       // arrivals per second in the probe interval
		x         scalingSample // Queued, Capacity, ShardsWaiting, Busy, Running
		lo, hi    int
		want      ScalingReason
		wantT     int
		alpha     float64 // 0: 1
	}{
		{"steady", 5, base, scalingSample{Capacity: 1000, Busy: 5, Running: 8}, 1, 64, scalingSteady, 8, 0},
		{"queue above ratio", 5, base, scalingSample{Queued: 801, Capacity: 1000, Busy: 5, Running: 8}, 1, 64, ScalingGrowQueue, 10, 0},
		{"queue at ratio", 5, base, scalingSample{Queued: 800, Capacity: 1000, Busy: 5, Running: 8}, 1, 64, scalingSteady, 8, 0},
		{"queue unknown capacity", 5, base, scalingSample{Queued: 1 << 30, Busy: 5, Running: 8}, 1, 64, scalingSteady, 8, 0},
		{"arrival spike, shards waiting", 7, 2 * base, scalingSample{Queued: 1, Capacity: 1000, ShardsWaiting: 1, Busy: 7, Running: 8}, 1, 64, ScalingGrowArrivals, 10, 0},
		{"arrival spike, none waiting", 5, 2 * base, scalingSample{Capacity: 1000, Busy: 5, Running: 8}, 1, 64, scalingSteady, 8, 0},
		{"saturated", 5, base, scalingSample{Queued: 3, Capacity: 1000, ShardsWaiting: 3, Busy: 8, Running: 8}, 1, 64, ScalingGrowSaturated, 10, 0},
		{"momentary saturation", 5, base, scalingSample{Queued: 3, Capacity: 1000, ShardsWaiting: 3, Busy: 8, Running: 8}, 1, 64, scalingSteady, 8, 0.2},
		{"saturation, busy on average", 7, base, scalingSample{Queued: 3, Capacity: 1000, ShardsWaiting: 3, Busy: 8, Running: 8}, 1, 64, ScalingGrowSaturated, 10, 0.2},
		{"waiting, an idle worker", 5, base, scalingSample{Queued: 3, Capacity: 1000, ShardsWaiting: 3, Busy: 7, Running: 8}, 1, 64, scalingSteady, 8, 0},
		{"saturated beyond target", 5, base, scalingSample{Queued: 3, Capacity: 1000, ShardsWaiting: 3, Busy: 12, Running: 12}, 1, 64, ScalingGrowSaturated, 15, 0},
		{"busy above target", 5, base, scalingSample{Capacity: 1000, Busy: 10, Running: 10}, 1, 64, ScalingGrowBusy, 13, 0},
		{"busy at target + 1", 5, base, scalingSample{Capacity: 1000, Busy: 9, Running: 10}, 1, 64, ScalingGrowBusy, 11, 0},
		{"busy at target", 5, base, scalingSample{Capacity: 1000, Busy: 8, Running: 10}, 1, 64, scalingSteady, 8, 0},
		{"growth capped by max", 5, base, scalingSample{Queued: 3, Capacity: 1000, ShardsWaiting: 3, Busy: 12, Running: 12}, 1, 9, ScalingGrowSaturated, 9, 0},
		{"at max", 5, base, scalingSample{Queued: 900, Capacity: 1000, Busy: 8, Running: 8}, 1, 8, scalingLimit, 8, 0},
		{"arrivals fall", 5, 0.6 * base, scalingSample{Capacity: 1000, Busy: 5, Running: 8}, 1, 64, ScalingShrinkArrivals, 6, 0},
		{"arrivals fall, queue not low", 5, 0.6 * base, scalingSample{Queued: 201, Capacity: 1000, Busy: 5, Running: 8}, 1, 64, scalingSteady, 8, 0},
		{"arrivals fall, queue at low ratio", 5, 0.6 * base, scalingSample{Queued: 200, Capacity: 1000, Busy: 5, Running: 8}, 1, 64, ScalingShrinkArrivals, 6, 0},
		{"arrivals fall, unknown capacity, queued", 5, 0.6 * base, scalingSample{Queued: 1, Busy: 5, Running: 8}, 1, 64, scalingSteady, 8, 0},
		{"arrivals fall, shards waiting", 5, 0.6 * base, scalingSample{Queued: 1, Capacity: 1000, ShardsWaiting: 1, Busy: 5, Running: 8}, 1, 64, scalingSteady, 8, 0},
		{"arrivals fall, busy floor", 6, 0.6 * base, scalingSample{Capacity: 1000, Busy: 6, Running: 8}, 1, 64, scalingLimit, 8, 0},
		{"arrivals fall, min floor", 1, 0.6 * base, scalingSample{Capacity: 1000, Busy: 1, Running: 8}, 7, 64, ScalingShrinkArrivals, 7, 0},
		{"idle", 1, base, scalingSample{Capacity: 1000, Busy: 1, Running: 8}, 1, 64, ScalingShrinkIdle, 6, 0},
		{"idle at min", 1, base, scalingSample{Capacity: 1000, Busy: 1, Running: 8}, 8, 64, scalingLimit, 8, 0},
		{"busy at the idle ratio", 4, base, scalingSample{Capacity: 1000, Busy: 4, Running: 8}, 1, 64, ScalingShrinkIdle, 6, 0},
		{"min raised", 5, base, scalingSample{Queued: 900, Capacity: 1000, Busy: 5, Running: 8}, 20, 64, ScalingMin, 20, 0},
		{"max lowered", 5, base, scalingSample{Queued: 900, Capacity: 1000, Busy: 5, Running: 8}, 1, 3, ScalingMax, 3, 0},
		{"max below min reads as min", 5, base, scalingSample{Capacity: 1000, Busy: 5, Running: 8}, 4, 2, ScalingMax, 4, 0},
		{"negative bounds read as 0", 5, base, scalingSample{Capacity: 1000, Busy: 5, Running: 8}, -5, -1, ScalingMax, 0, 0},
		{"negative counts read as 0", 1, base, scalingSample{Queued: -1, Capacity: 1000, ShardsWaiting: -1, Busy: -1, Running: -1}, 1, 64, ScalingShrinkIdle, 6, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := p
			if c.alpha != 0 {
				p.Alpha = c.alpha
			}
			s, now, arrivals := primed(t, p, target, base, c.busyPrime)
			x := c.x
			x.Now = now.Add(p.Interval)
			x.Arrivals = arrivals + uint64(c.rate*p.Interval.Seconds())
			d := s.Step(x, c.lo, c.hi)
			if d.Reason != c.want || d.Target != c.wantT || d.Previous != target {
				t.Fatalf("Step = %v %d->%d, want %v %d->%d", d.Reason, d.Previous, d.Target, c.want, target, c.wantT)
			}
			if d.At != x.Now || s.Target() != d.Target {
				t.Fatalf("decision %+v, scaler target %d", d, s.Target())
			}
			if d.Changed() != (c.wantT != target) {
				t.Fatalf("Changed() = %v", d.Changed())
			}
			if d.Changed() && s.Last() != d {
				t.Fatalf("Last() = %+v, want %+v", s.Last(), d)
			}
		})
	}
}

// Unless the workers are saturated, the arrival rule grows the target to at most
// GrowBusyCap × the busy average, rounded up, plus one;
// the queue and saturation rules are not capped, and GrowBusyCap 0 turns
// the cap off.
func TestGrowBusyCap(t *testing.T) {
	const target, base = 8, 100.0
	cases := []struct {
		name      string
		cap       float64
		busyPrime int // busy average, with Alpha = 1 also the sample's
		busy      int // Busy in the probe sample
		alpha     float64
		queued    int
		want      ScalingReason
		wantT     int
	}{
		{"well below: held", 1.25, 5, 5, 1, 1, scalingLimit, 8},     // ceil(6.25)+1 = 8
		{"partly capped", 1.25, 6, 6, 1, 1, ScalingGrowArrivals, 9}, // ceil(7.5)+1 = 9
		{"cap above the step", 1.25, 7, 7, 1, 1, ScalingGrowArrivals, 10},
		{"larger cap", 2, 5, 5, 1, 1, ScalingGrowArrivals, 10}, // 11 > 10
		{"cap off", 0, 2, 2, 1, 1, ScalingGrowArrivals, 10},
		// The average, 2 + 0.5 × (6 − 2) = 4, caps at 6; a momentary 6 busy
		// would have allowed 9.
		{"sample above the average", 1.25, 2, 6, 0.5, 1, scalingLimit, 8},
		{"average catches up", 1.25, 6, 6, 0.5, 1, ScalingGrowArrivals, 9},
		// Every worker busy at the sample, and on average 7.5 ≥ 0.9 × 8:
		// saturated, so the step (to 10) is not capped at 9.
		{"saturated", 1, 7, 8, 0.5, 1, ScalingGrowArrivals, 10},
		{"one worker idle", 1, 7, 7, 0.5, 1, scalingLimit, 8},
		// Every worker busy at the sample, but on average only 5: a
		// momentary stall, capped.
		{"momentary saturation", 1.25, 2, 8, 0.5, 1, scalingLimit, 8},
		{"queue rule not capped", 1.25, 2, 2, 1, 900, ScalingGrowQueue, 10},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := DefaultScalingPolicy()
			p.Alpha, p.GrowBusyCap = c.alpha, c.cap
			s, now, arrivals := primed(t, p, target, base, c.busyPrime)
			x := scalingSample{
				Now: now.Add(p.Interval), Arrivals: arrivals + uint64(4*base*p.Interval.Seconds()),
				Queued: c.queued, Capacity: 1000, ShardsWaiting: 1, Busy: c.busy, Running: target,
			}
			d := s.Step(x, 1, 64)
			if d.Reason != c.want || d.Target != c.wantT {
				t.Fatalf("Step = %v %d->%d, want %v %d->%d", d.Reason, d.Previous, d.Target, c.want, target, c.wantT)
			}
		})
	}
	// A saturated pool at the cap still grows: every worker busy.
	p := DefaultScalingPolicy()
	p.Alpha = 1
	s, now, arrivals := primed(t, p, target, base, target)
	x := scalingSample{Now: now.Add(p.Interval), Arrivals: arrivals + uint64(base*p.Interval.Seconds()),
		Queued: 3, Capacity: 1000, ShardsWaiting: 3, Busy: target, Running: target}
	if d := s.Step(x, 1, 64); d.Reason != ScalingGrowSaturated || d.Target != 10 {
		t.Fatalf("saturated: Step = %v %d->%d, want %v 8->10", d.Reason, d.Previous, d.Target, ScalingGrowSaturated)
	}
}

// Growth waits Cooldown after a change, a shrink waits ShrinkCooldown, and
// bounds apply inside either.
func TestCooldownAndBounds(t *testing.T) {
	p := DefaultScalingPolicy()
	p.Alpha = 1
	s, now, arrivals := primed(t, p, 8, 100, 5)
	step := func(queued, lo, hi int) ScalingDecision {
		now = now.Add(p.Interval)
		arrivals += 10
		return s.Step(scalingSample{Now: now, Arrivals: arrivals, Queued: queued, Capacity: 1000, Busy: 5, Running: s.Target()}, lo, hi)
	}
	want := func(d ScalingDecision, r ScalingReason, target int) {
		t.Helper()
		if d.Reason != r || d.Target != target {
			t.Fatalf("at +%v: %v %d, want %v %d", now.Sub(t0), d.Reason, d.Target, r, target)
		}
	}
	want(step(900, 1, 64), ScalingGrowQueue, 10)
	want(step(900, 1, 64), scalingCooldown, 10) // 100 ms after
	want(step(900, 12, 64), ScalingMin, 12)     // Tune inside the cooldown
	want(step(900, 1, 64), ScalingGrowQueue, 15)
	want(step(900, 1, 11), ScalingMax, 11) // Tune inside the cooldown
	// Busy 5 of 11 is at most ShrinkBusyRatio: idle enough to shrink, once
	// ShrinkCooldown has passed.
	for range ticks(p.ShrinkCooldown, p.Interval) - 2 {
		want(step(0, 1, 11), scalingCooldown, 11)
	}
	// Max applied at +0.5 s, the last grow was at +0.4 s: the shrink
	// cooldown counts from the grow.
	d := step(0, 1, 11)
	want(d, ScalingShrinkIdle, 9)
	if s.Last() != d {
		t.Fatalf("Last() = %+v, want %+v", s.Last(), d)
	}
}

// A sample that is not after the previous one changes no signal; bounds
// still apply.
func TestClockNotAdvancing(t *testing.T) {
	p := DefaultScalingPolicy()
	s, now, arrivals := primed(t, p, 8, 100, 5)
	rate := s.Rate()
	for _, at := range []time.Time{now, now.Add(-time.Second)} {
		d := s.Step(scalingSample{Now: at, Arrivals: arrivals + 1e6, Capacity: 1000, Busy: 5, Running: 8}, 1, 64)
		if d.Reason != scalingSteady || s.Rate() != rate {
			t.Fatalf("Step at %v: %v, rate %v, want steady at %v", at, d.Reason, s.Rate(), rate)
		}
	}
	if d := s.Step(scalingSample{Now: now, Arrivals: arrivals}, 10, 64); d.Reason != ScalingMin || d.Target != 10 {
		t.Fatalf("bounds with a stopped clock: %+v", d)
	}
}

// A counter that goes back counts as nothing arrived; a late tick weighs
// what the missed ticks would have weighed together.
func TestRateEdges(t *testing.T) {
	p := DefaultScalingPolicy()
	s, now, arrivals := primed(t, p, 8, 100, 5)
	s.Step(scalingSample{Now: now.Add(p.Interval), Arrivals: arrivals / 2, Busy: 5, Running: 8}, 1, 64)
	if want := 100 * (1 - p.Alpha); math.Abs(s.Rate()-want) > 1e-9 {
		t.Fatalf("rate after a counter restart = %v, want %v", s.Rate(), want)
	}

	s, now, arrivals = primed(t, p, 8, 100, 5)
	// Three intervals late, at 400/s over the gap.
	s.Step(scalingSample{Now: now.Add(3 * p.Interval), Arrivals: arrivals + 120, Busy: 5, Running: 8}, 1, 64)
	w := 1 - math.Pow(1-p.Alpha, 3)
	if want := 100 + w*(400-100); math.Abs(s.Rate()-want) > 1e-9 {
		t.Fatalf("rate after a late tick = %v, want %v", s.Rate(), want)
	}
}

// Whatever the samples and bounds, the target stays within the bounds of the
// step, and the decision says what the scaler holds.
func TestAlwaysWithinBounds(t *testing.T) {
	for seed := range uint64(50) {
		rng := rand.New(rand.NewPCG(seed, 7))
		p := randomPolicy(rng)
		s, err := newScalingEngine(p)
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		now, arrivals := t0, uint64(0)
		lo, hi := 0, 1
		for i := range 3000 {
			if i%97 == 0 {
				lo = rng.IntN(20) - 2
				hi = lo + rng.IntN(60) - 5
			}
			now = now.Add(time.Duration(rng.Int64N(int64(3 * p.Interval))))
			arrivals += uint64(rng.IntN(1000) * rng.IntN(2))
			x := scalingSample{
				Now: now, Arrivals: arrivals,
				Queued: rng.IntN(2000) - 10, Capacity: rng.IntN(2000) - 10,
				ShardsWaiting: rng.IntN(5) - 1, Busy: rng.IntN(70) - 1, Running: rng.IntN(70) - 1,
			}
			d := s.Step(x, lo, hi)
			wlo, whi := max(lo, 0), max(hi, lo, 0)
			if d.Target < wlo || d.Target > whi || d.Target != s.Target() {
				t.Fatalf("seed %d step %d: target %d (scaler %d) outside [%d, %d]: %+v", seed, i, d.Target, s.Target(), lo, hi, d)
			}
			rule := d.Reason >= ScalingGrowQueue && d.Reason <= ScalingShrinkIdle
			if (d.Changed() && d.Reason < ScalingStart) || (rule && !d.Changed()) {
				t.Fatalf("seed %d step %d: changed %v with reason %v", seed, i, d.Changed(), d.Reason)
			}
			if math.IsNaN(d.Rate) || math.IsNaN(d.Baseline) || d.Rate < 0 || d.Baseline < 0 {
				t.Fatalf("seed %d step %d: rate %v baseline %v", seed, i, d.Rate, d.Baseline)
			}
		}
	}
}

func randomPolicy(rng *rand.Rand) ScalingPolicy {
	p := DefaultScalingPolicy()
	p.Interval = time.Duration(1+rng.IntN(200)) * time.Millisecond
	p.Alpha = 0.01 + 0.99*rng.Float64()
	p.Window = p.Interval * time.Duration(1+rng.IntN(700))
	p.GrowStep = 0.01 + 2*rng.Float64()
	p.ShrinkStep = 0.01 + 0.9*rng.Float64()
	p.Cooldown = time.Duration(rng.IntN(5)) * p.Interval
	p.ShrinkCooldown = p.Cooldown + time.Duration(rng.IntN(20))*p.Interval
	return p
}

func TestStepDoesNotAllocate(t *testing.T) {
	s, now, arrivals := primed(t, DefaultScalingPolicy(), 8, 100, 5)
	x := scalingSample{Capacity: 1000, Busy: 5, Running: 8}
	allocs := testing.AllocsPerRun(1000, func() {
		now = now.Add(100 * time.Millisecond)
		arrivals += 10
		x.Now, x.Arrivals = now, arrivals
		s.Step(x, 1, 64)
	})
	if allocs != 0 {
		t.Fatalf("Step allocates %v times per call", allocs)
	}
}

func TestReasonString(t *testing.T) {
	seen := map[string]bool{}
	for r := ScalingNone; r <= ScalingMax; r++ {
		n := r.String()
		if n == "" || n == "unknown" || seen[n] {
			t.Errorf("Reason(%d).String() = %q", r, n)
		}
		seen[n] = true
	}
	if got := ScalingReason(200).String(); got != "unknown" {
		t.Errorf("Reason(200).String() = %q", got)
	}
}

// Any sequence of samples and bounds: no panic, target within bounds.
func FuzzStep(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})
	f.Add([]byte{0, 0, 255, 255, 1, 1, 0, 0, 200, 3, 3, 9, 9, 9})
	f.Fuzz(func(t *testing.T, b []byte) {
		p := DefaultScalingPolicy()
		if len(b) > 0 {
			p.Alpha = float64(b[0]%100+1) / 100
			p.Cooldown = time.Duration(b[0]%4) * p.Interval
			p.ShrinkCooldown = p.Cooldown * 3
		}
		s, err := newScalingEngine(p)
		if err != nil {
			t.Fatal(err)
		}
		now, arrivals := t0, uint64(0)
		for len(b) >= 8 {
			now = now.Add(time.Duration(int8(b[0])) * 10 * time.Millisecond)
			arrivals += uint64(b[1]) * 13
			if b[1] == 255 {
				arrivals = 0
			}
			lo, hi := int(int8(b[6]))/4, int(int8(b[7]))/2
			x := scalingSample{Now: now, Arrivals: arrivals, Queued: int(int8(b[2])) * 7, Capacity: int(int8(b[3])) * 9,
				ShardsWaiting: int(int8(b[4])), Busy: int(int8(b[5])), Running: int(int8(b[5] ^ b[4]))}
			d := s.Step(x, lo, hi)
			if d.Target < max(lo, 0) || d.Target > max(hi, lo, 0) || d.Target != s.Target() {
				t.Fatalf("target %d outside [%d, %d]", d.Target, lo, hi)
			}
			b = b[8:]
		}
	})
}
