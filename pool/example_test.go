package pool_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/shoal-go/shoal/pool"
)

// Messages of one room are handled one at a time, in the order they were
// submitted; rooms run in parallel.
func ExamplePool_Submit() {
	p, err := pool.New[string]()
	if err != nil {
		panic(err)
	}
	var mu sync.Mutex
	var log []string
	for i := 1; i <= 3; i++ {
		err := p.Submit(context.Background(), "room-42", func(context.Context) error {
			mu.Lock()
			log = append(log, fmt.Sprint("message ", i))
			mu.Unlock()
			return nil
		})
		if err != nil {
			fmt.Println("not accepted:", err)
		}
	}
	if err := p.Close(context.Background()); err != nil {
		panic(err)
	}
	fmt.Println(log)
	// Output: [message 1 message 2 message 3]
}

// A task that fails is retried with backoff; while it waits, later tasks of
// its room wait too, so order holds. Permanent errors are not retried.
func ExampleWithRetry() {
	p, err := pool.New[string](pool.WithRetry(pool.RetryPolicy{
		MaxAttempts: 3,
		Base:        time.Millisecond,
		Max:         10 * time.Millisecond,
	}))
	if err != nil {
		panic(err)
	}
	attempts := 0
	_ = p.Submit(context.Background(), "room-7", func(context.Context) error {
		attempts++
		if attempts < 3 {
			return errors.New("upstream busy")
		}
		fmt.Println("delivered after", attempts, "attempts")
		return nil
	})
	_ = p.Submit(context.Background(), "room-7", func(context.Context) error {
		fmt.Println("next message of room-7")
		return nil
	})
	_ = p.Submit(context.Background(), "room-8", func(context.Context) error {
		return pool.Permanent(errors.New("bad payload")) // no retry
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for dl := range p.DeadLetters() {
			fmt.Println("dead letter:", dl.Group, dl.Reason, dl.Attempts, dl.Err)
		}
	}()
	if err := p.Close(context.Background()); err != nil {
		panic(err)
	}
	// Close closed the channel after its last letter; the reader may still
	// be printing it.
	<-done
	// Unordered output:
	// delivered after 3 attempts
	// next message of room-7
	// dead letter: room-8 Failed 1 bad payload
}

// Tasks that do not complete arrive on DeadLetters with a reason; the
// channel is closed by Close after the last letter.
func ExamplePool_DeadLetters() {
	var handled any // written by the worker; read after Close, which waits for it
	p, err := pool.New[int](pool.WithPanicHandler(func(v any, _ []byte) {
		handled = v
	}))
	if err != nil {
		panic(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for dl := range p.DeadLetters() {
			fmt.Println(dl.Group, dl.Reason, dl.Err)
		}
	}()
	_ = p.Submit(context.Background(), 1, func(context.Context) error { panic("nil map") })
	if err := p.Close(context.Background()); err != nil {
		panic(err)
	}
	<-done
	fmt.Println("handler saw:", handled)
	// Output:
	// 1 Panicked shoal: task panicked: nil map
	// handler saw: nil map
}

// Close stops admission, drains the backlog until its context ends, turns
// what is left into Shutdown letters, and returns when every worker has
// exited.
func ExamplePool_Close() {
	p, err := pool.New[int](pool.WithWorkers(1, 1), pool.WithShards(1))
	if err != nil {
		panic(err)
	}
	// A slow task (it stands for a long database write) holds the only
	// worker, and three more wait behind it.
	_ = p.Submit(context.Background(), 1, func(context.Context) error {
		time.Sleep(100 * time.Millisecond)
		return nil
	})
	for range 3 {
		_ = p.Submit(context.Background(), 1, func(context.Context) error { return nil })
	}
	shutdown := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		for dl := range p.DeadLetters() {
			if dl.Reason == pool.ReasonShutdown {
				shutdown++
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	err = p.Close(ctx)
	<-done
	fmt.Println(errors.Is(err, context.DeadlineExceeded), shutdown)
	fmt.Println(p.Submit(context.Background(), 1, func(context.Context) error { return nil }))
	// Output:
	// true 3
	// shoal: submission rejected (Closed)
}

// A refused submission says why; the task was not accepted.
func ExampleRejectError() {
	p, err := pool.New[string](pool.WithShards(1), pool.WithQueueSize(2), pool.WithWorkers(1, 1))
	if err != nil {
		panic(err)
	}
	hold := make(chan struct{})
	_ = p.Submit(context.Background(), "room", func(context.Context) error { <-hold; return nil })
	var refused error
	for range 4 { // two fit in the queue behind the running task
		if err := p.TrySubmit("room", func(context.Context) error { return nil }); err != nil {
			refused = err
		}
	}
	var re *pool.RejectError
	fmt.Println(errors.As(refused, &re), re.Reason, errors.Is(refused, pool.ErrQueueFull))
	close(hold)
	_ = p.Close(context.Background())
	// Output: true QueueFull true
}

// Snapshot returns the counters as an immutable value.
func ExamplePool_Snapshot() {
	p, err := pool.New[int](pool.WithWorkers(2, 4))
	if err != nil {
		panic(err)
	}
	for g := range 10 {
		_ = p.Submit(context.Background(), g, func(context.Context) error { return nil })
	}
	_ = p.Close(context.Background())
	s := p.Snapshot()
	fmt.Println(s.Submitted, s.Completed, s.Queued, s.DeadLetters.Total(), s.Closed)
	// Output: 10 10 0 0 true
}

// Permanent marks an error that retrying cannot fix.
func ExamplePermanent() {
	p, err := pool.New[int](pool.WithRetry(pool.RetryPolicy{MaxAttempts: 5}))
	if err != nil {
		panic(err)
	}
	_ = p.Submit(context.Background(), 1, func(context.Context) error {
		return pool.Permanent(errors.New("user blocked the bot"))
	})
	go func() { _ = p.Close(context.Background()) }()
	for dl := range p.DeadLetters() {
		fmt.Println(dl.Reason, dl.Attempts, dl.Err, pool.IsPermanent(dl.Err))
	}
	// Output: Failed 1 user blocked the bot true
}

// Go runs a task that belongs to no group.
func ExamplePool_Go() {
	p, err := pool.New[string]()
	if err != nil {
		panic(err)
	}
	done := make(chan string, 1)
	_ = p.Go(context.Background(), func(context.Context) error { done <- "cleanup ran"; return nil })
	fmt.Println(<-done)
	_ = p.Close(context.Background())
	// Output: cleanup ran
}

// A handler takes every dead letter on the worker that made it, so no
// goroutine has to read DeadLetters().
func ExampleWithDeadLetterHandler() {
	var mu sync.Mutex
	var failed []string
	p, err := pool.New[string](
		pool.WithWorkers(1, 1),
		pool.WithDeadLetterHandler(func(dl pool.DeadLetter[string]) {
			mu.Lock()
			failed = append(failed, fmt.Sprintf("%s: %v", dl.Group, dl.Err))
			mu.Unlock()
		}),
	)
	if err != nil {
		panic(err)
	}
	_ = p.Submit(context.Background(), "lobby", func(context.Context) error {
		return pool.Permanent(errors.New("malformed message"))
	})
	if err := p.Close(context.Background()); err != nil {
		panic(err)
	}
	fmt.Println(failed)
	// Output:
	// [lobby: malformed message]
}
