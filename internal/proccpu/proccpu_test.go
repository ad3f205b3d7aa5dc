package proccpu

import (
	"runtime"
	"testing"
	"time"
)

// TestReadCountsWork: the CPU time read after some computation is at
// least that computation's, where the system reports it at all.
func TestReadCountsWork(t *testing.T) {
	before, ok := Read()
	if !ok {
		if runtime.GOOS != "windows" && runtime.GOOS != "plan9" && runtime.GOOS != "js" && runtime.GOOS != "wasip1" {
			t.Fatalf("no CPU time on %s", runtime.GOOS)
		}
		t.Skipf("no CPU time on %s", runtime.GOOS)
	}
	// Computes until the process's CPU time has moved by 20 ms, giving up
	// after 5 s of wall time: the kernel adds a running thread's time at
	// its scheduler tick, so a reading moves in steps of a few
	// milliseconds.
	const want = 20 * time.Millisecond
	start := time.Now()
	x := uint64(1)
	for time.Since(start) < 5*time.Second {
		for range 100_000 {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
		}
		if now, _ := Read(); now-before >= want {
			sink = x
			return
		}
	}
	now, _ := Read()
	t.Fatalf("CPU time moved by %v in 5 s of computing, want at least %v", now-before, want)
}

// sink keeps the computation from being optimised away.
var sink uint64
