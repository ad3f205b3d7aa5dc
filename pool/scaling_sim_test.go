package pool

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// sim is a fluid model of a pool: tasks of a fixed service time arrive at
// an offered rate, workers serve Interval seconds of work each per tick, the
// rest waits. Without reactive, the workers are the scaler's target, so the
// scaler alone must keep up (the harder case). With reactive, workers start
// on demand up to max, as in shoal's pool, and the target is the count kept
// warm.
type sim struct {
	t        testing.TB
	s        *scalingEngine
	p        ScalingPolicy
	rng      *rand.Rand
	now      time.Time
	arrivals uint64
	backlog  float64 // seconds of work waiting
	service  float64 // seconds per task
	shards   int
	capacity int
	lo, hi   int
	reactive bool
	running  int
	changes  int // decisions that moved the target, after the first
	last     ScalingDecision
}

func newSim(t testing.TB, p ScalingPolicy, lo, hi int, reactive bool, service time.Duration, seed uint64) *sim {
	t.Helper()
	s, err := newScalingEngine(p)
	if err != nil {
		t.Fatalf("NewScaler: %v", err)
	}
	m := &sim{
		t: t, s: s, p: p,
		rng:      rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		now:      time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		service:  service.Seconds(),
		shards:   1024,
		capacity: 1024 * 64,
		lo:       lo, hi: hi,
		reactive: reactive,
	}
	m.last = s.Step(m.sample(0, 0), lo, hi)
	return m
}

func (m *sim) sample(queued float64, busy int) scalingSample {
	q := int(math.Ceil(queued - 1e-9))
	return scalingSample{
		Now: m.now, Arrivals: m.arrivals,
		Queued: q, Capacity: m.capacity, ShardsWaiting: min(q, m.shards),
		Busy: busy, Running: max(m.running, m.s.Target()),
	}
}

// tick advances one interval at the offered rate (tasks per second), each
// tick's count drawn uniformly within ±noise of the mean and rounded at
// random, and returns the decision.
func (m *sim) tick(rate, noise float64) ScalingDecision {
	iv := m.p.Interval.Seconds()
	mean := rate * iv * (1 + noise*(2*m.rng.Float64()-1))
	n := math.Floor(mean)
	if m.rng.Float64() < mean-n {
		n++
	}
	m.arrivals += uint64(n)
	m.now = m.now.Add(m.p.Interval)

	work := m.backlog + n*m.service
	workers := m.s.Target()
	if m.reactive {
		workers = m.hi
	}
	served := min(work, float64(workers)*iv)
	m.backlog = work - served
	busy := int(math.Round(served / iv))
	if m.backlog > 0 {
		busy = workers
	}
	m.running = busy
	d := m.s.Step(m.sample(m.backlog/m.service, busy), m.lo, m.hi)
	m.check(d)
	if d.Changed() {
		m.changes++
	}
	m.last = d
	return d
}

func (m *sim) check(d ScalingDecision) {
	m.t.Helper()
	if d.Target < m.lo || d.Target > m.hi {
		m.t.Fatalf("at %v target %d outside [%d, %d] (%v)", m.now, d.Target, m.lo, m.hi, d.Reason)
	}
	if d.Target != m.s.Target() {
		m.t.Fatalf("decision target %d, scaler target %d", d.Target, m.s.Target())
	}
}

// growSteps is the number of growth decisions from lo to hi under p.
func growSteps(p ScalingPolicy, lo, hi int) int {
	k := 0
	for t := lo; t < hi; k++ {
		t += max(1, int(math.Ceil(float64(t)*p.GrowStep)))
	}
	return k
}

