package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/panjf2000/ants/v2"
	"go.uber.org/goleak"

	"github.com/shoal-go/shoal/bench"
)

// TestMain doubles as the child process: spawn re-executes the test binary
// with -child, as the command re-executes itself.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "-child" {
		if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(2)
		}
		os.Exit(0)
	}
	// ants starts a default pool when imported; release it for goleak.
	_ = ants.ReleaseTimeout(time.Second)
	goleak.VerifyTestMain(m)
}

// TestJSONRowsFromChildProcesses runs the command's main loop on a tiny
// plan: every row in a child process, one JSON object per row.
func TestJSONRowsFromChildProcesses(t *testing.T) {
	var out bytes.Buffer
	args := []string{"-json", "-count", "2", "-libs", "chan,pond+lanes", "-workload", "noop,cpu", "-producers", "1,3", "-tasks", "500"}
	if err := run(context.Background(), args, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	var rows []map[string]any
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		rows = append(rows, m)
	}
	if len(rows) != 2*2*2 {
		t.Fatalf("%d rows, want 8:\n%s", len(rows), out.String())
	}
	for _, key := range []string{"lib", "workload", "producers", "tasks", "ns_per_task", "allocs_per_task", "peak_rss_bytes", "p50_ns", "p99_ns"} {
		if _, ok := rows[0][key]; !ok {
			t.Errorf("row lacks %q: %v", key, rows[0])
		}
	}
	if rows[0]["lib"] != "chan" || rows[1]["lib"] != "pond+lanes" || rows[0]["workload"] != "noop" || rows[7]["workload"] != "cpu" {
		t.Errorf("rows out of plan order: %v / %v / %v", rows[0]["lib"], rows[1]["lib"], rows[7]["workload"])
	}
	for _, r := range rows {
		if r["tasks"].(float64) != 500 || r["peak_rss_bytes"].(float64) <= 0 || r["errors"].(float64) != 0 {
			t.Errorf("row %v: tasks, peak RSS or errors wrong", r)
		}
	}
}

