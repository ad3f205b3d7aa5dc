package pool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func newPool[K interface{ ~int | ~string }](t testing.TB, opts ...Option) *Pool[K] {
	t.Helper()
	p, err := New[K](opts...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Attempts longer than the threshold are counted and reported with their
// group, shard, attempt and run time; shorter ones are not; the option
// composes with WithTimings, and a panic in the callback is contained.
func TestSlowTask(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var (
			mu   sync.Mutex
			seen []SlowTask[string]
		)
		var tm Timings
		p := newPool[string](t, WithWorkers(1, 2), WithTimings(&tm),
			WithRetry(RetryPolicy{MaxAttempts: 2, Base: time.Millisecond}),
			WithSlowTask(10*time.Millisecond, func(s SlowTask[string]) {
				mu.Lock()
				seen = append(seen, s)
				mu.Unlock()
				if s.Group == "panics" {
					panic("callback")
				}
			}))
		sleep := func(d time.Duration) Task {
			return func(context.Context) error { time.Sleep(d); return nil }
		}
		fails := true
		submit := func(g string, task Task) {
			if err := p.Submit(context.Background(), g, task); err != nil {
				t.Fatal(err)
			}
		}
		submit("fast", sleep(10*time.Millisecond)) // not longer than d
		submit("slow", sleep(25*time.Millisecond))
		submit("panics", sleep(11*time.Millisecond))
		// Slow on its first attempt only.
		submit("retried", func(context.Context) error {
			if fails {
				fails = false
				time.Sleep(time.Second)
				return errors.New("again")
			}
			return nil
		})
		if err := p.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		s := p.Snapshot()
		if s.SlowTasks != 3 || s.Completed != 4 {
			t.Fatalf("SlowTasks %d, Completed %d; want 3 and 4", s.SlowTasks, s.Completed)
		}
		want := map[string]SlowTask[string]{
			"slow":    {Group: "slow", Shard: p.ShardOf("slow"), Attempt: 1, Run: 25 * time.Millisecond},
			"panics":  {Group: "panics", Shard: p.ShardOf("panics"), Attempt: 1, Run: 11 * time.Millisecond},
			"retried": {Group: "retried", Shard: p.ShardOf("retried"), Attempt: 1, Run: time.Second},
		}
		if len(seen) != len(want) {
			t.Fatalf("callback saw %+v, want %+v", seen, want)
		}
		for _, s := range seen {
			if s != want[s.Group] {
				t.Errorf("callback saw %+v, want %+v", s, want[s.Group])
			}
		}
		// WithTimings still sees every attempt (5: one retry).
		if n := tm.Snapshot().Run.Count(); n != 5 {
			t.Fatalf("Timings recorded %d attempts, want 5", n)
		}
	})
}

// Without a callback the option only counts, for any group type.
func TestSlowTaskCountOnly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPool[int](t, WithSlowTask[string](time.Millisecond, nil))
		for g := range 3 {
			if err := p.Submit(context.Background(), g, func(context.Context) error {
				time.Sleep(2 * time.Millisecond)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if n := p.Snapshot().SlowTasks; n != 3 {
			t.Fatalf("SlowTasks = %d, want 3", n)
		}
	})
}

func TestSlowTaskBadInput(t *testing.T) {
	for name, o := range map[string]Option{
		"zero":     WithSlowTask[int](0, nil),
		"negative": WithSlowTask(-time.Second, func(SlowTask[int]) {}),
		"type":     WithSlowTask(time.Second, func(SlowTask[string]) {}),
	} {
		p, err := New[int](o)
		if p != nil || !errors.Is(err, ErrInvalidOption) {
			t.Errorf("%s: New = %v, %v; want an error matching ErrInvalidOption", name, p, err)
		}
	}
}

