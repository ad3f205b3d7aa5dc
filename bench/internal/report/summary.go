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
	Section   string
	Shoal     float64 // ns/task of shoal.Submit
	BestFIFO  string  // the fastest other fifo row
	BestNs    float64
	Pond      float64 // ns/task of pond (unordered)
	VsBest    float64 // Shoal / BestNs: below 1 means shoal is faster
	VsPond    float64 // Shoal / Pond
	ShoalWins bool    // shoal.Submit is the fastest fifo row
}

// Summarize returns a SummaryRow for every section that has a shoal.Submit
// row. Ratios are NaN where the other row is absent.
func Summarize(results []bench.Result) []SummaryRow {
	var out []SummaryRow
	for _, s := range Sections(results) {
		row := SummaryRow{Section: s.Title(), BestNs: math.NaN(), Pond: math.NaN(), Shoal: math.NaN()}
		for _, r := range s.Results {
			switch {
			case r.Lib == shoalRow:
				row.Shoal = r.NsPerTask
			case r.Lib == pondRow:
				row.Pond = r.NsPerTask
			}
			if r.Lib != shoalRow && r.Order == bench.FIFO.String() && (math.IsNaN(row.BestNs) || r.NsPerTask < row.BestNs) {
				row.BestFIFO, row.BestNs = r.Lib, r.NsPerTask
			}
		}
		if math.IsNaN(row.Shoal) {
			continue
		}
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
			r.Section, Float(r.Shoal), r.BestFIFO, Float(r.BestNs), ratio(r.VsBest), Float(r.Pond), ratio(r.VsPond))
	}
}

func ratio(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "-"
	}
	return fmt.Sprintf("%.2f×", v)
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
			r.Section, Float(r.Shoal), r.BestFIFO, Float(r.BestNs), ratio(r.VsBest), Float(r.Pond), ratio(r.VsPond))
	}
	return tw.Flush()
}
