package backpressure

import (
	"bytes"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeSource is a Source whose readings the test sets. Read blocks while
// gate is non-nil and open, to stand for a refresh that takes long.
type fakeSource struct {
	mu    sync.Mutex
	r     Reading
	reads int
	gate  chan struct{}
	// perTask, when set, adds perTask bytes per unit of *tasks to Used.
	perTask int64
	tasks   *atomic.Int64
}

func (f *fakeSource) Read(r *Reading) {
	f.mu.Lock()
	gate := f.gate
	f.mu.Unlock()
	if gate != nil {
		<-gate
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	*r = f.r
	if f.tasks != nil {
		r.Used += f.perTask * f.tasks.Load()
	}
	f.reads++
}

// hold makes every Read from now on wait, as a refresh that takes long,
// until the returned release: it lets the held reads finish and later
// reads return at once.
func (f *fakeSource) hold() (release func()) {
	gate := make(chan struct{})
	f.mu.Lock()
	f.gate = gate
	f.mu.Unlock()
	return func() {
		f.mu.Lock()
		f.gate = nil
		f.mu.Unlock()
		close(gate)
	}
}

func (f *fakeSource) setUsed(u int64) {
	f.mu.Lock()
	f.r.Used = u
	f.mu.Unlock()
}

func (f *fakeSource) update(fn func(r *Reading)) {
	f.mu.Lock()
	fn(&f.r)
	f.mu.Unlock()
}

func (f *fakeSource) readCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reads
}

// recorder collects OnStateChange calls.
type recorder struct {
	mu sync.Mutex
	tr []transition
}

func (r *recorder) record(from, to State) {
	r.mu.Lock()
	r.tr = append(r.tr, transition{from, to})
	r.mu.Unlock()
}

func (r *recorder) get() []transition {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.tr)
}

const budget = 1000

// newFake is a breaker of a budget of budget bytes on a fake source that
// reads used bytes in use; Close runs at the test's end.
func newFake(t *testing.T, used int64, opts ...Option) (*Breaker, *fakeSource) {
	t.Helper()
	return newFakeBudget(t, used, budget, opts...)
}

// newFakeBudget is newFake with a budget of its own.
func newFakeBudget(t *testing.T, used, budget int64, opts ...Option) (*Breaker, *fakeSource) {
	t.Helper()
	src := &fakeSource{r: Reading{Used: used}}
	b, err := NewBreaker(append([]Option{WithSource(src), WithBudget(budget)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b, src
}

// counted gives b a count of the work in flight (SetInFlightFunc) and
// returns it.
func counted(t *testing.T, b *Breaker) *atomic.Int64 {
	t.Helper()
	inflight := new(atomic.Int64)
	if err := b.SetInFlightFunc(inflight.Load); err != nil {
		t.Fatal(err)
	}
	return inflight
}

// sample sets the reading, lets the last sample go stale and admits once,
// so the breaker acts on the new reading.
func sample(b *Breaker, src *fakeSource, used int64) error {
	src.setUsed(used)
	time.Sleep(3 * time.Millisecond)
	return b.Admit()
}

func wantState(t *testing.T, b *Breaker, want State) {
	t.Helper()
	if got := b.State(); got != want {
		t.Fatalf("State = %v, want %v (pressure %.3f)", got, want, b.Pressure())
	}
}

func TestTransitions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var rec recorder
		b, src := newFake(t, 500, WithOnStateChange(rec.record))
		if err := sample(b, src, 500); err != nil {
			t.Fatalf("Admit in Normal = %v", err)
		}
		wantState(t, b, Normal)

		_ = sample(b, src, 800)
		wantState(t, b, Throttle)

		err := sample(b, src, 920)
		wantState(t, b, Reject)
		var re *RejectError
		if !errors.Is(err, ErrMemoryPressure) || !errors.As(err, &re) {
			t.Fatalf("Admit in Reject = %v, want a *RejectError matching ErrMemoryPressure", err)
		}
		if re.State != Reject || re.Used != 920 || re.Budget != budget || re.RetryAfter != time.Second {
			t.Fatalf("RejectError = %+v", *re)
		}

		// Below Recover, but not yet for the hold time: still Reject.
		_ = sample(b, src, 840)
		time.Sleep(900 * time.Millisecond)
		synctest.Wait()
		wantState(t, b, Reject)
		time.Sleep(130 * time.Millisecond)
		synctest.Wait()
		wantState(t, b, Probe)

		// Probe lasts a hold time, then goes by pressure: 0.80 → Throttle.
		src.setUsed(800)
		time.Sleep(500 * time.Millisecond)
		synctest.Wait()
		wantState(t, b, Probe)
		time.Sleep(560 * time.Millisecond)
		synctest.Wait()
		wantState(t, b, Throttle)

		// 0.76 is above Resume: stays Throttle. 0.74 → Normal.
		_ = sample(b, src, 760)
		wantState(t, b, Throttle)
		_ = sample(b, src, 740)
		wantState(t, b, Normal)

		synctest.Wait() // the loop delivers the callbacks
		want := []transition{{Normal, Throttle}, {Throttle, Reject}, {Reject, Probe}, {Probe, Throttle}, {Throttle, Normal}}
		if got := rec.get(); !slices.Equal(got, want) {
			t.Fatalf("OnStateChange calls = %v, want %v", got, want)
		}
		st := b.Stats()
		if st.Entered != [numStates]uint64{1, 2, 1, 1} {
			t.Fatalf("Entered = %v, want [1 2 1 1]", st.Entered)
		}
	})
}

