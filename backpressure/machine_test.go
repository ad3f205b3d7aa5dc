package backpressure

import (
	"errors"
	"math"
	"math/rand/v2"
	"runtime/debug"
	"runtime/metrics"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// refMachine is a reference implementation of the transition table in the
// package documentation, written from the documentation alone:
//
//	Normal    Throttle at ≥ Throttle or on a second signal; Reject at ≥ Reject
//	Throttle  Normal below Resume with no second signal; Reject at ≥ Reject
//	Reject    Probe after pressure stayed below Recover for the hold time
//	Probe     Reject at ≥ Reject; after a hold time in Probe below Recover:
//	          Throttle (≥ Throttle or a second signal) or Normal
//
// Second signals: the GC's share of CPU over a full window above the bound
// (the throttle rate then shrinks with the share), and the goroutine ceiling
// (nothing admitted). The throttle rate is WithThrottleRate at the throttle
// threshold, falling linearly to zero at the reject threshold.
type refMachine struct {
	state      State
	enteredAt  time.Duration
	runBelow   bool          // pressure has been below Recover since runStart
	runStart   time.Duration // first sample of the current run below Recover
	windowOpen bool
	windowAt   time.Duration
	windowGC   float64
	windowCPU  float64
	share      float64
}

type refOut struct {
	state     State
	pressure  float64
	secondary bool
	rate      float64
	share     float64
}

func (r *refMachine) sample(c *config, now time.Duration, rd Reading, n int64) refOut {
	th := c.thresholds
	var o refOut
	if c.budget > 0 {
		o.pressure = (float64(rd.Used) + float64(n)*float64(c.bytesPerTask)) / float64(c.budget)
	}

	// The GC's share over the last full window.
	if !r.windowOpen {
		r.windowOpen, r.windowAt, r.windowGC, r.windowCPU = true, now, rd.GCCPUSeconds, rd.TotalCPUSeconds
	} else if now-r.windowAt >= c.gcWindow {
		r.share = 0
		if cpu := rd.TotalCPUSeconds - r.windowCPU; cpu > 0 {
			r.share = math.Min(math.Max((rd.GCCPUSeconds-r.windowGC)/cpu, 0), 1)
		}
		r.windowAt, r.windowGC, r.windowCPU = now, rd.GCCPUSeconds, rd.TotalCPUSeconds
	}
	o.share = r.share

	gcHigh := r.share > c.gcBound
	ceiling := c.maxGoroutines > 0 && rd.Goroutines >= c.maxGoroutines
	o.secondary = gcHigh || ceiling

	switch {
	case o.pressure >= th.Reject:
		o.rate = 0
	case o.pressure > th.Throttle:
		o.rate = c.throttleRate * (th.Reject - o.pressure) / (th.Reject - th.Throttle)
	default:
		o.rate = c.throttleRate
	}
	if gcHigh {
		o.rate *= (1 - r.share) / (1 - c.gcBound)
	}
	if ceiling {
		o.rate = 0
	}

	if o.pressure < th.Recover {
		if !r.runBelow {
			r.runBelow, r.runStart = true, now
		}
	} else {
		r.runBelow = false
	}
	// heldBelowSince: pressure has been below Recover for the hold time,
	// counting only the part of the run after t.
	heldBelowSince := func(t time.Duration) bool {
		return r.runBelow && now-max(r.runStart, t) >= c.hold
	}
	next := r.state
	switch r.state {
	case Normal:
		switch {
		case o.pressure >= th.Reject:
			next = Reject
		case o.pressure >= th.Throttle || o.secondary:
			next = Throttle
		}
	case Throttle:
		switch {
		case o.pressure >= th.Reject:
			next = Reject
		case o.pressure < th.Resume && !o.secondary:
			next = Normal
		}
	case Reject:
		if heldBelowSince(r.enteredAt) {
			next = Probe
		}
	case Probe:
		switch {
		case o.pressure >= th.Reject:
			next = Reject
		case heldBelowSince(r.enteredAt):
			next = Normal
			if o.pressure >= th.Throttle || o.secondary {
				next = Throttle
			}
		}
	}
	if next != r.state {
		r.state, r.enteredAt = next, now
	}
	o.state = r.state
	return o
}

// bytesIn hands out bytes of a fuzz input, zero once it runs out.
type bytesIn struct{ b []byte }

func (in *bytesIn) byte() byte {
	if len(in.b) == 0 {
		return 0
	}
	v := in.b[0]
	in.b = in.b[1:]
	return v
}

func (in *bytesIn) u16() uint16 { return uint16(in.byte())<<8 | uint16(in.byte()) }

// thresholdsFrom builds valid thresholds from four bytes, or the defaults.
func thresholdsFrom(in *bytesIn) Thresholds {
	v := []float64{float64(in.u16()%1000+1) / 1000, float64(in.u16()%1000+1) / 1000, float64(in.u16()%1000+1) / 1000}
	sort.Float64s(v)
	t := Thresholds{Resume: v[0], Throttle: v[1], Reject: v[2]}
	if t.Throttle >= t.Reject {
		return DefaultThresholds()
	}
	if k := in.byte(); k < 128 {
		t.Recover = t.Reject * float64(k+1) / 129
	} else {
		t.Recover = t.Resume // the lower levels may coincide
	}
	if t.validate() != nil {
		return DefaultThresholds()
	}
	return t
}

// configFrom builds a machine configuration from a fuzz input.
func configFrom(in *bytesIn) config {
	c := defaultConfig()
	c.thresholds = thresholdsFrom(in)
	c.hold = []time.Duration{0, time.Millisecond, 50 * time.Millisecond, time.Second}[in.byte()%4]
	c.gcBound = float64(in.byte()%100+1) / 100
	c.gcWindow = time.Duration(in.byte()%50+1) * 10 * time.Millisecond
	if k := in.byte(); k%3 != 0 {
		c.maxGoroutines = int64(k) * 10
	}
	c.throttleRate = float64(in.u16()%20000 + 1)
	c.bytesPerTask = int64(in.u16()%4096 + 1)
	if k := in.u16(); k%8 != 0 {
		c.budget = int64(k)*64 + 1
	}
	return c
}

// usedFrom picks a measured use: near one of the thresholds (exactly on it,
// or a byte either side) most of the time, anywhere up to 1.25 × budget
// otherwise.
func usedFrom(in *bytesIn, c *config, n int64) int64 {
	k := in.byte()
	reservation := n * c.bytesPerTask
	if c.budget == 0 {
		return int64(k) << 20
	}
	th := c.thresholds
	levels := []float64{th.Throttle, th.Resume, th.Reject, th.Recover}
	if k < 192 {
		at := int64(math.Ceil(levels[k%4] * float64(c.budget)))
		return max(at+int64(k/4%3)-1-reservation, 0)
	}
	return int64(in.u16()) * c.budget * 5 / 4 / 65535
}

// checkMachineAgainstModel runs the machine and the reference side by side
// on the steps that data describes and fails at the first disagreement.
func checkMachineAgainstModel(t *testing.T, data []byte) {
	in := &bytesIn{data}
	c := configFrom(in)
	var m machine
	m.init()
	var ref refMachine
	var now time.Duration
	var rd Reading
	for step := 0; len(in.b) > 0; step++ {
		// Now and then, a hot update of the thresholds.
		if k := in.byte(); k >= 240 {
			c.thresholds = thresholdsFrom(in)
		}
		switch k := in.byte(); {
		case k < 64:
			now += time.Duration(k) * time.Millisecond
		case k < 128:
			now += time.Duration(k-64) * 25 * time.Millisecond
		case k < 160: // same instant
		default:
			now += c.hold // exactly a hold time
		}
		n := int64(in.byte() % 16)
		rd.Used = usedFrom(in, &c, n)
		g := in.byte()
		rd.Goroutines = int64(g) * 10
		if g%7 == 0 && c.maxGoroutines > 0 {
			rd.Goroutines = c.maxGoroutines // exactly at the ceiling
		}
		cpu := float64(in.byte()) / 100
		rd.TotalCPUSeconds += cpu
		rd.GCCPUSeconds += cpu * float64(in.byte()%101) / 100

		prev := m.state
		got := m.observe(&c, now, rd, n, true)
		from, to, changed := m.step(&c, now, got)
		want := ref.sample(&c, now, rd, n)

		where := func() string {
			return "step " + strconv.Itoa(step) + " at " + now.String()
		}
		if from != prev || to != m.state || changed != (from != to) {
			t.Fatalf("%s: step returned (%v, %v, %v) from %v, now %v", where(), from, to, changed, prev, m.state)
		}
		if to != want.state {
			t.Fatalf("%s: %v → %v, model says %v (pressure %.6f, second signal %v, thresholds %+v, hold %v, n %d, used %d, budget %d)",
				where(), from, to, want.state, want.pressure, want.secondary, c.thresholds, c.hold, n, rd.Used, c.budget)
		}
		if got.pressure != want.pressure && math.Abs(got.pressure-want.pressure) > 1e-12 {
			t.Fatalf("%s: pressure %v, model %v", where(), got.pressure, want.pressure)
		}
		if got.secondary != want.secondary {
			t.Fatalf("%s: second signal %v, model %v (GC share %v bound %v, goroutines %d ceiling %d)",
				where(), got.secondary, want.secondary, want.share, c.gcBound, rd.Goroutines, c.maxGoroutines)
		}
		if m.gcShare != want.share {
			t.Fatalf("%s: GC share %v, model %v", where(), m.gcShare, want.share)
		}
		if d := math.Abs(got.rate - want.rate); d > 1e-9*c.throttleRate || (got.rate == 0) != (want.rate == 0) || got.rate < 0 {
			t.Fatalf("%s: rate %v, model %v (pressure %v)", where(), got.rate, want.rate, want.pressure)
		}
	}
}

// TestMachineMatchesDocumentedTable drives the state machine and the
// reference model of the documented table with random readings, in-flight
// counts, times and threshold updates, and compares them after every sample.
func TestMachineMatchesDocumentedTable(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 3000 {
		data := make([]byte, 32+r.IntN(600))
		for i := range data {
			data[i] = byte(r.UintN(256))
		}
		checkMachineAgainstModel(t, data)
	}
}

// FuzzMachineAgainstModel is TestMachineMatchesDocumentedTable's comparison
// as a fuzz target.
func FuzzMachineAgainstModel(f *testing.F) {
	// Defaults, a hold of 1 s: up to Reject, a hold below Recover, Probe,
	// another hold, Throttle, below Resume.
	f.Add([]byte{
		0, 0, 0, 0, 0, 0, 0, 3, 50, 0, 0, 0, 0, 0, 0,
		0, 10, 0, 2, 0, 1, 0,
		0, 200, 0, 2, 0, 1, 0,
		0, 255, 0, 1, 0, 1, 0,
		0, 255, 0, 3, 0, 1, 0,
		0, 255, 0, 0, 0, 1, 0,
		0, 10, 0, 1, 0, 1, 0,
	})
	// The goroutine ceiling and a GC spiral.
	f.Add([]byte{
		1, 2, 3, 4, 5, 6, 7, 1, 10, 5, 7, 1, 0, 0, 100,
		0, 10, 3, 200, 7, 100, 90,
		0, 100, 3, 200, 1, 100, 90,
		0, 100, 3, 200, 1, 100, 0,
		0, 200, 3, 200, 1, 100, 0,
	})
	// Hold zero, a hot update, the same instant.
	f.Add([]byte{
		10, 20, 30, 40, 50, 60, 70, 0, 20, 20, 0, 3, 3, 9, 9,
		0, 150, 2, 2, 1, 1, 1,
		0, 150, 2, 1, 1, 1, 1,
		250, 9, 9, 9, 9, 9, 9, 100, 150, 2, 1, 1, 1, 1,
		0, 150, 2, 0, 1, 1, 1,
	})
	f.Fuzz(func(t *testing.T, data []byte) {
		checkMachineAgainstModel(t, data)
	})
}

// admitMatch tells which refusal an Admit gave.
func refusal(err error) (*RejectError, bool) {
	var re *RejectError
	return re, errors.As(err, &re)
}

// TestRetryAfterIsNeverZero: every refusal's RetryAfter is a positive wait,
// in every state, including Reject with WithHold(0): a hint of zero tells a
// client to retry at once, which only spins, since nothing can change before
// the next sample.
func TestRetryAfterIsNeverZero(t *testing.T) {
	for _, hold := range []time.Duration{0, time.Second} {
		synctest.Test(t, func(t *testing.T) {
			b, src := newFake(t, 100, WithHold(hold), WithMaxGoroutines(1000))
			counted(t, b) // nothing in flight
			check := func(what string, err error, state State) {
				t.Helper()
				re, ok := refusal(err)
				if !ok {
					t.Fatalf("hold %v, %s: Admit = %v, want a *RejectError", hold, what, err)
				}
				if re.State != state || re.RetryAfter <= 0 {
					t.Fatalf("hold %v, %s: %+v, want state %v and a positive RetryAfter", hold, what, *re, state)
				}
			}
			// Reject.
			check("Reject", sample(b, src, 950), Reject)
			// Throttle at the goroutine ceiling (rate 0).
			src.update(func(r *Reading) { r.Used, r.Goroutines = 100, 1000 })
			time.Sleep(2*hold + 100*time.Millisecond) // Reject → Probe → Throttle
			check("Throttle at the goroutine ceiling", sample(b, src, 100), Throttle)
		})
	}
}

// TestThrottleWithNoRoomForcesGC: in Throttle with measured use within one
// task's reservation of the reject level, no task fits and every Admit is
// refused with ErrMemoryPressure, as in Reject; garbage must not hold that
// shut either, so the background sampler forces a GC as it does in Reject.
func TestThrottleWithNoRoomForcesGC(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := []metrics.Sample{{Name: "/gc/cycles/forced:gc-cycles"}}
		forced := func() uint64 { metrics.Read(s); return s[0].Value.Uint64() }
		// Reject at 920 of 1000; 900 used and 64 bytes a task: no room.
		b, src := newFake(t, 100, WithBytesPerTask(64))
		if err := b.SetInFlightFunc(func() int64 { return 0 }); err != nil {
			t.Fatal(err)
		}
		err := sample(b, src, 900)
		wantState(t, b, Throttle)
		if !errors.Is(err, ErrMemoryPressure) {
			t.Fatalf("Admit in Throttle with no room = %v, want ErrMemoryPressure", err)
		}
		n0 := forced()
		time.Sleep(3050 * time.Millisecond)
		synctest.Wait()
		wantState(t, b, Throttle)
		if n := forced() - n0; n < 2 {
			t.Fatalf("forced GCs in 3 s of refusing everything = %d, want one a second", n)
		}
	})
}

