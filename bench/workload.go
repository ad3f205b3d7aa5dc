package bench

import (
	"fmt"
	"sync/atomic"
	"time"
)

// Workload is one kind of task and how hard it is driven.
type Workload struct {
	// Name identifies the workload in tables, JSON and benchmark names.
	Name string
	// Doc says what it models, for tables and docs.
	Doc string
	// Tasks is how many tasks a full run submits; Quick is the -quick size.
	Tasks, Quick int
	// Producers lists the submitter counts a full comparison runs.
	Producers []int
	// Concurrency bounds every pool (see Config).
	Concurrency int
	// Body is the task's work.
	Body func()
}

// Groups is how many groups every workload spreads its tasks over: a busy
// chat server's active rooms.
const Groups = 10_000

// Workloads returns the standard workloads in table order.
func Workloads() []Workload {
	return []Workload{
		{
			Name: "noop", Doc: "empty task: the pool's own cost per task",
			Tasks: 300_000, Quick: 40_000, Producers: []int{1, 8, 64},
			Concurrency: 64, Body: noop,
		},
		{
			Name: "cpu", Doc: "about 1 µs of CPU per task",
			Tasks: 200_000, Quick: 20_000, Producers: []int{8},
			Concurrency: 64, Body: spin1us,
		},
		{
			Name: "sleep", Doc: "1 ms sleep per task (I/O-like), 10,000 running at once",
			Tasks: 200_000, Quick: 30_000, Producers: []int{8},
			Concurrency: 10_000, Body: sleep1ms,
		},
		{
			Name: "burst", Doc: "empty tasks, 1,000,000 at once (-quick: 200,000): queues and memory at their peak",
			Tasks: 1_000_000, Quick: 200_000, Producers: []int{8},
			Concurrency: 64, Body: noop,
		},
	}
}

// WorkloadByName returns the workload called name.
func WorkloadByName(name string) (Workload, bool) {
	for _, w := range Workloads() {
		if w.Name == name {
			return w, true
		}
	}
	return Workload{}, false
}

func noop() {}

func sleep1ms() { time.Sleep(time.Millisecond) }

// spinIters is calibrated once so that spin1us takes about a microsecond.
var spinIters atomic.Int64

// spinSink keeps the spin loop from being optimised away.
var spinSink atomic.Uint64

func spin1us() { spin(spinIters.Load()) }

func spin(n int64) {
	x := uint64(n) | 1
	for range n {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
	}
	spinSink.Store(x) // publishes nothing; defeats dead-code elimination
}

// Calibrate measures the spin loop so that the cpu workload's task takes
// about 1 µs on this machine, and returns the iteration count. It is cheap
// (a few milliseconds) and safe to call more than once.
func Calibrate() int64 {
	if n := spinIters.Load(); n > 0 {
		return n
	}
	const probe = 1 << 20
	best := time.Duration(1<<63 - 1)
	for range 5 {
		start := time.Now()
		spin(probe)
		best = min(best, time.Since(start))
	}
	n := max(int64(float64(probe)*float64(time.Microsecond)/float64(best)), 1)
	spinIters.Store(n) // publishes the calibrated count to every task
	return n
}

// SetCalibration makes the cpu workload spin n iterations per task instead
// of calibrating, so that child processes run the parent's calibration and
// every row does the same work. n must be positive.
func SetCalibration(n int64) error {
	if n <= 0 {
		return fmt.Errorf("%w: calibration %d, want > 0", ErrSpec, n)
	}
	spinIters.Store(n) // publishes the count to every task
	return nil
}

// Spec is one cell of the comparison: a workload driven by some producers.
type Spec struct {
	// Workload is what each task does and how many may run at once.
	Workload Workload
	// Producers is the number of goroutines that submit; Tasks is how many
	// tasks they submit in all, shared out evenly.
	Producers int
	Tasks     int
}

// String names the spec like a sub-benchmark: "noop/producers=8".
func (s Spec) String() string {
	return fmt.Sprintf("%s/producers=%d", s.Workload.Name, s.Producers)
}
