package report

import (
	"fmt"
	"io"
	"path"
	"time"

	"github.com/shoal-go/shoal/bench"
)

// Meta describes the run behind a results document.
type Meta struct {
	Command    string    // the command line that produced the results
	Date       time.Time // when it ran
	GoVersion  string    // runtime.Version()
	OS, Arch   string    // runtime.GOOS and runtime.GOARCH
	CPU        string    // model name
	NumCPU     int       // runtime.NumCPU()
	GOMAXPROCS int       // runtime.GOMAXPROCS(0)
	Quick      bool      // -quick sizes
	Count      int       // runs per row; the median one is shown
	InProcess  bool      // -inprocess: every row ran in this one process, not in a child each
	ImgDir     string    // charts' directory, relative to the document
	Charts     []string  // chart files in ImgDir
}

// Markdown writes docs/BENCHMARKS.md: how the figures were made, the charts
// and one table per workload and number of producers.
func Markdown(w io.Writer, results []bench.Result, m Meta) error {
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	p("# Benchmarks\n\n")
	p("shoal against the pools and patterns Go chat backends use instead. Every row\n")
	if m.InProcess {
		p("runs the same tasks through the same harness (`bench.Run`), all rows in one\n")
		p("process, one after another (`-inprocess`), so peak RSS, which would cover\n")
		p("every row so far, is not measured; figures of one run are comparable with\n")
		p("each other, not with another machine's.\n\n")
	} else {
		p("runs the same tasks through the same harness (`bench.Run`), each row in its own\n")
		p("child process so that peak RSS belongs to one library; figures of one run are\n")
		p("comparable with each other, not with another machine's.\n\n")
	}
	p("This file is written by the command below; do not edit it by hand.\n\n")
	p("```sh\n%s\n```\n\n", m.Command)
	p("| | |\n|---|---|\n")
	p("| date | %s |\n", m.Date.UTC().Format("2006-01-02 15:04 MST"))
	p("| machine | %s, %d CPUs (GOMAXPROCS %d), %s/%s |\n", m.CPU, m.NumCPU, m.GOMAXPROCS, m.OS, m.Arch)
	p("| Go | %s |\n", m.GoVersion)
	sizes := "full"
	if m.Quick {
		sizes = "`-quick` (smaller task counts: figures are noisier than a full run's)"
	}
	p("| sizes | %s |\n", sizes)
	if m.Count > 1 {
		where := "each in a fresh process"
		if m.InProcess {
			where = "one after another in the same process"
		}
		p("| runs | %d per row, %s, the rows of one workload and producer count taking turns (a run of each per round); the run with the median ns/task is shown, all its figures together |\n", m.Count, where)
	}
	p("\n")

	p("## Rows\n\n")
	p("The `order` column says what a row guarantees for the tasks of one group\n")
	p("(a room): **fifo** — one at a time, in submission order (shoal's `Submit`,\n")
	p("and peers behind a FIFO lane per group, `+lanes`, `+maplanes`); **exclusive** — never two\n")
	p("at once, but possibly out of order (a mutex per group, `+mutex`); **no** —\n")
	p("neither. Only fifo rows can stand in for shoal in a chat backend.\n\n")
	p("- `goroutines`: `go task()` per task; `goroutines+sync.Pool`: the same with\n")
	p("  the task carried in an object recycled through a `sync.Pool`.\n")
	p("- `chan`: workers ranging over one buffered channel of `func()`.\n")
	p("- `ants.Pool`, `ants.PoolWithFunc`, `ants.MultiPool` (one pool per CPU, or\n")
	p("  fewer so that they share the concurrency evenly; round robin), `pond` (v2):\n")
	p("  default options, sized to the workload's concurrency.\n")
	p("- `+mutex` and `+lanes` keep their mutexes and lanes in a slice indexed by\n")
	p("  group number, the cheapest form a user could write, and one that only\n")
	p("  small integer groups allow. `+maplanes` finds its lanes in 256\n")
	p("  mutex-guarded maps (by shard.Hash, shoal's hash of a group) and drops a\n")
	p("  lane when it empties: what code whose groups are names or ids must\n")
	p("  write.\n\n")

	p("## Workloads\n\n")
	p("Tasks go to %s groups chosen at random per task. A pool runs at most\n", Count(bench.Groups))
	p("*concurrency* tasks at once (raw goroutines: unbounded).\n\n")
	p("| workload | task | concurrency |\n|---|---|---:|\n")
	for _, wl := range bench.Workloads() {
		p("| %s | %s | %s |\n", wl.Name, wl.Doc, Count(wl.Concurrency))
	}
	p("\nFigures: **ns/task** is wall time from the first submission to the last\n")
	p("task's return, divided by the tasks; **tasks/s** its inverse; **allocs/task**\n")
	p("and **B/task** are `runtime.MemStats` deltas over the run (harness included:\n")
	if m.InProcess {
		p("it allocates nothing per task); **peak RSS** is not measured (`-`): the rows\n")
		p("share one process; **faults** counts that process's page faults during the\n")
		p("run (memory touched for the\n")
	} else {
		p("it allocates nothing per task); **peak RSS** is the child process's VmHWM;\n")
		p("**faults** counts its page faults during the run (memory touched for the\n")
	}
	p("first time, about one per 4 KiB: goroutine stacks, queues, heap growth);\n")
	p("**p50/p99** are submit-to-start latencies from up to 4,096 sampled tasks\n")
	p("(from just before `Submit` to the task's first instruction); **GC pause** is\n")
	p("the total stop-the-world pause during the run; **xcore** is the time to move\n")
	if m.InProcess {
		p("a cache line between two CPUs, measured in that process right after the\n")
	} else {
		p("a cache line between two CPUs, measured in the row's process right after the\n")
	}
	p("run (see below). Producers submit as fast as\n")
	p("they can, so latency here is mostly time spent queued behind earlier tasks:\n")
	p("a pool that makes producers wait inside Submit (ants hands each task to a\n")
	p("worker) shows short latencies and longer ns/task; one that queues deeply\n")
	p("(pond, shoal) the reverse.\n\n")

	if len(Summarize(results)) > 0 {
		p("## Summary\n\n")
		p("shoal's keyed `Submit` against the fastest other row that keeps per-group\n")
		p("order, and against pond, which keeps none (ratios of ns/task: below 1×\n")
		p("means shoal is faster).\n\n")
		MarkdownSummary(w, results)
		p("\n")
	}

	if len(m.Charts) > 0 {
		p("## Charts\n\n")
		for _, c := range m.Charts {
			p("![%s](%s)\n\n", c, path.Join(m.ImgDir, c))
		}
	}

	p("## Results\n\n")
	for _, s := range Sections(results) {
		p("### %s\n\n", s.Title())
		MarkdownTable(w, s)
		p("\n")
	}
	p("## Reading the figures\n\n")
	p("Before shoal existed, the same machine measured (8 producers, no-op tasks):\n")
	p("raw goroutines ≈ 1,200 ns/task, ants.Pool ≈ 700, pond v2 ≈ 170, channel\n")
	p("pool ≈ 84. The machine has few cores shared with other work: compare rows\n")
	p("of one run, quote ratios, and rerun before trusting a difference under ~20 %%.\n")
	p("On a virtual machine, also compare rows of like **xcore** only: the host may\n")
	p("run two virtual CPUs on two hyperthreads of one core (a line moves in tens\n")
	p("of nanoseconds) or on two cores (hundreds), and switch between the two within\n")
	p("seconds; every concurrent row is two to three times slower under the second.\n")
	p("The summary marks with † a ratio between two rows whose xcore differs more\n")
	p("than twofold.\n")
	p("shoal runs its defaults with the workload's concurrency as its most\n")
	p("workers: it starts one worker and grows while its workers block, so in the\n")
	p("sleep workload it starts its thousands of workers, and its groups' queues,\n")
	p("inside the measured time, where `chan` and the rows built on it\n")
	p("(`chan+mutex`, `chan+lanes`, `chan+maplanes`) start their goroutines\n")
	p("before it; ants and pond start theirs inside it, as shoal does. \"The\n")
	p("sleep row, measured\" in docs/ARCHITECTURE.md has where its time goes.\n\n")
	p("The same workloads run as Go benchmarks for `benchstat`:\n\n")
	p("```sh\ngo test ./bench -run '^$' -bench 'Noop' -count 6 > new.txt\nbenchstat old.txt new.txt\n```\n")
	return nil
}
