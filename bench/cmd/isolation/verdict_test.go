package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/shoal-go/shoal/bench"
)

// verdictOf returns the verdict of the first row of scheduler in the
// report of results.
func verdictOf(t *testing.T, results []bench.IsolationResult, scheduler string) string {
	t.Helper()
	var out bytes.Buffer
	report(&out, bench.DefaultIsolationConfig(), results)
	for _, l := range strings.Split(out.String(), "\n") {
		if f := strings.Fields(l); len(f) >= 15 && f[0] == scheduler {
			return f[len(f)-1]
		}
	}
	t.Fatalf("no row of %s in:\n%s", scheduler, out.String())
	return ""
}

// TestNothingMeasuredFails: a scheduler that refused every task
// measured no wait: its p99 of 0 must not PASS.
func TestNothingMeasuredFails(t *testing.T) {
	ref := bench.IsolationResult{Scheduler: bench.IsolationReference, Offered: 100, Accepted: 100, Ran: 100, Measured: 90, P99: time.Millisecond}
	none := bench.IsolationResult{Scheduler: bench.IsolationShoal, Offered: 100, Refused: 100}
	if v := verdictOf(t, []bench.IsolationResult{none, ref}, bench.IsolationShoal); v != "FAIL" {
		t.Errorf("a row that measured nothing (every task refused): verdict %s, want FAIL", v)
	}
}

// TestRefusedFastFails: a scheduler that let half the fast
// tasks in and refused the rest has a small p99 of those let in: it must
// not PASS.
func TestRefusedFastFails(t *testing.T) {
	ref := bench.IsolationResult{Scheduler: bench.IsolationReference, Offered: 100, Accepted: 100, Ran: 100, Measured: 90, P99: time.Millisecond}
	half := bench.IsolationResult{Scheduler: bench.IsolationShoal, Offered: 100, Accepted: 50, Refused: 50, Ran: 50,
		Measured: 45, FastRefused: 45, P99: time.Millisecond}
	if v := verdictOf(t, []bench.IsolationResult{half, ref}, bench.IsolationShoal); v != "FAIL" {
		t.Errorf("a row that refused 45 measured fast tasks: verdict %s, want FAIL", v)
	}
}
