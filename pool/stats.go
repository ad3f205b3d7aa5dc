package pool

// Invariants:
//
//   - A worker's counters are written only by that worker: it counts in
//     plain fields (local) and publishes them to pub with one atomic add per
//     field after each batch, so readers (Snapshot) never race and the hot
//     path pays no atomic per task.
//   - An exiting worker's published counters move into control.retired under
//     control.mu, in the same critical section that removes it from
//     control.all, so Snapshot (which holds mu) counts each event once.

import (
	"sync/atomic"
	"time"

	"github.com/shoal-go/shoal/backpressure"
)

// counter indexes.
const (
	cCompleted = iota
	cFailed
	cRetried
	cPanicked
	cStalls
	cCalls                                // a Batcher's calls
	cMsgs                                 // the messages of those calls
	cDead                                 // + Reason
	cSizes      = cDead + int(numReasons) // + batchBucket
	numCounters = cSizes + batchBuckets
)

// counters is a plain set of counts.
type counters [numCounters]uint64

// workerStats holds one worker's counts: the counters before cSizes, and,
// for a Batcher's worker, the call-size buckets (sizes, set before the
// worker starts; nil for a Pool's, whose slot stays 256 bytes smaller).
type workerStats struct {
	local [cSizes]uint64
	pub   [cSizes]atomic.Uint64
	sizes *sizeStats
}

// sizeStats holds a Batcher's worker's call-size buckets.
type sizeStats struct {
	local [batchBuckets]uint64
	pub   [batchBuckets]atomic.Uint64
}

// flush publishes the local counts. Only the owning worker calls it.
func (s *workerStats) flush() {
	for i := range s.local {
		if v := s.local[i]; v != 0 {
			// Publishes the worker's counts to Snapshot.
			s.pub[i].Add(v)
			s.local[i] = 0
		}
	}
	if s.sizes != nil {
		for i, v := range s.sizes.local {
			if v != 0 {
				s.sizes.pub[i].Add(v)
				s.sizes.local[i] = 0
			}
		}
	}
}

// countCall counts a Batcher's call of n messages.
func (s *workerStats) countCall(n int) {
	s.local[cCalls]++
	s.local[cMsgs] += uint64(n)
	s.sizes.local[batchBucket(n)]++
}

// addTo adds the published counts to c.
func (s *workerStats) addTo(c *counters) {
	for i := range s.pub {
		c[i] += s.pub[i].Load()
	}
	if s.sizes != nil {
		for i := range s.sizes.pub {
			c[cSizes+i] += s.sizes.pub[i].Load()
		}
	}
}

// ReasonCounts counts dead letters by reason.
type ReasonCounts struct {
	// One count per Reason, named after it.
	Failed, Panicked, Canceled, Expired, Shutdown uint64
}

// Total is the sum over all reasons.
func (r ReasonCounts) Total() uint64 {
	return r.Failed + r.Panicked + r.Canceled + r.Expired + r.Shutdown
}

// RejectCounts counts refused submissions by reason.
type RejectCounts struct {
	// One count per RejectReason, named after it.
	QueueFull, Closed, MemoryPressure, Throttled uint64
}

// Total is the sum over all reasons.
func (r RejectCounts) Total() uint64 {
	return r.QueueFull + r.Closed + r.MemoryPressure + r.Throttled
}

// WorkerCounts describes the worker goroutines at one instant.
type WorkerCounts struct {
	// Running workers: started and not exited.
	Running int
	// Idle workers: parked, waiting for work.
	Idle int
	// Spinning workers: out of work, briefly looking before they park.
	Spinning int
	// Busy workers: Running - Idle - Spinning. The four are read one after
	// the other while workers move between states; Idle and Spinning are
	// clamped so that Busy + Idle + Spinning = Running in every snapshot.
	Busy int
	// Min, Max and Target are the bounds and the count kept warm.
	Min, Max, Target int
}

