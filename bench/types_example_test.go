package bench_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/shoal-go/shoal/bench"
)

// A Config sizes a Runner: here at most 2 messages delivered at once,
// spread over 10 rooms.
func ExampleConfig() {
	lib, _ := bench.LibByName("shoal.Submit")
	r, err := lib.New(bench.Config{Concurrency: 2, Groups: 10})
	if err != nil {
		fmt.Println(err)
		return
	}
	var delivered atomic.Int64
	task := r.NewTask(func() { delivered.Add(1) })
	for msg := range uint64(50) {
		_ = r.Submit(msg%10, task) // room msg%10
	}
	r.Wait()
	fmt.Println(delivered.Load(), r.Close())
	// Output: 50 <nil>
}

// A Lib is one row of the comparison; the wrappers derive new rows from a
// peer, e.g. ants with a lane per room so that each room keeps its order.
func ExampleLib() {
	ants, ok := bench.LibByName("ants.Pool")
	if !ok {
		fmt.Println("no such row")
		return
	}
	for _, l := range []bench.Lib{ants, bench.WithLanes(ants)} {
		r, err := l.New(bench.Config{Concurrency: 2, Groups: 4})
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(l.Name, l.Order, r.Close())
	}
	// Output:
	// ants.Pool no <nil>
	// ants.Pool+lanes fifo <nil>
}

// A Result is one row of the tables and of the -json output; the timings
// vary from run to run, the counts do not.
func ExampleResult() {
	lib, _ := bench.LibByName("shoal.Submit")
	w, _ := bench.WorkloadByName("noop")
	res, err := bench.Run(lib, bench.Spec{Workload: w, Producers: 1, Tasks: 1000})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.Lib, res.Workload, res.Tasks, res.Errors, res.NsPerTask > 0)
	js, _ := json.Marshal(res)
	fmt.Println(strings.Contains(string(js), `"tasks":1000`))
	// Output:
	// shoal.Submit noop 1000 0 true
	// true
}

// A Spec picks a workload, its producers and its size; a smaller Tasks is
// a quick run of the same cell.
func ExampleSpec() {
	w, _ := bench.WorkloadByName("burst")
	spec := bench.Spec{Workload: w, Producers: 4, Tasks: w.Quick}
	fmt.Println(spec, spec.Tasks < w.Tasks)
	// Output: burst/producers=4 true
}

// A Task is prepared once and submitted for every message: the harness
// allocates nothing per submission, so the figures are the library's.
func ExampleTask() {
	lib, _ := bench.LibByName("chan+lanes")
	r, err := lib.New(bench.Config{Concurrency: 2, Groups: 3})
	if err != nil {
		fmt.Println(err)
		return
	}
	var perRoom [3]atomic.Int64
	tasks := make([]bench.Task, len(perRoom))
	for room := range tasks {
		tasks[room] = r.NewTask(func() { perRoom[room].Add(1) })
	}
	for msg := range 30 {
		room := msg % 3
		_ = r.Submit(uint64(room), tasks[room])
	}
	r.Wait()
	_ = r.Close()
	fmt.Println(perRoom[0].Load(), perRoom[1].Load(), perRoom[2].Load())
	// Output: 10 10 10
}

// trace is a Timer that records what Measure does with the clock.
type trace []string

func (t *trace) StartTimer() { *t = append(*t, "start") }
func (t *trace) StopTimer()  { *t = append(*t, "stop") }

// Measure stops the clock for setup and teardown and runs it only while the
// tasks are submitted and run; it leaves it running, as testing.B expects.
func ExampleTimer() {
	lib, _ := bench.LibByName("chan")
	w, _ := bench.WorkloadByName("noop")
	var t trace
	if _, err := bench.Measure(lib, bench.Spec{Workload: w, Producers: 1, Tasks: 100}, &t); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(t)
	// Output: [stop start stop start]
}

// A Workload of one's own: a task that renders a short chat message, run
// through the same harness as the built-in ones.
func ExampleWorkload() {
	render := bench.Workload{
		Name:        "render",
		Doc:         "format one chat message",
		Concurrency: 4,
		Body: func() {
			var b strings.Builder
			b.WriteString("[lobby] ana: ")
			b.WriteString("hello")
		},
	}
	lib, _ := bench.LibByName("shoal.Submit")
	res, err := bench.Run(lib, bench.Spec{Workload: render, Producers: 2, Tasks: 500})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.Workload, res.Producers, res.Tasks, res.Concurrency, res.Errors)
	// Output: render 2 500 4 0
}
