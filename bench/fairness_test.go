package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// fakeShoalbench writes a shell script that prints, per call, one
// shoalbench table whose shoal.Submit row has the next ns/task and xcore
// of runs (each "NS XCORE"), and returns its path. tail is shell code run
// after the row (more output, an exit status).
func fakeShoalbench(t *testing.T, name string, runs []string, tail string) string {
	t.Helper()
	dir := t.TempDir()
	values := filepath.Join(dir, "values")
	if err := os.WriteFile(values, []byte(strings.Join(runs, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	script := fmt.Sprintf(`#!/bin/sh
state=%[1]q/count
n=$(cat "$state" 2>/dev/null || echo 0)
n=$((n + 1))
echo "$n" >"$state"
set -- $(sed -n "${n}p" %[2]q)
echo "noop, 8 producers, 1,000 tasks"
echo "           lib  order  ns/task  tasks/s  allocs/task  B/task  peak RSS  faults     p50    p99  GC pause   xcore"
echo "  shoal.Submit   fifo  $1  2.75M  0.1  11.9  14.1 MiB  1.0k  1.07ms  4.31ms  157µs  $2"
%[3]s
`, dir, values, tail)
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// pairSh runs bench/scripts/pair.sh and returns its stdout, its stderr and
// its error.
func pairSh(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("pair.sh needs bash, flock and awk")
	}
	for _, tool := range []string{"bash", "flock", "awk", "sed"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s", tool)
		}
	}
	cmd := exec.Command("bash", append([]string{"scripts/pair.sh"}, args...)...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

// TestPairMedianAndQuartilesOfAnEvenCount: for ratios symmetric about 1,
// the median is 1 and the quartiles (nearest rank) lie equally far on
// either side; the script must not report the lower middle value as the
// median nor take its upper quartile one rank low, both of which favour
// build B.
func TestPairMedianAndQuartilesOfAnEvenCount(t *testing.T) {
	for _, tc := range []struct {
		b    []string // B's ns/task against A's constant 100
		want string
	}{
		{[]string{"90", "110"}, "median B/A 1.000, quartiles 0.900 and 1.100, 2 pairs"},
		{[]string{"80", "90", "110", "120"}, "median B/A 1.000, quartiles 0.800 and 1.200, 4 pairs"},
		{[]string{"80", "90", "100", "110", "120"}, "median B/A 1.000, quartiles 0.900 and 1.100, 5 pairs"},
		{[]string{"100", "100", "100", "100", "100", "100"}, "median B/A 1.000, quartiles 1.000 and 1.000, 6 pairs"},
	} {
		var aRuns, bRuns []string
		for _, v := range tc.b {
			aRuns = append(aRuns, "100 250ns")
			bRuns = append(bRuns, v+" 250ns")
		}
		a := fakeShoalbench(t, "a", aRuns, "")
		b := fakeShoalbench(t, "b", bRuns, "")
		out, errs, err := pairSh(t, fmt.Sprint(len(tc.b)), a, b)
		if err != nil {
			t.Fatalf("pair.sh: %v\n%s%s", err, out, errs)
		}
		if !strings.Contains(out, tc.want) {
			t.Errorf("B at %v against A at 100: got\n%s\nwant %q", tc.b, out, tc.want)
		}
	}
}

// TestPairReadsXcoreInEveryUnit: the table prints xcore as a duration,
// "1.20µs" as well as "700ns"; 1,200 ns and 700 ns are within twofold, so
// the pair counts, while 100 ns and 1.5 µs are not.
func TestPairReadsXcoreInEveryUnit(t *testing.T) {
	a := fakeShoalbench(t, "a", []string{"100 1.20µs", "100 100ns"}, "")
	b := fakeShoalbench(t, "b", []string{"110 700ns", "110 1.50µs"}, "")
	out, errs, err := pairSh(t, "2", a, b)
	if err != nil {
		t.Fatalf("pair.sh: %v\n%s%s", err, out, errs)
	}
	if !strings.Contains(out, "pair 1: A 100 ns/task, B 110 ns/task, B/A 1.100") {
		t.Errorf("xcore 1.20µs against 700ns: the pair was not counted:\n%s", out)
	}
	if !strings.Contains(out, "pair 2: A 100 ns/task (xcore 100 ns), B 110 ns/task (xcore 1500 ns): the CPUs moved") {
		t.Errorf("xcore 100ns against 1.50µs: the pair was not left out:\n%s", out)
	}
}

// TestPairReportsAFailingBinary: a shoalbench that fails (a misspelt
// flag) makes pair.sh fail with the binary's own message, not exit
// without a word.
func TestPairReportsAFailingBinary(t *testing.T) {
	a := fakeShoalbench(t, "a", []string{"100 250ns"}, "")
	b := fakeShoalbench(t, "b", []string{"100 250ns"}, `echo 'shoalbench: -workload: no workload "slep" (see -list)' >&2; exit 2`)
	out, errs, err := pairSh(t, "1", a, b, "-workload", "slep")
	if err == nil {
		t.Fatalf("pair.sh succeeded with a failing binary:\n%s", out)
	}
	if !strings.Contains(errs, `no workload "slep"`) {
		t.Errorf("pair.sh failed (%v) without the binary's message; stdout:\n%s\nstderr:\n%s", err, out, errs)
	}
}

// TestPairReadsTheWholeOutput: the binary writes after the row (the
// summary, in several writes); the script must not close the pipe after
// the row, or the binary dies of SIGPIPE and the script stops with it.
// The fake writes enough after the row to fill any pipe buffer.
func TestPairReadsTheWholeOutput(t *testing.T) {
	tail := `i=0; while [ $i -lt 5000 ]; do echo "shoal.Submit vs  ns/task  fastest other fifo row  ns/task  ratio  pond ns/task  ratio $i"; i=$((i + 1)); done`
	a := fakeShoalbench(t, "a", []string{"100 250ns"}, tail)
	b := fakeShoalbench(t, "b", []string{"105 250ns"}, tail)
	out, errs, err := pairSh(t, "1", a, b)
	if err != nil {
		t.Fatalf("pair.sh: %v\n%s%s", err, out, errs)
	}
	if !strings.Contains(out, "median B/A 1.050") {
		t.Errorf("got\n%s", out)
	}
}

// TestMultiPoolHoldsTheWorkloadsConcurrency: ants.MultiPool's pools
// together hold exactly the workload's concurrency, whatever GOMAXPROCS;
// at 3 CPUs, 64 workers must not become 3 pools of 22 (66), nor 10,000
// become 10,002.
func TestMultiPoolHoldsTheWorkloadsConcurrency(t *testing.T) {
	prev := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(prev) })
	for _, procs := range []int{1, 2, 3, 6, 7, 16} {
		runtime.GOMAXPROCS(procs)
		for _, c := range []int{1, 5, 64, 10_000} {
			r, err := newAntsMultiRunner(Config{Concurrency: c, Groups: 1})
			if err != nil {
				t.Fatal(err)
			}
			if got := r.(*antsMultiRunner).p.Cap(); got != c {
				t.Errorf("GOMAXPROCS %d, concurrency %d: the MultiPool holds %d workers", procs, c, got)
			}
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestFIFORowsKeepOrderAtTheBenchmarksScale: the rows the tables mark fifo
// keep each producer's order per group at the comparison's own shape
// (10,000 groups, 64 workers, 8 producers on random groups), not only at
// TestOrderGuarantees' small one.
func TestFIFORowsKeepOrderAtTheBenchmarksScale(t *testing.T) {
	const producers, perProducer = 8, 5000
	for _, lib := range Libs() {
		if lib.Order != FIFO {
			continue
		}
		t.Run(lib.Name, func(t *testing.T) {
			r, err := lib.New(Config{Concurrency: 64, Groups: Groups})
			if err != nil {
				t.Fatal(err)
			}
			var (
				last    [producers][]int32 // per group, written by the group's running task
				running = make([]atomic.Int32, Groups)
				bad     atomic.Int64
			)
			for p := range last {
				last[p] = make([]int32, Groups)
			}
			var wg sync.WaitGroup
			for p := range producers {
				wg.Go(func() {
					rng := uint64(p+1) * 0x9e3779b97f4a7c15
					for i := range perProducer {
						rng ^= rng << 13
						rng ^= rng >> 7
						rng ^= rng << 17
						g := rng % Groups
						seq := int32(i + 1)
						task := r.NewTask(func() {
							if running[g].Add(1) != 1 || seq <= last[p][g] {
								bad.Add(1)
							}
							last[p][g] = seq
							running[g].Add(-1)
						})
						if err := r.Submit(g, task); err != nil {
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
			if n := bad.Load(); n != 0 {
				t.Errorf("%d tasks overlapped or overtook an earlier task of their producer and group", n)
			}
		})
	}
}

// TestPercentilesAreNearestRank: p50 and p99 are the values of rank
// ceil(q·n), for every sample count the harness can have.
func TestPercentilesAreNearestRank(t *testing.T) {
	for n := 1; n <= maxSamples+64; n++ {
		v := make([]int64, n)
		for i := range v {
			v[i] = int64(n - i) // n..1, unsorted
		}
		p50, p99, mx := percentiles(v)
		if want50, want99 := int64((50*n+99)/100), int64((99*n+99)/100); p50 != want50 || p99 != want99 || mx != int64(n) {
			t.Fatalf("%d samples: p50 %d, p99 %d, max %d; want %d, %d, %d", n, p50, p99, mx, want50, want99, n)
		}
	}
}

// TestLatencySamplesStayWithinTheBound: Result.Samples is "up to 4,096"
// (maxSamples) whatever the tasks and producers: 8,000 tasks must not
// sample every task, nor 40,000 tasks from 64 producers take 4,480.
func TestLatencySamplesStayWithinTheBound(t *testing.T) {
	lib, _ := LibByName("chan")
	for _, s := range []struct{ producers, tasks int }{{1, 8000}, {64, 40_000}, {8, maxSamples + 1}, {3, 1001}} {
		res, err := Measure(lib, Spec{Workload: small("noop", 4), Producers: s.producers, Tasks: s.tasks}, noTimer{})
		if err != nil {
			t.Fatal(err)
		}
		if res.Samples == 0 || res.Samples > maxSamples {
			t.Errorf("%d producers, %d tasks: %d latency samples, want 1 to %d", s.producers, s.tasks, res.Samples, maxSamples)
		}
	}
}
