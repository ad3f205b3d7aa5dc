package bench

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/shoal-go/shoal/bench/internal/rss"
	"github.com/shoal-go/shoal/internal/xcore"
)

// Invariants:
//   - A latency sample is written by exactly two goroutines, in order: its
//     producer sets submitted before Submit, the task sets started when it
//     begins. Submit is synchronized before the task starts (each library's
//     hand-off), and the task's return before Runner.Wait returns, so the
//     harness reads both fields race-free after Wait.
//   - Each sample is used once per run; producers own disjoint sample slices.

// Result holds the figures of one row: one library, one workload, one number
// of producers. Field names in JSON are the command's -json schema.
type Result struct {
	// Lib is the row's name (Lib.Name), Order what it promises
	// (Order.String), Workload the workload's name.
	Lib      string `json:"lib"`
	Order    string `json:"order"`
	Workload string `json:"workload"`
	// Producers is the number of goroutines that submitted, Tasks the
	// tasks they submitted in all, Concurrency the most tasks the row may
	// run at once (the workload's).
	Producers   int `json:"producers"`
	Tasks       int `json:"tasks"`
	Concurrency int `json:"concurrency"`
	// ElapsedNs is the time from the producers' start to the last task's
	// end; NsPerTask and TasksPerSec are it per task and its inverse.
	ElapsedNs   int64   `json:"elapsed_ns"`
	NsPerTask   float64 `json:"ns_per_task"`
	TasksPerSec float64 `json:"tasks_per_sec"`
	// AllocsPerTask and BytesPerTask are the heap allocations of the whole
	// process over the same time (runtime.MemStats), per task.
	AllocsPerTask float64 `json:"allocs_per_task"`
	BytesPerTask  float64 `json:"bytes_per_task"`
	// PeakRSSBytes is the process's peak resident memory, filled in by the
	// command that runs the row in a process of its own (0 otherwise).
	PeakRSSBytes int64 `json:"peak_rss_bytes"`
	// PageFaults counts the minor page faults of the process during the
	// run (getrusage's ru_minflt): about one per 4 KiB of memory touched
	// for the first time, a cost that varies widely between machines.
	PageFaults int64 `json:"page_faults"`
	// P50Ns, P99Ns and MaxNs are percentiles of the time from a task's
	// Submit to its start, over Samples tasks spread evenly over the run.
	P50Ns   int64 `json:"p50_ns"`
	P99Ns   int64 `json:"p99_ns"`
	MaxNs   int64 `json:"max_ns"`
	Samples int   `json:"latency_samples"`
	// GCPauseNs and NumGC are the collector's pauses and cycles during the
	// run.
	GCPauseNs int64 `json:"gc_pause_ns"`
	NumGC     int64 `json:"num_gc"`
	// Errors counts the submissions the row refused (Run then returns
	// ErrRefused with the Result).
	Errors int64 `json:"errors"`
	// XcoreNs is the time to move a cache line between two CPUs, measured
	// by Run right after the run (internal/xcore; 0 with one CPU). On a
	// virtual machine it changes with the host's placement of the virtual
	// CPUs, and so do the other figures: compare rows of like XcoreNs.
	XcoreNs int64 `json:"xcore_ns"`
}

// Timer is the part of *testing.B that Measure needs, so that setup and
// teardown stay outside a Go benchmark's clock. Run passes one that does
// nothing.
type Timer interface {
	StartTimer()
	StopTimer()
}

type noTimer struct{}

func (noTimer) StartTimer() {}
func (noTimer) StopTimer()  {}

// maxSamples bounds the latency samples of one run: enough for a p99 from
// about 40 values above it, few enough that the timestamps cost under a
// nanosecond per task on average.
const maxSamples = 4096

// ErrSpec is returned for a Spec that cannot be run.
var ErrSpec = errors.New("bench: bad spec")

// ErrRefused is returned, with the Result, for a run in which the library
// refused submissions: its time covers fewer tasks than the Spec's, so the
// row is not comparable with the others.
var ErrRefused = errors.New("bench: submissions refused")

// Run builds lib's runner for spec, measures it and closes it, then measures
// the machine's cache-line transfer time (Result.XcoreNs).
func Run(lib Lib, spec Spec) (Result, error) {
	res, err := Measure(lib, spec, noTimer{})
	if err == nil {
		res.XcoreNs = xcore.Min(5, 4000).Nanoseconds()
	}
	return res, err
}

