package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shoal-go/shoal/bench"
	"github.com/shoal-go/shoal/bench/internal/progress"
	"github.com/shoal-go/shoal/bench/internal/report"
	"github.com/shoal-go/shoal/bench/internal/rss"
)

// options are the parsed flags.
type options struct {
	quick, json, inprocess, writeDocs, list, child bool
	libs, workloads, producers                     string
	tasks, count                                   int
	spin                                           int64
	docs                                           string
	args                                           []string // as given, for the docs
}

func parse(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("shoalbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.BoolVar(&o.quick, "quick", false, "smaller task counts: the comparison in under a minute on 2 cores")
	fs.BoolVar(&o.json, "json", false, "print one JSON object per row instead of a table")
	fs.StringVar(&o.libs, "libs", "", "comma-separated rows to run (default all; see -list)")
	fs.StringVar(&o.workloads, "workload", "", "comma-separated workloads: noop, cpu, sleep, burst (default all)")
	fs.StringVar(&o.producers, "producers", "", "comma-separated submitter counts (default: per workload)")
	fs.IntVar(&o.tasks, "tasks", 0, "tasks per row (default: per workload)")
	fs.IntVar(&o.count, "count", 1, "runs per row, in rounds over the rows of each comparison; the run with the median ns/task is reported")
	fs.BoolVar(&o.inprocess, "inprocess", false, "run rows in this process instead of one child each")
	fs.BoolVar(&o.writeDocs, "write-docs", false, "write BENCHMARKS.md and charts under -docs")
	fs.StringVar(&o.docs, "docs", "docs", "directory -write-docs writes to")
	fs.BoolVar(&o.list, "list", false, "print rows and workloads, then exit")
	fs.BoolVar(&o.child, "child", false, "internal: run one row and print its JSON")
	fs.Int64Var(&o.spin, "spin", 0, "internal: spin iterations per cpu task (default: calibrate)")
	if err := fs.Parse(args); err != nil {
		return o, errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "shoalbench: unexpected arguments %q\n", fs.Args())
		return o, errUsage
	}
	if o.tasks < 0 {
		fmt.Fprintln(stderr, "shoalbench: -tasks must be positive")
		return o, errUsage
	}
	if o.count < 1 {
		fmt.Fprintln(stderr, "shoalbench: -count must be at least 1")
		return o, errUsage
	}
	o.args = args
	return o, nil
}

// row is one child run.
type row struct {
	lib  bench.Lib
	spec bench.Spec
}

func (r row) label() string { return r.spec.String() + " " + r.lib.Name }

// plan expands the flags into rows, workload by workload, producers by
// producers, library by library.
func plan(o options) ([]row, error) {
	libs, err := pickLibs(o.libs)
	if err != nil {
		return nil, err
	}
	wls, err := pickWorkloads(o.workloads)
	if err != nil {
		return nil, err
	}
	var override []int
	if o.producers != "" {
		for _, f := range strings.Split(o.producers, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n <= 0 {
				return nil, fmt.Errorf("-producers: %q is not a positive number", f)
			}
			override = append(override, n)
		}
	}
	var rows []row
	for _, w := range wls {
		prods := w.Producers
		if override != nil {
			prods = override
		}
		tasks := w.Tasks
		if o.quick {
			tasks = w.Quick
		}
		if o.tasks > 0 {
			tasks = o.tasks
		}
		for _, p := range prods {
			for _, l := range libs {
				rows = append(rows, row{lib: l, spec: bench.Spec{Workload: w, Producers: p, Tasks: tasks}})
			}
		}
	}
	return rows, nil
}

func pickLibs(list string) ([]bench.Lib, error) {
	if list == "" {
		return bench.Libs(), nil
	}
	var out []bench.Lib
	for _, n := range strings.Split(list, ",") {
		l, ok := bench.LibByName(strings.TrimSpace(n))
		if !ok {
			return nil, fmt.Errorf("-libs: no row %q (see -list)", n)
		}
		out = append(out, l)
	}
	return out, nil
}