// Stats is a snapshot of a pool's counters. It is a value: later activity
// does not change it, and ShardQueued belongs to the caller.
//
// Counters are read one by one while the pool runs, and a worker publishes
// what it finished when its batch ends, so a snapshot taken under load, or
// while a task runs, may be off by the tasks of one batch per worker; once
// the pool is quiet (or closed) they balance exactly:
// Submitted == Completed + DeadLetters.Total() + Queued (Queued counts
// running tasks too).
type Stats struct {
	// Taken is when the snapshot was taken.
	Taken time.Time
	// Submitted counts accepted tasks (Submit, TrySubmit or Go returned nil).
	Submitted uint64
	// Completed counts tasks that returned nil, after retries if any.
	Completed uint64
	// FailedAttempts counts attempts that returned an error (retried or
	// not); DeadLetters counts the tasks that failed for good.
	FailedAttempts uint64
	// Retried counts retries that ran: attempts after a failed one (a
	// Batcher's calls). A retry scheduled that never runs is not counted:
	// its task became a letter first (Shutdown when Close's deadline
	// passed, Expired when the task's deadline did).
	Retried uint64
	// Panicked counts tasks that panicked.
	Panicked uint64
	// DeadLetters counts letters by reason (undelivered ones included).
	DeadLetters ReasonCounts
	// DeadLetterStalls counts the times a worker had to wait for room in
	// the dead-letter channel.
	DeadLetterStalls uint64
	// DeadLettersUntaken counts letters nobody took: the channel stayed
	// full for DeadLetterWait, or the handler panicked. Each was logged
	// (log/slog, at most one line a second with the count). They are
	// included in DeadLetters.
	DeadLettersUntaken uint64
	// Rejected counts refused submissions by reason.
	Rejected RejectCounts
	// Queued is the number of accepted tasks not yet finished: waiting
	// to start, parked for a retry, or running (a task stays in its
	// group's queue until it returns). While tasks block, Workers.Busy
	// of them are running, so a pool whose workers are all busy shows
	// them here with nothing waiting.
	Queued int
	// ShardQueued is Queued per shard.
	ShardQueued []int
	// WaitingShards is the number of shards ready and waiting for a worker.
	WaitingShards int
	// Workers describes the worker goroutines.
	Workers WorkerCounts
	// Scaling is the scaler's last decision that moved the target, with
	// its reason; the zero value (Reason ScalingNone) without WithScaling,
	// before the scaler first moved the target (with min 0 its first
	// sample keeps the target at 0), or after Close. Workers.Target is the
	// target in effect, clamped to the current bounds.
	Scaling ScalingDecision
	// SlowTasks counts task attempts that ran longer than WithSlowTask's
	// threshold; 0 without it. An attempt that ends in runtime.Goexit is
	// not looked at (see WithSlowTask).
	SlowTasks uint64
	// Closed reports whether Close has been called.
	Closed bool
	// Batches describes a Batcher's calls; zero for a Pool.
	Batches BatchStats

	// Timings holds the queue-wait (acceptance to the start of each
	// attempt) and run-time distributions, with P50, P90, P99 and Max.
	// By default the pool times a sampled one task in TimingSampleEvery,
	// picked by its shard's submission count, with exact clock readings at acceptance,
	// start and end (the other tasks read no clock); counts are then of
	// sampled attempts, and Max is the largest sampled one. With
	// WithTimings they are that Timings' distributions: every attempt
	// but one that ends in runtime.Goexit (see WithTimings).
	Timings TimingStats
	// TimingSampleEvery is how many tasks each attempt in Timings stands
	// for: TimingSampleEvery by default, 1 with WithTimings.
	TimingSampleEvery int
	// ArrivalRate and CompletionRate are moving averages (10 s window) of
	// accepted tasks and finished tasks (completed or dead-lettered) per
	// second, folded in at each Snapshot from the counters: tasks pay
	// nothing for them. The first Snapshot averages since New.
	ArrivalRate, CompletionRate float64
	// TopGroups are the groups with the most tasks waiting to start,
	// heaviest first, at most 16; nil without WithTopGroups. Counting costs
	// a multiplication per task and, for one task in eight, two atomic adds
	// on Submit, two when it starts and a rehash of its group.
	TopGroups []GroupQueued
	// Breaker holds the breaker's figures (state, pressure, used memory,
	// budget, transitions into each state), for WithBreaker's and
	// WithMemoryBudget's alike; nil without a breaker.
	Breaker *backpressure.Stats
}