// Measure is Run with the clock of a Go benchmark: t runs only while tasks
// are submitted and run. Memory figures are runtime.MemStats deltas taken
// outside the timed region.
func Measure(lib Lib, spec Spec, t Timer) (res Result, err error) {
	w := spec.Workload
	if spec.Producers <= 0 || spec.Tasks <= 0 || w.Body == nil {
		return res, fmt.Errorf("%w: %d producers, %d tasks", ErrSpec, spec.Producers, spec.Tasks)
	}
	t.StopTimer()
	defer t.StartTimer() // testing.B expects its timer running at return; runs after Close
	Calibrate()
	r, err := lib.New(Config{Concurrency: w.Concurrency, Groups: Groups})
	if err != nil {
		return res, fmt.Errorf("%s: %w", lib.Name, err)
	}
	defer func() {
		if cerr := r.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("%s: close: %w", lib.Name, cerr)
		}
	}()

	// One task in every is sampled, and a producer samples only whole
	// windows of every tasks: at most Tasks/every <= maxSamples in all.
	every := max(1, (spec.Tasks+maxSamples-1)/maxSamples)
	prods := make([]producer, spec.Producers)
	for i := range prods {
		p := &prods[i]
		p.n = spec.Tasks / spec.Producers
		if i < spec.Tasks%spec.Producers {
			p.n++
		}
		p.rng = uint64(i+1) * 0x9e3779b97f4a7c15
		p.task = r.NewTask(w.Body)
		p.every = every
		p.samples = make([]sample, p.n/every)
		for j := range p.samples {
			s := &p.samples[j]
			body := w.Body
			s.task = r.NewTask(func() {
				s.started = now()
				body()
			})
		}
	}

	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range prods {
		p := &prods[i]
		wg.Go(func() {
			<-start
			p.submit(r)
		})
	}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)

	faults0, _ := rss.MinorFaults()
	t.StartTimer()
	t0 := time.Now()
	close(start)
	wg.Wait()
	r.Wait()
	elapsed := time.Since(t0)
	t.StopTimer()

	faults1, faultsOK := rss.MinorFaults()
	runtime.ReadMemStats(&after)

	n := float64(spec.Tasks)
	res = Result{
		Lib:           lib.Name,
		Order:         lib.Order.String(),
		Workload:      w.Name,
		Producers:     spec.Producers,
		Tasks:         spec.Tasks,
		Concurrency:   w.Concurrency,
		ElapsedNs:     elapsed.Nanoseconds(),
		NsPerTask:     float64(elapsed.Nanoseconds()) / n,
		TasksPerSec:   n / elapsed.Seconds(),
		AllocsPerTask: float64(after.Mallocs-before.Mallocs) / n,
		BytesPerTask:  float64(after.TotalAlloc-before.TotalAlloc) / n,
		GCPauseNs:     int64(after.PauseTotalNs - before.PauseTotalNs),
		NumGC:         int64(after.NumGC - before.NumGC),
	}
	if faultsOK {
		res.PageFaults = faults1 - faults0
	}
	var lat []int64
	for i := range prods {
		res.Errors += prods[i].errs
		for _, s := range prods[i].samples {
			if s.started != 0 {
				lat = append(lat, s.started-s.submitted)
			}
		}
	}
	res.P50Ns, res.P99Ns, res.MaxNs = percentiles(lat)
	res.Samples = len(lat)
	if res.Errors > 0 {
		return res, fmt.Errorf("%w: %s refused %d of %d", ErrRefused, lib.Name, res.Errors, spec.Tasks)
	}
	return res, nil
}

// producer submits its share of a run's tasks to random groups.
type producer struct {
	n       int
	rng     uint64
	task    Task
	every   int
	samples []sample
	errs    int64
}

// sample is one submit-to-start latency measurement.
type sample struct {
	submitted int64 // ns on the monotonic clock, set by the producer
	started   int64 // set by the task
	task      Task
}

func (p *producer) submit(r Runner) {
	next, countdown := 0, 0
	for range p.n {
		p.rng += 0x9e3779b97f4a7c15 // splitmix64
		z := p.rng
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		group := (z ^ (z >> 31)) % Groups
		var err error
		if countdown == 0 && next < len(p.samples) {
			s := &p.samples[next]
			next++
			countdown = p.every
			s.submitted = now()
			err = r.Submit(group, s.task)
		} else {
			err = r.Submit(group, p.task)
		}
		countdown--
		if err != nil {
			p.errs++
		}
	}
}

var epoch = time.Now()

// now reads the monotonic clock; it is never 0 after epoch.
func now() int64 { return int64(time.Since(epoch)) + 1 }

// percentiles returns the 50th and 99th percentiles and the maximum of
// values (nearest rank); zeros for none. It sorts values.
func percentiles(values []int64) (p50, p99, maxv int64) {
	if len(values) == 0 {
		return 0, 0, 0
	}
	slices.Sort(values)
	rank := func(q float64) int64 {
		i := int(q*float64(len(values))+0.999999) - 1
		return values[min(max(i, 0), len(values)-1)]
	}
	return rank(0.50), rank(0.99), values[len(values)-1]
}
