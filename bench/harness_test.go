package bench

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

// small returns a workload with test-sized concurrency: the race detector
// allows at most 8,128 live goroutines.
func small(name string, concurrency int) Workload {
	w, ok := WorkloadByName(name)
	if !ok {
		panic("no workload " + name)
	}
	w.Concurrency = concurrency
	return w
}

// TestEveryRowRunsEveryTaskOnce drives each row through Run with a body that
// counts, and checks the harness's figures.
func TestEveryRowRunsEveryTaskOnce(t *testing.T) {
	const tasks, producers = 3000, 3
	for _, lib := range Libs() {
		t.Run(lib.Name, func(t *testing.T) {
			var ran atomic.Int64
			w := small("noop", 8)
			w.Body = func() { ran.Add(1) }
			res, err := Run(lib, Spec{Workload: w, Producers: producers, Tasks: tasks})
			if err != nil {
				t.Fatal(err)
			}
			if got := ran.Load(); got != tasks {
				t.Fatalf("ran %d tasks, want %d", got, tasks)
			}
			if res.Tasks != tasks || res.Producers != producers || res.Lib != lib.Name || res.Order != lib.Order.String() {
				t.Fatalf("result identifies %s/%s/%d/%d", res.Lib, res.Order, res.Producers, res.Tasks)
			}
			if res.Errors != 0 || res.NsPerTask <= 0 || res.TasksPerSec <= 0 {
				t.Fatalf("errors %d, ns/task %v, tasks/s %v", res.Errors, res.NsPerTask, res.TasksPerSec)
			}
			if res.Samples == 0 || res.P50Ns <= 0 || res.P99Ns < res.P50Ns || res.MaxNs < res.P99Ns {
				t.Fatalf("latency: %d samples, p50 %d, p99 %d, max %d", res.Samples, res.P50Ns, res.P99Ns, res.MaxNs)
			}
			if multi := runtime.GOMAXPROCS(0) > 1; multi != (res.XcoreNs > 0) {
				t.Fatalf("xcore %d ns with GOMAXPROCS %d", res.XcoreNs, runtime.GOMAXPROCS(0))
			}
		})
	}
}

// TestOrderGuarantees checks what each row's Order promises: fifo rows start
// the tasks of a group one at a time in submission order, exclusive rows
// never overlap them. Several producers share groups; order is checked per
// (producer, group), the order each producer's Submit calls returned.
func TestOrderGuarantees(t *testing.T) {
	const producers, groups, perProducer = 4, 16, 2000
	for _, lib := range Libs() {
		if lib.Order == Unordered {
			continue
		}
		t.Run(lib.Name, func(t *testing.T) {
			r, err := lib.New(Config{Concurrency: 8, Groups: groups})
			if err != nil {
				t.Fatal(err)
			}
			var (
				running [groups]atomic.Int32
				last    [producers][groups]int // written only by the group's running task
				overlap atomic.Int64
				reorder atomic.Int64
			)
			for p := range last {
				for g := range last[p] {
					last[p][g] = -1
				}
			}
			var wg sync.WaitGroup
			for p := range producers {
				wg.Go(func() {
					for i := range perProducer {
						g := (i*7 + p) % groups
						seq := i
						task := r.NewTask(func() {
							if running[g].Add(1) != 1 { // claims the group
								overlap.Add(1)
							}
							if lib.Order == FIFO {
								if seq <= last[p][g] {
									reorder.Add(1)
								}
								last[p][g] = seq
							}
							running[g].Add(-1) // releases the group
						})
						if err := r.Submit(uint64(g), task); err != nil {
							t.Error(err)
						}
					}
				})
			}
			wg.Wait()
			r.Wait()
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			if n := overlap.Load(); n != 0 {
				t.Errorf("%d tasks overlapped another task of their group", n)
			}
			if n := reorder.Load(); n != 0 {
				t.Errorf("%d tasks started before an earlier task of their producer and group", n)
			}
		})
	}
}

// refuser is an inner runner that refuses every submission.
type refuser struct{ tracked }

var errRefused = errors.New("refused")

func (r *refuser) Submit(uint64, Task) error { return errRefused }
func (r *refuser) Close() error              { return nil }