// recordingSource is a fakeSource that records every Read: when, what, the
// in-flight count and the configuration the breaker samples by.
type recordingSource struct {
	fakeSource
	b        *Breaker
	inflight *atomic.Int64
	reads    []recordedRead
}

type recordedRead struct {
	at time.Time
	r  Reading
	n  int64
	c  *config
}

func (s *recordingSource) Read(r *Reading) {
	s.fakeSource.Read(r)
	rec := recordedRead{at: time.Now(), r: *r, n: s.inflight.Load()}
	if s.b != nil {
		rec.c = s.b.cfg.Load()
	}
	s.reads = append(s.reads, rec)
}

// TestBreakerFollowsDocumentedTable drives a whole Breaker (inline samples,
// the background sampler, hot updates of the thresholds and the budget) with random
// readings, in-flight counts and pauses, replays every sample it took into
// the reference model, and compares the states; every refusal must match the
// state's sentinel and carry a positive RetryAfter.
func TestBreakerFollowsDocumentedTable(t *testing.T) {
	for seed := range uint64(20) {
		synctest.Test(t, func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 7))
			var inflight atomic.Int64
			src := &recordingSource{inflight: &inflight}
			src.r = Reading{Used: 100}
			hold := []time.Duration{0, 30 * time.Millisecond, 200 * time.Millisecond}[r.IntN(3)]
			b, err := NewBreaker(WithSource(src), WithBudget(budget), WithHold(hold), WithMaxGoroutines(1000),
				WithGCCPUBound(0.5, 100*time.Millisecond), WithBytesPerTask(10))
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			// The first Read checks the budget; the second is the first
			// sample, taken before src.b was set.
			src.reads = src.reads[1:]
			for i := range src.reads {
				src.reads[i].c = b.cfg.Load()
			}
			src.b = b
			if err := b.SetInFlightFunc(inflight.Load); err != nil {
				t.Fatal(err)
			}
			var ref refMachine
			var entered [numStates]uint64
			replayed := 0
			for step := range 300 {
				if r.IntN(20) == 0 {
					in := &bytesIn{[]byte{byte(r.UintN(256)), byte(r.UintN(256)), byte(r.UintN(256)), byte(r.UintN(256)), byte(r.UintN(256)), byte(r.UintN(256)), byte(r.UintN(256))}}
					if err := b.SetThresholds(thresholdsFrom(in)); err != nil {
						t.Fatal(err)
					}
				}
				if r.IntN(20) == 0 {
					if err := b.SetBudget(int64(1000 + r.IntN(1000))); err != nil {
						t.Fatal(err)
					}
				}
				inflight.Store(int64(r.IntN(8)))
				src.update(func(rd *Reading) {
					rd.Used = int64(r.IntN(1000))
					if r.IntN(10) == 0 {
						rd.Goroutines = int64(900 + r.IntN(200))
					} else {
						rd.Goroutines = 10
					}
					cpu := r.Float64()
					rd.TotalCPUSeconds += cpu
					rd.GCCPUSeconds += cpu * r.Float64()
				})
				time.Sleep(time.Duration(r.IntN(60)) * time.Millisecond)
				synctest.Wait()
				err := b.Admit()
				synctest.Wait()
				var last refOut
				for _, rec := range src.reads[replayed:] {
					prev := ref.state
					last = ref.sample(rec.c, rec.at.Sub(b.epoch), rec.r, rec.n)
					if ref.state != prev {
						entered[ref.state]++
					}
				}
				if len(src.reads) > replayed {
					if st := b.Stats(); st.Entered != entered || st.Pressure != last.pressure || st.GCCPUShare != last.share {
						t.Fatalf("seed %d step %d: Stats %+v, model entered %v pressure %v GC share %v", seed, step, st, entered, last.pressure, last.share)
					}
				}
				replayed = len(src.reads)
				st := b.State()
				if st != ref.state {
					t.Fatalf("seed %d step %d: State %v, model %v (pressure %.3f, second signal %v, hold %v)",
						seed, step, st, ref.state, last.pressure, last.secondary, hold)
				}
				if err == nil {
					if st == Reject {
						t.Fatalf("seed %d step %d: admitted in Reject", seed, step)
					}
					continue
				}
				re, ok := refusal(err)
				if !ok || re.RetryAfter <= 0 {
					t.Fatalf("seed %d step %d: Admit in %v = %v, want a *RejectError with a positive RetryAfter", seed, step, st, err)
				}
				if st == Reject && !errors.Is(err, ErrMemoryPressure) {
					t.Fatalf("seed %d step %d: Admit in Reject = %v", seed, step, err)
				}
			}
		})
	}
}

