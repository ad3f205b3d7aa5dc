package report

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/shoal-go/shoal/bench"
)

// columns of the text and Markdown tables, in order.
var columns = []string{"lib", "order", "ns/task", "tasks/s", "allocs/task", "B/task", "peak RSS", "faults", "p50", "p99", "GC pause", "xcore"}

func cells(r bench.Result) []string {
	return []string{
		r.Lib,
		r.Order,
		Float(r.NsPerTask),
		SI(r.TasksPerSec),
		Float(r.AllocsPerTask),
		Float(r.BytesPerTask),
		Bytes(r.PeakRSSBytes),
		SI(float64(r.PageFaults)),
		Duration(r.P50Ns),
		Duration(r.P99Ns),
		Duration(r.GCPauseNs),
		Duration(r.XcoreNs),
	}
}

// Section is the results of one workload at one number of producers, in
// row order.
type Section struct {
	// Workload, Producers and Tasks are the spec every row of the section
	// ran; Results holds the rows, in the order they ran.
	Workload  string
	Producers int
	Tasks     int
	Results   []bench.Result
}

// Title reads "noop, 8 producers, 300,000 tasks".
func (s Section) Title() string {
	p := "producers"
	if s.Producers == 1 {
		p = "producer"
	}
	return fmt.Sprintf("%s, %d %s, %s tasks", s.Workload, s.Producers, p, Count(s.Tasks))
}

// Sections groups results by workload and producers, keeping first-seen order.
func Sections(results []bench.Result) []Section {
	var out []Section
	index := map[[2]any]int{}
	for _, r := range results {
		k := [2]any{r.Workload, r.Producers}
		i, ok := index[k]
		if !ok {
			i = len(out)
			index[k] = i
			out = append(out, Section{Workload: r.Workload, Producers: r.Producers, Tasks: r.Tasks})
		}
		out[i].Results = append(out[i].Results, r)
	}
	return out
}

// Table writes results as aligned text, one block per section.
func Table(w io.Writer, results []bench.Result) error {
	for i, s := range Sections(results) {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintln(w, s.Title())
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, strings.Join(columns, "\t")+"\t")
		for _, r := range s.Results {
			fmt.Fprintln(tw, strings.Join(cells(r), "\t")+"\t")
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

// MarkdownTable writes one section as a Markdown table.
func MarkdownTable(w io.Writer, s Section) {
	fmt.Fprintln(w, "| "+strings.Join(columns, " | ")+" |")
	fmt.Fprintln(w, "|---|---|"+strings.Repeat("---:|", len(columns)-2))
	for _, r := range s.Results {
		fmt.Fprintln(w, "| "+strings.Join(cells(r), " | ")+" |")
	}
}

// Float formats a per-task figure: one decimal below 100, none from there
// on (a value that rounds to 100.0 prints "100"), "-" for NaN or Inf.
func Float(v float64) string {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return "-"
	case v == 0:
		return "0"
	}
	s := strconv.FormatFloat(v, 'f', 1, 64) // as it would print
	if r, _ := strconv.ParseFloat(s, 64); math.Abs(r) < 100 {
		if r == 0 {
			return "0.0" // not "-0.0"
		}
		return s
	}
	return group(strconv.FormatFloat(math.Round(v), 'f', 0, 64))
}

// Count formats n with thousands separators: 1,000,000.
func Count(n int) string { return group(strconv.Itoa(n)) }

// group puts thousands separators into a string of digits with an optional
// leading minus sign.
func group(s string) string {
	sign := ""
	if strings.HasPrefix(s, "-") {
		sign, s = "-", s[1:]
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return sign + s
}

// SI formats a rate with a k/M/G suffix: 8.93M; "-" for NaN or Inf. A value
// that would round to 1000 in a unit takes the next one (999,950 is 1.00M,
// not 1000.0k); a negative value takes the unit of its magnitude. Below 10
// it keeps two significant digits (0.25, 9.9), so that a slow rate does
// not read as none; below 0.001 it is 0.
func SI(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "-"
	}
	a := math.Abs(v)
	var s string
	switch {
	case a >= 999.995e6:
		s = fmt.Sprintf("%.2fG", a/1e9)
	case a >= 999.95e3:
		s = fmt.Sprintf("%.2fM", a/1e6)
	case a >= 999.5:
		s = fmt.Sprintf("%.1fk", a/1e3)
	case a >= 9.95:
		s = fmt.Sprintf("%.0f", a)
	case a >= 0.001:
		s = fmt.Sprintf("%.2g", a)
	default:
		s = "0"
	}
	if v < 0 && s != "0" {
		s = "-" + s
	}
	return s
}

// Bytes formats a size in MiB, or "-" when unknown (0).
func Bytes(n int64) string {
	if n <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

// Duration formats nanoseconds with three significant digits: 1.23ms; from
// 1,000 s on, whole seconds (12345s), never an exponent. A negative value
// takes the unit of its magnitude.
func Duration(ns int64) string {
	// A value that rounds to 1000 at three digits takes the next unit.
	v := float64(ns)
	switch a := math.Abs(v); {
	case a < 1e3:
		return fmt.Sprintf("%dns", ns)
	case a < 999.5e3:
		return fmt.Sprintf("%.3gµs", v/1e3)
	case a < 999.5e6:
		return fmt.Sprintf("%.3gms", v/1e6)
	case a < 999.5e9:
		return fmt.Sprintf("%.3gs", v/1e9)
	default:
		return fmt.Sprintf("%.0fs", v/1e9)
	}
}
