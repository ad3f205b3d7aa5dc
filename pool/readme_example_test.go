package pool_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/shoal-go/shoal/pool"
)

// The README's quick start: messages of one room are delivered one at a
// time, in order; rooms run in parallel; failed deliveries are retried, and
// what still fails arrives on the dead-letter channel.
func Example_quickStart() {
	p, err := pool.New[string](
		pool.WithRetry(pool.RetryPolicy{MaxAttempts: 3, Base: 10 * time.Millisecond}),
		pool.WithMemoryBudget(1<<30), // refuse work before the process holds 1 GiB
	)
	if err != nil {
		panic(err)
	}

	// Read the dead letters; the loop ends when Close closes the channel.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for dl := range p.DeadLetters() {
			fmt.Printf("dead letter: %s %v (%d attempts): %v\n", dl.Group, dl.Reason, dl.Attempts, dl.Err)
		}
	}()

	var mu sync.Mutex
	delivered := map[string][]string{}
	deliver := func(room, msg string) pool.Task {
		return func(ctx context.Context) error {
			if msg == "" {
				return pool.Permanent(errors.New("empty message")) // not retried
			}
			mu.Lock()
			delivered[room] = append(delivered[room], msg)
			mu.Unlock()
			return nil
		}
	}

	ctx := context.Background()
	for _, m := range []struct{ room, msg string }{
		{"lobby", "hi"}, {"ops", "deploy?"}, {"lobby", "how are you"}, {"ops", ""}, {"lobby", "bye"},
	} {
		if err := p.Submit(ctx, m.room, deliver(m.room, m.msg)); err != nil {
			// Not accepted, and it will not run: the pool is closed, the room's
			// queue stayed full until ctx ended, or memory is short
			// (errors.Is(err, pool.ErrMemoryPressure)).
			fmt.Println("refused:", err)
		}
	}

	// Close stops admission, runs what is queued, and closes DeadLetters().
	if err := p.Close(ctx); err != nil {
		panic(err)
	}
	<-done
	fmt.Println("lobby:", delivered["lobby"])
	fmt.Println("ops:", delivered["ops"])
	// Output:
	// dead letter: ops Failed (1 attempts): empty message
	// lobby: [hi how are you bye]
	// ops: [deploy?]
}

type traceKey struct{}

// A task's context carries the submitter's values and deadline, but not the
// submitter's later cancellation: once accepted, a task belongs to the pool.
func Example_taskContext() {
	p, err := pool.New[string](pool.WithWorkers(1, 1), pool.WithShards(1))
	if err != nil {
		panic(err)
	}
	// Hold the only worker so that the next task starts after cancel below.
	gate := make(chan struct{})
	_ = p.Submit(context.Background(), "room", func(context.Context) error { <-gate; return nil })

	deadline := time.Now().Add(time.Hour)
	ctx, cancel := context.WithDeadline(context.WithValue(context.Background(), traceKey{}, "trace-1"), deadline)
	_ = p.Submit(ctx, "room", func(ctx context.Context) error {
		d, ok := ctx.Deadline()
		fmt.Println("value:", ctx.Value(traceKey{}))
		fmt.Println("deadline:", ok && d.Equal(deadline))
		fmt.Println("canceled:", ctx.Err() != nil)
		return nil
	})
	cancel() // the request is over; the accepted task still runs, uncanceled
	close(gate)
	if err := p.Close(context.Background()); err != nil {
		panic(err)
	}
	// Output:
	// value: trace-1
	// deadline: true
	// canceled: false
}
