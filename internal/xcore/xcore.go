package xcore

import (
	"runtime"
	"sync/atomic"
	"time"
)

// DefaultRounds is the number of hand-offs LineTransfer makes when asked
// for none: a few milliseconds at most.
const DefaultRounds = 20_000

// line is a cache line of its own, so that nothing else moves with it.
type line struct {
	_ [64]byte
	v atomic.Int64
	_ [64]byte
}

// LineTransfer returns the mean one-way time of moving a cache line between
// two threads that spin on it in turn, each locked to its OS thread, over
// rounds hand-offs (DefaultRounds if rounds <= 0). It returns 0 when fewer
// than two processors are available to Go (GOMAXPROCS < 2), where the two
// threads could not run at once.
//
// The figure includes the load that sees the other thread's store and the
// store that answers it: on x86 about the latency of one cache-to-cache
// transfer.
func LineTransfer(rounds int) time.Duration {
	if runtime.GOMAXPROCS(0) < 2 {
		return 0
	}
	if rounds <= 0 {
		rounds = DefaultRounds
	}
	n := int64(rounds) &^ 1
	if n == 0 {
		n = 2
	}
	l := new(line)
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		// Answers every odd value with the next even one.
		for i := int64(1); i < n; i += 2 {
			wait(&l.v, i)
			l.v.Store(i + 1)
		}
	}()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start := time.Now()
	for i := int64(0); i < n; i += 2 {
		wait(&l.v, i)
		l.v.Store(i + 1)
	}
	elapsed := time.Since(start)
	<-done
	return elapsed / time.Duration(n)
}

// wait spins until v holds want, yielding now and then so that a thread
// the OS has not scheduled yet gets the chance to run.
func wait(v *atomic.Int64, want int64) {
	for spins := 0; v.Load() != want; spins++ {
		if spins&0xffff == 0xffff {
			runtime.Gosched()
		}
	}
}

// Min returns the least of n LineTransfer(rounds) measurements (one if n <=
// 0). Other work on the machine (a thread the OS runs late, the garbage
// collector, a neighbour on the host) only ever lengthens a measurement, so
// the least is the one closest to the hardware's figure.
func Min(n, rounds int) time.Duration {
	best := LineTransfer(rounds)
	for range n - 1 {
		best = min(best, LineTransfer(rounds))
	}
	return best
}
