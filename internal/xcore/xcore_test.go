package xcore

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestLineTransfer(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		if d := LineTransfer(100); d != 0 {
			t.Fatalf("LineTransfer with GOMAXPROCS %d = %v, want 0", runtime.GOMAXPROCS(0), d)
		}
		return
	}
	for _, rounds := range []int{-1, 0, 1, 2, 1001} {
		d := LineTransfer(rounds)
		// A hand-off cannot take no time, and spinning threads on one
		// machine hand a line over well within a millisecond.
		if d <= 0 || d > time.Millisecond {
			t.Errorf("LineTransfer(%d) = %v, want within (0, 1ms]", rounds, d)
		}
	}
}

func TestMin(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		t.Skip("needs two processors")
	}
	for _, n := range []int{-1, 0, 1, 4} {
		if d := Min(n, 100); d <= 0 || d > time.Millisecond {
			t.Errorf("Min(%d, 100) = %v, want within (0, 1ms]", n, d)
		}
	}
}

func TestLineTransferOneProcessor(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	if d := LineTransfer(100); d != 0 {
		t.Fatalf("LineTransfer with GOMAXPROCS 1 = %v, want 0", d)
	}
}

func ExampleLineTransfer() {
	d := LineTransfer(0)
	switch {
	case d == 0:
		fmt.Println("one processor: nothing to measure")
	case d < 100*time.Nanosecond:
		fmt.Println("close CPUs")
	default:
		fmt.Println("distant CPUs")
	}
}
