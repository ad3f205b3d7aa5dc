package backpressure

import "runtime/metrics"

// Reading is one sample of the signals a Breaker watches.
type Reading struct {
	// Used is the memory in use, in bytes, that counts against the budget.
	Used int64
	// Goroutines is the number of live goroutines.
	Goroutines int64
	// GCCPUSeconds and TotalCPUSeconds are cumulative CPU times; the breaker
	// divides their growth over a window to get the GC's share of CPU. A
	// reading in which either is NaN, infinite, negative or below its last
	// value is ignored: the breaker keeps the last good pair.
	GCCPUSeconds, TotalCPUSeconds float64
}

// Source produces Readings. A Breaker calls Read from one goroutine at a
// time (the one refreshing its sample), so a Source need not be safe for
// concurrent use; Read must not block for long, it runs on the admission path.
// Read must not panic: a panic goes on to the Admit that sampled (and, from
// the background sampler, ends the process); the breaker samples again at
// the next Admit or interval.
type Source interface {
	Read(r *Reading)
}

// The runtime/metrics names the default Source reads.
const (
	metricTotal      = "/memory/classes/total:bytes"
	metricReleased   = "/memory/classes/heap/released:bytes"
	metricFree       = "/memory/classes/heap/free:bytes"
	metricGoroutines = "/sched/goroutines:goroutines"
	metricGCCPU      = "/cpu/classes/gc/total:cpu-seconds"
	metricTotalCPU   = "/cpu/classes/total:cpu-seconds"
)

// runtimeSource reads runtime/metrics (≈ 1 µs, stops nothing; unlike
// runtime.ReadMemStats, which stops the world and must never be used here).
//
// Used = total − released − free: memory mapped by the Go runtime that the
// process really holds, less heap memory that is free and will be reused
// before the heap grows. Counting free heap as used would hold the breaker
// shut for seconds after a GC, until the scavenger returns it to the OS.
type runtimeSource struct {
	samples []metrics.Sample
}

func newRuntimeSource() *runtimeSource {
	names := []string{metricTotal, metricReleased, metricFree, metricGoroutines, metricGCCPU, metricTotalCPU}
	s := &runtimeSource{samples: make([]metrics.Sample, len(names))}
	for i, n := range names {
		s.samples[i].Name = n
	}
	return s
}

// Read implements Source.
func (s *runtimeSource) Read(r *Reading) {
	metrics.Read(s.samples)
	u := func(i int) int64 {
		if s.samples[i].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return int64(s.samples[i].Value.Uint64())
	}
	f := func(i int) float64 {
		if s.samples[i].Value.Kind() != metrics.KindFloat64 {
			return 0
		}
		return s.samples[i].Value.Float64()
	}
	r.Used = max(u(0)-u(1)-u(2), 0)
	r.Goroutines = u(3)
	r.GCCPUSeconds = f(4)
	r.TotalCPUSeconds = f(5)
}

var _ Source = (*runtimeSource)(nil)