func TestNormalToRejectDirectly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, src := newFake(t, 100)
		if err := sample(b, src, 990); !errors.Is(err, ErrMemoryPressure) {
			t.Fatalf("Admit = %v, want ErrMemoryPressure", err)
		}
		wantState(t, b, Reject)
	})
}

func TestProbeBackToReject(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, src := newFake(t, 950)
		wantState(t, b, Reject)
		src.setUsed(500)
		time.Sleep(1100 * time.Millisecond)
		synctest.Wait()
		wantState(t, b, Probe)

		// Between Recover and Reject Probe holds, admitting a trickle
		// (100/s by default).
		src.setUsed(880)
		admitted, refused := 0, 0
		for range 500 {
			time.Sleep(time.Millisecond)
			switch err := b.Admit(); {
			case err == nil:
				admitted++
			case errors.Is(err, ErrMemoryPressure):
				refused++
			default:
				t.Fatalf("Admit in Probe = %v", err)
			}
		}
		wantState(t, b, Probe)
		if admitted < 45 || admitted > 56 {
			t.Fatalf("Probe admitted %d of 500 in 500 ms, want about 50 (100/s)", admitted)
		}
		_ = sample(b, src, 930)
		wantState(t, b, Reject)
	})
}

func TestHysteresis(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, src := newFake(t, 500)
		// Noise around Throttle: one transition, no flapping.
		for i := range 200 {
			_ = sample(b, src, int64(790+20*(i%2)))
		}
		wantState(t, b, Throttle)
		// Noise around Reject: one transition.
		for i := range 200 {
			_ = sample(b, src, int64(910+20*(i%2)))
		}
		wantState(t, b, Reject)
		// Noise around Recover: pressure never stays below it for the hold
		// time, so no Probe.
		for i := range 1000 {
			_ = sample(b, src, int64(840+20*(i%2)))
		}
		wantState(t, b, Reject)
		if e := b.Stats().Entered; e != [numStates]uint64{0, 1, 1, 0} {
			t.Fatalf("Entered = %v, want [0 1 1 0]", e)
		}
	})
}

func TestStaleness(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, src := newFake(t, 100)
		n0 := src.readCount()
		_ = b.Admit() // the first sample after NewBreaker counts as stale
		if n := src.readCount(); n != n0+1 {
			t.Fatalf("reads after first Admit = %d, want %d", n, n0+1)
		}
		// Within maxStaleness Admit does not read, and does not see a change.
		src.setUsed(990)
		time.Sleep(time.Millisecond)
		for range 1000 {
			if err := b.Admit(); err != nil {
				t.Fatalf("Admit on a fresh Normal sample = %v", err)
			}
		}
		if n := src.readCount(); n != n0+1 {
			t.Fatalf("reads = %d, want %d: Admit refreshed a fresh sample", n, n0+1)
		}
		// Past maxStaleness one Admit refreshes and sees the change.
		time.Sleep(1500 * time.Microsecond)
		if err := b.Admit(); !errors.Is(err, ErrMemoryPressure) {
			t.Fatalf("Admit after 2.5 ms = %v, want ErrMemoryPressure", err)
		}
		if n := src.readCount(); n != n0+2 {
			t.Fatalf("reads = %d, want %d", n, n0+2)
		}
		// Idle: the background sampler reads every 25 ms.
		n1 := src.readCount()
		time.Sleep(250 * time.Millisecond)
		synctest.Wait()
		if n := src.readCount() - n1; n < 9 || n > 11 {
			t.Fatalf("background reads in 250 ms = %d, want 10", n)
		}
	})
}