func pickWorkloads(list string) ([]bench.Workload, error) {
	if list == "" {
		return bench.Workloads(), nil
	}
	var out []bench.Workload
	for _, n := range strings.Split(list, ",") {
		w, ok := bench.WorkloadByName(strings.TrimSpace(n))
		if !ok {
			return nil, fmt.Errorf("-workload: no workload %q (see -list)", n)
		}
		out = append(out, w)
	}
	return out, nil
}

// run is the command: parse, plan, run each row, report.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parse(args, stderr)
	if err != nil {
		return err
	}
	if o.list {
		return list(stdout)
	}
	rows, err := plan(o)
	if err != nil {
		return err
	}
	if o.spin != 0 {
		if err := bench.SetCalibration(o.spin); err != nil {
			return err
		}
	}
	if o.child {
		return child(rows, stdout)
	}
	spin := bench.Calibrate() // once, here: children spin the same count
	if len(rows) == 0 {
		return errors.New("nothing to run")
	}

	began := time.Now()
	bar := progress.New(stderr, len(rows)*o.count)
	enc := json.NewEncoder(stdout)
	runOne := func(r row) (bench.Result, error) {
		bar.Draw(r.label())
		var (
			res bench.Result
			err error
		)
		if o.inprocess {
			res, err = bench.Run(r.lib, r.spec)
		} else {
			res, err = spawn(ctx, r, spin)
		}
		if err != nil {
			return res, fmt.Errorf("%s: %w", r.label(), err)
		}
		bar.Step(r.label())
		return res, nil
	}
	emit := func(res []bench.Result) error {
		if !o.json {
			return nil
		}
		for _, r := range res {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	}
	results, err := measure(rows, o.count, runOne, emit)
	bar.Finish()
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "%d rows in %s\n", len(rows), time.Since(began).Round(100*time.Millisecond))
	if !o.json {
		if err := report.Table(stdout, results); err != nil {
			return err
		}
		fmt.Fprintln(stdout)
		if err := report.TextSummary(stdout, results); err != nil {
			return err
		}
	}
	if o.writeDocs {
		return writeDocs(o, results, stderr)
	}
	return nil
}

// measure runs each row count times with runOne and returns, row by row,
// the run with the median ns/task, handing each comparison's results to
// emit as soon as it is complete. The rows of one comparison (one workload
// and producer count: consecutive rows of plan) take turns, one run of
// each per round, so that a change of the machine's speed while they run
// (the host moving the virtual CPUs, another process) falls on all of
// them alike instead of on whichever row ran last.
func measure(rows []row, count int, runOne func(row) (bench.Result, error), emit func([]bench.Result) error) ([]bench.Result, error) {
	results := make([]bench.Result, 0, len(rows))
	for len(rows) > 0 {
		n := 1
		for n < len(rows) && rows[n].spec.String() == rows[0].spec.String() && rows[n].spec.Tasks == rows[0].spec.Tasks {
			n++
		}
		runs := make([][]bench.Result, n)
		for range count {
			for i, r := range rows[:n] {
				res, err := runOne(r)
				if err != nil {
					return nil, err
				}
				runs[i] = append(runs[i], res)
			}
		}
		first := len(results)
		for _, rs := range runs {
			results = append(results, median(rs))
		}
		if err := emit(results[first:]); err != nil {
			return nil, err
		}
		rows = rows[n:]
	}
	return results, nil
}

// median returns the run with the median ns/task (the lower middle one for
// an even count), so that every figure of a reported row comes from one run.
func median(runs []bench.Result) bench.Result {
	sorted := slices.Clone(runs)
	slices.SortFunc(sorted, func(a, b bench.Result) int { return cmp.Compare(a.NsPerTask, b.NsPerTask) })
	return sorted[(len(sorted)-1)/2]
}

