package report

import (
	"fmt"
	"image/color"
	"math"
	"path/filepath"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/shoal-go/shoal/bench"
)

// Chart file names written by Charts, relative to its directory.
const (
	NsPerTaskPNG = "ns_per_task.png"
	LatencyPNG   = "latency.png"
	MemoryPNG    = "peak_rss.png"
)

// Charts writes the PNG charts of results into dir and returns the files
// written, relative to dir: ns per task by library (no-op workload, one bar
// per number of producers), submit-to-start latency percentiles, and peak
// RSS (burst workload). A chart whose workload or figures are absent is not
// written.
func Charts(dir string, results []bench.Result) ([]string, error) {
	var written []string
	secs := Sections(results)
	if bars := filter(secs, "noop"); len(bars) > 0 {
		if err := nsPerTask(filepath.Join(dir, NsPerTaskPNG), bars); err != nil {
			return written, err
		}
		written = append(written, NsPerTaskPNG)
	}
	if s, ok := pick(secs, "noop", 8); ok {
		if err := latency(filepath.Join(dir, LatencyPNG), s); err != nil {
			return written, err
		}
		written = append(written, LatencyPNG)
	}
	if s, ok := pick(secs, "burst", 0); ok && slices.ContainsFunc(s.Results, func(r bench.Result) bool { return r.PeakRSSBytes > 0 }) {
		if err := memory(filepath.Join(dir, MemoryPNG), s); err != nil {
			return written, err
		}
		written = append(written, MemoryPNG)
	}
	return written, nil
}

func filter(secs []Section, workload string) []Section {
	var out []Section
	for _, s := range secs {
		if s.Workload == workload {
			out = append(out, s)
		}
	}
	return out
}

// pick returns the section of workload with the given producers, or, if
// producers is 0 or absent, the workload's first section.
func pick(secs []Section, workload string, producers int) (Section, bool) {
	f := filter(secs, workload)
	for _, s := range f {
		if s.Producers == producers {
			return s, true
		}
	}
	if len(f) > 0 {
		return f[0], true
	}
	return Section{}, false
}

// libNames returns the libraries of secs in first-seen order.
func libNames(secs []Section) []string {
	var names []string
	for _, s := range secs {
		for _, r := range s.Results {
			if !slices.Contains(names, r.Lib) {
				names = append(names, r.Lib)
			}
		}
	}
	return names
}

// newPlot returns a plot with libraries on the Y axis, first at the top; y
// maps a library to its position.
func newPlot(title, xlabel string, names []string) (p *plot.Plot, y func(string) float64) {
	p = plot.New()
	p.Title.Text = title
	p.X.Label.Text = xlabel
	rev := make([]string, len(names))
	for i, n := range names {
		rev[len(names)-1-i] = "  " + n // the margin keeps the longest label inside the image
	}
	p.NominalY(append(rev, "")...) // an empty top row holds the legend
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	p.Y.Min, p.Y.Max = -0.6, float64(len(names))+0.2
	y = func(lib string) float64 { return float64(len(names) - 1 - slices.Index(names, lib)) }
	return p, y
}

func height(names []string) vg.Length { return vg.Length(len(names)+1)*0.32*vg.Inch + 1.4*vg.Inch }

// durationTicks labels a logarithmic nanosecond axis as durations: 1µs, 10ms.
type durationTicks struct{}

// Major ticks fall on 1, 2 and 5 times a power of ten (only on powers of ten
// when the axis spans more than three decades), minor ticks on the other
// integers times it.
func (durationTicks) Ticks(lo, hi float64) []plot.Tick {
	wide := hi/lo > 1000
	var ticks []plot.Tick
	for decade := math.Pow(10, math.Floor(math.Log10(lo))); decade <= hi; decade *= 10 {
		for m := 1; m <= 9; m++ {
			v := float64(m) * decade
			if v < lo || v > hi {
				continue
			}
			t := plot.Tick{Value: v}
			if m == 1 || !wide && (m == 2 || m == 5) {
				t.Label = Duration(int64(v + 0.5))
			}
			ticks = append(ticks, t)
		}
	}
	return ticks
}

// dots plots one series of markers per entry of results on a log-scale
// duration axis; get(i, r) is the value of r in series i, 0 for none.
func dots(p *plot.Plot, y func(string) float64, results [][]bench.Result, labels []string, get func(int, bench.Result) float64) error {
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = durationTicks{}
	lo, hi := math.Inf(1), 0.0
	shapes := []draw.GlyphDrawer{draw.CircleGlyph{}, draw.TriangleGlyph{}, draw.SquareGlyph{}, draw.PyramidGlyph{}}
	for i, rs := range results {
		var xys plotter.XYs
		for _, r := range rs {
			if v := get(i, r); v > 0 {
				xys = append(xys, plotter.XY{X: v, Y: y(r.Lib)})
				lo, hi = min(lo, v), max(hi, v)
			}
		}
		if len(xys) == 0 {
			continue
		}
		sc, err := plotter.NewScatter(xys)
		if err != nil {
			return err
		}
		sc.GlyphStyle = draw.GlyphStyle{Color: plotutil.Color(i), Radius: vg.Points(4), Shape: shapes[i%len(shapes)]}
		p.Add(sc)
		p.Legend.Add(labels[i], sc)
	}
	if hi > 0 { // pad the range so markers and labels stay inside the frame
		p.X.Min, p.X.Max = lo/1.6, hi*1.6
	}
	return nil
}

func nsPerTask(path string, secs []Section) error {
	names := libNames(secs)
	p, y := newPlot("time per task, no-op tasks (log scale, lower is better)", "wall time per task", names)
	var series [][]bench.Result
	var labels []string
	for _, s := range secs {
		series = append(series, s.Results)
		if s.Producers == 1 {
			labels = append(labels, "1 producer")
		} else {
			labels = append(labels, fmt.Sprintf("%d producers", s.Producers))
		}
	}
	if err := dots(p, y, series, labels, func(_ int, r bench.Result) float64 { return r.NsPerTask }); err != nil {
		return err
	}
	return p.Save(8*vg.Inch, height(names), path)
}

func latency(path string, s Section) error {
	names := libNames([]Section{s})
	p, y := newPlot(fmt.Sprintf("submit-to-start latency, %s (log scale)", s.Title()), "latency", names)
	series := [][]bench.Result{s.Results, s.Results}
	err := dots(p, y, series, []string{"p50", "p99"}, func(i int, r bench.Result) float64 {
		if i == 0 {
			return float64(r.P50Ns)
		}
		return float64(r.P99Ns)
	})
	if err != nil {
		return err
	}
	return p.Save(8*vg.Inch, height(names), path)
}

func memory(path string, s Section) error {
	names := libNames([]Section{s})
	p, y := newPlot(fmt.Sprintf("peak RSS, %s (lower is better)", s.Title()), "MiB", names)
	vals := make(plotter.Values, len(names))
	for _, r := range s.Results {
		vals[int(y(r.Lib))] = float64(r.PeakRSSBytes) / (1 << 20)
	}
	bc, err := plotter.NewBarChart(vals, vg.Points(14))
	if err != nil {
		return err
	}
	bc.Horizontal = true
	bc.Color = color.RGBA{R: 0x2b, G: 0x6c, B: 0xb0, A: 0xff}
	bc.LineStyle.Width = 0
	p.Add(bc)
	return p.Save(8*vg.Inch, height(names), path)
}
