package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// A day of 0.7 s at a low rate: every pool runs, every task is accounted
// for, and the report has its rows and its three verdicts.
func TestShortDay(t *testing.T) {
	p := params{
		quiet: 300, factor: 5, max: 16, unit: 50 * time.Millisecond, idle: 50 * time.Millisecond,
		shards: 64, seed: 1, minTask: time.Millisecond, maxTask: 5 * time.Millisecond,
	}
	var out bytes.Buffer
	if err := run(&out, p, 2); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range []string{"static at max", "adaptive", "on demand", "static at mean", "target <= 1.1", "target <= 0.5", "target >= 3"} {
		if !strings.Contains(s, want) {
			t.Errorf("report lacks %q:\n%s", want, s)
		}
	}
}

func TestRateCurve(t *testing.T) {
	p := params{quiet: 100, factor: 5}
	for _, c := range []struct {
		at   float64
		want float64
		peak bool
	}{{0, 100, false}, {2.9, 100, false}, {4.5, 300, false}, {6, 500, true}, {9.9, 500, true}, {11, 300, false}, {13, 100, false}, {20, 100, false}} {
		got, peak := p.rate(c.at)
		if d := got - c.want; d > 1e-9 || d < -1e-9 || peak != c.peak {
			t.Errorf("rate(%v) = %v, %v; want %v, %v", c.at, got, peak, c.want, c.peak)
		}
	}
	if got := dayUnits(); got != 14 {
		t.Errorf("dayUnits() = %v, want 14", got)
	}
}
