package bench

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/shoal-go/shoal/pool"
)

// smallIsolation is a scenario that runs in 300 ms of fake time: 1,000
// groups, 10 of them slow, and a hot group offered twice what it can run.
func smallIsolation(scheduler string, hot bool) IsolationConfig {
	cfg := DefaultIsolationConfig()
	cfg.Scheduler = scheduler
	cfg.Hot = hot
	cfg.Groups = 1_000
	cfg.Slow = 10
	cfg.FastRate = 2_000
	cfg.HotRate = 2_000
	cfg.Submitters = 8
	cfg.Warmup = 50 * time.Millisecond
	cfg.Duration = 250 * time.Millisecond
	cfg.LaneSize = 16
	return cfg
}

// Every scheduler runs every accepted task once, in its group's order; the
// counts add up; only the hot group's submitter gives up on tasks.
func TestIsolationAccountsForEveryTask(t *testing.T) {
	for _, s := range IsolationSchedulers() {
		for _, hot := range []bool{false, true} {
			name := s + "/plain"
			if hot {
				name = s + "/hot"
			}
			t.Run(name, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					cfg := smallIsolation(s, hot)
					res, err := RunIsolation(t.Context(), cfg)
					if err != nil {
						t.Fatal(err)
					}
					checkCounts(t, cfg, res)
				})
			})
		}
	}
}

// With spinning goroutines filling the CPUs (real time: spinners never
// block, so a synctest bubble would never advance its clock), every
// scheduler still runs every task once, in order, and the spinners are
// gone when the run returns (goleak).
func TestIsolationWithSpinners(t *testing.T) {
	for _, s := range IsolationSchedulers() {
		t.Run(s, func(t *testing.T) {
			cfg := smallIsolation(s, false)
			cfg.Warmup, cfg.Duration = 20*time.Millisecond, 100*time.Millisecond
			cfg.Spinners = 2
			res, err := RunIsolation(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			checkCounts(t, cfg, res)
		})
	}
}

func checkCounts(t *testing.T, cfg IsolationConfig, res IsolationResult) {
	t.Helper()
	offered := 0
	hotOffered := 0
	for i, evs := range planIsolation(cfg) {
		offered += len(evs)
		if cfg.Hot && i == cfg.Submitters {
			hotOffered = len(evs)
		}
	}
	switch {
	case res.Scheduler != cfg.Scheduler || res.Hot != cfg.Hot:
		t.Errorf("result of %s (hot %v), ran %s (hot %v)", res.Scheduler, res.Hot, cfg.Scheduler, cfg.Hot)
	case res.Offered != offered || res.Accepted+res.Refused != res.Offered:
		t.Errorf("offered %d (schedule: %d), accepted %d, refused %d", res.Offered, offered, res.Accepted, res.Refused)
	case res.Lost != 0 || res.Ran != res.Accepted || res.DeadLetters != 0:
		t.Errorf("accepted %d, ran %d, lost %d, dead letters %d", res.Accepted, res.Ran, res.Lost, res.DeadLetters)
	case res.OutOfOrder != 0 || res.Overlaps != 0:
		t.Errorf("%d out of order, %d overlaps", res.OutOfOrder, res.Overlaps)
	case res.Measured == 0 || res.Max < res.P999 || res.P999 < res.P99 || res.P99 < res.P50:
		t.Errorf("%d waits measured: p50 %v p99 %v p999 %v max %v", res.Measured, res.P50, res.P99, res.P999, res.Max)
	case res.LateP99 > res.P99 || res.QueueP99 > res.P99 || res.LateP99 < 0 || res.QueueP99 < 0:
		// Each task's lateness and queue time are parts of its wait.
		t.Errorf("p99 wait %v, late %v, queue %v", res.P99, res.LateP99, res.QueueP99)
	}
	if !cfg.Hot {
		if res.Refused != 0 || res.HotRan != 0 {
			t.Errorf("plain run: %d refused, %d hot tasks ran", res.Refused, res.HotRan)
		}
		return
	}
	// Only the hot group's tasks may be refused.
	if res.HotRan == 0 || res.Refused > hotOffered || res.HotRan != hotOffered-res.Refused {
		t.Errorf("hot group: %d offered, %d ran; %d refused in all", hotOffered, res.HotRan, res.Refused)
	}
}

// raw starts each task on a goroutine of its own after a random delay: it
// keeps no order, and shows that the checker notices.
type raw struct{ tasks chan struct{} }

func (r *raw) submit(_ context.Context, _ uint64, t pool.Task) error {
	r.tasks <- struct{}{}
	go func() {
		defer func() { <-r.tasks }()
		time.Sleep(rand.N(time.Millisecond))
		_ = t(context.Background())
	}()
	return nil
}

func (r *raw) close(context.Context) (int, error) {
	for range cap(r.tasks) {
		r.tasks <- struct{}{}
	}
	return 0, nil
}

func TestIsolationCheckerCatchesDisorder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := smallIsolation(IsolationReference, false)
		cfg.Groups, cfg.Slow = 4, 1
		res, err := runIsolation(t.Context(), cfg, &raw{tasks: make(chan struct{}, 1<<16)})
		if err != nil {
			t.Fatal(err)
		}
		if res.OutOfOrder == 0 || res.Overlaps == 0 {
			t.Errorf("raw goroutines over 4 busy groups: %d out of order, %d overlaps; the checker missed them", res.OutOfOrder, res.Overlaps)
		}
		if res.Lost != 0 {
			t.Errorf("accepted %d, ran %d", res.Accepted, res.Ran)
		}
	})
}

