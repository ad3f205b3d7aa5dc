package backpressure

import (
	"errors"
	"math"
	"runtime/metrics"
	"strconv"
	"testing"
	"testing/synctest"
	"time"
)

// TestCrossCheckUsesLimitingGroup: the limit is set on a parent only (a
// systemd slice, say, shared with sibling services). The kernel kills when
// the parent's charge reaches the parent's limit, so the cross-check
// compares the charge of the group whose limit is the budget. Here the
// siblings hold 950 MiB of the parent's 1 GiB: the breaker refuses.
func TestCrossCheckUsesLimitingGroup(t *testing.T) {
	const mib = 1 << 20
	synctest.Test(t, func(t *testing.T) {
		b := parentAndApp(t, 1024*mib, 0, 950*mib)
		if st := b.Stats(); st.Source != BudgetCgroup || st.Budget != 966367641 {
			t.Fatalf("Stats = %+v, want 0.9 GiB from the parent's limit", st)
		}
		st, err := crossChecked(t, b)
		if st.Outside < 900*mib || !errors.Is(err, ErrMemoryPressure) {
			t.Fatalf("the limiting group is charged 950 MiB beyond Go's memory (limit 1 GiB): "+
				"Outside = %d MiB, Admit = %v; want ≥ 900 MiB and ErrMemoryPressure", st.Outside/mib, err)
		}
	})
}

// parentAndApp returns a Breaker (closed at the test's end) over a cgroup v2
// tree in which the process's group slice/app sits below slice: slice has
// the limit parentMax, app appMax (0: none), and slice is charged Go's
// memory and others more (its other members), app Go's memory alone.
func parentAndApp(t *testing.T, parentMax, appMax int, others uint64) *Breaker {
	t.Helper()
	s := []metrics.Sample{{Name: metricTotal}, {Name: metricReleased}}
	metrics.Read(s)
	held := s[0].Value.Uint64() - s[1].Value.Uint64()
	appLimit := "max"
	if appMax > 0 {
		appLimit = strconv.Itoa(appMax)
	}
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		"proc/self/cgroup":                       "0::/slice/app\n",
		"proc/self/mountinfo":                    "40 22 0:37 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
		"sys/fs/cgroup/slice/memory.max":         strconv.Itoa(parentMax) + "\n",
		"sys/fs/cgroup/slice/app/memory.max":     appLimit + "\n",
		"sys/fs/cgroup/slice/memory.current":     strconv.FormatUint(held+others, 10) + "\n",
		"sys/fs/cgroup/slice/memory.stat":        "anon 1\ninactive_file 0\n",
		"sys/fs/cgroup/slice/app/memory.current": strconv.FormatUint(held, 10) + "\n",
		"sys/fs/cgroup/slice/app/memory.stat":    "anon 1\ninactive_file 0\n",
	})
	b, err := NewBreaker(WithRoot(root))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// crossChecked lets one cgroup cross-check run (in a synctest bubble), then
// admits once and returns the breaker's Stats and Admit's answer.
func crossChecked(t *testing.T, b *Breaker) (Stats, error) {
	t.Helper()
	time.Sleep(130 * time.Millisecond)
	synctest.Wait()
	err := b.Admit()
	st := b.Stats()
	t.Logf("Outside %d MiB, Used %d MiB of %d MiB, state %v, Admit = %v",
		st.Outside>>20, st.Used>>20, st.Budget>>20, st.State, err)
	return st, err
}

// TestRetryAfterTinyRate: a valid rate so small that 1 s / rate exceeds a
// Duration's range gives the longest RetryAfter, not a wrapped negative
// one that max(…, maxStaleness) would turn into 2 ms.
func TestRetryAfterTinyRate(t *testing.T) {
	t.Run("throttle", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b, src := newFake(t, 100, WithThrottleRate(1e-12, 1))
			_ = sample(b, src, 850)
			wantState(t, b, Throttle)
			var re *RejectError
			for range 3 {
				if err := b.Admit(); errors.As(err, &re) {
					break
				}
			}
			if re == nil {
				t.Fatal("no refusal in Throttle at 1e-12 admissions/s")
			}
			if re.RetryAfter < time.Hour {
				t.Fatalf("Throttle at ~6e-13 admissions/s: RetryAfter = %v, want at least an hour (overflow)", re.RetryAfter)
			}
		})
	})
	t.Run("probe", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b, src := newFake(t, 100, WithProbeRate(1e-12))
			_ = sample(b, src, 950)
			wantState(t, b, Reject)
			src.setUsed(800)
			time.Sleep(1100 * time.Millisecond)
			var re *RejectError
			for range 3 {
				if err := b.Admit(); errors.As(err, &re) && re.State == Probe {
					break
				}
				re = nil
			}
			wantState(t, b, Probe)
			if re == nil {
				t.Fatal("no refusal in Probe at 1e-12 admissions/s")
			}
			if re.RetryAfter < time.Hour {
				t.Fatalf("Probe at 1e-12 admissions/s: RetryAfter = %v, want at least an hour (overflow)", re.RetryAfter)
			}
		})
	})
}

