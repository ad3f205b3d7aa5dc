package main

import (
	"testing"

	"go.uber.org/goleak"
)

// IgnoreCurrent: ants starts a default pool when its package initialises.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m, goleak.IgnoreCurrent()) }

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{"512MiB": 512 << 20, "1GiB": 1 << 30, "64kb": 64 << 10, "1000": 1000} {
		if got, err := parseBudget(in); err != nil || got != want {
			t.Errorf("parseBudget(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "-5MiB", "lots"} {
		if _, err := parseBudget(in); err == nil {
			t.Errorf("parseBudget(%q) accepted", in)
		}
	}
}

func TestBadFlagsExitWithUsage(t *testing.T) {
	for _, args := range [][]string{{"-budget", "x"}, {"-rooms", "0", "-quiet"}, {"-variant", "nope", "-quiet"}, {"-max-batch", "-1", "-quiet"}, {"-nosuchflag"}} {
		if got := run(args); got != 2 {
			t.Errorf("run(%q) = %d, want 2", args, got)
		}
	}
}