// TestStalenessWithoutTimer: when the timer that marks samples stale does
// not run (a storm can starve it), Admit off the fast path still samples
// afresh once the sample is older than maxStaleness: it reads the clock.
func TestStalenessWithoutTimer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, src := newFake(t, 100)
		if err := sample(b, src, 950); !errors.Is(err, ErrMemoryPressure) {
			t.Fatalf("Admit = %v, want ErrMemoryPressure", err)
		}
		b.mu.Lock()
		b.stale.Stop() // as if starved
		b.mu.Unlock()
		time.Sleep(time.Millisecond)
		n := src.readCount()
		_ = b.Admit()
		if got := src.readCount(); got != n {
			t.Fatalf("Admit on a 1 ms old sample read %d times, want 0", got-n)
		}
		time.Sleep(2 * time.Millisecond)
		n = src.readCount()
		_ = b.Admit()
		if got := src.readCount(); got != n+1 {
			t.Fatalf("Admit on a 3 ms old sample read %d times, want 1", got-n)
		}
	})
}

func TestUnknownSampleIsThrottled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, src := newFake(t, 100, WithThrottleRate(10, 1))
		_ = b.Admit() // inline refresh; the sample goes stale 2 ms later
		release := src.hold()
		time.Sleep(3 * time.Millisecond)
		var wg sync.WaitGroup
		wg.Go(func() { _ = b.Admit() }) // takes the refresh and blocks in Read
		synctest.Wait()

		// 13 ms old: still trusted.
		time.Sleep(10 * time.Millisecond)
		for range 5 {
			if err := b.Admit(); err != nil {
				t.Fatalf("Admit on a 13 ms old sample = %v, want nil", err)
			}
		}
		// 63 ms old: unknown, admitted no faster than the throttle rate.
		time.Sleep(50 * time.Millisecond)
		if err := b.Admit(); err != nil {
			t.Fatalf("first Admit on an unknown sample = %v, want nil (burst)", err)
		}
		if err := b.Admit(); !errors.Is(err, ErrThrottled) {
			t.Fatalf("second Admit on an unknown sample = %v, want ErrThrottled", err)
		}
		release()
		wg.Wait()
		time.Sleep(3 * time.Millisecond)
		if err := b.Admit(); err != nil {
			t.Fatalf("Admit after the refresh completed = %v", err)
		}
	})
}

// TestUnknownSampleUsesTheThrottleRate: an unknown sample in Normal admits
// as fast as Throttle does at the throttle threshold (WithThrottleRate), not
// at the lower rate a past Throttle near the reject threshold left in the
// bucket.
func TestUnknownSampleUsesTheThrottleRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, src := newFake(t, 100, WithThrottleRate(1000, 1))
		_ = sample(b, src, 919) // Throttle at (0.92-0.919)/0.12 × 1000 ≈ 8/s
		wantState(t, b, Throttle)
		_ = sample(b, src, 100) // back to Normal
		wantState(t, b, Normal)
		release := src.hold()
		time.Sleep(3 * time.Millisecond)
		var wg sync.WaitGroup
		wg.Go(func() { _ = b.Admit() }) // takes the refresh and blocks in Read
		synctest.Wait()
		time.Sleep(60 * time.Millisecond) // the sample is unknown
		admitted := 0
		for range 100 {
			time.Sleep(time.Millisecond)
			if b.Admit() == nil {
				admitted++
			}
		}
		if admitted < 90 {
			t.Errorf("unknown sample in Normal: %d of 100 Admits a millisecond apart admitted, want ≥ 90 (1000/s)", admitted)
		}
		release()
		wg.Wait()
	})
}

func TestThrottleRateFallsLinearly(t *testing.T) {
	for _, tc := range []struct {
		used      int64
		lo, hi    int // admissions in one second
		wantState State
	}{
		{used: 810, lo: 900, hi: 960, wantState: Throttle}, // (920-810)/120 × 1000 ≈ 917/s
		{used: 860, lo: 470, hi: 530, wantState: Throttle}, // 500/s
		{used: 910, lo: 60, hi: 110, wantState: Throttle},  // 83/s
		{used: 925, lo: 0, hi: 0, wantState: Reject},       // nothing
	} {
		synctest.Test(t, func(t *testing.T) {
			b, src := newFake(t, 500, WithThrottleRate(1000, 5))
			_ = sample(b, src, tc.used)
			time.Sleep(10 * time.Millisecond) // spend the burst
			for b.Admit() == nil {
			}
			admitted := 0
			for range 10000 {
				time.Sleep(100 * time.Microsecond)
				if b.Admit() == nil {
					admitted++
				}
			}
			wantState(t, b, tc.wantState)
			if admitted < tc.lo || admitted > tc.hi {
				t.Fatalf("used %d: admitted %d in 1 s, want %d..%d", tc.used, admitted, tc.lo, tc.hi)
			}
		})
	}
}