// inline runs each task in Submit: what is left to allocate is the harness's.
type inline struct{}

func (inline) submit(ctx context.Context, _ uint64, t pool.Task) error { return t(ctx) }
func (inline) close(context.Context) (int, error)                      { return 0, nil }

// Submitting and running a task costs the harness no allocation: a
// submitter allocates its timer, once.
func TestIsolationHarnessAllocatesNothingPerTask(t *testing.T) {
	cfg := smallIsolation(IsolationReference, false)
	cfg.FastTask, cfg.SlowTask = 0, 0
	r := &isoRun{cfg: cfg, sched: inline{}, groups: make([]isoGroup, cfg.Groups+1), subs: planIsolation(cfg)}
	r.epoch = time.Now().Add(-time.Hour) // every task is due: no waiting
	evs := r.subs[0]
	tasks := make([]pool.Task, len(evs))
	for j := range evs {
		tasks[j] = r.task(&evs[j])
	}
	few := testing.AllocsPerRun(5, func() { r.submitAll(t.Context(), evs[:10], tasks[:10], 0) })
	all := testing.AllocsPerRun(5, func() { r.submitAll(t.Context(), evs, tasks, 0) })
	if all != few {
		t.Errorf("%v allocations for 10 tasks, %v for %d: the harness allocates per task", few, all, len(evs))
	}
	if want := 6 * (10 + len(evs)); int(r.ran.Load()) != want {
		t.Errorf("ran %d, want %d", r.ran.Load(), want)
	}
}

// The schedule is reproducible, each group has one submitter, tasks are
// numbered 1, 2, 3, ... per group in due order, and the rates come out
// close to the configured ones.
func TestIsolationPlan(t *testing.T) {
	cfg := smallIsolation(IsolationShoal, true)
	a, b := planIsolation(cfg), planIsolation(cfg)
	if len(a) != cfg.Submitters+1 {
		t.Fatalf("%d submitters, want %d and the hot one", len(a), cfg.Submitters)
	}
	window := int64(cfg.Warmup + cfg.Duration)
	owner := map[uint32]int{}
	next := map[uint32]uint32{}
	var counts [3]int
	for i := range a {
		if len(a[i]) != len(b[i]) {
			t.Fatalf("submitter %d: %d then %d events from one seed", i, len(a[i]), len(b[i]))
		}
		for j := range a[i] {
			ev, ev2 := &a[i][j], &b[i][j]
			if ev.due != ev2.due || ev.group != ev2.group || ev.seq != ev2.seq || ev.kind != ev2.kind {
				t.Fatalf("submitter %d event %d differs between two plans of one seed", i, j)
			}
			if ev.due < 0 || ev.due >= window || (j > 0 && ev.due < a[i][j-1].due) {
				t.Fatalf("submitter %d event %d due at %d: outside [0, %d) or before the previous one", i, j, ev.due, window)
			}
			if o, ok := owner[ev.group]; ok && o != i {
				t.Fatalf("group %d submitted by %d and %d", ev.group, o, i)
			}
			owner[ev.group] = i
			if next[ev.group]++; ev.seq != next[ev.group] {
				t.Fatalf("group %d: task numbered %d, want %d", ev.group, ev.seq, next[ev.group])
			}
			counts[ev.kind]++
		}
	}
	secs := (cfg.Warmup + cfg.Duration).Seconds()
	for kind, want := range [3]float64{
		isoFast: cfg.FastRate * secs,
		isoSlow: float64(cfg.Slow) * cfg.SlowRate * secs,
		isoHot:  cfg.HotRate * secs,
	} {
		if got := float64(counts[kind]); got < 0.85*want || got > 1.15*want {
			t.Errorf("kind %d: %v tasks, want about %v", kind, got, want)
		}
	}
}

