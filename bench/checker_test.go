package bench

// Tests of the isolation checker (fake schedulers that lose, duplicate,
// reorder or overlap tasks) and of the harness's figures.

import (
	"context"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/shoal-go/shoal/pool"
)

// smallIsolationConfig is a small scenario: 20 fast groups, no slow, no hot.
func smallIsolationConfig() IsolationConfig {
	cfg := DefaultIsolationConfig()
	cfg.Scheduler = IsolationReference
	cfg.Groups, cfg.Slow = 20, 0
	cfg.FastRate = 2_000
	cfg.Submitters = 2
	cfg.Warmup, cfg.Duration = 10*time.Millisecond, 50*time.Millisecond
	return cfg
}

// misbehave wraps the reference and plays one trick on the submissions it
// picks (by the order the submissions reach it).
type misbehave struct {
	ref *reference
	mu  sync.Mutex
	n   int
	// trick returns what to do with submission n: "" runs it normally.
	trick func(n int) string
	wg    sync.WaitGroup
}

func (m *misbehave) submit(ctx context.Context, group uint64, t pool.Task) error {
	m.mu.Lock()
	m.n++
	what := m.trick(m.n)
	m.mu.Unlock()
	switch what {
	case "drop": // accepted, never run
		return nil
	case "phantom": // refused, but run anyway
		if err := m.ref.submit(ctx, group, t); err != nil {
			return err
		}
		return errors.New("refused")
	case "twice": // run twice
		if err := m.ref.submit(ctx, group, t); err != nil {
			return err
		}
		return m.ref.submit(ctx, group, t)
	}
	return m.ref.submit(ctx, group, t)
}

func (m *misbehave) close(ctx context.Context) (int, error) {
	m.wg.Wait()
	return m.ref.close(ctx)
}

func runMisbehave(t *testing.T, trick func(int) string) IsolationResult {
	t.Helper()
	res, err := runIsolation(t.Context(), smallIsolationConfig(), &misbehave{ref: newReference(0), trick: trick})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestIsolationCheckerSanity: a correct scheduler is sound; losing or
// duplicating a task alone is noticed.
func TestIsolationCheckerSanity(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		if res := runMisbehave(t, func(int) string { return "" }); !res.Sound() || res.Measured == 0 {
			t.Errorf("correct run: lost %d, %d out of order, %d overlaps, %d measured", res.Lost, res.OutOfOrder, res.Overlaps, res.Measured)
		}
		if res := runMisbehave(t, func(n int) string { return map[bool]string{true: "drop"}[n == 5] }); res.Sound() {
			t.Errorf("a dropped task: reported sound")
		}
		if res := runMisbehave(t, func(n int) string { return map[bool]string{true: "twice"}[n == 5] }); res.Sound() {
			t.Errorf("a task run twice: reported sound")
		}
	})
}

// TestIsolationRefusedRunDoesNotHideALoss: a task accepted and never run,
// and a task refused but run all the same (a scheduler that enqueues,
// then reports an error): the run is not sound, and the lost task is
// counted, not balanced by the other.
func TestIsolationRefusedRunDoesNotHideALoss(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		res := runMisbehave(t, func(n int) string {
			switch n {
			case 5:
				return "drop"
			case 9:
				return "phantom"
			}
			return ""
		})
		if res.Sound() || res.Lost != 1 || res.RanRefused != 1 {
			t.Errorf("one accepted task never ran, one refused task ran: sound %v (accepted %d, ran %d, refused %d, lost %d, refused that ran %d); want lost 1, 1",
				res.Sound(), res.Accepted, res.Ran, res.Refused, res.Lost, res.RanRefused)
		}
	})
}

// TestIsolationOverlapsCountEveryOne: task 2 begins while task 1 runs,
// task 3 after task 1 ended but while task 2 runs: two overlaps.
func TestIsolationOverlapsCountEveryOne(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := smallIsolationConfig()
		cfg.FastTask = 10 * time.Millisecond
		r := &isoRun{cfg: cfg, work: [3]time.Duration{isoFast: 10 * time.Millisecond}, groups: make([]isoGroup, cfg.Groups+1)}
		r.epoch = time.Now()
		evs := []isoEvent{{group: 3, seq: 1}, {group: 3, seq: 2}, {group: 3, seq: 3}}
		var wg sync.WaitGroup
		run := func(i int) { t := r.task(&evs[i]); wg.Go(func() { _ = t(context.Background()) }) }
		run(0) // [0, 10ms]
		time.Sleep(5 * time.Millisecond)
		run(1) // [5, 15ms]: overlaps 0
		time.Sleep(7 * time.Millisecond)
		run(2) // [12, 22ms]: overlaps 1
		wg.Wait()
		if got := r.overlaps.Load(); got != 2 {
			t.Errorf("tasks 2 and 3 each began while another task of their group ran: %d overlaps, want 2", got)
		}
	})
}

