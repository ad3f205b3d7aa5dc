package bench_test

import (
	"context"
	"fmt"
	"time"

	"github.com/shoal-go/shoal/bench"
)

// An IsolationConfig starts from the default scenario; here a run of 0.2 s
// over 500 groups, with the hot group, on the reference scheduler. The
// waits vary from run to run; the schedule, and so the counts, do not.
func ExampleIsolationConfig() {
	cfg := bench.DefaultIsolationConfig()
	cfg.Scheduler = bench.IsolationReference
	cfg.Groups, cfg.Slow = 500, 5
	cfg.FastRate = 2_000
	cfg.Warmup, cfg.Duration = 50*time.Millisecond, 150*time.Millisecond
	cfg.Hot = true
	res, err := bench.RunIsolation(context.Background(), cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("offered:", res.Offered)
	fmt.Println("every accepted task ran:", res.Ran == res.Accepted, res.Lost)
	fmt.Println("order kept:", res.OutOfOrder == 0 && res.Overlaps == 0)
	fmt.Println("fast waits measured:", res.Measured > 0, res.P50 <= res.P99)
	// Output:
	// offered: 1282
	// every accepted task ran: true 0
	// order kept: true
	// fast waits measured: true true
}

// IsolationTarget is the bound shoal's fast-group p99 wait is held to,
// from the reference's result of the same variant.
func ExampleIsolationTarget() {
	ref := bench.IsolationResult{Scheduler: bench.IsolationReference, P99: 1600 * time.Microsecond}
	for _, shoal := range []bench.IsolationResult{
		{Scheduler: bench.IsolationShoal, P99: 2900 * time.Microsecond},
		{Scheduler: bench.IsolationShoal, P99: 13300 * time.Microsecond},
	} {
		target := bench.IsolationTarget(ref)
		fmt.Printf("%v <= %v: %v (%.2f)\n", shoal.P99, target, shoal.P99 <= target, float64(shoal.P99)/float64(target))
	}
	// Output:
	// 2.9ms <= 3.4ms: true (0.85)
	// 13.3ms <= 3.4ms: false (3.91)
}

// IsolationSchedulers lists the names RunIsolation takes.
func ExampleIsolationSchedulers() {
	fmt.Println(bench.IsolationSchedulers())
	// Output: [shoal shoal-512 reference]
}

// An IsolationResult is judged in two steps: the run must be sound (every
// accepted task ran, none out of order or overlapping its group's previous
// one), and then its fast groups' p99 wait is held to the target.
func ExampleIsolationResult() {
	ref := bench.IsolationResult{Scheduler: bench.IsolationReference, P99: 1200 * time.Microsecond}
	res := bench.IsolationResult{
		Scheduler: bench.IsolationShoal,
		Offered:   100_500, Accepted: 100_500, Ran: 100_500,
		Measured: 99_000, P50: 500 * time.Microsecond, P99: 1500 * time.Microsecond,
	}
	fmt.Println("sound:", res.Sound())
	fmt.Printf("p99 %v against %v: %.2f of the target\n", res.P99, bench.IsolationTarget(ref),
		float64(res.P99)/float64(bench.IsolationTarget(ref)))
	// Output:
	// sound: true
	// p99 1.5ms against 2.8ms: 0.54 of the target
}
