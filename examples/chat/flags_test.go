package main

import (
	"io"
	"math"
	"testing"

	"golang.org/x/time/rate"
)

// TestFlagErrors: a flag value the server cannot take (a rate that is not
// above 0, NaN included; a write queue or memory budget below its range)
// and an argument that is no flag are errors, not silently replaced by a
// default (a rate of -1 or 0 gave 200 frames a second, NaN no limit at
// all) or ignored.
func TestFlagErrors(t *testing.T) {
	for _, args := range [][]string{
		{"-rate", "0"}, {"-rate", "-5"}, {"-rate", "NaN"},
		{"-write-queue", "0"}, {"-write-queue", "-1"},
		{"-memory-budget", "-1"},
		{"-db", "a.db", "extra.db"},
		{"-rate", "x"},
	} {
		if _, cfg, _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("%q: accepted (rate %v, write queue %d, budget %d)", args, cfg.Rate, cfg.WriteQueue, cfg.MemoryBudget)
		}
	}
	addr, cfg, pprof, err := parseFlags([]string{"-addr", ":1", "-db", "x.db", "-backend", "pond", "-rate", "inf", "-write-queue", "1", "-memory-budget", "0", "-pprof"}, io.Discard)
	if err != nil || addr != ":1" || cfg.DBPath != "x.db" || cfg.Backend != "pond" || cfg.Rate != rate.Inf || cfg.WriteQueue != 1 || !pprof {
		t.Errorf("valid flags: %q %+v %v, %v", addr, cfg, pprof, err)
	}
	if _, cfg, _, err := parseFlags(nil, io.Discard); err != nil || cfg.Rate != 200 || cfg.WriteQueue != 256 || cfg.DBPath != "chat.db" || math.IsNaN(float64(cfg.Rate)) {
		t.Errorf("defaults: %+v, %v", cfg, err)
	}
}
