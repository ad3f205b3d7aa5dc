// Package scaling decides how many workers a shoal pool keeps warm.
//
// It is pure decision logic: no goroutines, no clock, no I/O. The pool's
// scaler goroutine samples its counters every [Policy.Interval], hands them to
// [Scaler.Step] as a [Sample], and applies the [Decision]'s Target. Time comes
// only from [Sample.Now], so the same samples always give the same decisions
// and tests can replay a whole day in microseconds.
//
// # Signals
//
//   - arrivals per second, as an exponentially weighted moving average (EWMA)
//     of the cumulative arrival counter, with weight [Policy.Alpha] per
//     interval;
//   - a baseline: the mean arrival rate over a sliding window
//     ([Policy.Window], default 60 s), kept in a fixed ring of
//     interval-sized buckets allocated once;
//   - queued tasks as a share of queue capacity, shards waiting for a worker,
//     and busy workers (also smoothed with Alpha).
//
// # Rules
//
// Grow the target by GrowStep (at least +1) when any of these holds:
//   - queued > GrowQueueRatio × capacity;
//   - arrivals > GrowArrivalFactor × baseline and shards are waiting;
//   - shards are waiting, every worker is busy, and the busy average is at
//     least SaturationRatio × target (saturation, not a momentary stall);
//   - the busy average is at least target + 1 (a pool that starts workers on
//     demand runs more than the target: keep warm what is in use).
//
// Growth goes at least to Headroom × the busy average. The arrival rule alone
// is capped: unless the workers are saturated (the third rule's condition),
// it grows the target to at most GrowBusyCap × the busy average, rounded up,
// plus one. Rising arrivals with workers to spare call for a little more
// headroom, not for max; without the cap a long ramp grew the target to max
// with half of it idle.
//
// Shrink it by ShrinkStep (at least −1) when queued ≤ ShrinkQueueRatio ×
// capacity, no shard is waiting, and either arrivals < ShrinkArrivalFactor ×
// baseline or the busy average has stayed at most ShrinkBusyRatio × target
// over the last ShrinkCooldown (sustained idleness, where the baseline itself
// falls to zero and the arrival rule no longer fires). A shrink never goes
// below Headroom × the peak of the busy average over the last ShrinkCooldown
// (a stabilisation window, as in Kubernetes' HPA): the target follows falling
// load down to what was recently in use, then stops, which is what keeps a
// steady noisy load from oscillating.
//
// The target always stays within the [min, max] passed to each Step; a change
// of bounds (the pool's Tune) applies at the next Step regardless of
// cooldowns. Between two changes at least Cooldown passes, and a shrink waits
// ShrinkCooldown after any change: growing late costs latency, shrinking late
// only costs idle workers.
//
// # Cost
//
// Step does a constant amount of work per call except when a sample arrives
// after a gap, which clears at most Window/Interval buckets; it never
// allocates.
package scaling
