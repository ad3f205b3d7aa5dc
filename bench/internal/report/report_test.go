package report

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoal-go/shoal/bench"
)

func results() []bench.Result {
	var out []bench.Result
	for _, w := range []string{"noop", "burst"} {
		for _, p := range []int{1, 8} {
			for i, lib := range []string{"shoal.Submit", "pond", "chan+lanes"} {
				out = append(out, bench.Result{
					Lib: lib, Order: "fifo", Workload: w, Producers: p, Tasks: 1000,
					NsPerTask: float64(100 * (i + 1)), TasksPerSec: 1e9 / float64(100*(i+1)),
					PeakRSSBytes: int64(i+1) << 20, P50Ns: int64(1000 * (i + 1)), P99Ns: int64(50_000 * (i + 1)),
				})
			}
		}
	}
	return out
}

func TestFormats(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{Count(0), "0"}, {Count(999), "999"}, {Count(1000), "1,000"}, {Count(1234567), "1,234,567"}, {Count(-1000), "-1,000"},
		{Float(0), "0"}, {Float(0.25), "0.2"}, {Float(84.04), "84.0"}, {Float(1199.6), "1,200"},
		{Float(math.NaN()), "-"}, {Float(math.Inf(1)), "-"},
		{SI(999), "999"}, {SI(1500), "1.5k"}, {SI(8.934e6), "8.93M"}, {SI(2e9), "2.00G"},
		{Bytes(0), "-"}, {Bytes(3 << 20), "3.0 MiB"},
		{Duration(950), "950ns"}, {Duration(1234), "1.23µs"}, {Duration(35_600_000), "35.6ms"}, {Duration(2_500_000_000), "2.5s"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

func TestSectionsKeepOrder(t *testing.T) {
	secs := Sections(results())
	if len(secs) != 4 {
		t.Fatalf("%d sections, want 4", len(secs))
	}
	if s := secs[1]; s.Workload != "noop" || s.Producers != 8 || len(s.Results) != 3 || s.Results[2].Lib != "chan+lanes" {
		t.Fatalf("section 1 = %+v", s)
	}
	if got := secs[0].Title(); got != "noop, 1 producer, 1,000 tasks" {
		t.Fatalf("Title = %q", got)
	}
}

func TestTableAndMarkdown(t *testing.T) {
	var tb bytes.Buffer
	if err := Table(&tb, results()); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(tb.String(), "ns/task"); n != 4 {
		t.Fatalf("table has %d header lines, want 4:\n%s", n, tb.String())
	}
	var md bytes.Buffer
	m := Meta{Command: "go run ./bench/cmd/shoalbench -quick", Date: time.Unix(0, 0), GoVersion: "go1.26", Quick: true, ImgDir: "img", Charts: []string{NsPerTaskPNG}}
	if err := Markdown(&md, results(), m); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"```sh\ngo run ./bench/cmd/shoalbench -quick\n```", "### burst, 8 producers, 1,000 tasks", "| pond | fifo | 200 |", "![ns_per_task.png](img/ns_per_task.png)", "`-quick`"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("Markdown lacks %q", want)
		}
	}
}

func TestSummarize(t *testing.T) {
	rows := Summarize(results())
	if len(rows) != 4 {
		t.Fatalf("%d summary rows, want 4", len(rows))
	}
	r := rows[0]
	if r.Shoal != 100 || r.BestFIFO != "pond" || r.BestNs != 200 || r.VsPond != 0.5 || !r.ShoalWins {
		t.Fatalf("summary row = %+v", r)
	}
	var md bytes.Buffer
	MarkdownSummary(&md, results())
	if !strings.Contains(md.String(), "| noop, 1 producer, 1,000 tasks | 100 | pond | 200 | 0.50× | 200 | 0.50× |") {
		t.Fatalf("summary table:\n%s", md.String())
	}
	if got := Summarize([]bench.Result{{Lib: "pond", Workload: "noop"}}); len(got) != 0 {
		t.Fatalf("summary without shoal rows = %+v", got)
	}
	// Only shoal and pond: no other fifo row, which the text says with "-"
	// rather than a garbage number.
	var txt bytes.Buffer
	only := []bench.Result{
		{Lib: "shoal.Submit", Workload: "noop", Order: bench.FIFO.String(), NsPerTask: 368},
		{Lib: "pond", Workload: "noop", Order: bench.Unordered.String(), NsPerTask: 637},
	}
	if err := TextSummary(&txt, only); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(txt.String(), "9,223") || !strings.Contains(txt.String(), "0.58×") {
		t.Fatalf("summary without another fifo row:\n%s", txt.String())
	}
}

func TestCharts(t *testing.T) {
	dir := t.TempDir()
	files, err := Charts(dir, results())
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 3 {
		t.Fatalf("wrote %v, want 3 charts", files)
	}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil || !bytes.HasPrefix(b, []byte("\x89PNG")) {
			t.Errorf("%s: not a PNG (%v)", f, err)
		}
	}
	none, err := Charts(dir, []bench.Result{{Lib: "x", Workload: "cpu", Producers: 8}})
	if err != nil || len(none) != 0 {
		t.Fatalf("Charts without noop or burst rows = %v, %v; want none", none, err)
	}
}

