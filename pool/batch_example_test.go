package pool_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/shoal-go/shoal/pool"
)

// A chat backend persists each room's pending messages in one write: while
// a room's write runs, its next messages queue, and the next write takes
// them all. Rooms never wait for each other's writes.
func ExampleBatcher() {
	var mu sync.Mutex
	stored := map[string][]string{}
	persist := func(_ context.Context, room string, msgs []string) error {
		// One INSERT of len(msgs) rows in a real server. msgs is reused
		// after the call: copy what you keep.
		mu.Lock()
		stored[room] = append(stored[room], msgs...)
		mu.Unlock()
		return nil
	}
	b, err := pool.NewBatcher(persist, pool.WithMaxBatch(128))
	if err != nil {
		fmt.Println(err)
		return
	}
	for i := range 5 {
		_ = b.Submit(context.Background(), "lobby", fmt.Sprintf("hello %d", i))
		_ = b.Submit(context.Background(), "support", fmt.Sprintf("ticket %d", i))
	}
	if err := b.Close(context.Background()); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(strings.Join(stored["lobby"], ", "))
	fmt.Println(strings.Join(stored["support"], ", "))
	fmt.Println(b.Snapshot().Completed, "messages stored")
	// Output:
	// hello 0, hello 1, hello 2, hello 3, hello 4
	// ticket 0, ticket 1, ticket 2, ticket 3, ticket 4
	// 10 messages stored
}

// A BatchFunc receives one room's queued messages in Submit order; an error
// fails the whole call, which is retried with the same messages before any
// later message of the room.
func ExampleBatchFunc() {
	started, release := make(chan struct{}), make(chan struct{})
	attempts := 0
	var write pool.BatchFunc[int, string] = func(_ context.Context, room int, msgs []string) error {
		if msgs[0] == "hello" {
			// The room's first write is slow: the next messages queue.
			close(started)
			<-release
			return nil
		}
		attempts++
		if attempts == 1 {
			fmt.Println("room", room, "failed", msgs)
			return errors.New("database busy")
		}
		fmt.Println("room", room, "stored", msgs)
		return nil
	}
	b, _ := pool.NewBatcher(write, pool.WithRetry(pool.RetryPolicy{MaxAttempts: 3, Base: time.Millisecond}))
	_ = b.Submit(context.Background(), 42, "hello")
	<-started
	_ = b.Submit(context.Background(), 42, "a")
	_ = b.Submit(context.Background(), 42, "b")
	close(release)
	_ = b.Close(context.Background())
	// Output:
	// room 42 failed [a b]
	// room 42 stored [a b]
}

// A call that fails for good becomes one letter holding its messages, so
// none is lost: here they are kept for a later replay.
func ExampleBatchDeadLetter() {
	write := func(_ context.Context, room string, msgs []string) error {
		return pool.Permanent(errors.New("room archived"))
	}
	b, _ := pool.NewBatcher(write, pool.WithWorkers(1, 1))
	_ = b.Submit(context.Background(), "old-room", "are you there?")
	go func() { _ = b.Close(context.Background()) }()
	for dl := range b.DeadLetters() {
		fmt.Println(dl.Group, dl.Reason, dl.Attempts, dl.Msgs, dl.Err)
	}
	// Output: old-room Failed 1 [are you there?] room archived
}

// When Close's context ends first, the running call's context is
// canceled, the messages never handed to the function come back as
// Shutdown letters, and Close says how many.
func ExampleBatchCloseError() {
	started := make(chan struct{})
	write := func(ctx context.Context, room string, msgs []string) error {
		close(started)
		<-ctx.Done() // a write that hangs until Close gives up
		return ctx.Err()
	}
	b, _ := pool.NewBatcher(write, pool.WithWorkers(1, 1), pool.WithMaxBatch(1))
	_ = b.Submit(context.Background(), "lobby", "first")
	<-started
	_ = b.Submit(context.Background(), "lobby", "second")
	_ = b.Submit(context.Background(), "lobby", "third")
	printed := make(chan struct{})
	go func() {
		for dl := range b.DeadLetters() {
			fmt.Println(dl.Reason, dl.Msgs)
		}
		close(printed)
	}()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := b.Close(ctx)
	<-printed
	var ce *pool.BatchCloseError[string, string]
	if errors.As(err, &ce) {
		fmt.Println("shut down:", ce.Shutdown)
	}
	// Output:
	// Canceled [first]
	// Shutdown [second]
	// Shutdown [third]
	// shut down: 2
}

// Stats.Batches tells how well a Batcher's calls amortize their cost: the
// mean and quantiles of messages per call.
func ExampleBatchStats() {
	var s pool.BatchStats
	s.Calls, s.Messages = 4, 14
	s.Sizes[0] = 1 // one call of 1 message
	s.Sizes[2] = 1 // one of 3 or 4
	s.Sizes[3] = 2 // two of 5 to 8
	fmt.Printf("mean %.1f, p50 ≤ %d, max ≤ %d\n", s.Mean(), s.Quantile(0.5), s.Quantile(1))
	// Output: mean 3.5, p50 ≤ 4, max ≤ 8
}

// A function that writes rows one by one knows how far it got: Partial
// keeps the rows it wrote, and only the rest is retried — here the retry
// succeeds, so nothing is written twice and nothing is lost.
func ExamplePartial() {
	started, release := make(chan struct{}), make(chan struct{})
	failed := false
	write := func(_ context.Context, room string, msgs []string) error {
		if msgs[0] == "hello" {
			close(started)
			<-release // the next messages queue meanwhile
		}
		for i, m := range msgs {
			if m == "c" && !failed {
				failed = true
				return pool.Partial(i, errors.New("connection reset"))
			}
			fmt.Println("wrote", m)
		}
		return nil
	}
	b, _ := pool.NewBatcher(write, pool.WithRetry(pool.RetryPolicy{MaxAttempts: 2, Base: time.Millisecond}))
	_ = b.Submit(context.Background(), "lobby", "hello")
	<-started
	for _, m := range []string{"a", "b", "c", "d"} {
		_ = b.Submit(context.Background(), "lobby", m)
	}
	close(release)
	_ = b.Close(context.Background())
	fmt.Println("completed:", b.Snapshot().Completed)
	// Output:
	// wrote hello
	// wrote a
	// wrote b
	// wrote c
	// wrote d
	// completed: 5
}
