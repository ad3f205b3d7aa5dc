package report

import (
	"fmt"
	"io"
	"math"
	"text/tabwriter"

	"github.com/shoal-go/shoal/bench"
)

// Rows the summary compares.
const (
	shoalRow = "shoal.Submit"
	pondRow  = "pond"
)

// SummaryRow is one line of the summary: how shoal's keyed Submit compares
// in one section with the fastest other row that keeps order and with pond.
type SummaryRow struct {
	Section   string  // the section's title (Section.Title)
	Shoal     float64 // ns/task of shoal.Submit
	BestFIFO  string  // the fastest other fifo row
	BestNs    float64 // its ns/task
	Pond      float64 // ns/task of pond (unordered)
	VsBest    float64 // Shoal / BestNs: below 1 means shoal is faster
	VsPond    float64 // Shoal / Pond
	ShoalWins bool    // shoal.Submit is the fastest fifo row
	// BestMoved and PondMoved say that the row compared ran with the CPUs
	// placed otherwise than shoal.Submit's (see PlacementsDiffer): its
	// ratio compares two placements, not two pools.
	BestMoved, PondMoved bool
}

// PlacementsDiffer reports whether two rows ran with the CPUs placed
// differently: their xcore times (bench.Result.XcoreNs) differ more than
// twofold. A host that runs two virtual CPUs on one core's hyperthreads
// moves a line between them in tens of nanoseconds, on two cores in
// hundreds, and may switch between the two during a run; every concurrent
// row is then two to three times slower or faster. Rows without the figure
// (one CPU) never differ.
func PlacementsDiffer(a, b int64) bool {
	if a <= 0 || b <= 0 {
		return false
	}
	return a > 2*b || b > 2*a
}

// placementNote follows a summary with a ratio marked moved.
const placementNote = "† the host moved the CPUs between the two rows (xcore differs more than twofold): the ratio compares two placements, not two pools."

// Summarize returns a SummaryRow for every section that has a shoal.Submit
// row. Ratios are NaN where the other row is absent.
func Summarize(results []bench.Result) []SummaryRow {
	var out []SummaryRow
	for _, s := range Sections(results) {
		row := SummaryRow{Section: s.Title(), BestNs: math.NaN(), Pond: math.NaN(), Shoal: math.NaN()}
		var shoalX, bestX, pondX int64
		for _, r := range s.Results {
			switch {
			case r.Lib == shoalRow:
				row.Shoal, shoalX = r.NsPerTask, r.XcoreNs
			case r.Lib == pondRow:
				row.Pond, pondX = r.NsPerTask, r.XcoreNs
			}
			if r.Lib != shoalRow && r.Order == bench.FIFO.String() && (math.IsNaN(row.BestNs) || r.NsPerTask < row.BestNs) {
				row.BestFIFO, row.BestNs, bestX = r.Lib, r.NsPerTask, r.XcoreNs
			}
		}
		if math.IsNaN(row.Shoal) {
			continue
		}
		row.BestMoved = PlacementsDiffer(shoalX, bestX)
		row.PondMoved = PlacementsDiffer(shoalX, pondX)
		if row.BestFIFO == "" {
			row.BestFIFO = "-"
		}
		row.VsBest = row.Shoal / row.BestNs
		row.VsPond = row.Shoal / row.Pond
		row.ShoalWins = math.IsNaN(row.BestNs) || row.Shoal <= row.BestNs
		out = append(out, row)
	}
	return out
}

// MarkdownSummary writes the summary as a Markdown table; nothing when no
// section has a shoal.Submit row.
func MarkdownSummary(w io.Writer, results []bench.Result) {
	rows := Summarize(results)
	if len(rows) == 0 {
		return
	}
	fmt.Fprintln(w, "| workload | shoal.Submit ns/task | fastest other fifo row | its ns/task | shoal ÷ it | pond ns/task (unordered) | shoal ÷ pond |")
	fmt.Fprintln(w, "|---|---:|---|---:|---:|---:|---:|")
	for _, r := range rows {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s |\n",
			r.Section, Float(r.Shoal), r.BestFIFO, Float(r.BestNs), ratio(r.VsBest, r.BestMoved), Float(r.Pond), ratio(r.VsPond, r.PondMoved))
	}
	if anyMoved(rows) {
		fmt.Fprintf(w, "\n%s\n", placementNote)
	}
}

// ratio formats a ratio of ns/task, marked † when its rows ran with the
// CPUs placed differently.
func ratio(v float64, moved bool) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "-"
	}
	if moved {
		return fmt.Sprintf("%.2f×†", v)
	}
	return fmt.Sprintf("%.2f×", v)
}

func anyMoved(rows []SummaryRow) bool {
	for _, r := range rows {
		if r.BestMoved || r.PondMoved {
			return true
		}
	}
	return false
}

// TextSummary writes the summary as aligned text; nothing when no section
// has a shoal.Submit row.
func TextSummary(w io.Writer, results []bench.Result) error {
	rows := Summarize(results)
	if len(rows) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "shoal.Submit vs\tns/task\tfastest other fifo row\tns/task\tratio\tpond ns/task\tratio")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			r.Section, Float(r.Shoal), r.BestFIFO, Float(r.BestNs), ratio(r.VsBest, r.BestMoved), Float(r.Pond), ratio(r.VsPond, r.PondMoved))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if anyMoved(rows) {
		_, err := fmt.Fprintln(w, placementNote)
		return err
	}
	return nil
}
