// Package metrics holds the lock-free, allocation-free instruments behind
// the pool's statistics:
//
//   - Histogram: durations in fixed log-scale buckets (four per power of two,
//     from 1 µs to about 69 s), recorded with two atomic adds and a load, and
//     read as a mergeable HistogramSnapshot with count, sum, max and
//     quantiles accurate to within one bucket (at most 25 % relative error).
//   - Rate: an exponentially weighted moving average of events per second.
//     The hot path is one atomic add; the caller ticks it with an explicit
//     time, so tests are deterministic.
//   - TopK: the groups with the most queued tasks, from a sampled count-min
//     sketch and a 16-slot table. The hot path is a sampling decision for
//     every task (IncSeq: one multiplication on a number the caller has) and
//     two atomic adds on submit and two on completion for one task in eight.
//
// Every zero value is ready to use. None of them starts a goroutine, and
// none allocates on its hot path (tested with testing.AllocsPerRun).
//
// Costs measured on the shared 2-core reference box (Go 1.26), medians of
// `go test -run '^$' -bench . -benchtime 200ms -count 5 ./internal/metrics/`:
// Histogram.Record ≈ 13 ns (one goroutine or two), Histogram.Snapshot with
// Summary ≈ 180 ns, Rate.Add ≈ 6 ns alone and ≈ 9 ns with two goroutines
// adding; per queued task, TopK IncSeq+Dec ≈ 5 ns and Inc+Dec ≈ 12 ns (the
// draw from math/rand/v2 is ≈ 6 ns of it) at the default 1-in-8 sampling,
// and ≈ 27–50 ns when every task is counted.
package metrics