func TestIsolationBadConfig(t *testing.T) {
	for name, change := range map[string]func(*IsolationConfig){
		"scheduler":    func(c *IsolationConfig) { c.Scheduler = "nope" },
		"groups":       func(c *IsolationConfig) { c.Groups = 0 },
		"slow":         func(c *IsolationConfig) { c.Slow = c.Groups },
		"submitters":   func(c *IsolationConfig) { c.Submitters = 0 },
		"duration":     func(c *IsolationConfig) { c.Duration = 0 },
		"warmup":       func(c *IsolationConfig) { c.Warmup = -time.Second },
		"task":         func(c *IsolationConfig) { c.FastTask = -1 },
		"rate":         func(c *IsolationConfig) { c.SlowRate = -1 },
		"nan":          func(c *IsolationConfig) { c.FastRate = c.FastRate * 0 / 0 },
		"lane":         func(c *IsolationConfig) { c.LaneSize = -1 },
		"spinners":     func(c *IsolationConfig) { c.Spinners = -1 },
		"spinners max": func(c *IsolationConfig) { c.Spinners = maxSpinners + 1 },
		"drain":        func(c *IsolationConfig) { c.DrainTimeout = 0 },
		"too many":     func(c *IsolationConfig) { c.Duration = 24 * time.Hour },
		"hot too big":  func(c *IsolationConfig) { c.Hot, c.HotRate = true, 1e12 },
	} {
		cfg := DefaultIsolationConfig()
		change(&cfg)
		if _, err := RunIsolation(t.Context(), cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: err = %v, want ErrConfig", name, err)
		}
	}
}

// A full reference lane makes only its own submitter wait; room frees it,
// and ctx ends the wait without accepting the task.
func TestReferenceLaneBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newReference(2)
		release := make(chan struct{})
		var order []int
		block := func(context.Context) error { <-release; return nil }
		note := func(i int) pool.Task { return func(context.Context) error { order = append(order, i); return nil } }
		ctx := t.Context()
		for i, task := range []pool.Task{block, note(1), note(2)} {
			if err := r.submit(ctx, 7, task); err != nil {
				t.Fatalf("submit %d: %v", i, err)
			}
		}
		other := make(chan struct{})
		if err := r.submit(ctx, 8, func(context.Context) error { close(other); return nil }); err != nil {
			t.Fatalf("another group: %v", err)
		}
		<-other // runs while group 7 is blocked
		short, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if err := r.submit(short, 7, note(3)); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("submit to a full lane: %v, want the context's deadline", err)
		}
		done := make(chan error)
		go func() { done <- r.submit(ctx, 7, note(4)) }()
		synctest.Wait()
		close(release)
		if err := <-done; err != nil {
			t.Fatalf("submit after room: %v", err)
		}
		if _, err := r.close(ctx); err != nil {
			t.Fatal(err)
		}
		if want := []int{1, 2, 4}; !slices.Equal(order, want) {
			t.Errorf("ran %v, want %v", order, want)
		}
		if err := r.submit(ctx, 7, note(5)); !errors.Is(err, errRefClosed) {
			t.Errorf("submit after close: %v", err)
		}
		if len(r.lanes) != 0 || len(r.free) != 2 {
			t.Errorf("after close: %d lanes, %d free; want 0 and 2", len(r.lanes), len(r.free))
		}
	})
}

func TestRefLaneGrowsInOrder(t *testing.T) {
	l := &refLane{buf: make([]pool.Task, 4)}
	got := []int{}
	next := 0
	for round := range 3 {
		for range 3 + 5*round {
			i := next
			next++
			l.push(func(context.Context) error { got = append(got, i); return nil })
		}
		for range 2 + 2*round {
			_ = l.pop()(context.Background())
		}
	}
	for l.n > 0 {
		_ = l.pop()(context.Background())
	}
	for i, v := range got {
		if v != i {
			t.Fatalf("popped %v, want 0, 1, 2, ...", got)
		}
	}
	if len(got) != next {
		t.Fatalf("popped %d of %d", len(got), next)
	}
}

func TestNearestRank(t *testing.T) {
	v := make([]int64, 1000)
	for i := range v {
		v[i] = int64(i + 1)
	}
	for q, want := range map[float64]int64{0.5: 500, 0.99: 990, 0.999: 999, 1: 1000, 0: 1} {
		if got := nearestRank(v, q); got != want {
			t.Errorf("nearestRank(1..1000, %v) = %d, want %d", q, got, want)
		}
	}
	if got := nearestRank(nil, 0.99); got != 0 {
		t.Errorf("nearestRank(nil) = %d", got)
	}
}