func ExampleTable() {
	_ = Table(os.Stdout, []bench.Result{{
		Lib: "chan+lanes", Order: "fifo", Workload: "noop", Producers: 8, Tasks: 300000,
		NsPerTask: 119.3, TasksPerSec: 8.38e6, PeakRSSBytes: 11 << 20, PageFaults: 2912,
		P50Ns: 58241, P99Ns: 660948, XcoreNs: 231,
	}})
	// Output:
	// noop, 8 producers, 300,000 tasks
	//          lib  order  ns/task  tasks/s  allocs/task  B/task  peak RSS  faults     p50    p99  GC pause  xcore
	//   chan+lanes   fifo      119    8.38M            0       0  11.0 MiB    2.9k  58.2µs  661µs       0ns  231ns
}

func ExampleSections() {
	for _, s := range Sections(results()) {
		fmt.Println(s.Title(), len(s.Results))
	}
	// Output:
	// noop, 1 producer, 1,000 tasks 3
	// noop, 8 producers, 1,000 tasks 3
	// burst, 1 producer, 1,000 tasks 3
	// burst, 8 producers, 1,000 tasks 3
}

func ExampleMarkdown() {
	var buf bytes.Buffer
	_ = Markdown(&buf, results(), Meta{Command: "go run ./bench/cmd/shoalbench", Date: time.Unix(0, 0), GoVersion: "go1.26.0"})
	fmt.Println(strings.SplitN(buf.String(), "\n", 2)[0])
	// Output: # Benchmarks
}

// TestSummaryMarksMovedPlacements: a ratio between rows whose xcore times
// differ more than twofold (the host moved the CPUs between them) is
// marked, with a note under the table; rows of like placement are not.
func TestSummaryMarksMovedPlacements(t *testing.T) {
	for _, c := range []struct {
		a, b int64
		want bool
	}{
		{70, 250, true}, {250, 70, true}, // one core against two
		{200, 250, false}, {70, 140, false}, // like placements
		{0, 250, false}, {70, 0, false}, // no figure (one CPU)
	} {
		if got := PlacementsDiffer(c.a, c.b); got != c.want {
			t.Errorf("PlacementsDiffer(%d, %d) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
	rs := []bench.Result{
		{Lib: "shoal.Submit", Workload: "noop", Order: bench.FIFO.String(), NsPerTask: 200, XcoreNs: 70},
		{Lib: "chan+lanes", Workload: "noop", Order: bench.FIFO.String(), NsPerTask: 400, XcoreNs: 250},
		{Lib: "pond", Workload: "noop", Order: bench.Unordered.String(), NsPerTask: 400, XcoreNs: 75},
	}
	rows := Summarize(rs)
	if len(rows) != 1 || !rows[0].BestMoved || rows[0].PondMoved {
		t.Fatalf("summary = %+v, want the fifo row moved and pond not", rows)
	}
	var md, txt bytes.Buffer
	MarkdownSummary(&md, rs)
	if err := TextSummary(&txt, rs); err != nil {
		t.Fatal(err)
	}
	for name, out := range map[string]string{"markdown": md.String(), "text": txt.String()} {
		if !strings.Contains(out, "0.50×†") || strings.Count(out, "†") != 2 || !strings.Contains(out, "two placements") {
			t.Errorf("%s summary lacks the mark on the moved ratio only, or the note:\n%s", name, out)
		}
	}
	// Like placements: no mark, no note.
	rs[1].XcoreNs = 80
	md.Reset()
	MarkdownSummary(&md, rs)
	if strings.Contains(md.String(), "†") {
		t.Errorf("summary of like placements is marked:\n%s", md.String())
	}
}

// TestMarkdownSaysWhereRowsRan: BENCHMARKS.md says how its rows ran. From
// child processes (the default), each row in its own; with -inprocess, all
// in the command's one process, one after another, with no peak RSS (it
// would cover every row so far) and, with -count, no fresh process per run.
func TestMarkdownSaysWhereRowsRan(t *testing.T) {
	for _, c := range []struct {
		inprocess     bool
		want, wantNot []string
	}{
		{false,
			[]string{"each row in its own child process", "the child process's VmHWM", "3 per row, each in a fresh process, the rows of one workload and producer count taking turns", "measured in the row's process"},
			[]string{"-inprocess", "one process"}},
		{true,
			[]string{"`-inprocess`", "in one process", "peak RSS** is not measured", "3 per row, one after another in the same process, the rows of one workload and producer count taking turns", "measured in that process"},
			[]string{"child process", "fresh process", "own process", "in its own", "the row's process"}},
	} {
		var md bytes.Buffer
		m := Meta{Command: "go run ./bench/cmd/shoalbench", Date: time.Unix(0, 0), Count: 3, InProcess: c.inprocess}
		if err := Markdown(&md, results(), m); err != nil {
			t.Fatal(err)
		}
		text := strings.Join(strings.Fields(md.String()), " ")
		for _, w := range c.want {
			if !strings.Contains(text, w) {
				t.Errorf("inprocess %v: BENCHMARKS.md lacks %q", c.inprocess, w)
			}
		}
		for _, w := range c.wantNot {
			if strings.Contains(text, w) {
				t.Errorf("inprocess %v: BENCHMARKS.md says %q", c.inprocess, w)
			}
		}
	}
}
