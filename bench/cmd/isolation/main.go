package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shoal-go/shoal/bench"
	"github.com/shoal-go/shoal/bench/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// variants maps the -variant flag to the runs' Hot settings.
var variants = map[string][]bool{"plain": {false}, "hot": {true}, "both": {false, true}}

// run parses args, runs the scenario for each variant and scheduler, and
// writes the table to stdout; it returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg := bench.DefaultIsolationConfig()
	fs := flag.NewFlagSet("isolation", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "measured part of each run, after the warm-up")
	fs.DurationVar(&cfg.Warmup, "warmup", cfg.Warmup, "start of each run left out of the figures")
	fs.IntVar(&cfg.Groups, "groups", cfg.Groups, "groups, slow and fast (the hot group comes on top)")
	fs.IntVar(&cfg.Slow, "slow", cfg.Slow, "groups whose tasks are slow")
	fs.Float64Var(&cfg.FastRate, "rate", cfg.FastRate, "fast groups' tasks per second, in all")
	fs.IntVar(&cfg.Submitters, "submitters", cfg.Submitters, "goroutines submitting the fast and slow groups' tasks")
	fs.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "seed of the schedule")
	fs.IntVar(&cfg.Spinners, "spinners", cfg.Spinners, "goroutines that spin while tasks are submitted, filling the CPUs with other work")
	variant := fs.String("variant", "both", "plain, hot or both")
	names := fs.String("schedulers", strings.Join(bench.IsolationSchedulers(), ","), "comma-separated schedulers to run, in this order")
	quiet := fs.Bool("quiet", false, "no progress lines")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	hots, ok := variants[*variant]
	if !ok || fs.NArg() > 0 {
		fmt.Fprintf(stderr, "isolation: -variant %q: want plain, hot or both (and no arguments)\n", *variant)
		return 2
	}
	schedulers, err := parseSchedulers(*names)
	if err != nil {
		fmt.Fprintln(stderr, "isolation:", err)
		return 2
	}
	progress := stderr
	if *quiet {
		progress = io.Discard
	}

	var results []bench.IsolationResult
	status := 0
runs:
	for _, hot := range hots {
		for _, s := range schedulers {
			c := cfg
			c.Scheduler, c.Hot = s, hot
			fmt.Fprintf(progress, "isolation: %s, %s: %v of load, then the drain\n", s, variantName(hot), c.Warmup+c.Duration)
			res, err := bench.RunIsolation(ctx, c)
			if errors.Is(err, bench.ErrConfig) {
				fmt.Fprintln(stderr, "isolation:", err)
				return 2
			}
			if err != nil {
				fmt.Fprintln(stderr, "isolation:", err)
				status = 1
			}
			fmt.Fprintf(progress, "isolation: %s, %s: done in %s\n", s, variantName(hot), duration(res.Elapsed))
			results = append(results, res)
			if !res.Sound() {
				status = 1
			}
			if ctx.Err() != nil {
				break runs
			}
		}
	}
	report(stdout, cfg, results)
	return status
}

// parseSchedulers reads the -schedulers flag: known names, each once.
func parseSchedulers(s string) ([]string, error) {
	var out []string
	for name := range strings.SplitSeq(s, ",") {
		name = strings.TrimSpace(name)
		if !slices.Contains(bench.IsolationSchedulers(), name) {
			return nil, fmt.Errorf("-schedulers: %q: want some of %v", name, bench.IsolationSchedulers())
		}
		if slices.Contains(out, name) {
			return nil, fmt.Errorf("-schedulers: %q twice", name)
		}
		out = append(out, name)
	}
	return out, nil
}

func variantName(hot bool) string {
	if hot {
		return "hot"
	}
	return "plain"
}