// TestRoomOverflow: with a budget of math.MaxInt64, Reject = 1 and one
// byte per task, the room for work in flight is 2^63 as a float; it must
// not wrap negative and refuse every Admit at a pressure of 0.
func TestRoomOverflow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, src := newFakeBudget(t, 100, math.MaxInt64, WithBytesPerTask(1),
			WithThresholds(Thresholds{Throttle: 0.8, Resume: 0.75, Reject: 1, Recover: 0.85}))
		counted(t, b) // nothing in flight
		// 60 % of CPU in GC for 2 s: Throttle as a second signal, at a
		// rate of 8000/s.
		for range 20 {
			src.update(func(r *Reading) { r.TotalCPUSeconds += 0.2; r.GCCPUSeconds += 0.12 })
			time.Sleep(100 * time.Millisecond)
		}
		synctest.Wait()
		err := b.Admit()
		wantState(t, b, Throttle)
		if errors.Is(err, ErrMemoryPressure) {
			t.Fatalf("Throttle at pressure %g with nothing in flight: Admit = %v, want nil (room overflowed)", b.Pressure(), err)
		}
	})
}

// TestValidationAtTheEdges: option values at the edges (NaN, infinities,
// zero, negative, out of order) get ErrInvalidConfig and no panic.
func TestValidationAtTheEdges(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	for name, opt := range map[string]Option{
		"ratio NaN":          WithCgroupRatio(nan),
		"ratio +Inf":         WithCgroupRatio(inf),
		"ratio negative":     WithCgroupRatio(-0.5),
		"throttle NaN":       WithThrottleRate(nan, 1),
		"throttle -Inf":      WithThrottleRate(math.Inf(-1), 1),
		"probe NaN":          WithProbeRate(nan),
		"probe +Inf":         WithProbeRate(inf),
		"probe zero":         WithProbeRate(0),
		"gc bound NaN":       WithGCCPUBound(nan, time.Second),
		"gc bound above one": WithGCCPUBound(1.5, time.Second),
		"bytes per task 0":   WithBytesPerTask(0),
		"cgroup check":       WithCgroupCheck(-1),
		"thresholds NaN":     WithThresholds(Thresholds{Throttle: nan, Resume: 0.5, Reject: 0.9, Recover: 0.8}),
		"thresholds +Inf":    WithThresholds(Thresholds{Throttle: 0.8, Resume: 0.5, Reject: inf, Recover: 0.8}),
		"resume > throttle":  WithThresholds(Thresholds{Throttle: 0.5, Resume: 0.6, Reject: 0.9, Recover: 0.8}),
		"recover = reject":   WithThresholds(Thresholds{Throttle: 0.5, Resume: 0.4, Reject: 0.9, Recover: 0.9}),
		"reject above one":   WithThresholds(Thresholds{Throttle: 0.5, Resume: 0.4, Reject: 1.01, Recover: 0.9}),
		"budget = use":       WithBudget(100),
	} {
		b, err := NewBreaker(WithSource(&fakeSource{r: Reading{Used: 100}}), opt)
		if !errors.Is(err, ErrInvalidConfig) || b != nil {
			t.Errorf("%s: NewBreaker = %v, %v; want nil, ErrInvalidConfig", name, b, err)
			if b != nil {
				_ = b.Close()
			}
		}
	}
	b, _ := newFake(t, 500)
	for name, f := range map[string]func() error{
		"SetBudget 0":          func() error { return b.SetBudget(0) },
		"SetBudget below use":  func() error { return b.SetBudget(500) },
		"SetThresholds NaN":    func() error { return b.SetThresholds(Thresholds{Throttle: nan}) },
		"SetThresholds zeroes": func() error { return b.SetThresholds(Thresholds{}) },
	} {
		if err := f(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s = %v, want ErrInvalidConfig", name, err)
		}
	}
	if st := b.Stats(); st.Budget != budget || st.Source != BudgetExplicit {
		t.Fatalf("Stats after refused updates = %+v", st)
	}
}
