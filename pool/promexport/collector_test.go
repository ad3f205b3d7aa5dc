package promexport_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/shoal-go/shoal/backpressure"
	"github.com/shoal-go/shoal/pool"
	"github.com/shoal-go/shoal/pool/promexport"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var _ promexport.BreakerSource = (*backpressure.Breaker)(nil)

// fakeBreaker returns fixed figures.
type fakeBreaker struct{ s backpressure.Stats }

func (f fakeBreaker) Stats() backpressure.Stats { return f.s }

func TestNewRejectsBadInput(t *testing.T) {
	if _, err := promexport.New(nil); !errors.Is(err, promexport.ErrNilSource) {
		t.Fatalf("New(nil): %v", err)
	}
	var src promexport.Source = stubSource{}
	for _, o := range []promexport.Option{
		promexport.WithTimings(nil), promexport.WithBreaker(nil), nil,
		promexport.WithConstLabels(prometheus.Labels{"state": "x"}),
		promexport.WithConstLabels(prometheus.Labels{"le": "x"}), // the histograms' bucket label
		promexport.WithConstLabels(prometheus.Labels{"quantile": "x"}),
		promexport.WithConstLabels(prometheus.Labels{"9lives": "x"}),
		promexport.WithConstLabels(prometheus.Labels{"__name__": "x"}),
		promexport.WithConstLabels(prometheus.Labels{"pool-name": "x"}),
	} {
		if _, err := promexport.New(src, o); !errors.Is(err, promexport.ErrInvalidOption) {
			t.Fatalf("bad option: %v, want ErrInvalidOption", err)
		}
	}
}

type stubSource struct{ s pool.Stats }

func (s stubSource) Snapshot() pool.Stats { return s.s }

