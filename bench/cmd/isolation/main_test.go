package main

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"
)

// IgnoreCurrent: ants starts a default pool when its package initialises.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m, goleak.IgnoreCurrent()) }

// A tiny run in fake time: every scheduler, both variants, one row each, a
// verdict on every shoal row and nothing lost or out of order.
func TestTinyRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var out, errs bytes.Buffer
		args := []string{"-duration", "100ms", "-warmup", "20ms", "-groups", "200", "-slow", "4", "-rate", "2000", "-submitters", "4"}
		if code := run(t.Context(), args, &out, &errs); code != 0 {
			t.Fatalf("run(%q) = %d\nstdout:\n%s\nstderr:\n%s", args, code, out.String(), errs.String())
		}
		lines := strings.Split(out.String(), "\n")
		rows := 0
		for _, l := range lines {
			f := strings.Fields(l)
			if len(f) < 15 || (f[1] != "plain" && f[1] != "hot") {
				continue
			}
			rows++
			if lost, ooo, overlaps := f[10], f[11], f[12]; lost != "0" || ooo != "0" || overlaps != "0" {
				t.Errorf("row %q: lost %s, out of order %s, overlaps %s", l, lost, ooo, overlaps)
			}
			verdict := f[len(f)-1]
			if (f[0] == "reference") != (verdict == "-") || (verdict != "-" && verdict != "PASS" && verdict != "FAIL") {
				t.Errorf("row %q: verdict %q", l, verdict)
			}
		}
		if rows != 6 {
			t.Errorf("%d rows, want 3 schedulers x 2 variants:\n%s", rows, out.String())
		}
		if !strings.Contains(out.String(), "target, hot") || strings.Count(errs.String(), "done in") != 6 {
			t.Errorf("no target line or not 6 progress lines:\n%s\n%s", out.String(), errs.String())
		}
	})
}

func TestBadFlagsExitWithUsage(t *testing.T) {
	for _, args := range [][]string{
		{"-variant", "nope"}, {"-schedulers", "shoal,nope"}, {"-schedulers", "shoal,shoal"},
		{"-groups", "0"}, {"-slow", "-1"}, {"-spinners", "-1"}, {"-duration", "0s"}, {"-nosuchflag"}, {"extra"},
	} {
		var out, errs bytes.Buffer
		if got := run(t.Context(), append(args, "-quiet"), &out, &errs); got != 2 {
			t.Errorf("run(%q) = %d, want 2", args, got)
		}
	}
}

func TestDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0", 750: "750ns", 1500: "1.50µs", 200 * time.Microsecond: "200µs",
		1620 * time.Microsecond: "1.62ms", 13300 * time.Microsecond: "13.3ms", 21 * time.Second: "21.0s",
	} {
		if got := duration(d); got != want {
			t.Errorf("duration(%v) = %q, want %q", d, got, want)
		}
	}
}

// TestDurationEdges: three significant digits counted after rounding, so a
// value that rounds up takes one digit fewer (99.95 ms is "100ms") or the
// next unit (999.6 µs is "1.00ms"); nanoseconds are whole; a negative value
// takes the unit of its magnitude.
func TestDurationEdges(t *testing.T) {
	for d, want := range map[time.Duration]string{
		1: "1ns", 999: "999ns", 9_999: "10.0µs", 99_999: "100µs", 999_600: "1.00ms",
		9_996_000: "10.0ms", 99_950_000: "100ms", 999_500_000: "1.00s",
		1000 * time.Second: "1000s", -5000: "-5.00µs", -750: "-750ns",
		math.MinInt64: "-9223372037s",
	} {
		if got := duration(d); got != want {
			t.Errorf("duration(%d) = %q, want %q", int64(d), got, want)
		}
	}
}