func TestReservation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const mib = 1 << 20
		b, _ := newFakeBudget(t, 100*mib, 1000*mib, WithBytesPerTask(mib))
		inflight := counted(t, b)
		// A burst within one sample: no time passes, the memory has not
		// grown yet; the reservation alone must stop it.
		for range 100000 {
			if b.Admit() != nil {
				break
			}
			inflight.Add(1)
		}
		n := inflight.Load()
		// Throttle at 700 in flight (0.80), then at most the burst of 100
		// tokens, and never past 0.92.
		if n < 700 || n > 820 {
			t.Fatalf("admitted %d in a burst, want 700..820", n)
		}
		if s := b.State(); s != Throttle && s != Reject {
			t.Fatalf("State = %v, want Throttle or Reject", s)
		}
		st := b.Stats()
		if st.InFlight < 700 || st.Used != st.Measured+st.InFlight*mib {
			t.Fatalf("Stats = %+v: want Used = Measured + InFlight × 1 MiB", st)
		}
		// The work finishes: back to Normal.
		inflight.Store(0)
		time.Sleep(30 * time.Millisecond)
		_ = b.Admit()
		wantState(t, b, Normal)
	})
}

// TestNormalPastRoomWhileAnotherRefreshes: in Normal, an Admit that finds
// the in-flight count at the throttle room while another caller holds the
// refresh (blocked in the source's Read) is judged as Throttle would judge
// it by the last sample: admitted through the bucket, up to its burst, and
// refused with ErrMemoryPressure only where the reservation would pass the
// reject threshold; never refused merely because the refresh is taken.
func TestNormalPastRoomWhileAnotherRefreshes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const mib = 1 << 20
		b, src := newFakeBudget(t, 100*mib, 1000*mib, WithBytesPerTask(mib), WithThrottleRate(1000, 5))
		inflight := counted(t, b)
		_ = b.Admit() // Normal; throttle room 700 (0.80), reject room 820 (0.92)
		wantState(t, b, Normal)
		release := src.hold()
		inflight.Store(700)
		var wg sync.WaitGroup
		wg.Go(func() { _ = b.Admit() }) // takes the refresh and blocks in Read
		synctest.Wait()

		admitted := 0
		for range 10 {
			if b.Admit() == nil {
				admitted++
			}
		}
		if admitted != 5 {
			t.Errorf("at the throttle room during another's refresh: %d of 10 Admits admitted, want 5 (the bucket's burst)", admitted)
		}
		inflight.Store(820)
		time.Sleep(time.Second) // the bucket refills; the sample, though unknown, still says 100 MiB
		if err := b.Admit(); !errors.Is(err, ErrMemoryPressure) {
			t.Errorf("at the reject room during another's refresh: Admit = %v, want ErrMemoryPressure", err)
		}
		release()
		wg.Wait()
	})
}

// TestCountDrivenRefresh: in a burst no time passes and no timer fires, yet
// Admit samples again each time the in-flight count has used a quarter of
// the room left, and never while the count stands still.
func TestCountDrivenRefresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const mib = 1 << 20
		b, src := newFakeBudget(t, 100*mib, 1000*mib, WithBytesPerTask(mib))
		inflight := counted(t, b)
		_ = b.Admit()
		r0 := src.readCount()
		for range 1000 {
			_ = b.Admit() // the count stands still
		}
		if n := src.readCount() - r0; n != 0 {
			t.Fatalf("%d samples while the in-flight count stood still, want 0", n)
		}
		var at []int64 // in-flight counts at which Admit sampled
		for i := range int64(600) {
			if b.Admit() != nil {
				t.Fatalf("Admit refused at %d in flight, below the throttle room of 700", i)
			}
			if n := src.readCount(); n != r0+len(at) {
				at = append(at, i)
			}
			inflight.Add(1)
		}
		// Room 700 at 0 in flight: samples at 175, 306, 404, 478, 533, 574, ...
		want := []int64{175, 306, 404, 478, 533, 574}
		if len(at) < len(want) || !slices.Equal(at[:len(want)], want) {
			t.Fatalf("samples at in-flight counts %v, want %v first", at, want)
		}
	})
}