// TestCollectorRunningPool drives a real pool in virtual time: five tasks
// complete, two fail, one panics, then the pool is scraped while running
// and after Close.
func TestCollectorRunningPool(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var tm pool.Timings
		p, err := pool.New[string](pool.WithTimings(&tm), pool.WithWorkers(2, 2), pool.WithShards(8),
			pool.WithPanicHandler(func(any, []byte) {}))
		if err != nil {
			t.Fatal(err)
		}
		letters := make(chan int, 1)
		go func() {
			n := 0
			for range p.DeadLetters() {
				n++
			}
			letters <- n
		}()
		c, err := promexport.New(p, promexport.WithTimings(&tm),
			promexport.WithConstLabels(prometheus.Labels{"pool": "chat"}))
		if err != nil {
			t.Fatal(err)
		}
		reg := prometheus.NewPedanticRegistry()
		reg.MustRegister(c)

		ctx := context.Background()
		for i := range 5 {
			d := time.Duration(i+1) * time.Millisecond
			mustSubmit(t, p, "lobby", func(context.Context) error { time.Sleep(d); return nil })
		}
		for range 2 {
			mustSubmit(t, p, "random", func(context.Context) error { return errors.New("boom") })
		}
		mustSubmit(t, p, "random", func(context.Context) error { panic("bad task") })
		// A task that blocks keeps one worker busy and one task queued
		// behind it while we scrape.
		release := make(chan struct{})
		var releaseOnce sync.Once
		t.Cleanup(func() { // on failure too: let the pool drain and close
			releaseOnce.Do(func() { close(release) })
			_ = p.Close(ctx)
		})
		started := make(chan struct{})
		mustSubmit(t, p, "busy", func(context.Context) error { close(started); <-release; return nil })
		mustSubmit(t, p, "busy", func(context.Context) error { return nil })
		<-started
		// Virtual time: the other worker runs the lobby tasks' 15 ms, and
		// the blocked task will have run exactly 1 s when released.
		time.Sleep(time.Second)
		synctest.Wait()

		const counters = `
# HELP shoal_dead_letters_total Tasks that became dead letters, by reason.
# TYPE shoal_dead_letters_total counter
shoal_dead_letters_total{pool="chat",reason="canceled"} 0
shoal_dead_letters_total{pool="chat",reason="expired"} 0
shoal_dead_letters_total{pool="chat",reason="failed"} 2
shoal_dead_letters_total{pool="chat",reason="panicked"} 1
shoal_dead_letters_total{pool="chat",reason="shutdown"} 0
# HELP shoal_task_attempts_failed_total Task attempts that returned an error, retried or not.
# TYPE shoal_task_attempts_failed_total counter
shoal_task_attempts_failed_total{pool="chat"} 2
# HELP shoal_task_panics_total Tasks that panicked.
# TYPE shoal_task_panics_total counter
shoal_task_panics_total{pool="chat"} 1
# HELP shoal_tasks_submitted_total Tasks accepted by Submit, TrySubmit or Go.
# TYPE shoal_tasks_submitted_total counter
shoal_tasks_submitted_total{pool="chat"} 10
# HELP shoal_tasks_total Tasks finished, by outcome: completed, or dead_letter.
# TYPE shoal_tasks_total counter
shoal_tasks_total{outcome="completed",pool="chat"} 5
shoal_tasks_total{outcome="dead_letter",pool="chat"} 3
`
		if err := testutil.GatherAndCompare(reg, strings.NewReader(counters),
			"shoal_tasks_submitted_total", "shoal_tasks_total", "shoal_dead_letters_total",
			"shoal_task_attempts_failed_total", "shoal_task_panics_total"); err != nil {
			t.Fatal(err)
		}
		// The task queued behind the blocked one is waiting; the pool may
		// count the running one too until its batch ends.
		if q := gatherGauge(t, reg, "shoal_queue_depth"); q < 1 || q > 2 {
			t.Fatalf("queue depth %v while one task runs and one waits", q)
		}
		// One worker holds the blocked task: busy is at least 1, and the
		// states add up to at most the two workers.
		workers := gatherGauges(t, reg, "shoal_workers")
		if workers["busy"] < 1 || workers["busy"]+workers["idle"]+workers["spinning"] > 2 {
			t.Fatalf("workers by state: %v", workers)
		}
		releaseOnce.Do(func() { close(release) })
		synctest.Wait()
		if err := p.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if n := <-letters; n != 3 {
			t.Fatalf("%d dead letters, want 3", n)
		}
		if err := p.TrySubmit("late", func(context.Context) error { return nil }); err == nil {
			t.Fatal("TrySubmit after Close succeeded")
		}
		const after = `
# HELP shoal_rejections_total Submissions refused, by reason.
# TYPE shoal_rejections_total counter
shoal_rejections_total{pool="chat",reason="closed"} 1
shoal_rejections_total{pool="chat",reason="memory_pressure"} 0
shoal_rejections_total{pool="chat",reason="queue_full"} 0
shoal_rejections_total{pool="chat",reason="throttled"} 0
# HELP shoal_tasks_total Tasks finished, by outcome: completed, or dead_letter.
# TYPE shoal_tasks_total counter
shoal_tasks_total{outcome="completed",pool="chat"} 7
shoal_tasks_total{outcome="dead_letter",pool="chat"} 3
# HELP shoal_queue_depth Tasks accepted and not yet finished: waiting, parked for a retry, or running.
# TYPE shoal_queue_depth gauge
shoal_queue_depth{pool="chat"} 0
`
		if err := testutil.GatherAndCompare(reg, strings.NewReader(after),
			"shoal_rejections_total", "shoal_tasks_total", "shoal_queue_depth"); err != nil {
			t.Fatal(err)
		}
		// Histograms: ten attempts each; in virtual time the lobby tasks
		// ran 1..5 ms, the blocked task 1 s, the rest took no time at all.
		run := gatherHistogram(t, reg, "shoal_task_run_seconds")
		if run.GetSampleCount() != 10 || run.GetSampleSum() != 1.015 {
			t.Fatalf("run histogram: count %d sum %v, want 10 and 1.015", run.GetSampleCount(), run.GetSampleSum())
		}
		if n := len(run.GetBucket()); n != 27 {
			t.Fatalf("run histogram has %d buckets, want 27 (powers of two, 1.024µs..68.7s)", n)
		}
		// Buckets are cumulative: le=2^21 ns (≈ 2.1 ms) holds the four
		// instant attempts and the 1 ms and 2 ms ones, le=2^29 ns (≈ 0.54 s)
		// all but the 1 s one.
		want := map[float64]uint64{float64(1<<21) / 1e9: 6, float64(1<<29) / 1e9: 9, float64(1<<30) / 1e9: 10}
		for _, b := range run.GetBucket() {
			if w, ok := want[b.GetUpperBound()]; ok && b.GetCumulativeCount() != w {
				t.Fatalf("le=%v holds %d, want %d", b.GetUpperBound(), b.GetCumulativeCount(), w)
			}
		}
		wait := gatherHistogram(t, reg, "shoal_task_wait_seconds")
		if wait.GetSampleCount() != 10 {
			t.Fatalf("wait histogram count %d, want 10", wait.GetSampleCount())
		}
		if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) != 0 {
			t.Fatalf("lint: %v %v", problems, err)
		}
	})
}

