package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestNearestRank: p is the nearest-rank percentile: the 99th of
// 1..100 ms is 99 ms, not the maximum, and the median of two is the lower.
func TestNearestRank(t *testing.T) {
	var r result
	for i := 1; i <= 100; i++ {
		r.peakWaits = append(r.peakWaits, time.Duration(i)*time.Millisecond)
	}
	if got := r.p(0.99); got != 99*time.Millisecond {
		t.Errorf("p99 of 1..100 ms = %v, want 99ms", got)
	}
	if got := r.p(0.5); got != 50*time.Millisecond {
		t.Errorf("p50 of 1..100 ms = %v, want 50ms", got)
	}
	two := result{peakWaits: []time.Duration{1, 2}}
	if got := two.p(0.5); got != 1 {
		t.Errorf("p50 of {1, 2} = %v, want 1", got)
	}
	if got := (result{}).p(0.99); got != 0 {
		t.Errorf("p99 of nothing = %v, want 0", got)
	}
}

// TestShedAdaptiveMisses: an adaptive pool that shed tasks at
// Close has waits that count only the tasks that started (a lower bound):
// its p99 cannot be said to meet a target it must stay under.
func TestShedAdaptiveMisses(t *testing.T) {
	p := params{quiet: 100, factor: 5, max: 16, unit: 50 * time.Millisecond, idle: 50 * time.Millisecond, shards: 1}
	rows := []row{
		{config: config{name: "static at max"}, p99: 10 * time.Millisecond, workerSeconds: 10},
		{config: config{name: "adaptive"}, p99: 5 * time.Millisecond, workerSeconds: 2, shed: 100},
		{config: config{name: "static at mean"}, p99: 100 * time.Millisecond, workerSeconds: 1},
	}
	var out bytes.Buffer
	report(&out, p, 1, 4, rows)
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.Contains(line, "target <= 1.1") || strings.Contains(line, "target >= 3") {
			if strings.Contains(line, ": met") {
				t.Errorf("adaptive shed 100 tasks, yet %q", line)
			}
		}
	}
}