func TestGCCPUShare(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, src := newFake(t, 100)
		// 60 % of CPU in GC for 2 s: Throttle.
		for range 20 {
			src.update(func(r *Reading) { r.TotalCPUSeconds += 0.2; r.GCCPUSeconds += 0.12 })
			time.Sleep(100 * time.Millisecond)
		}
		synctest.Wait()
		wantState(t, b, Throttle)
		if s := b.Stats().GCCPUShare; math.Abs(s-0.6) > 0.01 {
			t.Fatalf("GCCPUShare = %v, want 0.6", s)
		}
		// 10 %: back to Normal after a window.
		for range 25 {
			src.update(func(r *Reading) { r.TotalCPUSeconds += 0.2; r.GCCPUSeconds += 0.02 })
			time.Sleep(100 * time.Millisecond)
		}
		synctest.Wait()
		wantState(t, b, Normal)
		// Back to 60 %, then no GC at all (the totals stand still): the
		// share must not stay stuck at its last value.
		for range 20 {
			src.update(func(r *Reading) { r.TotalCPUSeconds += 0.2; r.GCCPUSeconds += 0.12 })
			time.Sleep(100 * time.Millisecond)
		}
		synctest.Wait()
		wantState(t, b, Throttle)
		time.Sleep(2100 * time.Millisecond)
		synctest.Wait()
		wantState(t, b, Normal)
		if s := b.Stats().GCCPUShare; s != 0 {
			t.Fatalf("GCCPUShare with no GC = %v, want 0", s)
		}
	})
}

func TestGoroutineCeiling(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, src := newFake(t, 100, WithMaxGoroutines(1000))
		src.update(func(r *Reading) { r.Goroutines = 1000 })
		time.Sleep(3 * time.Millisecond)
		if err := b.Admit(); !errors.Is(err, ErrThrottled) {
			t.Fatalf("Admit at the goroutine ceiling = %v, want ErrThrottled", err)
		}
		wantState(t, b, Throttle)
		src.update(func(r *Reading) { r.Goroutines = 10 })
		time.Sleep(3 * time.Millisecond)
		if err := b.Admit(); err != nil {
			t.Fatalf("Admit below the ceiling = %v", err)
		}
		wantState(t, b, Normal)
	})
}

func TestHotUpdates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, src := newFake(t, 600)
		wantState(t, b, Normal)
		if err := b.SetThresholds(Thresholds{Throttle: 0.5, Resume: 0.45, Reject: 0.9, Recover: 0.8}); err != nil {
			t.Fatal(err)
		}
		wantState(t, b, Throttle) // acted on at once

		for _, bad := range []Thresholds{
			{},
			{Throttle: 0.9, Resume: 0.5, Reject: 0.8, Recover: 0.7},  // Throttle ≥ Reject
			{Throttle: 0.5, Resume: 0.6, Reject: 0.9, Recover: 0.8},  // Resume > Throttle
			{Throttle: 0.5, Resume: 0.4, Reject: 0.9, Recover: 0.95}, // Recover ≥ Reject
			{Throttle: 0.5, Resume: 0.4, Reject: 1.1, Recover: 0.8},  // > 1
			{Throttle: math.NaN(), Resume: 0.4, Reject: 0.9, Recover: 0.8},
			{Throttle: 0.5, Resume: -0.1, Reject: 0.9, Recover: 0.8},
		} {
			if err := b.SetThresholds(bad); !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("SetThresholds(%+v) = %v, want ErrInvalidConfig", bad, err)
			}
		}
		// Still the valid thresholds: 0.85 is between Throttle 0.5 and Reject 0.9.
		_ = sample(b, src, 850)
		wantState(t, b, Throttle)
		_ = sample(b, src, 900)
		wantState(t, b, Reject)

		for _, bad := range []int64{0, -1, 900, 100} {
			if err := b.SetBudget(bad); !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("SetBudget(%d) = %v, want ErrInvalidConfig", bad, err)
			}
		}
		if err := b.SetBudget(10000); err != nil {
			t.Fatal(err)
		}
		if p := b.Pressure(); p != 0.09 {
			t.Fatalf("Pressure after SetBudget = %v, want 0.09", p)
		}
		if st := b.Stats(); st.Budget != 10000 || st.Source != BudgetExplicit {
			t.Fatalf("Stats = %+v", st)
		}
		time.Sleep(2100 * time.Millisecond) // Reject → Probe → Normal
		synctest.Wait()
		wantState(t, b, Normal)
	})
}

func TestOnStateChangeOutsideLocks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var b *Breaker
		var calls atomic.Int32
		src := &fakeSource{r: Reading{Used: 100}}
		b, err := NewBreaker(WithSource(src), WithBudget(budget), WithOnStateChange(func(from, to State) {
			// Each of these would deadlock if called under a lock.
			_ = b.Stats()
			_ = b.SetThresholds(DefaultThresholds())
			_ = b.Admit()
			calls.Add(1)
		}))
		if err != nil {
			t.Fatal(err)
		}
		_ = sample(b, src, 950)
		synctest.Wait()
		_ = sample(b, src, 100)
		time.Sleep(3 * time.Second)
		synctest.Wait()
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		if n := calls.Load(); n != 3 { // → Reject → Probe → Normal
			t.Fatalf("OnStateChange calls = %d, want 3", n)
		}
	})
}

