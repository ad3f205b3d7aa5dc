// Package promexport exports a shoal pool's statistics to Prometheus.
//
// A Collector reads one pool.Stats per scrape through Source (any
// *pool.Pool[K] is one) and, when given, a *pool.Timings for the queue-wait
// and run-time histograms and a breaker for memory pressure:
//
//	var timings pool.Timings
//	p, _ := pool.New[string](pool.WithTimings(&timings), pool.WithBreaker(b))
//	c, _ := promexport.New(p, promexport.WithTimings(&timings), promexport.WithBreaker(b))
//	prometheus.MustRegister(c)
//
// The metrics, all prefixed shoal_:
//
//	tasks_submitted_total             counter    accepted submissions
//	tasks_total{outcome}              counter    finished tasks: completed or dead_letter
//	dead_letters_total{reason}        counter    failed, panicked, canceled, expired, shutdown
//	rejections_total{reason}          counter    queue_full, closed, memory_pressure, throttled
//	task_attempts_failed_total        counter    attempts that returned an error
//	task_retries_total                counter    retries scheduled
//	task_panics_total                 counter    tasks that panicked
//	dead_letter_stalls_total          counter    waits for room in the dead-letter channel
//	queue_depth                       gauge      tasks waiting in shard queues
//	queue_depth_max_shard             gauge      tasks waiting in the deepest shard
//	shards_waiting                    gauge      shards ready and waiting for a worker
//	workers{state}                    gauge      busy, idle, spinning: they sum to the running workers
//	workers_target                    gauge      workers the scaler keeps warm
//	workers_min, workers_max          gauge      the bounds of the worker count
//	task_wait_seconds                 histogram  acceptance to start, per attempt (WithTimings)
//	task_run_seconds                  histogram  run time per attempt (WithTimings)
//	memory_pressure_ratio             gauge      used / budget (WithBreaker)
//	memory_used_bytes                 gauge      used memory, reservations included (WithBreaker)
//	memory_budget_bytes               gauge      the budget (WithBreaker)
//	breaker_state{state}              gauge      1 for the current state, else 0 (WithBreaker)
//	breaker_transitions_total{state}  counter    entries into each state (WithBreaker)
//
// Per-shard depths are not exported one series per shard (a pool has 1024
// shards by default); the total, the deepest shard and the waiting shards
// say whether the pool keeps up. Histogram buckets are the powers of two
// from 1.024 µs to 68.7 s, each bound the upper bound of a bucket the pool
// records exactly.
//
// A scrape costs one Snapshot (O(shards + workers)) and, with WithTimings,
// one Timings.Snapshot (about 2 µs): about 20 µs in all for a pool of 1024
// shards on the 2-core reference box (BenchmarkCollect). It never blocks
// the pool.
package promexport