// TestHotUpdateErrorsNameTheFault: SetThresholds and SetBudget with invalid
// values return ErrInvalidConfig with a message that names what is wrong,
// change nothing, and never panic, also after Close.
func TestHotUpdateErrorsNameTheFault(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, _ := newFake(t, 500)
		before := b.cfg.Load()
		for _, tc := range []struct {
			th   Thresholds
			says string
		}{
			{Thresholds{}, "each must be in (0, 1]"},
			{Thresholds{Throttle: math.Inf(1), Resume: 0.4, Reject: 0.9, Recover: 0.8}, "each must be in (0, 1]"},
			{Thresholds{Throttle: 0.5, Resume: 0.4, Reject: math.NaN(), Recover: 0.8}, "each must be in (0, 1]"},
			{Thresholds{Throttle: 0.5, Resume: 0.6, Reject: 0.9, Recover: 0.8}, "Resume must not exceed Throttle"},
			{Thresholds{Throttle: 0.9, Resume: 0.5, Reject: 0.9, Recover: 0.8}, "Throttle must be below Reject"},
			{Thresholds{Throttle: 0.5, Resume: 0.4, Reject: 0.9, Recover: 0.9}, "Recover must be below Reject"},
		} {
			err := b.SetThresholds(tc.th)
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("SetThresholds(%+v) = %v, want ErrInvalidConfig saying %q", tc.th, err, tc.says)
			}
		}
		for _, tc := range []struct {
			bytes int64
			says  string
		}{
			{0, "must be positive"},
			{-1, "must be positive"},
			{math.MinInt64, "must be positive"},
			{500, "not above current use 500 bytes"},
			{499, "not above current use 500 bytes"},
		} {
			err := b.SetBudget(tc.bytes)
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("SetBudget(%d) = %v, want ErrInvalidConfig saying %q", tc.bytes, err, tc.says)
			}
		}
		if b.cfg.Load() != before {
			t.Fatal("an invalid hot update changed the configuration")
		}
		_ = b.Close()
		if err := b.SetThresholds(Thresholds{}); !errors.Is(err, ErrInvalidConfig) {
			t.Fatalf("SetThresholds(invalid) after Close = %v", err)
		}
		if err := b.SetThresholds(DefaultThresholds()); !errors.Is(err, ErrClosed) {
			t.Fatalf("SetThresholds after Close = %v, want ErrClosed", err)
		}
		if err := b.SetBudget(2000); !errors.Is(err, ErrClosed) {
			t.Fatalf("SetBudget after Close = %v, want ErrClosed", err)
		}
	})
}

