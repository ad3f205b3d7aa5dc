package bench_test

import (
	"fmt"
	"sync/atomic"

	"github.com/shoal-go/shoal/bench"
)

// A Runner used directly: prepare a task once, submit it many times, wait.
func ExampleRunner() {
	lib, _ := bench.LibByName("shoal.Submit")
	r, err := lib.New(bench.Config{Concurrency: 4, Groups: 100})
	if err != nil {
		fmt.Println(err)
		return
	}
	var ran atomic.Int64
	task := r.NewTask(func() { ran.Add(1) })
	for g := range uint64(1000) {
		if err := r.Submit(g%100, task); err != nil {
			fmt.Println(err)
		}
	}
	r.Wait()
	fmt.Println(ran.Load(), r.Close())
	// Output: 1000 <nil>
}

// Which rows keep per-group order.
func ExampleLibs() {
	for _, l := range bench.Libs() {
		if l.Order == bench.FIFO {
			fmt.Println(l.Name)
		}
	}
	// Output:
	// shoal.Submit
	// chan+lanes
	// ants.Pool+lanes
	// pond+lanes
	// chan+maplanes
	// ants.Pool+maplanes
	// pond+maplanes
}

func ExampleOrder() {
	fmt.Println(bench.Unordered, bench.Exclusive, bench.FIFO)
	// Output: no exclusive fifo
}

func ExampleWorkloads() {
	for _, w := range bench.Workloads() {
		fmt.Println(bench.Spec{Workload: w, Producers: w.Producers[0], Tasks: w.Quick})
	}
	// Output:
	// noop/producers=1
	// cpu/producers=8
	// sleep/producers=8
	// burst/producers=8
}

// stopwatch is a Timer that counts how often Measure starts the clock.
type stopwatch struct{ starts int }

func (s *stopwatch) StartTimer() { s.starts++ }
func (s *stopwatch) StopTimer()  {}

// Measure with a Timer, as the Go benchmarks call it with their *testing.B.
func ExampleMeasure() {
	lib, _ := bench.LibByName("pond")
	w, _ := bench.WorkloadByName("cpu")
	var sw stopwatch
	res, err := bench.Measure(lib, bench.Spec{Workload: w, Producers: 2, Tasks: 500}, &sw)
	fmt.Println(res.Workload, res.Tasks, sw.starts, err)
	// Output: cpu 500 2 <nil>
}

// A peer wrapped with a mutex per group: tasks of a group never overlap.
func ExampleWithMutex() {
	ants, _ := bench.LibByName("ants.Pool")
	l := bench.WithMutex(ants)
	fmt.Println(l.Name, l.Order)
	// Output: ants.Pool+mutex exclusive
}