// TestIsolationTargetFormula: p99 <= 1.5 x reference p99 + 1 ms.
func TestIsolationTargetFormula(t *testing.T) {
	for ref, want := range map[time.Duration]time.Duration{
		0: time.Millisecond, 2 * time.Millisecond: 4 * time.Millisecond, 333 * time.Microsecond: 1499500 * time.Nanosecond,
	} {
		if got := IsolationTarget(IsolationResult{P99: ref}); got != want {
			t.Errorf("target(%v) = %v, want %v", ref, got, want)
		}
	}
}

// TestIsolationWaitsFromTheRightSamples: the waits are those of fast tasks
// due after the warm-up, start − due: a scheduler that delays every task
// by a fixed time shows exactly that in the percentiles.
func TestIsolationWaitsFromTheRightSamples(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := smallIsolationConfig()
		cfg.FastTask = 0
		cfg.Groups, cfg.Slow = 4, 1
		cfg.SlowRate = 200
		cfg.SlowTask = 0
		const delay = 3 * time.Millisecond
		res, err := runIsolation(t.Context(), cfg, &delayed{ref: newReference(0), delay: delay})
		if err != nil {
			t.Fatal(err)
		}
		// Every measured task started exactly delay after its due time.
		if !res.Sound() || res.P50 != delay || res.Max != delay || res.QueueP99 != delay || res.LateP99 != 0 {
			t.Errorf("waits p50 %v max %v queue p99 %v late p99 %v, want %v, %v, %v, 0 (sound %v)", res.P50, res.Max, res.QueueP99, res.LateP99, delay, delay, delay, res.Sound())
		}
	})
}

// delayed hands each task to the reference a fixed delay after its Submit.
type delayed struct {
	ref   *reference
	delay time.Duration
	wg    sync.WaitGroup
}

func (d *delayed) submit(ctx context.Context, group uint64, t pool.Task) error {
	d.wg.Go(func() {
		time.Sleep(d.delay)
		_ = d.ref.submit(ctx, group, t)
	})
	return nil
}

func (d *delayed) close(ctx context.Context) (int, error) { d.wg.Wait(); return d.ref.close(ctx) }

// TestHarnessPercentiles: nearest rank.
func TestHarnessPercentiles(t *testing.T) {
	v := []int64{5, 1, 4, 2, 3}
	p50, p99, mx := percentiles(v)
	if p50 != 3 || p99 != 5 || mx != 5 {
		t.Errorf("percentiles(1..5) = %d %d %d, want 3 5 5", p50, p99, mx)
	}
	w := make([]int64, 100)
	for i := range w {
		w[i] = int64(100 - i)
	}
	if p50, p99, mx := percentiles(w); p50 != 50 || p99 != 99 || mx != 100 {
		t.Errorf("percentiles(1..100) = %d %d %d, want 50 99 100", p50, p99, mx)
	}
}

// TestHarnessMeasureCountsEveryTask: every task runs once, ns/task is
// elapsed / tasks, and the samples are bounded.
func TestHarnessMeasureCountsEveryTask(t *testing.T) {
	var ran atomic.Int64
	w := small("noop", 4)
	w.Body = func() { ran.Add(1) }
	lib, _ := LibByName("chan+lanes")
	res, err := Measure(lib, Spec{Workload: w, Producers: 3, Tasks: 1001}, noTimer{})
	if err != nil {
		t.Fatal(err)
	}
	if ran.Load() != 1001 || res.Tasks != 1001 || math.Abs(res.NsPerTask*1001-float64(res.ElapsedNs)) > 1 {
		t.Errorf("ran %d, tasks %d, ns/task %v for %d ns", ran.Load(), res.Tasks, res.NsPerTask, res.ElapsedNs)
	}
	if res.Samples == 0 || res.Samples > maxSamples {
		t.Errorf("%d samples", res.Samples)
	}
}