// TestNoBudgetSecondSignalsStillThrottle: without a budget, pressure stays
// zero, so memory never moves the breaker out of Normal; the second signals
// still do, as the documentation says.
func TestNoBudgetSecondSignalsStillThrottle(t *testing.T) {
	if debug.SetMemoryLimit(-1) != math.MaxInt64 {
		t.Skip("GOMEMLIMIT is set")
	}
	synctest.Test(t, func(t *testing.T) {
		src := &fakeSource{r: Reading{Used: 1 << 40, Goroutines: 10}}
		b, err := NewBreaker(WithSource(src), WithRoot(t.TempDir()), WithMaxGoroutines(10))
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		time.Sleep(3 * time.Millisecond)
		if err := b.Admit(); !errors.Is(err, ErrThrottled) {
			t.Fatalf("Admit at the goroutine ceiling without a budget = %v, want ErrThrottled", err)
		}
		if st := b.Stats(); st.Source != BudgetNone || st.State != Throttle {
			t.Fatalf("Stats = %+v, want no budget, Throttle", st)
		}
	})
}

// TestRejectRetryAfterCountsTheHoldAlreadyServed: RetryAfter is documented as
// the earliest time at which a retry may succeed. In Reject, once pressure
// has been below Recover for most of the hold time, that is the rest of the
// hold, not a whole hold: a client told 1 s when Probe opens in 100 ms waits
// ten times longer than it needs to.
func TestRejectRetryAfterCountsTheHoldAlreadyServed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, src := newFake(t, 100)
		_ = sample(b, src, 950)
		wantState(t, b, Reject)
		src.setUsed(500)
		time.Sleep(900 * time.Millisecond)
		synctest.Wait()
		err := sample(b, src, 500)
		wantState(t, b, Reject)
		re, ok := refusal(err)
		if !ok || !errors.Is(err, ErrMemoryPressure) {
			t.Fatalf("Admit in Reject = %v", err)
		}
		if re.RetryAfter > 150*time.Millisecond || re.RetryAfter <= 0 {
			t.Fatalf("RetryAfter = %v with ~900 ms of the 1 s hold served, want the rest (~100 ms)", re.RetryAfter)
		}
		time.Sleep(re.RetryAfter)
		synctest.Wait()
		if err := b.Admit(); err != nil {
			t.Fatalf("Admit after RetryAfter = %v, want admitted (Probe)", err)
		}
	})
}

