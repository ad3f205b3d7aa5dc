package chatsim

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/shoal-go/shoal/bench/internal/cli"
	"github.com/shoal-go/shoal/pool"
)

// label names a variant in the report: the peers carry their per-room
// mutex and pending batch.
func label(variant string) string {
	switch variant {
	case Ants, Pond:
		return variant + "+mutex+batch"
	}
	return variant
}

// batchString formats the sizes of the persist writes: the mean, then the
// median, p99 and largest size as the upper bounds of their power-of-two
// buckets.
func batchString(b pool.BatchStats) string {
	if b.Calls == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f / ≤%d / ≤%d / ≤%d", b.Mean(), b.Quantile(0.5), b.Quantile(0.99), b.Quantile(1))
}

// Format writes the report of one or more runs of the same load, side by
// side, one column per run.
func Format(w io.Writer, cfg Config, results ...*Result) {
	if len(results) == 0 {
		return
	}
	fmt.Fprintf(w, "chatsim: %s rooms, %s msg/s mean (peak %s/s), a day in %v, seed %d, budget %s\n",
		group(uint64(cfg.Rooms)), group(uint64(cfg.Rate)), group(uint64(results[0].PeakRate)),
		cfg.Duration, cfg.Seed, mib(cfg.Budget))
	var rows [][]string
	row := func(name string, f func(r *Result) string) {
		cells := []string{name}
		for _, r := range results {
			cells = append(cells, f(r))
		}
		rows = append(rows, cells)
	}
	row("", func(r *Result) string { return label(r.Variant) })
	row("messages generated", func(r *Result) string { return group(r.Generated) })
	row("accepted", func(r *Result) string { return group(r.Accepted) })
	row("completed", func(r *Result) string { return group(r.Completed) })
	row("dead letters", func(r *Result) string { return deadString(r.DeadLetters) })
	row("  of which bystanders (no fault)", func(r *Result) string { return group(r.Bystanders) })
	row("lost (must be 0)", func(r *Result) string { return fmt.Sprint(r.Lost()) })
	row("order: out of order (must be 0)", func(r *Result) string { return group(r.OutOfOrder) })
	row("order: overlaps (must be 0)", func(r *Result) string { return group(r.Overlaps) })
	row("duplicates (must be 0)", func(r *Result) string { return group(r.Duplicates) })
	row("throughput", func(r *Result) string { return fmt.Sprintf("%s msg/s", group(uint64(r.Throughput()))) })
	row("latency p50", func(r *Result) string { return dur(r.P50) })
	row("latency p99", func(r *Result) string { return dur(r.P99) })
	row("latency p999", func(r *Result) string { return dur(r.P999) })
	row("latency max", func(r *Result) string { return dur(r.Max) })
	row("generator lag p99 / max", func(r *Result) string { return dur(r.GeneratorLagP99) + " / " + dur(r.GeneratorLagMax) })
	row("persist writes", func(r *Result) string { return group(r.Batches.Calls) })
	row("batch size mean / p50 / p99 / max", func(r *Result) string { return batchString(r.Batches) })
	row("persist I/O mean per write", func(r *Result) string { return dur(r.PersistMean) })
	row("submit pushbacks (retried)", func(r *Result) string { return group(r.Pushbacks) })
	row("breaker transitions", func(r *Result) string {
		if r.Variant != Shoal {
			return "-"
		}
		return fmt.Sprint(len(r.Transitions))
	})
	row("peak RSS", func(r *Result) string { return mib(r.PeakRSS) })
	row("CPU (user + system)", func(r *Result) string { return dur(r.CPU) })
	row("peak workers", func(r *Result) string { return fmt.Sprint(r.PeakWorkers) })
	row("wall (drain)", func(r *Result) string { return fmt.Sprintf("%v (%v)", dur(r.Wall), dur(r.Drain)) })
	cli.Columns(w, rows)

	for _, r := range results {
		var b strings.Builder
		for h, n := range r.WorkersByHour {
			if h%6 == 0 {
				fmt.Fprintf(&b, " %02dh", h)
			}
			fmt.Fprintf(&b, " %d", n)
		}
		fmt.Fprintf(w, "workers by hour, %s:%s\n", label(r.Variant), b.String())
	}
	for _, r := range results {
		if len(r.Transitions) == 0 {
			continue
		}
		fmt.Fprintf(w, "breaker, %s:", label(r.Variant))
		for i, t := range r.Transitions {
			if i == 12 {
				fmt.Fprintf(w, " ... (%d more)", len(r.Transitions)-i)
				break
			}
			fmt.Fprintf(w, " %s→%s@%.1fs", t.From, t.To, t.At.Seconds())
		}
		fmt.Fprintln(w)
	}
}

// deadString formats dead-letter counts by reason, reasons sorted.
func deadString(m map[string]uint64) string {
	if len(m) == 0 {
		return "0"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %s", k, group(m[k])))
	}
	return strings.Join(parts, ", ")
}

// dur rounds a duration for display: three significant figures.
func dur(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return d.Round(100 * time.Millisecond).String()
	case d >= time.Second:
		return d.Round(10 * time.Millisecond).String()
	case d >= 10*time.Millisecond:
		return d.Round(100 * time.Microsecond).String()
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	case d >= 10*time.Microsecond:
		return d.Round(100 * time.Nanosecond).String()
	}
	return d.String()
}