// growTicks bounds the ticks a saturated pool without on-demand workers
// takes from lo to hi: each step waits for the cooldown and for the busy
// average, which starts at the old target t, to reach SaturationRatio of the
// new one t': t' − (t' − t)(1 − α)^k ≥ r t'.
func growTicks(p ScalingPolicy, lo, hi int) int {
	cool := max(1, ticks(p.Cooldown, p.Interval))
	n := 0
	for t := lo; t < hi; {
		next := min(hi, t+max(1, int(math.Ceil(float64(t)*p.GrowStep))))
		x := (1 - p.SaturationRatio) * float64(next) / float64(next-t)
		k := 0
		if x < 1 {
			k = int(math.Ceil(math.Log(x) / math.Log(1-p.Alpha)))
		}
		n += max(cool, k)
		t = next
	}
	return n
}

// shrinkSteps is the number of shrink decisions from hi to lo under p.
func shrinkSteps(p ScalingPolicy, lo, hi int) int {
	k := 0
	for t := hi; t > lo; k++ {
		t -= max(1, int(math.Ceil(float64(t)*p.ShrinkStep)))
	}
	return k
}

func ticks(d, interval time.Duration) int {
	return int((d + interval - 1) / interval)
}

type simCase struct {
	name     string
	p        ScalingPolicy
	lo, hi   int
	reactive bool
}

func simCases() []simCase {
	d := DefaultScalingPolicy()
	fast := d
	fast.Cooldown, fast.ShrinkCooldown = 0, 0
	slow := d
	slow.GrowStep, slow.ShrinkStep = 0.05, 0.05
	slow.Cooldown, slow.ShrinkCooldown = 500*time.Millisecond, 2*time.Second
	smooth := d
	smooth.Alpha = 0.05
	short := d
	short.Interval, short.Window = 10*time.Millisecond, 2*time.Second
	short.Cooldown, short.ShrinkCooldown = 20*time.Millisecond, 100*time.Millisecond
	cases := []simCase{
		{"default 1..64", d, 1, 64, false},
		{"default 0..8", d, 0, 8, false},
		{"default 4..1000", d, 4, 1000, false},
		{"no cooldown 1..64", fast, 1, 64, false},
		{"small steps 2..40", slow, 2, 40, false},
		{"alpha 0.05 1..64", smooth, 1, 64, false},
		{"10ms interval 1..128", short, 1, 128, false},
	}
	for _, c := range cases[:len(cases):len(cases)] {
		c.name += " reactive"
		c.reactive = true
		cases = append(cases, c)
	}
	return cases
}

// A step from idle to an offered load twice what max workers can serve: the
// target reaches max after the growth decisions needed, each one cooldown
// after the last or once the busy average has caught up (plus two ticks for
// the first signal).
func TestRampToMax(t *testing.T) {
	for _, c := range simCases() {
		t.Run(c.name, func(t *testing.T) {
			service := 5 * time.Millisecond
			m := newSim(t, c.p, c.lo, c.hi, c.reactive, service, 1)
			for range ticks(5*time.Second, c.p.Interval) {
				m.tick(0, 0)
			}
			saturate := 2 * float64(c.hi) / service.Seconds()
			bound := growTicks(c.p, c.lo, c.hi) + 2
			n := 0
			for m.s.Target() < c.hi {
				if n++; n > bound {
					t.Fatalf("target %d after %d ticks, want max %d within %d", m.s.Target(), n-1, c.hi, bound)
				}
				m.tick(saturate, 0.2)
			}
			t.Logf("reached %d in %d ticks (bound %d)", c.hi, n, bound)
		})
	}
}

// A linear ramp over 20 s from idle to twice what max workers can serve:
// max is reached no later than a step to full load would reach it, counted
// from the moment the ramp saturates max workers.
func TestGradualRampToMax(t *testing.T) {
	for _, c := range simCases() {
		t.Run(c.name, func(t *testing.T) {
			service := 5 * time.Millisecond
			m := newSim(t, c.p, c.lo, c.hi, c.reactive, service, 2)
			full := 2 * float64(c.hi) / service.Seconds()
			n := ticks(20*time.Second, c.p.Interval)
			reached := -1
			for i := range n {
				m.tick(full*float64(i)/float64(n), 0.2)
				if reached < 0 && m.s.Target() == c.hi {
					reached = i
				}
			}
			// Max workers are saturated half way through the ramp.
			bound := n/2 + growTicks(c.p, c.lo, c.hi) + 2
			if reached < 0 || reached > bound {
				t.Fatalf("reached max at tick %d, want by %d", reached, bound)
			}
		})
	}
}