type bufCloser struct {
	bytes.Buffer
	closed bool
}

func (b *bufCloser) Close() error { b.closed = true; return nil }

func TestHeapProfileOncePerInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var profiles []*bufCloser
		b, src := newFake(t, 100, WithHeapProfile(func() (io.WriteCloser, error) {
			mu.Lock()
			defer mu.Unlock()
			p := &bufCloser{}
			profiles = append(profiles, p)
			return p, nil
		}, 10*time.Second))
		count := func() int {
			synctest.Wait()
			mu.Lock()
			defer mu.Unlock()
			return len(profiles)
		}
		cycle := func() { // Normal → Reject → Probe → Normal
			_ = sample(b, src, 950)
			_ = sample(b, src, 100)
			time.Sleep(2100 * time.Millisecond)
			synctest.Wait()
			wantState(t, b, Normal)
		}
		cycle()
		if n := count(); n != 1 {
			t.Fatalf("profiles after entering Reject once = %d, want 1", n)
		}
		cycle() // within 10 s: no second profile
		if n := count(); n != 1 {
			t.Fatalf("profiles after a second Reject within the interval = %d, want 1", n)
		}
		time.Sleep(10 * time.Second)
		cycle()
		if n := count(); n != 2 {
			t.Fatalf("profiles after the interval = %d, want 2", n)
		}
		mu.Lock()
		defer mu.Unlock()
		if p := profiles[0]; !p.closed || !bytes.HasPrefix(p.Bytes(), []byte{0x1f, 0x8b}) {
			t.Fatalf("profile closed=%v, %d bytes: want a closed gzipped pprof", p.closed, p.Len())
		}
		if err := b.Stats().ProfileErr; err != nil {
			t.Fatal(err)
		}
	})
}

func TestForcedGCInReject(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := []metrics.Sample{{Name: "/gc/cycles/forced:gc-cycles"}}
		forced := func() uint64 { metrics.Read(s); return s[0].Value.Uint64() }
		b, src := newFake(t, 100)
		_ = sample(b, src, 950)
		wantState(t, b, Reject)
		n0 := forced()
		time.Sleep(3050 * time.Millisecond)
		synctest.Wait()
		if n := forced() - n0; n < 2 || n > 4 {
			t.Fatalf("forced GCs in 3 s of Reject = %d, want 3 (one a second)", n)
		}
	})
}

func TestNoBudget(t *testing.T) {
	if debug.SetMemoryLimit(-1) != math.MaxInt64 {
		t.Skip("GOMEMLIMIT is set")
	}
	synctest.Test(t, func(t *testing.T) {
		src := &fakeSource{r: Reading{Used: 1 << 40}}
		b, err := NewBreaker(WithSource(src), WithRoot(t.TempDir()))
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		time.Sleep(3 * time.Millisecond)
		if err := b.Admit(); err != nil {
			t.Fatalf("Admit without a budget = %v", err)
		}
		st := b.Stats()
		if st.Source != BudgetNone || st.Budget != 0 || st.State != Normal || st.Pressure != 0 {
			t.Fatalf("Stats = %+v, want no budget, Normal, pressure 0", st)
		}
	})
}

func TestBudgetFromGOMEMLIMIT(t *testing.T) {
	old := debug.SetMemoryLimit(1 << 40)
	defer debug.SetMemoryLimit(old)
	b, err := NewBreaker(WithSource(&fakeSource{}), WithRoot(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if st := b.Stats(); st.Source != BudgetGOMEMLIMIT || st.Budget != 1<<40 {
		t.Fatalf("Stats = %+v, want budget 1 TiB from GOMEMLIMIT", st)
	}
}

func TestBudgetFromCgroup(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		"proc/self/cgroup":                               "4:memory:/app\n0::/\n",
		"proc/self/mountinfo":                            "34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n",
		"sys/fs/cgroup/memory/app/memory.limit_in_bytes": "1000000000\n",
	})
	b, err := NewBreaker(WithSource(&fakeSource{}), WithRoot(root), WithCgroupRatio(0.5))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if st := b.Stats(); st.Source != BudgetCgroup || st.Budget != 500000000 {
		t.Fatalf("Stats = %+v, want budget 500000000 from the cgroup", st)
	}
}

