package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/shoal-go/shoal/bench/storm"

	"github.com/shoal-go/shoal/bench/internal/cli"
)

func mib(b int64) string { return fmt.Sprintf("%s MiB", group(uint64(b>>20))) }

// group formats n with thousands separators.
func group(n uint64) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func label(v string) string {
	if v == storm.Raw {
		return "goroutine per move"
	}
	return "shoal"
}

// printSideBySide writes one column per variant.
func printSideBySide(w io.Writer, o *options, outs []outcome) {
	cfg := o.cfg
	fmt.Fprintf(w, "storm: %d towers of %d disks (%s moves), %s held by each pending move, budget %s\n",
		cfg.Towers, cfg.Disks, group(storm.Moves(cfg.Disks)*uint64(cfg.Towers)), bytesString(int64(cfg.Buffer)), mib(cfg.Budget))
	if o.cgroup {
		fmt.Fprintf(w, "each variant in its own cgroup limited to %s\n", mib(o.cgroupLimit))
	}
	rows := [][]string{{""}}
	add := func(name string, f func(o outcome, r *storm.Result) string) {
		row := []string{name}
		for _, out := range outs {
			switch {
			case out.res != nil:
				row = append(row, f(out, out.res))
			case name == "outcome":
				row = append(row, f(out, nil))
			default:
				row = append(row, "-")
			}
		}
		rows = append(rows, row)
	}
	for _, out := range outs {
		rows[0] = append(rows[0], label(out.variant))
	}
	add("outcome", func(o outcome, r *storm.Result) string {
		switch {
		case o.setupErr != "":
			return "not run: " + o.setupErr
		case r == nil && o.killed != "" && o.cgOOM > 0:
			return "killed by the kernel's OOM killer"
		case r == nil && o.killed != "":
			return o.killed
		case r == nil:
			return "no report"
		case r.Error != "":
			return "error: " + r.Error
		case r.Aborted:
			return "stopped at the raw limit"
		}
		return "finished"
	})
	add("towers solved", func(_ outcome, r *storm.Result) string { return fmt.Sprintf("%d of %d", r.Solved, r.Towers) })
	add("moves submitted", func(_ outcome, r *storm.Result) string { return group(r.Submitted) })
	add("moves applied", func(_ outcome, r *storm.Result) string { return group(r.Applied) })
	add("illegal moves (out of order)", func(_ outcome, r *storm.Result) string { return group(r.Illegal) })
	add("peak RSS", func(_ outcome, r *storm.Result) string {
		return fmt.Sprintf("%s (%.1f x budget)", mib(r.PeakRSS), float64(r.PeakRSS)/float64(r.Budget))
	})
	add("peak pending moves", func(_ outcome, r *storm.Result) string { return group(uint64(r.PeakPending)) })
	add("peak goroutines", func(_ outcome, r *storm.Result) string { return group(uint64(r.PeakGoroutines)) })
	add("breaker pushbacks (retried)", func(o outcome, r *storm.Result) string {
		if o.variant == storm.Raw {
			return "-"
		}
		return group(r.Pushbacks)
	})
	add("breaker transitions", func(o outcome, r *storm.Result) string {
		if o.variant == storm.Raw {
			return "-"
		}
		return fmt.Sprint(r.Transitions)
	})
	add("wall", func(_ outcome, r *storm.Result) string { return fmt.Sprintf("%.2fs", r.Wall.Seconds()) })
	if o.cgroup {
		// These come from the cgroup, so they exist also for a killed child.
		row := []string{"cgroup peak usage / OOM kills"}
		for _, out := range outs {
			if out.cgroup == "" {
				row = append(row, "-")
				continue
			}
			row = append(row, fmt.Sprintf("%s / %d", mib(out.cgPeak), out.cgOOM))
		}
		rows = append(rows, row)
	}
	cli.Columns(w, rows)
	for _, out := range outs {
		if out.res != nil && len(out.res.States) > 0 {
			fmt.Fprintf(w, "breaker, %s: %s", label(out.variant), strings.Join(out.res.States, " "))
			if out.res.Transitions > len(out.res.States) {
				fmt.Fprintf(w, " ... (%d in all)", out.res.Transitions)
			}
			fmt.Fprintln(w)
		}
	}
}

func bytesString(b int64) string {
	switch {
	case b >= 1<<20 && b%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", b>>20)
	case b >= 1<<10 && b%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", b>>10)
	}
	return fmt.Sprintf("%d bytes", b)
}