// TestProbeAdmitsNoFasterThanThrottleUnderGCSpiral: the second signals lift
// the state to at least Throttle, and with the GC's share above its bound
// Throttle's rate shrinks with the share. Probe, the way out of Reject,
// honours the goroutine ceiling; it must honour the shrunk rate too, and not
// admit its full trickle while Throttle would admit far less.
func TestProbeAdmitsNoFasterThanThrottleUnderGCSpiral(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Throttle: 50/s, × (1 − 0.9) / (1 − 0.5) = 10/s at 90 % GC.
		b, src := newFake(t, 100, WithThrottleRate(50, 1), WithGCCPUBound(0.5, 100*time.Millisecond))
		spiral := func(d time.Duration, admit bool) (admitted int) {
			for range d / time.Millisecond {
				src.update(func(r *Reading) { r.TotalCPUSeconds += 0.001; r.GCCPUSeconds += 0.0009 })
				if admit && b.Admit() == nil {
					admitted++
				}
				time.Sleep(time.Millisecond)
			}
			return admitted
		}
		_ = sample(b, src, 950)
		wantState(t, b, Reject)
		src.setUsed(500)
		spiral(1100*time.Millisecond, false) // a hold below Recover
		wantState(t, b, Probe)
		if s := b.Stats().GCCPUShare; math.Abs(s-0.9) > 0.01 {
			t.Fatalf("GCCPUShare = %v, want 0.9", s)
		}
		admitted := spiral(800*time.Millisecond, true)
		wantState(t, b, Probe)
		if admitted > 12 {
			t.Fatalf("Probe admitted %d in 0.8 s at 90 %% GC; Throttle would admit about 8 (10/s)", admitted)
		}
		var re *RejectError
		if err := b.Admit(); errors.As(err, &re) && re.RetryAfter < 90*time.Millisecond {
			t.Fatalf("Probe's RetryAfter at 10/s = %v, want about 100 ms", re.RetryAfter)
		}
	})
}
