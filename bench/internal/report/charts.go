package report

import (
	"fmt"
	"image/color"
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
// RSS (burst workload). A chart whose workload is absent is not written.
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
	if s, ok := pick(secs, "burst", 0); ok {
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
	rev := slices.Clone(names)
	slices.Reverse(rev)
	p.NominalY(rev...)
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	y = func(lib string) float64 { return float64(len(names) - 1 - slices.Index(names, lib)) }
	return p, y
}

func height(names []string) vg.Length { return vg.Length(len(names))*0.32*vg.Inch + 1.6*vg.Inch }

func nsPerTask(path string, secs []Section) error {
	names := libNames(secs)
	p, y := newPlot("ns per task, no-op tasks (lower is better)", "ns per task", names)
	barW := vg.Points(18 / float64(len(secs)))
	for i, s := range secs {
		vals := make(plotter.Values, len(names))
		for _, r := range s.Results {
			vals[int(y(r.Lib))] = r.NsPerTask
		}
		bc, err := plotter.NewBarChart(vals, barW)
		if err != nil {
			return err
		}
		bc.Horizontal = true
		bc.Color = plotutil.Color(i)
		bc.LineStyle.Width = 0
		bc.Offset = barW * vg.Length(float64(len(secs)-1)/2-float64(i))
		p.Add(bc)
		p.Legend.Add(fmt.Sprintf("%d producers", s.Producers), bc)
	}
	return p.Save(8*vg.Inch, height(names), path)
}

func latency(path string, s Section) error {
	names := libNames([]Section{s})
	p, y := newPlot(fmt.Sprintf("submit-to-start latency, %s (log scale)", s.Title()), "latency (ns)", names)
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	for i, q := range []struct {
		name  string
		get   func(bench.Result) int64
		shape draw.GlyphDrawer
	}{
		{"p50", func(r bench.Result) int64 { return r.P50Ns }, draw.CircleGlyph{}},
		{"p99", func(r bench.Result) int64 { return r.P99Ns }, draw.TriangleGlyph{}},
	} {
		var xys plotter.XYs
		for _, r := range s.Results {
			if v := q.get(r); v > 0 {
				xys = append(xys, plotter.XY{X: float64(v), Y: y(r.Lib)})
			}
		}
		if len(xys) == 0 {
			continue
		}
		sc, err := plotter.NewScatter(xys)
		if err != nil {
			return err
		}
		sc.GlyphStyle = draw.GlyphStyle{Color: plotutil.Color(i), Radius: vg.Points(4), Shape: q.shape}
		p.Add(sc)
		p.Legend.Add(q.name, sc)
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