func list(w io.Writer) error {
	fmt.Fprintln(w, "rows (order guarantee per group):")
	for _, l := range bench.Libs() {
		fmt.Fprintf(w, "  %-24s %s\n", l.Name, l.Order)
	}
	fmt.Fprintln(w, "workloads:")
	for _, wl := range bench.Workloads() {
		fmt.Fprintf(w, "  %-8s %s; %d tasks (-quick %d), producers %v, concurrency %d\n",
			wl.Name, wl.Doc, wl.Tasks, wl.Quick, wl.Producers, wl.Concurrency)
	}
	return nil
}

// child runs the single row it was given and prints its result, with this
// process's peak RSS, as one JSON line.
func child(rows []row, stdout io.Writer) error {
	if len(rows) != 1 {
		return fmt.Errorf("-child wants exactly one row, got %d", len(rows))
	}
	res, err := bench.Run(rows[0].lib, rows[0].spec)
	if err != nil {
		return err
	}
	if peak, err := rss.Peak(); err == nil {
		res.PeakRSSBytes = peak
	}
	return json.NewEncoder(stdout).Encode(res)
}

// spawn runs one row in a child process: this executable with -child.
func spawn(ctx context.Context, r row, spin int64) (bench.Result, error) {
	var res bench.Result
	exe, err := os.Executable()
	if err != nil {
		return res, err
	}
	cmd := exec.CommandContext(ctx, exe, "-child",
		"-libs", r.lib.Name,
		"-workload", r.spec.Workload.Name,
		"-producers", strconv.Itoa(r.spec.Producers),
		"-tasks", strconv.Itoa(r.spec.Tasks),
		"-spin", strconv.FormatInt(spin, 10))
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return res, fmt.Errorf("child: %w: %s", err, bytes.TrimSpace(errb.Bytes()))
	}
	sc := bufio.NewScanner(&out)
	var last []byte
	for sc.Scan() {
		if l := bytes.TrimSpace(sc.Bytes()); len(l) > 0 && l[0] == '{' {
			last = append(last[:0], l...)
		}
	}
	if err := json.Unmarshal(last, &res); err != nil {
		return res, fmt.Errorf("child output %q: %w", out.String(), err)
	}
	if res.PeakRSSBytes == 0 {
		res.PeakRSSBytes = rss.PeakOf(cmd.ProcessState)
	}
	return res, nil
}

// writeDocs writes BENCHMARKS.md and the charts under o.docs.
func writeDocs(o options, results []bench.Result, stderr io.Writer) error {
	img := filepath.Join(o.docs, "img")
	if err := os.MkdirAll(img, 0o755); err != nil {
		return err
	}
	charts, err := report.Charts(img, results)
	if err != nil {
		return fmt.Errorf("charts: %w", err)
	}
	var args []string
	for _, a := range o.args {
		if strings.ContainsAny(a, " '\"") {
			a = strconv.Quote(a)
		}
		args = append(args, a)
	}
	m := report.Meta{
		Command:    strings.TrimSpace("go run ./bench/cmd/shoalbench " + strings.Join(args, " ")),
		Date:       time.Now(),
		GoVersion:  runtime.Version(),
		OS:         runtime.GOOS,
		Arch:       runtime.GOARCH,
		CPU:        cpuModel(),
		NumCPU:     runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		Quick:      o.quick,
		Count:      o.count,
		InProcess:  o.inprocess,
		ImgDir:     "img",
		Charts:     charts,
	}
	var buf bytes.Buffer
	if err := report.Markdown(&buf, results, m); err != nil {
		return err
	}
	path := filepath.Join(o.docs, "BENCHMARKS.md")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "wrote %s and %d charts in %s\n", path, len(charts), img)
	return nil
}

// cpuModel returns the first "model name" of /proc/cpuinfo, or GOARCH.
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				return strings.TrimSpace(v)
			}
		}
	}
	return runtime.GOARCH
}