// TestCgroupCrossCheck: what the cgroup is charged beyond the Go runtime's
// memory is added to the measured use.
func TestCgroupCrossCheck(t *testing.T) {
	const mib = 1 << 20
	synctest.Test(t, func(t *testing.T) {
		root := t.TempDir()
		writeTree(t, root, map[string]string{
			"proc/self/cgroup":              "0::/app\n",
			"proc/self/mountinfo":           "40 22 0:37 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
			"sys/fs/cgroup/app/memory.max":  "1099511627776\n",
			"sys/fs/cgroup/app/memory.stat": "anon 1\ninactive_file 8388608\n",
		})
		// Charged: Go's memory, 100 MiB more, and 8 MiB of inactive file
		// cache that does not count.
		s := []metrics.Sample{{Name: metricTotal}, {Name: metricReleased}}
		metrics.Read(s)
		held := s[0].Value.Uint64() - s[1].Value.Uint64()
		writeTree(t, root, map[string]string{
			"sys/fs/cgroup/app/memory.current": strconv.FormatUint(held+108*mib, 10),
		})
		b, err := NewBreaker(WithRoot(root))
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		if st := b.Stats(); st.Source != BudgetCgroup || st.Outside != 0 {
			t.Fatalf("Stats before a check = %+v", st)
		}
		time.Sleep(130 * time.Millisecond)
		synctest.Wait()
		st := b.Stats()
		if st.Outside < 92*mib || st.Outside > 108*mib {
			t.Fatalf("Outside = %d MiB, want about 100", st.Outside/mib)
		}
		if st.Measured < st.Outside || st.Used < st.Measured {
			t.Fatalf("Stats = %+v: want Used ≥ Measured ≥ Outside", st)
		}
		// An explicit budget ends the cross-check.
		if err := b.SetBudget(1 << 40); err != nil {
			t.Fatal(err)
		}
		if st := b.Stats(); st.Outside != 0 || st.Source != BudgetExplicit {
			t.Fatalf("Stats after SetBudget = %+v", st)
		}
	})
}

func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, data := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestBadConfig(t *testing.T) {
	for name, opt := range map[string]Option{
		"zero budget":       WithBudget(0),
		"negative budget":   WithBudget(-5),
		"budget below use":  WithBudget(50),
		"ratio zero":        WithCgroupRatio(0),
		"ratio above one":   WithCgroupRatio(1.5),
		"thresholds":        WithThresholds(Thresholds{Throttle: 0.9, Resume: 0.8, Reject: 0.9, Recover: 0.5}),
		"staleness":         WithMaxStaleness(0),
		"interval":          WithSampleInterval(-time.Second),
		"hold":              WithHold(-1),
		"throttle rate":     WithThrottleRate(0, 10),
		"throttle burst":    WithThrottleRate(10, 0),
		"throttle rate inf": WithThrottleRate(math.Inf(1), 10),
		"probe rate":        WithProbeRate(-1),
		"bytes per task":    WithBytesPerTask(-1),
		"goroutines":        WithMaxGoroutines(-1),
		"gc bound":          WithGCCPUBound(0, time.Second),
		"gc window":         WithGCCPUBound(0.5, 0),
		"gc in reject":      WithGCInReject(-1),
		"nil option":        nil,
	} {
		b, err := NewBreaker(WithSource(&fakeSource{r: Reading{Used: 100}}), opt)
		if !errors.Is(err, ErrInvalidConfig) || b != nil {
			t.Errorf("%s: NewBreaker = %v, %v; want nil, ErrInvalidConfig", name, b, err)
		}
	}
}

func TestClose(t *testing.T) {
	b, _ := newFake(t, 100)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close = %v, want ErrClosed", err)
	}
	if err := b.Admit(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Admit after Close = %v, want ErrClosed", err)
	}
	if err := b.SetThresholds(DefaultThresholds()); !errors.Is(err, ErrClosed) {
		t.Fatalf("SetThresholds after Close = %v, want ErrClosed", err)
	}
	if err := b.SetBudget(1 << 30); !errors.Is(err, ErrClosed) {
		t.Fatalf("SetBudget after Close = %v, want ErrClosed", err)
	}
	if err := b.SetInFlightFunc(nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("SetInFlightFunc after Close = %v, want ErrClosed", err)
	}
}

func TestRejectErrorMessage(t *testing.T) {
	e := &RejectError{Err: ErrThrottled, State: Throttle, Used: 850, Budget: 1000, RetryAfter: time.Millisecond}
	const want = "backpressure: throttled: state Throttle, used 850 of 1000 bytes (85.0%), retry after 1ms"
	if e.Error() != want {
		t.Fatalf("Error() = %q, want %q", e.Error(), want)
	}
	if errors.Is(e, ErrMemoryPressure) || !errors.Is(e, ErrThrottled) {
		t.Fatal("errors.Is matches the wrong sentinel")
	}
	if State(7).String() != "State(7)" || Probe.String() != "Probe" {
		t.Fatal("State.String")
	}
}