// After saturation, sustained idleness brings the target back to min: the
// busy average decays below half a worker, then one shrink per ShrinkCooldown.
func TestIdleReturnsToMin(t *testing.T) {
	for _, c := range simCases() {
		t.Run(c.name, func(t *testing.T) {
			service := 5 * time.Millisecond
			m := newSim(t, c.p, c.lo, c.hi, c.reactive, service, 3)
			for range ticks(10*time.Second, c.p.Interval) + 4*growSteps(c.p, c.lo, c.hi) {
				m.tick(2*float64(c.hi)/service.Seconds(), 0.2)
			}
			if m.s.Target() != c.hi {
				t.Fatalf("target %d after saturation, want %d", m.s.Target(), c.hi)
			}
			// Drain the backlog at zero arrivals, then count.
			for m.backlog > 0 {
				m.tick(0, 0)
			}
			decay := int(math.Ceil(math.Log(0.4/(float64(c.hi)*c.p.Headroom)) / math.Log(1-c.p.Alpha)))
			// The busy peak leaves the stabilisation window one ShrinkCooldown
			// after the busy average has decayed.
			bound := decay + ticks(c.p.ShrinkCooldown, c.p.Interval) + shrinkSteps(c.p, c.lo, c.hi)*max(1, ticks(c.p.ShrinkCooldown, c.p.Interval)) + 2
			n := 0
			for m.s.Target() > c.lo {
				if n++; n > bound {
					t.Fatalf("target %d after %d idle ticks, want min %d within %d", m.s.Target(), n-1, c.lo, bound)
				}
				m.tick(0, 0)
			}
			t.Logf("back to %d in %d ticks (bound %d)", c.lo, n, bound)
		})
	}
}

// A steady load with ±30 % noise per tick, after the first 30 s of finding
// its level, moves the target at most twice in ten minutes, and the workers
// serve the load (little backlog).
func TestSteadyNoisyLoadDoesNotOscillate(t *testing.T) {
	for _, c := range simCases() {
		for _, seed := range []uint64{1, 2, 3, 4, 5} {
			service := 4 * time.Millisecond
			// Offered load that needs ~40 % of max workers, at least 2.
			need := max(2, 0.4*float64(c.hi))
			rate := need / service.Seconds()
			m := newSim(t, c.p, c.lo, c.hi, c.reactive, service, seed)
			for range ticks(30*time.Second, c.p.Interval) {
				m.tick(rate, 0.3)
			}
			m.changes = 0
			maxBacklog := 0.0
			for range ticks(10*time.Minute, c.p.Interval) {
				m.tick(rate, 0.3)
				maxBacklog = max(maxBacklog, m.backlog)
			}
			if m.changes > 2 {
				t.Errorf("%s seed %d: %d target changes in 10 min of steady load, want <= 2 (target %d)",
					c.name, seed, m.changes, m.s.Target())
			}
			// Without a reactive path the target must cover the need; with
			// one, it keeps warm at least the workers steadily in use.
			want := need
			if c.reactive {
				want = math.Floor(need)
			}
			if got := float64(m.s.Target()); got < want {
				t.Errorf("%s seed %d: target %v below %v (need %v)", c.name, seed, got, want, need)
			}
			if lim := 2 * c.p.Interval.Seconds() * float64(m.s.Target()); maxBacklog > lim {
				t.Errorf("%s seed %d: backlog reached %.3f s of work, want <= %.3f", c.name, seed, maxBacklog, lim)
			}
		}
	}
}
