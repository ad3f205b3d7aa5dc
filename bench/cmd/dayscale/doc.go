// Command dayscale asks whether adaptive worker scaling pays: it runs a
// compressed day of I/O-like tasks through shoal four times, one pool
// configuration after the other, and reports the queue wait at the peak and
// the worker-seconds each configuration spent.
//
// The day: quiet, a ramp up, a peak at five times the quiet rate, a ramp
// down, quiet again. Tasks sleep 1–5 ms (uniform), over 100,000 groups.
// Arrivals follow the rate curve exactly in their cumulative count, at
// random instants within each millisecond.
//
// Configurations:
//
//	adaptive         WithWorkers(1, max) and WithScaling
//	on demand        WithWorkers(1, max), no scaler: workers start when shards
//	                 wait and exit after the idle timeout
//	static at max    WithWorkers(max, max)
//	static at mean   WithWorkers(m, m), m = the day's mean need: the mean of
//	                 Stats.Workers.Busy over the static-at-max day, rounded up
//
// The day lasts 14 phase units (default 0.25 s). At this time scale, the
// adaptive pools use a compressed policy and idle timeout, printed with the
// figures. Each configuration lives through -rounds days (default 3), the
// configurations taking turns, and the figures are medians over its days:
// on a shared two-core machine one stall of tens of milliseconds during a
// peak sets that day's p99.
//
// Worker-seconds integrate Stats.Workers.Running, sampled every 5 ms. Queue
// wait is the time from Submit to the task's start, for tasks submitted
// during the peak. Each pool gets drainLimit (1 s) after its day to finish;
// a pool that cannot (static at mean) sheds the rest as Shutdown dead
// letters, and its waits count only the tasks that started: a lower bound,
// marked ">=". An adaptive pool that sheds so misses both p99 targets. The
// percentiles are nearest-rank.
//
// Run it under the benchmark lock:
//
//	go run ./bench/cmd/dayscale
package main
