package chatsim_test

import (
	"context"
	"fmt"
	"time"

	"github.com/shoal-go/shoal/bench/chatsim"
)

// A small, reproducible day: 50 rooms, a persist that fails for one message
// in ten (failing the write that carries it), a fan-out that panics for one
// in fifty, and pond with a mutex and a pending batch per room instead of
// shoal.
func ExampleConfig() {
	cfg := chatsim.DefaultConfig()
	cfg.Variant = chatsim.Pond
	cfg.Rooms = 50
	cfg.Rate = 2_000
	cfg.Duration = 100 * time.Millisecond
	cfg.Seed = 7
	cfg.ErrorRate, cfg.PanicRate = 0.1, 0.02
	cfg.MinWorkers, cfg.MaxWorkers = 1, 4
	res, err := chatsim.Run(context.Background(), cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	// Taking a room's pending messages under its mutex keeps them in order.
	fmt.Println(res.Variant, "lost:", res.Lost(), "out of order:", res.OutOfOrder, "overlaps:", res.Overlaps)
	// Output: pond lost: 0 out of order: 0 overlaps: 0
}

// A Result accounts for every message: each accepted one completed or is a
// dead letter with its reason; Batches describes the persist writes.
func ExampleResult() {
	cfg := chatsim.DefaultConfig()
	cfg.Rooms = 50
	cfg.Rate = 2_000
	cfg.Duration = 100 * time.Millisecond
	cfg.ErrorRate = 0.1
	res, err := chatsim.Run(context.Background(), cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	var letters uint64
	for _, n := range res.DeadLetters {
		letters += n
	}
	fmt.Println(res.Accepted == res.Completed+letters, res.DeadLetters["Failed"] > 0)
	fmt.Println(res.P50 <= res.P99 && res.P99 <= res.Max)
	fmt.Println(res.Batches.Calls > 0, res.Batches.Messages >= res.Completed)
	// Output:
	// true true
	// true
	// true true
}
