package xcore

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestLineTransfer checks that a measurement ends, and ends with a positive
// figure, whatever the load on the machine: with both threads running a
// hand-off takes nanoseconds, with one of them waiting for a processor it
// takes a scheduling delay, and MaxDuration bounds the whole.
func TestLineTransfer(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		t.Skip("needs two processors")
	}
	for _, rounds := range []int{-1, 0, 1, 2, 1001} {
		start := time.Now()
		d := LineTransfer(rounds)
		took := time.Since(start)
		if d <= 0 || d > took {
			t.Errorf("LineTransfer(%d) = %v after %v, want within (0, %v]", rounds, d, took, took)
		}
	}
}

// TestLineTransferStopsEarly asks for far more hand-offs than fit in
// MaxDuration.
func TestLineTransferStopsEarly(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		t.Skip("needs two processors")
	}
	start := time.Now()
	if d := LineTransfer(1 << 40); d <= 0 {
		t.Errorf("LineTransfer = %v, want > 0", d)
	}
	// Generous: the bound is checked every 64 hand-offs, and a hand-off on a
	// loaded machine can wait for a time slice.
	if took := time.Since(start); took > 100*MaxDuration {
		t.Errorf("LineTransfer(1<<40) took %v, want about %v", took, MaxDuration)
	}
}

func TestLineTransferOneProcessor(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	if d := LineTransfer(100); d != 0 {
		t.Fatalf("LineTransfer with GOMAXPROCS 1 = %v, want 0", d)
	}
	if d := Min(3, 100); d != 0 {
		t.Fatalf("Min with GOMAXPROCS 1 = %v, want 0", d)
	}
}

func TestMinOf(t *testing.T) {
	for _, tc := range []struct {
		n    int
		seq  []time.Duration
		want time.Duration
		used int
	}{
		{n: -1, seq: []time.Duration{7, 1}, want: 7, used: 1},
		{n: 0, seq: []time.Duration{7, 1}, want: 7, used: 1},
		{n: 1, seq: []time.Duration{7, 1}, want: 7, used: 1},
		{n: 3, seq: []time.Duration{7, 3, 9, 1}, want: 3, used: 3},
		{n: 4, seq: []time.Duration{7, 3, 9, 1}, want: 1, used: 4},
	} {
		used := 0
		got := minOf(tc.n, func() time.Duration { used++; return tc.seq[used-1] })
		if got != tc.want || used != tc.used {
			t.Errorf("minOf(%d, %v) = %v after %d measurements, want %v after %d", tc.n, tc.seq, got, used, tc.want, tc.used)
		}
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
		fmt.Println("distant CPUs, or a busy machine")
	}
}
