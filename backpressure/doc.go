// Package backpressure refuses work before the process runs out of memory.
//
// A chat backend's worst night is a fan-out storm: admitted work outgrows
// memory and the kernel kills the process, dropping every room at once. A
// Breaker pushes back at submission instead: Admit returns nil, or an error
// that errors.Is ErrMemoryPressure or ErrThrottled and, through errors.As, a
// *RejectError with the figures and a retry-after hint. Admit never blocks.
//
// # The signal
//
// Use is read from runtime/metrics (about 1 µs, stops nothing) as
//
//	/memory/classes/total:bytes − /memory/classes/heap/released:bytes − /memory/classes/heap/free:bytes
//
// that is, the memory the Go runtime holds, less heap returned to the OS,
// less free heap that Go will reuse before it asks the OS for more. Counting
// free heap as used would hold the breaker shut after a GC for seconds,
// until the scavenger returns it. runtime.ReadMemStats is never called: it
// stops the world (tens of µs idle, milliseconds under load).
//
// Admitted work allocates after admission, so a sample cannot see it yet.
// The pool therefore registers its count of queued and running tasks with
// SetInFlightFunc, and the breaker reserves WithBytesPerTask (64 KiB by
// default) for each:
//
//	effective use = measured use + in flight × bytes per task
//	pressure      = effective use / budget
//
// The budget is WithBudget if given; else the memory limit of the process's
// cgroup (v1 memory.limit_in_bytes or v2 memory.max, the tightest on the path
// to the root) × WithCgroupRatio (0.9); else GOMEMLIMIT if set; else there is
// none: pressure stays zero, so memory never moves the breaker out of
// Normal, though the second signals below still do (Stats().Source is
// BudgetNone). When the
// budget comes from the cgroup, the background sampler compares the cgroup's
// charge, less inactive file cache, with the memory Go holds every 100 ms
// (WithCgroupCheck) and adds the excess (C allocations, mapped files) to the
// measured use. It reads every group on the path that has a limit: an
// ancestor whose looser limit its other members nearly fill counts by what
// they hold beyond its extra room, so the limit reached first is the one
// that counts.
//
// # Sampling
//
// The fast path of Admit is one atomic load of the last decision plus one
// call of the in-flight function (about 3 ns, no allocation). A caller of
// Admit samples inline, the others going on with the last sample, when:
//   - the sample is older than WithMaxStaleness (2 ms): a timer marks it
//     stale, and off the fast path the age is read from the clock;
//   - the in-flight count has grown by a quarter of the room left below the
//     next threshold since the sample, so a burst is re-measured however
//     long the timer is delayed: in a storm of runnable goroutines timers and
//     background samplers starve (a breaker fed by a background sampler alone
//     let 5 of 10 processes be OOM-killed under a 256 MiB cgroup; this one
//     survived 50 storms of 50 there, peaking at 111–195 MiB, in the package's
//     survival test).
//
// A background sampler (every 25 ms) lets the breaker recover while nothing
// is admitted. A caller that finds another sampling goes on with the last
// sample. In Normal, when that sample is older than 50 ms (unknown) or the
// in-flight count has reached the throttle threshold since it was taken,
// the caller is judged as Throttle would judge it by that sample: admitted
// through Throttle's bucket at WithThrottleRate (the rate at the throttle
// threshold, whatever rate a past Throttle left it at), and refused with
// ErrMemoryPressure where its reservation would pass the reject threshold.
//
// # States
//
//	state     admits                       moves to
//	Normal    everything                   Throttle at ≥ Throttle or on a second signal;
//	                                       Reject at ≥ Reject
//	Throttle  through a token bucket       Normal below Resume with no second signal;
//	                                       Reject at ≥ Reject
//	Reject    nothing                      Probe after pressure stayed below Recover
//	                                       for the hold time
//	Probe     a trickle                    Reject at ≥ Reject; after a hold time in Probe
//	                                       below Recover: Throttle (≥ Throttle or a
//	                                       second signal) or Normal
//
// Normal admits everything. Throttle admits through a token bucket
// (WithThrottleRate, 10,000/s at the throttle threshold) whose rate falls
// linearly to zero at the reject threshold; refusals match ErrThrottled,
// except that a task whose reservation would carry effective use past the
// reject threshold is refused with ErrMemoryPressure while the state stays
// Throttle. Reject refuses everything with ErrMemoryPressure, and forces a GC
// once a second (WithGCInReject) so that garbage cannot hold it shut; so does
// Throttle or Probe while it refuses every task that way (measured use within
// one reservation of the reject threshold, say). Probe admits a trickle
// (WithProbeRate, 100/s); its refusals match ErrMemoryPressure. A refusal's
// RetryAfter is never zero (nothing changes before the next sample); in
// Reject it is the hold time still to serve.
// Going up acts at once; going down needs a lower level (Resume, Recover)
// and, out of Reject, a hold time (WithHold, 1 s) in Reject and again in
// Probe, so noise around a threshold cannot make the state flap.
//
// Second signals lift the state to at least Throttle: the garbage
// collector's share of CPU over a window above a bound (WithGCCPUBound, 50 %
// over 1 s: the GC death spiral; the rate then shrinks with the share), and
// a goroutine ceiling (WithMaxGoroutines; at the ceiling nothing is
// admitted). In Probe they hold too: its trickle is no faster than
// Throttle's rate would be. A Source's CPU totals that come back NaN,
// infinite, negative or lower than before are ignored (the last good pair
// is kept), so one bad reading cannot fake or hide a GC spiral.
//
// # Choosing thresholds
//
// The defaults are Throttle 0.80, Resume 0.75, Recover 0.85, Reject 0.92 of
// the budget, which itself leaves 10 % of a cgroup limit for what Go does not
// see (page cache, C allocations, kernel memory). Move them with these in
// mind:
//   - Reject × budget must stay below the kill limit by more than the work
//     already running can still allocate beyond its reservation; raise
//     WithBytesPerTask rather than Reject when tasks are large.
//   - Reject − Throttle is the throttling band: wide enough that the rate
//     slope has room (a tenth of the budget is a good start).
//   - Resume below Throttle and Recover below Reject by more than the noise
//     of a sample (a GC cycle's swing of live plus garbage), else the state
//     flaps; the hold time should exceed one GC cycle.
//   - Garbage counts as used until collected: with GOGC=100 the heap may grow
//     to twice the live data before a GC. Setting GOMEMLIMIT near the budget
//     makes the collector run before the breaker throttles.
//
// SetThresholds and SetBudget change the configuration at run time without
// locks on the read path (an atomic pointer to an immutable configuration);
// invalid values return an error matching ErrInvalidConfig and change
// nothing.
//
// # Observing
//
// WithOnStateChange is called once per transition, in order, outside any
// lock and off the admission path. WithHeapProfile writes a heap profile on
// entering Reject, at most once per interval. Stats gives the last sample's
// figures and the transition counts.
//
// # Cost
//
// Measured on a 2-core machine (go test -bench . -count 3, medians): Admit
// in Normal 2.3 ns, 3.4 ns with an in-flight function, 35 ns when refusing
// (the clock read); a sample 0.8 µs, at most once per 2 ms under steady
// load, plus once per quarter of the room while the in-flight count grows.
package backpressure