// labelProbe returns the labels of the goroutine profile record whose stack
// holds labelProbe: those of the goroutine calling it.
func labelProbe(t *testing.T) string {
	var b bytes.Buffer
	if err := pprof.Lookup("goroutine").WriteTo(&b, 1); err != nil {
		t.Error(err)
		return ""
	}
	for rec := range strings.SplitSeq(b.String(), "\n\n") {
		if strings.Contains(rec, "pool.labelProbe") {
			return labelsOf(rec)
		}
	}
	t.Error("no goroutine record holds labelProbe")
	return ""
}

// labelsOf returns the "# labels:" line of a goroutine profile record ("" if
// it has none).
func labelsOf(rec string) string {
	for line := range strings.SplitSeq(rec, "\n") {
		if l, ok := strings.CutPrefix(line, "# labels: "); ok {
			return l
		}
	}
	return ""
}

// A task runs with the shard label on its goroutine, as a goroutine profile taken inside it shows; once the task is
// done no goroutine carries them.
func TestProfilerLabels(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPool[string](t, WithWorkers(1, 1), WithProfilerLabels())
		var got []string
		for _, g := range []string{"room-7", "room-8", "room-7"} {
			if err := p.Submit(context.Background(), g, func(context.Context) error {
				got = append(got, labelProbe(t))
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
		}
		for i, g := range []string{"room-7", "room-8", "room-7"} {
			want := fmt.Sprintf(`"shard":"%d"`, p.ShardOf(g))
			if !strings.Contains(got[i], want) {
				t.Errorf("task %d of %s ran with labels %q, want %s", i, g, got[i], want)
			}
		}
		// The worker is parked: the labels are gone with the task.
		var b bytes.Buffer
		if err := pprof.Lookup("goroutine").WriteTo(&b, 1); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(b.String(), `"shard":`) {
			t.Errorf("a goroutine keeps a shard label after its task:\n%s", b.String())
		}
		if err := p.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}

// probeLabels runs a task of group on p that reads its profiler labels,
// closes p and returns them.
func probeLabels(t *testing.T, p *Pool[string], group string) string {
	t.Helper()
	var got string
	if err := p.Submit(context.Background(), group, func(context.Context) error {
		got = labelProbe(t)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	return got
}

// Without WithProfilerLabels a task runs with the labels its worker had.
func TestProfilerLabelsOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPool[string](t, WithWorkers(1, 1))
		if got := probeLabels(t, p, "room-7"); got != "" {
			t.Fatalf("labels %q without WithProfilerLabels", got)
		}
	})
}

// Shard labels and slow-task checks cost no allocation per task once each
// shard has run; nor does the pool without them.
func TestObserveDoesNotAllocate(t *testing.T) {
	for name, opts := range map[string][]Option{
		"off":             nil,
		"labels and slow": {WithProfilerLabels(), WithSlowTask[int](time.Hour, nil)},
	} {
		t.Run(name, func(t *testing.T) {
			p := newPool[int](t, append([]Option{WithWorkers(1, 1), WithShards(16)}, opts...)...)
			defer p.Close(context.Background())
			var wg sync.WaitGroup
			task := Task(func(context.Context) error { wg.Done(); return nil })
			ctx := context.Background()
			run := func(g int) {
				wg.Add(1)
				if err := p.Submit(ctx, g, task); err != nil {
					t.Fatal(err)
				}
				wg.Wait()
			}
			for g := range 1000 { // every shard's labels built
				run(g)
			}
			g := 0
			allocs := testing.AllocsPerRun(1000, func() {
				g++
				run(g % 1000)
			})
			if allocs != 0 {
				t.Fatalf("%v allocations per task", allocs)
			}
		})
	}
}

// The per-task cost of the observing options, side by side: no-op tasks
// from 8 submitters over benchGroups groups, as BenchmarkSubmit.
func BenchmarkObserve(b *testing.B) {
	for _, c := range []struct {
		name string
		opts []Option
	}{
		{"off", nil},
		{"labels", []Option{WithProfilerLabels()}},
		{"slowtask", []Option{WithSlowTask[int](time.Second, nil)}},
	} {
		b.Run(c.name, func(b *testing.B) { benchShoal(b, 8, 0, c.opts...) })
	}
}
