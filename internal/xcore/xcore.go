package xcore

import (
	"runtime"
	"sync/atomic"
	"time"
)

// DefaultRounds is the number of hand-offs LineTransfer makes when asked
// for none.
const DefaultRounds = 20_000

// MaxDuration bounds one LineTransfer: on a loaded machine the OS may keep
// one of the two threads waiting for a processor, and each hand-off then
// takes a scheduling delay instead of a cache transfer. LineTransfer stops
// early rather than spin for seconds; its figure then says the machine was
// busy.
const MaxDuration = 20 * time.Millisecond

// line is a cache line of its own, so that nothing else moves with it.
type line struct {
	_ [64]byte
	v atomic.Int64
	_ [64]byte
}

// LineTransfer returns the mean one-way time of moving a cache line between
// two threads that spin on it in turn, each locked to its OS thread, over
// rounds hand-offs (DefaultRounds if rounds <= 0), or over as many as fit in
// MaxDuration. It returns 0 when fewer than two processors are available to
// Go (GOMAXPROCS < 2), where the two threads could not run at once.
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
	l := new(line)
	var stop atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		// Answers every odd value with the next even one until told to stop.
		for i := int64(1); wait(&l.v, i, &stop); i += 2 {
			l.v.Store(i + 1)
		}
	}()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start := time.Now()
	deadline := start.Add(MaxDuration)
	// Stores the odd values, each after the peer's even answer: i+1 values
	// stored when the loop ends, each a transfer.
	i := int64(0)
	for ; ; i += 2 {
		wait(&l.v, i, nil)
		l.v.Store(i + 1)
		if i+1 >= int64(rounds) || (i&127 == 0 && time.Now().After(deadline)) {
			break
		}
	}
	elapsed := time.Since(start)
	// Tells the peer, which may be waiting for a value that will not come,
	// to return.
	stop.Store(true)
	<-done
	return elapsed / time.Duration(i+1)
}

// wait spins until v holds want, yielding now and then so that a thread
// the OS has not scheduled yet gets the chance to run. It returns false if
// stop (when not nil) is set first.
func wait(v *atomic.Int64, want int64, stop *atomic.Bool) bool {
	for spins := 0; v.Load() != want; spins++ {
		if spins&0xff == 0xff {
			if stop != nil && stop.Load() {
				return false
			}
			if spins&0xffff == 0xffff {
				runtime.Gosched()
			}
		}
	}
	return true
}

// Min returns the least of n LineTransfer(rounds) measurements (one if n <=
// 0). Other work on the machine (a thread the OS runs late, the garbage
// collector, a neighbour on the host) only ever lengthens a measurement, so
// the least is the one closest to the hardware's figure.
func Min(n, rounds int) time.Duration {
	return minOf(n, func() time.Duration { return LineTransfer(rounds) })
}

// minOf returns the least of n results of measure (one if n <= 0).
func minOf(n int, measure func() time.Duration) time.Duration {
	best := measure()
	for range n - 1 {
		best = min(best, measure())
	}
	return best
}