func TestAdmitAllocations(t *testing.T) {
	b, src := newFake(t, 100, WithBytesPerTask(1))
	counted(t, b)
	_ = b.Admit()
	if n := testing.AllocsPerRun(10000, func() { _ = b.Admit() }); n != 0 {
		t.Fatalf("Admit in Normal: %v allocations, want 0", n)
	}
	src.setUsed(990)
	for b.State() != Reject {
		_ = b.Admit() // the sample goes stale within 2 ms
	}
	if n := testing.AllocsPerRun(10000, func() { _ = b.Admit() }); n > 0.01 {
		t.Fatalf("Admit in Reject: %v allocations, want 0 (refreshes aside)", n)
	}
}

// TestConcurrentUse runs Admit, hot updates, SetInFlightFunc and Close at
// once, for the race detector, and checks that every Admit after Close
// returns ErrClosed.
func TestConcurrentUse(t *testing.T) {
	src := &fakeSource{r: Reading{Used: 100}}
	b, err := NewBreaker(WithSource(src), WithBudget(budget), WithMaxStaleness(time.Microsecond))
	if err != nil {
		t.Fatal(err)
	}
	var inflight atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if b.Admit() == nil {
					inflight.Add(1)
					inflight.Add(-1)
				}
			}
		})
	}
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			src.setUsed(int64(100 + (i*37)%900))
			_ = b.SetThresholds(DefaultThresholds())
			_ = b.SetInFlightFunc(inflight.Load)
			_ = b.Stats()
		}
	})
	for range 2000 {
		_ = b.Admit()
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	for range 100 {
		if err := b.Admit(); !errors.Is(err, ErrClosed) {
			t.Fatalf("Admit after Close = %v", err)
		}
	}
	close(stop)
	wg.Wait()
}

// TestHotUpdateDuringRefresh: SetThresholds, SetBudget or SetInFlightFunc
// made while an Admit holds the refresher's role (blocked in the source's
// Read) must not be lost when that refresh publishes a decision judged by
// the old settings: the next Admit judges by the new ones.
func TestHotUpdateDuringRefresh(t *testing.T) {
	for _, tc := range []struct {
		name   string
		update func(*Breaker) error
	}{
		// Pressure 0.5 is above the new Reject level.
		{"thresholds", func(b *Breaker) error {
			return b.SetThresholds(Thresholds{Throttle: 0.2, Resume: 0.1, Reject: 0.3, Recover: 0.25})
		}},
		// 500 used of 510 is above the default Reject level.
		{"budget", func(b *Breaker) error { return b.SetBudget(510) }},
		// 100 tasks in flight at the default 64 KiB each fill the budget.
		{"in-flight function", func(b *Breaker) error {
			return b.SetInFlightFunc(func() int64 { return 1 << 20 })
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b, src := newFake(t, 500)
				_ = b.Admit()
				release := src.hold()
				time.Sleep(3 * time.Millisecond) // the sample goes stale
				refreshed := make(chan struct{})
				go func() {
					defer close(refreshed)
					_ = b.Admit() // takes the role, then waits in Read
				}()
				synctest.Wait()
				if err := tc.update(b); err != nil {
					t.Fatal(err)
				}
				release()
				<-refreshed
				// No time passes: the refresh just published is fresh.
				admitted := 0
				for range 100 {
					if b.Admit() == nil {
						admitted++
					}
				}
				if admitted > 0 || b.State() != Reject {
					t.Fatalf("after the update: %d of 100 Admits admitted, state %v; want 0, Reject", admitted, b.State())
				}
			})
		})
	}
}

// TestCloseFromOnStateChange: Close called from the OnStateChange callback
// (to shut down on Reject) returns, and the sampler's goroutine ends once
// the callback has.
func TestCloseFromOnStateChange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &fakeSource{r: Reading{Used: 990}} // the first sample moves Normal → Reject
		closed := make(chan error, 1)
		ready := make(chan *Breaker, 1)
		b, err := NewBreaker(WithSource(src), WithBudget(budget), WithOnStateChange(func(from, to State) {
			if to == Reject {
				closed <- (<-ready).Close()
			}
		}))
		if err != nil {
			t.Fatal(err)
		}
		ready <- b
		if err := <-closed; err != nil {
			t.Fatalf("Close from the callback: %v", err)
		}
		<-b.exited
		if err := b.Admit(); !errors.Is(err, ErrClosed) {
			t.Fatalf("Admit after Close: %v, want ErrClosed", err)
		}
	})
}
