package pool

import (
	"runtime/metrics"
	"sync/atomic"
	"time"

	"github.com/shoal-go/shoal/shard"
)

// withCPUReader replaces the runtime/metrics reading of the CPU sample, so
// that a test's growth past GOMAXPROCS does not depend on what else the
// process runs.
func withCPUReader(f func([]metrics.Sample) (running, runnable uint64, ok bool)) Option {
	return optionFunc(func(c *config) error { c.cpuReader = f; return nil })
}

// blockedCPU reads as a process whose goroutines all wait: every busy
// worker is blocked, so the pool may grow.
func blockedCPU([]metrics.Sample) (running, runnable uint64, ok bool) { return 0, 0, true }

// saturatedCPU reads as a process whose processors are all taken, with
// many goroutines waiting for one: no growth room past GOMAXPROCS.
func saturatedCPU([]metrics.Sample) (running, runnable uint64, ok bool) { return 64, 64, true }

// withUsageReader replaces the process's CPU time that the monitor reads
// (see usage); with withCPUReader and without this, none is read.
func withUsageReader(f func() (time.Duration, bool)) Option {
	return optionFunc(func(c *config) error { c.usageReader = f; return nil })
}

// withCPULimit replaces the cgroup CPU quota the pool reads at New.
func withCPULimit(milli int64, ok bool) Option {
	return optionFunc(func(c *config) error {
		c.cpuLimit = func() (int64, bool) { return milli, ok }
		return nil
	})
}

// watchPeakWorkers samples p's running workers every millisecond until
// the returned function is called; it returns the most it saw.
func watchPeakWorkers[K shard.Key](p *Pool[K]) (stop func() int) {
	quit, done := make(chan struct{}), make(chan struct{})
	peak := 0
	go func() {
		defer close(done)
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				peak = max(peak, p.Snapshot().Workers.Running)
			}
		}
	}()
	return func() int {
		close(quit)
		<-done
		return peak
	}
}

// withSchedHook runs h at the scheduler's points (see hookPoint).
func withSchedHook(h func(hookPoint)) Option {
	return optionFunc(func(c *config) error { c.schedHook = h; return nil })
}

// pauseAt returns a scheduler hook that, once armed, stops the first
// goroutine reaching point at: it sends on reached and waits for resume
// to be closed. Other points and later arrivals pass.
func pauseAt(at hookPoint) (hook func(hookPoint), arm func(), reached <-chan struct{}, resume func()) {
	var armed atomic.Bool
	r, res := make(chan struct{}), make(chan struct{})
	hook = func(pt hookPoint) {
		if pt == at && armed.CompareAndSwap(true, false) {
			r <- struct{}{}
			<-res
		}
	}
	return hook, func() { armed.Store(true) }, r, func() { close(res) }
}