func TestCollectorBreaker(t *testing.T) {
	b := fakeBreaker{backpressure.Stats{
		State: backpressure.Reject, Pressure: 0.95, Used: 950 << 20, Budget: 1000 << 20,
		Entered: [4]uint64{1, 2, 3, 0},
	}}
	c, err := promexport.New(stubSource{pool.Stats{Queued: 4, ShardQueued: []int{1, 3}}}, promexport.WithBreaker(b))
	if err != nil {
		t.Fatal(err)
	}
	const want = `
# HELP shoal_breaker_state 1 for the breaker's current state, 0 for the others.
# TYPE shoal_breaker_state gauge
shoal_breaker_state{state="normal"} 0
shoal_breaker_state{state="probe"} 0
shoal_breaker_state{state="reject"} 1
shoal_breaker_state{state="throttle"} 0
# HELP shoal_breaker_transitions_total Transitions of the breaker into each state.
# TYPE shoal_breaker_transitions_total counter
shoal_breaker_transitions_total{state="normal"} 1
shoal_breaker_transitions_total{state="probe"} 0
shoal_breaker_transitions_total{state="reject"} 3
shoal_breaker_transitions_total{state="throttle"} 2
# HELP shoal_memory_budget_bytes The breaker's memory budget.
# TYPE shoal_memory_budget_bytes gauge
shoal_memory_budget_bytes 1.048576e+09
# HELP shoal_memory_pressure_ratio Memory used over the breaker's budget.
# TYPE shoal_memory_pressure_ratio gauge
shoal_memory_pressure_ratio 0.95
# HELP shoal_queue_depth_max_shard Tasks accepted and not yet finished in the deepest shard.
# TYPE shoal_queue_depth_max_shard gauge
shoal_queue_depth_max_shard 3
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "shoal_breaker_state",
		"shoal_breaker_transitions_total", "shoal_memory_budget_bytes", "shoal_memory_pressure_ratio",
		"shoal_queue_depth_max_shard"); err != nil {
		t.Fatal(err)
	}
	// Without a breaker in the Stats or as an option, and without top
	// groups, only the pool's own metrics exist.
	plain, _ := promexport.New(stubSource{})
	if n := testutil.CollectAndCount(plain); n != 30 {
		t.Fatalf("plain collector emits %d series, want 30", n)
	}
	if n := testutil.CollectAndCount(c); n != 30+3+4+4 {
		t.Fatalf("collector with breaker emits %d series, want 41", n)
	}
	// The Stats' own breaker figures are exported without WithBreaker.
	fromStats, _ := promexport.New(stubSource{pool.Stats{Breaker: &b.s}})
	if n := testutil.CollectAndCount(fromStats, "shoal_breaker_state"); n != 4 {
		t.Fatalf("breaker from Stats: %d state series, want 4", n)
	}
}

// TestCollectorMemoryBudgetPool exports a real pool's own breaker
// (pool.WithMemoryBudget), its sampled timings scaled to task counts, its
// rates and its heaviest group.
func TestCollectorMemoryBudgetPool(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const budget = 1 << 40
		p, err := pool.New[string](pool.WithMemoryBudget(budget), pool.WithTopGroups(), pool.WithWorkers(1, 1))
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		release := make(chan struct{})
		var releaseOnce sync.Once
		t.Cleanup(func() {
			releaseOnce.Do(func() { close(release) })
			_ = p.Close(ctx)
		})
		started := make(chan struct{})
		mustSubmit(t, p, "gate", func(context.Context) error { close(started); <-release; return nil })
		<-started
		for range 40 {
			mustSubmit(t, p, "lobby", func(context.Context) error { return nil })
		}
		c, err := promexport.New(p)
		if err != nil {
			t.Fatal(err)
		}
		reg := prometheus.NewPedanticRegistry()
		reg.MustRegister(c)
		time.Sleep(time.Second)
		if v := gatherGauge(t, reg, "shoal_memory_budget_bytes"); v != budget {
			t.Fatalf("budget %v, want %v", v, float64(budget))
		}
		if st := gatherGauges(t, reg, "shoal_breaker_state"); st["normal"] != 1 {
			t.Fatalf("breaker states %v, want normal", st)
		}
		if v := gatherGauge(t, reg, "shoal_task_arrivals_per_second"); v != 41 {
			t.Fatalf("arrivals %v per second, want 41", v)
		}
		if v := gatherGauge(t, reg, "shoal_top_group_queued"); v < 16 || v > 100 {
			t.Fatalf("top group queued %v, want about 40", v)
		}
		releaseOnce.Do(func() { close(release) })
		synctest.Wait()
		for range 1000 {
			mustSubmit(t, p, "lobby", func(context.Context) error { return nil })
		}
		synctest.Wait()
		s := p.Snapshot()
		wait := gatherHistogram(t, reg, "shoal_task_wait_seconds")
		if n := s.Timings.Wait.Count(); n == 0 || wait.GetSampleCount() != n*pool.TimingSampleEvery {
			t.Fatalf("wait histogram count %d, want %d sampled × %d", wait.GetSampleCount(), n, pool.TimingSampleEvery)
		}
		if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) != 0 {
			t.Fatalf("lint: %v %v", problems, err)
		}
	})
}

func mustSubmit(t *testing.T, p *pool.Pool[string], group string, task pool.Task) {
	t.Helper()
	if err := p.Submit(context.Background(), group, task); err != nil {
		t.Fatal(err)
	}
}

func gather(t *testing.T, reg *prometheus.Registry, name string) *dto.MetricFamily {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf
		}
	}
	t.Fatalf("no metric %s", name)
	return nil
}

func gatherHistogram(t *testing.T, reg *prometheus.Registry, name string) *dto.Histogram {
	t.Helper()
	return gather(t, reg, name).GetMetric()[0].GetHistogram()
}

func gatherGauges(t *testing.T, reg *prometheus.Registry, name string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, m := range gather(t, reg, name).GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "state" {
				out[l.GetValue()] = m.GetGauge().GetValue()
			}
		}
	}
	return out
}

func gatherGauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	return gather(t, reg, name).GetMetric()[0].GetGauge().GetValue()
}

func BenchmarkCollect(b *testing.B) {
	p, err := pool.New[string]()
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = p.Close(context.Background()) }()
	c, _ := promexport.New(p)
	ch := make(chan prometheus.Metric, 64)
	for b.Loop() {
		c.Collect(ch)
		for len(ch) > 0 {
			<-ch
		}
	}
}

// TestCollectorBatcher exports a Batcher's call sizes as a histogram with
// power-of-two buckets, built from a real Batcher's calls of 1 and 3
// messages; a Pool's collector emits no such series.
func TestCollectorBatcher(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		started, release := make(chan struct{}), make(chan struct{})
		fn := func(_ context.Context, _ string, msgs []int) error {
			if msgs[0] == 0 {
				close(started)
				<-release
			}
			return nil
		}
		b, err := pool.NewBatcher(fn, pool.WithWorkers(1, 1))
		if err != nil {
			t.Fatal(err)
		}
		_ = b.Submit(context.Background(), "room", 0)
		<-started
		for i := 1; i <= 3; i++ {
			_ = b.Submit(context.Background(), "room", i)
		}
		close(release)
		if err := b.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		c, err := promexport.New(b)
		if err != nil {
			t.Fatal(err)
		}
		// Two calls: one of 1 message, one of 3 (bucket "4").
		want := `
# HELP shoal_batch_size_messages Messages per call of a pool.Batcher's function, retries included.
# TYPE shoal_batch_size_messages histogram
shoal_batch_size_messages_bucket{le="1"} 1
shoal_batch_size_messages_bucket{le="2"} 1
shoal_batch_size_messages_bucket{le="4"} 2
shoal_batch_size_messages_bucket{le="8"} 2
shoal_batch_size_messages_bucket{le="16"} 2
shoal_batch_size_messages_bucket{le="32"} 2
shoal_batch_size_messages_bucket{le="64"} 2
shoal_batch_size_messages_bucket{le="128"} 2
shoal_batch_size_messages_bucket{le="256"} 2
shoal_batch_size_messages_bucket{le="512"} 2
shoal_batch_size_messages_bucket{le="1024"} 2
shoal_batch_size_messages_bucket{le="2048"} 2
shoal_batch_size_messages_bucket{le="4096"} 2
shoal_batch_size_messages_bucket{le="8192"} 2
shoal_batch_size_messages_bucket{le="16384"} 2
shoal_batch_size_messages_bucket{le="32768"} 2
shoal_batch_size_messages_bucket{le="+Inf"} 2
shoal_batch_size_messages_sum 4
shoal_batch_size_messages_count 2
`
		if err := testutil.CollectAndCompare(c, strings.NewReader(want), "shoal_batch_size_messages"); err != nil {
			t.Fatal(err)
		}
		plain, _ := promexport.New(stubSource{})
		if n := testutil.CollectAndCount(plain, "shoal_batch_size_messages"); n != 0 {
			t.Fatalf("a source without calls emits %d batch series", n)
		}
	})
}

// TestConstLabelsAddUp: WithConstLabels given twice puts the labels of both
// on every metric, as its doc says; the later value of a name given twice
// wins.
func TestConstLabelsAddUp(t *testing.T) {
	c, err := promexport.New(stubSource{},
		promexport.WithConstLabels(prometheus.Labels{"a": "1", "b": "old"}),
		promexport.WithConstLabels(prometheus.Labels{"b": "2"}))
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan *prometheus.Desc, 64)
	go func() { c.Describe(ch); close(ch) }()
	n := 0
	for d := range ch {
		n++
		if s := d.String(); !strings.Contains(s, `a="1"`) || !strings.Contains(s, `b="2"`) {
			t.Errorf("metric without both labels: %s", s)
		}
	}
	if n == 0 {
		t.Fatal("no metrics described")
	}
}