func TestTableAndDocs(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	args := []string{"-libs", "chan,ants.Pool+mutex,chan+lanes", "-workload", "noop,burst", "-producers", "2", "-tasks", "300", "-write-docs", "-docs", dir}
	if err := run(context.Background(), args, &out, &errb); err != nil {
		t.Fatalf("%v\n%s", err, errb.String())
	}
	table := out.String()
	for _, want := range []string{"noop, 2 producers, 300 tasks", "burst, 2 producers", "ns/task", "p99", "chan+lanes", "fifo", "exclusive"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	md, err := os.ReadFile(filepath.Join(dir, "BENCHMARKS.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"go run ./bench/cmd/shoalbench -libs chan,ants.Pool+mutex,chan+lanes", "| lib | order | ns/task", "| chan+lanes | fifo |", "img/ns_per_task.png", "img/peak_rss.png", "img/latency.png", "go1."} {
		if !strings.Contains(string(md), want) {
			t.Errorf("BENCHMARKS.md lacks %q", want)
		}
	}
	for _, png := range []string{"ns_per_task.png", "latency.png", "peak_rss.png"} {
		b, err := os.ReadFile(filepath.Join(dir, "img", png))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, []byte("\x89PNG")) {
			t.Errorf("%s is not a PNG", png)
		}
	}
}

// TestInProcessDocsSayWhereRowsRan: -inprocess -write-docs writes a
// BENCHMARKS.md that says the rows ran in one process, not in children.
func TestInProcessDocsSayWhereRowsRan(t *testing.T) {
	dir := t.TempDir()
	o, err := parse([]string{"-inprocess", "-write-docs", "-docs", dir}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	rows := []bench.Result{{Lib: "chan", Order: "no", Workload: "cpu", Producers: 2, Tasks: 300, NsPerTask: 100}}
	if err := writeDocs(o, rows, io.Discard); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(dir, "BENCHMARKS.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Join(strings.Fields(string(md)), " ")
	if !strings.Contains(text, "all rows in one process") || strings.Contains(text, "child process") {
		t.Errorf("BENCHMARKS.md of an -inprocess run does not say the rows ran in one process:\n%s", md)
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-libs", "nope"},
		{"-workload", "nope"},
		{"-producers", "0"},
		{"-producers", "x"},
		{"-tasks", "-1"},
		{"-spin", "-5"},
		{"-count", "0"},
		{"-no-such-flag"},
		{"stray"},
	} {
		err := run(context.Background(), args, io.Discard, io.Discard)
		if err == nil {
			t.Errorf("run(%q) = nil error", args)
		}
	}
	if err := run(context.Background(), []string{"-libs", "chan", "-workload", "noop", "-producers", "1", "-tasks", "10", "-child", "-libs", "chan,pond"}, io.Discard, io.Discard); err == nil {
		t.Error("-child with two rows = nil error")
	}
}

func TestMedianPicksOneWholeRun(t *testing.T) {
	runs := []bench.Result{{NsPerTask: 300, P99Ns: 3}, {NsPerTask: 100, P99Ns: 1}, {NsPerTask: 200, P99Ns: 2}}
	if m := median(runs); m.NsPerTask != 200 || m.P99Ns != 2 {
		t.Fatalf("median = %+v, want the 200 ns run", m)
	}
	if m := median(runs[:2]); m.NsPerTask != 100 {
		t.Fatalf("median of two = %+v, want the lower", m)
	}
	if runs[0].NsPerTask != 300 {
		t.Fatal("median reordered its argument")
	}
}

// TestMeasureTakesTurns: the rows of one comparison run in rounds, one run
// of each per round, and each comparison's medians are emitted once it is
// complete; a failed run ends the measurement with its error.
func TestMeasureTakesTurns(t *testing.T) {
	noop, cpu := bench.Workload{Name: "noop"}, bench.Workload{Name: "cpu"}
	mk := func(lib string, w bench.Workload, producers int) row {
		return row{lib: bench.Lib{Name: lib}, spec: bench.Spec{Workload: w, Producers: producers, Tasks: 100}}
	}
	rows := []row{
		mk("a", noop, 1), mk("b", noop, 1),
		mk("a", noop, 8), mk("b", noop, 8), mk("c", noop, 8),
		mk("a", cpu, 8),
	}
	var order []string
	runs := map[string]int{}
	runOne := func(r row) (bench.Result, error) {
		order = append(order, r.label())
		runs[r.label()]++
		// Each row's runs take 30, 10, 20 ns/task: the median is 20.
		ns := []float64{30, 10, 20}[runs[r.label()]-1]
		return bench.Result{Lib: r.lib.Name, Workload: r.spec.Workload.Name, Producers: r.spec.Producers, NsPerTask: ns}, nil
	}
	var emitted [][]string
	emit := func(res []bench.Result) error {
		var names []string
		for _, r := range res {
			names = append(names, fmt.Sprintf("%s/%d %s", r.Workload, r.Producers, r.Lib))
		}
		emitted = append(emitted, names)
		return nil
	}
	results, err := measure(rows, 3, runOne, emit)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, group := range [][]row{rows[:2], rows[2:5], rows[5:]} {
		for range 3 {
			for _, r := range group {
				want = append(want, r.label())
			}
		}
	}
	if !slices.Equal(order, want) {
		t.Errorf("runs in the order\n%v\nwant\n%v", order, want)
	}
	wantEmitted := [][]string{{"noop/1 a", "noop/1 b"}, {"noop/8 a", "noop/8 b", "noop/8 c"}, {"cpu/8 a"}}
	if !reflect.DeepEqual(emitted, wantEmitted) {
		t.Errorf("emitted %v, want %v", emitted, wantEmitted)
	}
	if len(results) != len(rows) {
		t.Fatalf("%d results, want %d", len(results), len(rows))
	}
	for i, r := range results {
		if r.Lib != rows[i].lib.Name || r.Producers != rows[i].spec.Producers || r.NsPerTask != 20 {
			t.Errorf("result %d = %s/%d %s at %g ns/task, want %s at the median, 20", i, r.Workload, r.Producers, r.Lib, r.NsPerTask, rows[i].label())
		}
	}

	boom := errors.New("boom")
	emitted, runs = nil, map[string]int{}
	failing := func(r row) (bench.Result, error) {
		if runs[r.label()]++; r.spec.Producers == 8 && runs[r.label()] == 2 {
			return bench.Result{}, boom
		}
		return bench.Result{NsPerTask: 1}, nil
	}
	if _, err := measure(rows, 3, failing, emit); !errors.Is(err, boom) {
		t.Fatalf("measure with a failing run = %v, want boom", err)
	}
	if len(emitted) != 1 {
		t.Errorf("emitted %d comparisons before the failure, want 1 (the complete one)", len(emitted))
	}
}

func TestList(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"-list"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, l := range bench.Libs() {
		if !strings.Contains(out.String(), l.Name) {
			t.Errorf("-list lacks %s", l.Name)
		}
	}
}

func TestPlanQuickSizes(t *testing.T) {
	o, err := parse([]string{"-quick"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := plan(o)
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, w := range bench.Workloads() {
		want += len(w.Producers) * len(bench.Libs())
	}
	if len(rows) != want {
		t.Fatalf("%d rows, want %d", len(rows), want)
	}
	for _, r := range rows {
		if r.spec.Tasks != r.spec.Workload.Quick {
			t.Fatalf("%s: %d tasks, want the quick size %d", r.label(), r.spec.Tasks, r.spec.Workload.Quick)
		}
	}
	if _, err := spawn(context.Background(), row{lib: rows[0].lib, spec: bench.Spec{Workload: rows[0].spec.Workload, Producers: 0, Tasks: 10}}, 100); err == nil || errors.Is(err, context.Canceled) {
		t.Fatalf("spawn of a bad row = %v, want the child's error", err)
	}
}