// TestRunFailsRefusedRow: a row whose library refused submissions is an
// error, not a figure: its time covers fewer tasks than the others', and a
// table would rank it by them (as the fastest, for a library that refuses
// everything).
func TestRunFailsRefusedRow(t *testing.T) {
	w, ok := WorkloadByName("noop")
	if !ok {
		t.Fatal("no noop workload")
	}
	lib := Lib{Name: "refuser", Order: FIFO, New: func(Config) (Runner, error) { return &refuser{}, nil }}
	res, err := Run(lib, Spec{Workload: w, Producers: 2, Tasks: 100})
	if !errors.Is(err, ErrRefused) || res.Errors != 100 {
		t.Fatalf("Run: %v, %d errors; want ErrRefused with 100", err, res.Errors)
	}
}

// TestRefusedDrainLosesNothing checks both lane wrappers when the inner
// pool refuses a lane's drain: the refused task does not run, is not
// counted, and its lane is left as if it had never been used.
func TestRefusedDrainLosesNothing(t *testing.T) {
	refuserLib := Lib{Name: "refuser", New: func(Config) (Runner, error) { return &refuser{}, nil }}
	for _, tc := range []struct {
		wrap func(Lib) Lib
		left func(Runner) string // what the refusal left in the lanes, "" if nothing
	}{
		{WithLanes, func(r Runner) string {
			if l := &r.(*lanesRunner).lanes[1]; l.running || len(l.tasks.q) != 0 {
				return fmt.Sprintf("lane left running=%v with %d queued", l.running, len(l.tasks.q))
			}
			return ""
		}},
		{WithMapLanes, func(r Runner) string {
			shards := r.(*mapLanesRunner).shards
			for i := range shards {
				if n := len(shards[i].lanes); n != 0 {
					return fmt.Sprintf("shard %d keeps %d lanes", i, n)
				}
			}
			return ""
		}},
	} {
		lib := tc.wrap(refuserLib)
		t.Run(lib.Name, func(t *testing.T) {
			r, err := lib.New(Config{Concurrency: 1, Groups: 4})
			if err != nil {
				t.Fatal(err)
			}
			ran := 0
			task := r.NewTask(func() { ran++ })
			if err := r.Submit(1, task); !errors.Is(err, errRefused) {
				t.Fatalf("Submit error = %v, want the inner runner's refusal", err)
			}
			r.Wait() // returns: the refused task is not counted
			if ran != 0 {
				t.Fatalf("refused task ran %d times", ran)
			}
			if msg := tc.left(r); msg != "" {
				t.Fatal(msg)
			}
		})
	}
}

