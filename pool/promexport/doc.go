// Package promexport exports a shoal pool's statistics to Prometheus.
//
// A Collector reads one pool.Stats per scrape through Source (any
// *pool.Pool[K] or *pool.Batcher[K, M] is one): counters, queues, workers, the queue-wait and
// run-time histograms, rates, the breaker's figures (pool.WithBreaker's or
// pool.WithMemoryBudget's own) and the heaviest group:
//
//	p, _ := pool.New[string](pool.WithMemoryBudget(2 << 30))
//	c, _ := promexport.New(p, promexport.WithConstLabels(prometheus.Labels{"pool": "fanout"}))
//	prometheus.MustRegister(c)
//
// The metrics, all prefixed shoal_:
//
//	tasks_submitted_total             counter    accepted submissions
//	tasks_total{outcome}              counter    finished tasks: completed or dead_letter
//	dead_letters_total{reason}        counter    failed, panicked, canceled, expired, shutdown
//	rejections_total{reason}          counter    queue_full, closed, memory_pressure, throttled
//	task_attempts_failed_total        counter    attempts that returned an error
//	task_retries_total                counter    retries that ran
//	task_panics_total                 counter    tasks that panicked
//	dead_letter_stalls_total          counter    waits for room in the dead-letter channel
//	dead_letters_untaken_total        counter    letters nobody took (logged)
//	queue_depth                       gauge      tasks accepted and not yet finished (running ones too)
//	queue_depth_max_shard             gauge      the same, in the deepest shard
//	shards_waiting                    gauge      shards ready and waiting for a worker
//	workers{state}                    gauge      busy, idle, spinning: they sum to the running workers
//	workers_target                    gauge      workers the scaler keeps warm
//	workers_min, workers_max          gauge      the bounds of the worker count
//	task_wait_seconds                 histogram  acceptance to start, per attempt
//	task_run_seconds                  histogram  run time per attempt
//	task_arrivals_per_second          gauge      accepted tasks, 10 s moving average
//	task_completions_per_second       gauge      finished tasks, 10 s moving average
//	top_group_queued                  gauge      tasks waiting in the heaviest group (pool.WithTopGroups)
//	memory_pressure_ratio             gauge      used / budget (with a breaker)
//	memory_used_bytes                 gauge      used memory, reservations included (with a breaker)
//	memory_budget_bytes               gauge      the budget (with a breaker)
//	breaker_state{state}              gauge      1 for the current state, else 0 (with a breaker)
//	breaker_transitions_total{state}  counter    entries into each state (with a breaker)
//	batch_size_messages               histogram  messages per call of a pool.Batcher's function,
//	                                             retries included (a Batcher that made calls)
//
// The histograms are the pool's: by default a sampled one attempt in
// pool.TimingSampleEvery is timed, and the exported counts and sum are
// scaled up by that factor, so rate(shoal_task_wait_seconds_count[5m])
// estimates attempts per second while histogram_quantile is unaffected;
// with pool.WithTimings every attempt is counted as is.
//
// Groups are not labels: a chat backend has millions of rooms, and a label
// per hot room would be a new series for every room that was ever hot. The
// heaviest group's depth (beside the deepest shard's) says that one group
// dominates; which one is in Stats.TopGroups, for logs or a debug page.
// The rates are the pool's own moving averages, for dashboards without
// PromQL; rate() over the counters gives the same over any window.
//
// Per-shard depths are not exported one series per shard (a pool has 1024
// shards by default); the total, the deepest shard and the waiting shards
// say whether the pool keeps up. Histogram buckets are the powers of two
// from 1.024 µs to 68.7 s, each bound the upper bound of a bucket the pool
// records exactly.
//
// A scrape costs one Snapshot (O(shards + workers), the histograms
// included): about 20 µs in all for a pool of 1024 shards on the 2-core
// reference box (BenchmarkCollect). It never blocks the pool.
package promexport