// report writes the scenario, the table and the target.
func report(w io.Writer, cfg bench.IsolationConfig, results []bench.IsolationResult) {
	fmt.Fprintf(w, "isolation scenario: %d groups: %d slow (%s tasks at %g/s each), %d fast (%s tasks at %g/s in all, %d submitters)\n",
		cfg.Groups, cfg.Slow, duration(cfg.SlowTask), cfg.SlowRate, cfg.Groups-cfg.Slow, duration(cfg.FastTask), cfg.FastRate, cfg.Submitters)
	fmt.Fprintf(w, "hot variant: one more group, %s tasks at %g/s from a submitter of its own\n", duration(cfg.HotTask), cfg.HotRate)
	fmt.Fprintf(w, "waits of the fast groups (task start - due time), %s measured after %s of warm-up; GOMAXPROCS %d, %s\n\n",
		duration(cfg.Duration), duration(cfg.Warmup), runtime.GOMAXPROCS(0), runtime.Version())

	refs := map[bool]bench.IsolationResult{}
	for _, r := range results {
		if r.Scheduler == bench.IsolationReference {
			refs[r.Hot] = r
		}
	}
	rows := [][]string{{"scheduler", "variant", "tasks", "p50", "p99", "p999", "max", "late p99", "queue p99", "refused", "lost", "out of order", "overlaps", "p99/target", "verdict"}}
	for _, r := range results {
		ratio, verdict := "-", "-"
		if ref, ok := refs[r.Hot]; ok && r.Scheduler != bench.IsolationReference {
			x := float64(r.P99) / float64(bench.IsolationTarget(ref))
			ratio, verdict = strconv.FormatFloat(x, 'f', 2, 64), "FAIL"
			// A p99 of no wait, or of the waits of the fast tasks
			// that were let in while others were refused, says
			// nothing of the refused ones.
			if x <= 1 && r.Measured > 0 && r.FastRefused == 0 {
				verdict = "PASS"
			}
		}
		lost := strconv.Itoa(r.Lost)
		if r.RanRefused > 0 {
			lost += fmt.Sprintf(" (+%d refused that ran)", r.RanRefused)
		}
		rows = append(rows, []string{
			r.Scheduler, variantName(r.Hot), strconv.Itoa(r.Ran),
			duration(r.P50), duration(r.P99), duration(r.P999), duration(r.Max), duration(r.LateP99), duration(r.QueueP99),
			strconv.Itoa(r.Refused), lost, strconv.Itoa(r.OutOfOrder), strconv.Itoa(r.Overlaps),
			ratio, verdict,
		})
	}
	cli.Columns(w, rows)
	fmt.Fprintln(w)
	for _, hot := range []bool{false, true} {
		if ref, ok := refs[hot]; ok {
			fmt.Fprintf(w, "target, %s: p99 <= 1.5 x %s + 1ms = %s\n", variantName(hot), duration(ref.P99), duration(bench.IsolationTarget(ref)))
		}
	}
	fmt.Fprintln(w, "the target is for shoal with the pool's defaults.")
	fmt.Fprintln(w, "late p99: how late the submitters called Submit (harness lag, and time blocked in earlier Submits);")
	fmt.Fprintln(w, "queue p99: from the Submit call to the start (the scheduler's share, blocking in that Submit included);")
	fmt.Fprintln(w, "refused: in the hot variant, the hot group's tasks still unsubmitted when its submitter stopped;")
	fmt.Fprintln(w, "a row that refused a measured fast task, or measured none, FAILs whatever its p99.")
}

// duration formats d with three significant digits in the largest unit
// that keeps it at 1 or more: whole nanoseconds, and whole seconds from
// 1000 s on. The digits are counted after rounding, so a value that rounds
// up loses a decimal (99.95 ms is "100ms") or takes the next unit (999.6 µs
// is "1.00ms"). A negative value takes the unit of its magnitude.
func duration(d time.Duration) string {
	if d == 0 {
		return "0"
	}
	units := [...]struct {
		size float64
		name string
	}{{1, "ns"}, {1e3, "µs"}, {1e6, "ms"}, {1e9, "s"}}
	a := math.Abs(float64(d))
	i := 0
	for i+1 < len(units) && a >= units[i+1].size {
		i++
	}
	s := strconv.FormatFloat(a, 'f', 0, 64)
	if i > 0 {
		s = threeDigits(a / units[i].size)
		if r, _ := strconv.ParseFloat(s, 64); r >= 1000 && i+1 < len(units) {
			i++
			s = threeDigits(a / units[i].size)
		}
	}
	if d < 0 {
		s = "-" + s
	}
	return s + units[i].name
}

// threeDigits formats v (at least 1) with three significant digits after
// rounding (9.999 is "10.0"), or as a whole number from 100 on.
func threeDigits(v float64) string {
	for prec := 2; prec > 0; prec-- {
		s := strconv.FormatFloat(v, 'f', prec, 64)
		if r, _ := strconv.ParseFloat(s, 64); r < math.Pow10(3-prec) {
			return s
		}
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}