// TestMapLanesFollowGroupsWithWork checks that a map lane lives only while
// its group has work, and is reused afterwards.
func TestMapLanesFollowGroupsWithWork(t *testing.T) {
	lib, _ := LibByName("chan+maplanes")
	r, err := lib.New(Config{Concurrency: 4, Groups: 64})
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	block := r.NewTask(func() { <-release })
	for g := range uint64(64) {
		if err := r.Submit(g, block); err != nil {
			t.Fatal(err)
		}
	}
	mr := r.(*mapLanesRunner)
	count := func() (live, free int) {
		for i := range mr.shards {
			sh := &mr.shards[i]
			sh.mu.Lock()
			live, free = live+len(sh.lanes), free+len(sh.free)
			sh.mu.Unlock()
		}
		return live, free
	}
	if live, _ := count(); live != 64 {
		t.Fatalf("%d lanes for 64 groups with work", live)
	}
	close(release)
	r.Wait()
	if live, free := count(); live != 0 || free != 64 {
		t.Fatalf("after the drain: %d lanes in the maps, %d free; want 0 and 64", live, free)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestBadInput(t *testing.T) {
	for _, lib := range Libs() {
		for _, c := range []Config{{Concurrency: 0, Groups: 1}, {Concurrency: 1, Groups: 0}, {Concurrency: -3, Groups: -1}} {
			if r, err := lib.New(c); err == nil {
				_ = r.Close()
				t.Errorf("%s.New(%+v) = nil error", lib.Name, c)
			}
		}
	}
	lib, _ := LibByName("chan")
	for _, s := range []Spec{
		{Workload: small("noop", 1), Producers: 0, Tasks: 10},
		{Workload: small("noop", 1), Producers: 1, Tasks: 0},
		{Workload: Workload{Name: "empty", Concurrency: 1}, Producers: 1, Tasks: 1},
	} {
		if _, err := Run(lib, s); !errors.Is(err, ErrSpec) {
			t.Errorf("Run(%v) error = %v, want ErrSpec", s, err)
		}
	}
	if _, ok := LibByName("no-such-lib"); ok {
		t.Error("LibByName found a row that does not exist")
	}
	if _, ok := WorkloadByName("no-such-workload"); ok {
		t.Error("WorkloadByName found a workload that does not exist")
	}
}

func TestNamesAreBenchmarkSafe(t *testing.T) {
	seen := map[string]bool{}
	for _, l := range Libs() {
		for _, c := range l.Name {
			if c == ' ' || c == '/' || c == '=' {
				t.Errorf("row name %q holds %q", l.Name, c)
			}
		}
		if seen[l.Name] {
			t.Errorf("row name %q twice", l.Name)
		}
		seen[l.Name] = true
	}
}

func TestPercentiles(t *testing.T) {
	v := make([]int64, 100)
	for i := range v {
		v[i] = int64(100 - i) // 100..1, unsorted
	}
	p50, p99, maxv := percentiles(v)
	if p50 != 50 || p99 != 99 || maxv != 100 {
		t.Fatalf("percentiles = %d, %d, %d; want 50, 99, 100", p50, p99, maxv)
	}
	if a, b, c := percentiles(nil); a != 0 || b != 0 || c != 0 {
		t.Fatalf("percentiles(nil) = %d, %d, %d", a, b, c)
	}
	if a, b, c := percentiles([]int64{7}); a != 7 || b != 7 || c != 7 {
		t.Fatalf("percentiles([7]) = %d, %d, %d", a, b, c)
	}
}

func TestCalibrate(t *testing.T) {
	if n := Calibrate(); n <= 0 {
		t.Fatalf("Calibrate = %d", n)
	}
	if a, b := Calibrate(), Calibrate(); a != b {
		t.Fatalf("Calibrate changed its answer: %d then %d", a, b)
	}
}

// TestSubmitPathAllocations checks that the harness adds no allocation per
// submission: for a pool that allocates nothing itself (chan, and lanes once
// their queues have grown), a Submit costs zero allocations.
func TestSubmitPathAllocations(t *testing.T) {
	for _, name := range []string{"chan", "chan+lanes", "chan+maplanes"} {
		lib, _ := LibByName(name)
		r, err := lib.New(Config{Concurrency: 2, Groups: 8})
		if err != nil {
			t.Fatal(err)
		}
		task := r.NewTask(noop)
		g := uint64(0)
		submit := func() {
			g++
			if err := r.Submit(g%8, task); err != nil {
				t.Fatal(err)
			}
		}
		for range 10_000 { // let lane queues reach their working size
			submit()
		}
		if a := testing.AllocsPerRun(10_000, submit); a != 0 {
			t.Errorf("%s: %v allocations per Submit, want 0", name, a)
		}
		r.Wait()
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func ExampleRun() {
	lib, _ := LibByName("chan+lanes")
	w, _ := WorkloadByName("noop")
	res, err := Run(lib, Spec{Workload: w, Producers: 2, Tasks: 10_000})
	if err != nil {
		fmt.Println(err)
		return
	}
	// res.NsPerTask, res.P99Ns, ... vary from run to run.
	fmt.Println(res.Lib, res.Order, res.Workload, res.Tasks, res.Errors)
	// Output: chan+lanes fifo noop 10000 0
}

func ExampleWithMapLanes() {
	chanPool, _ := LibByName("chan")
	ordered := WithMapLanes(chanPool)
	r, _ := ordered.New(Config{Concurrency: 4, Groups: 2})
	var log []int // tasks of group 7 run one at a time: no lock needed
	for i := range 5 {
		_ = r.Submit(7, r.NewTask(func() { log = append(log, i) }))
	}
	r.Wait()
	_ = r.Close()
	fmt.Println(ordered.Name, ordered.Order, log)
	// Output: chan+maplanes fifo [0 1 2 3 4]
}

func ExampleWithLanes() {
	chanPool, _ := LibByName("chan")
	ordered := WithLanes(chanPool)
	r, _ := ordered.New(Config{Concurrency: 4, Groups: 2})
	var log []int // tasks of group 0 run one at a time: no lock needed
	for i := range 5 {
		_ = r.Submit(0, r.NewTask(func() { log = append(log, i) }))
	}
	r.Wait()
	_ = r.Close()
	fmt.Println(ordered.Name, ordered.Order, log)
	// Output: chan+lanes fifo [0 1 2 3 4]
}
