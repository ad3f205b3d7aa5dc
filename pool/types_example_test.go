package pool_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/shoal-go/shoal/pool"
)

// fixedClock always reports the same instant.
type fixedClock time.Time

func (c fixedClock) Now() time.Time { return time.Time(c) }

// manualClock is a clock that a test (or a task standing for slow work)
// moves forward by hand; it is safe for concurrent use.
type manualClock struct {
	base time.Time
	off  atomic.Int64 // ns since base
}

func (c *manualClock) Now() time.Time          { return c.base.Add(time.Duration(c.off.Load())) }
func (c *manualClock) Advance(d time.Duration) { c.off.Add(int64(d)) }

// With a fixed clock, the timestamps on dead letters are predictable, as a
// test of a chat server's failure log wants them.
func ExampleClock() {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	p, err := pool.New[string](pool.WithClock(fixedClock(at)))
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = p.Submit(context.Background(), "lobby", func(context.Context) error {
		return errors.New("push gateway unavailable")
	})
	go func() { _ = p.Close(context.Background()) }()
	for dl := range p.DeadLetters() {
		fmt.Println(dl.Group, dl.EnqueuedAt.Format(time.RFC3339), dl.FailedAt.Format(time.RFC3339))
	}
	// Output: lobby 2026-03-01T12:00:00Z 2026-03-01T12:00:00Z
}

// When Close's context ends before the backlog is drained and nobody reads
// DeadLetters any more, the letters that found no room come back in the
// CloseError instead of being lost: a chat server can persist them and
// deliver them after a restart.
func ExampleCloseError() {
	p, err := pool.New[string](
		pool.WithDeadLetterBuffer(0), // nobody reads DeadLetters in this example
		pool.WithRetry(pool.RetryPolicy{MaxAttempts: 5, Base: time.Hour, Max: time.Hour, NoJitter: true}),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	// The room's first message waits an hour for a retry; the two behind it
	// wait with it, to keep the room's order.
	_ = p.Submit(context.Background(), "lobby", func(context.Context) error {
		return errors.New("push gateway unavailable")
	})
	for range 2 {
		_ = p.Submit(context.Background(), "lobby", func(context.Context) error { return nil })
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the shutdown deadline has already passed
	err = p.Close(ctx)

	var ce *pool.CloseError[string]
	if errors.As(err, &ce) {
		fmt.Println(errors.Is(err, context.Canceled), len(ce.Undelivered), "undelivered")
		for _, dl := range ce.Undelivered {
			fmt.Println(dl.Group, dl.Reason)
		}
	}
	// Output:
	// true 3 undelivered
	// lobby Shutdown
	// lobby Shutdown
	// lobby Shutdown
}

// A dead-letter consumer decides per reason what becomes of a message that
// was not delivered.
func ExampleDeadLetter() {
	p, err := pool.New[string](pool.WithWorkers(1, 1), pool.WithShards(1))
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = p.Submit(context.Background(), "lobby", func(context.Context) error {
		return errors.New("recipient unknown")
	})
	_ = p.Submit(context.Background(), "lobby", func(context.Context) error {
		var m map[string]int
		//lint:ignore SA5000 the task's bug, which its dead letter reports
		m["unread"]++
		return nil
	})
	_ = p.Submit(context.Background(), "random", func(context.Context) error {
		return fmt.Errorf("sender left: %w", context.Canceled)
	})
	go func() { _ = p.Close(context.Background()) }()

	for dl := range p.DeadLetters() {
		switch dl.Reason {
		case pool.ReasonFailed:
			fmt.Printf("%s: failed after %d attempt(s): %v\n", dl.Group, dl.Attempts, dl.Err)
		case pool.ReasonPanicked:
			fmt.Printf("%s: bug, stack of %t bytes kept\n", dl.Group, len(dl.Stack) > 0)
		case pool.ReasonCanceled:
			fmt.Printf("%s: dropped on purpose\n", dl.Group)
		default: // Expired, Shutdown: worth resubmitting later
			fmt.Printf("%s: %v, resubmit\n", dl.Group, dl.Reason)
		}
	}
	// Output:
	// lobby: failed after 1 attempt(s): recipient unknown
	// lobby: bug, stack of true bytes kept
	// random: dropped on purpose
}

// The Err of a Panicked letter is a *PanicError holding the value passed to
// panic; when that value is an error, errors.Is and errors.As reach it.
func ExamplePanicError() {
	errCorrupt := errors.New("corrupt message")
	p, err := pool.New[string]()
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = p.Submit(context.Background(), "lobby", func(context.Context) error { panic(errCorrupt) })
	go func() { _ = p.Close(context.Background()) }()
	for dl := range p.DeadLetters() {
		var pe *pool.PanicError
		fmt.Println(errors.As(dl.Err, &pe), pe.Value, errors.Is(dl.Err, errCorrupt))
	}
	// Output: true corrupt message true
}

func ExampleReason() {
	for _, r := range []pool.Reason{pool.ReasonFailed, pool.ReasonPanicked, pool.ReasonCanceled, pool.ReasonExpired, pool.ReasonShutdown} {
		fmt.Print(r, " ")
	}
	fmt.Println()
	// Output: Failed Panicked Canceled Expired Shutdown
}

// The dead-letter counts by reason, e.g. for an alert when panics appear.
func ExampleReasonCounts() {
	p, err := pool.New[string]()
	if err != nil {
		fmt.Println(err)
		return
	}
	go func() {
		for range p.DeadLetters() { // logged elsewhere
		}
	}()
	for _, room := range []string{"lobby", "random", "ops"} {
		_ = p.Submit(context.Background(), room, func(context.Context) error { return errors.New("offline") })
	}
	_ = p.Submit(context.Background(), "lobby", func(context.Context) error { panic("bad state") })
	_ = p.Close(context.Background())

	dl := p.Snapshot().DeadLetters
	fmt.Println(dl.Failed, dl.Panicked, dl.Total())
	// Output: 3 1 4
}

func ExampleRejectReason() {
	for _, r := range []pool.RejectReason{pool.RejectQueueFull, pool.RejectClosed, pool.RejectMemoryPressure, pool.RejectThrottled} {
		fmt.Print(r, " ")
	}
	fmt.Println()
	// Output: QueueFull Closed MemoryPressure Throttled
}

// The refusals by reason: messages that arrive during shutdown are counted
// as Closed.
func ExampleRejectCounts() {
	p, err := pool.New[string]()
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = p.Close(context.Background())
	for range 2 {
		_ = p.Submit(context.Background(), "lobby", func(context.Context) error { return nil })
	}
	rc := p.Snapshot().Rejected
	fmt.Println(rc.Closed, rc.QueueFull, rc.Total())
	// Output: 2 0 2
}

// errUpstreamBusy is worth a retry; other errors are not.
var errUpstreamBusy = errors.New("upstream busy")

// Only errors the policy calls retryable are tried again; the others become
// dead letters after one attempt.
func ExampleRetryPolicy() {
	p, err := pool.New[string](pool.WithRetry(pool.RetryPolicy{
		MaxAttempts: 3,
		Base:        time.Millisecond,
		NoJitter:    true,
		Retryable:   func(err error) bool { return errors.Is(err, errUpstreamBusy) },
	}))
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = p.Submit(context.Background(), "lobby", func(context.Context) error { return errUpstreamBusy })
	_ = p.Submit(context.Background(), "random", func(context.Context) error { return errors.New("message too large") })
	go func() { _ = p.Close(context.Background()) }()
	for dl := range p.DeadLetters() {
		fmt.Println(dl.Group, dl.Attempts, dl.Err)
	}
	// Unordered output:
	// lobby 3 upstream busy
	// random 1 message too large
}

// Options can be assembled from configuration; the first invalid one makes
// New fail with ErrInvalidOption, naming it.
func ExampleOption() {
	opts := []pool.Option{pool.WithWorkers(2, 16), pool.WithQueueSize(4096)}
	if interactive := true; interactive {
		opts = append(opts, pool.WithNonblocking()) // refuse rather than wait
	}
	p, err := pool.New[string](opts...)
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = p.Close(context.Background())

	_, err = pool.New[string](pool.WithWorkers(8, 2))
	fmt.Println(errors.Is(err, pool.ErrInvalidOption))
	// Output: true
}

// A Task is a plain function; a constructor can close over the message. The
// context carries the submitter's values, e.g. a request ID for the logs.
func ExampleTask() {
	type requestID struct{}
	deliver := func(room, text string) pool.Task {
		return func(ctx context.Context) error {
			fmt.Printf("[%v] %s: %s\n", ctx.Value(requestID{}), room, text)
			return nil
		}
	}
	p, err := pool.New[string]()
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.WithValue(context.Background(), requestID{}, "req-1")
	_ = p.Submit(ctx, "lobby", deliver("lobby", "hello"))
	_ = p.Close(context.Background())
	// Output: [req-1] lobby: hello
}

// SlowTask reports an attempt that ran past WithSlowTask's threshold. Run is
// measured with the pool's Clock, which here the task itself advances to
// stand for a slow database write.
func ExampleSlowTask() {
	clk := &manualClock{base: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	p, err := pool.New[string](
		pool.WithClock(clk),
		pool.WithSlowTask(time.Second, func(s pool.SlowTask[string]) {
			fmt.Printf("slow: %s attempt %d ran %v\n", s.Group, s.Attempt, s.Run)
		}),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = p.Submit(context.Background(), "lobby", func(context.Context) error {
		clk.Advance(3 * time.Second) // the history write took 3 s
		return nil
	})
	_ = p.Close(context.Background())
	// Output: slow: lobby attempt 1 ran 3s
}

// TimingStats holds the queue-wait and run-time distributions of a
// Snapshot; with WithTimings every attempt is in them.
func ExampleTimingStats() {
	p, err := pool.New[string](pool.WithTimings(new(pool.Timings)))
	if err != nil {
		fmt.Println(err)
		return
	}
	for range 5 {
		_ = p.Submit(context.Background(), "lobby", func(context.Context) error { return nil })
	}
	_ = p.Close(context.Background())
	ts := p.Snapshot().Timings
	fmt.Println(ts.Wait.Count(), ts.Run.Count(), ts.Run.P50() <= ts.Run.Max())
	// Output: 5 5 true
}

// WorkerCounts shows the bounds and how many workers run; after Close none
// does.
func ExampleWorkerCounts() {
	p, err := pool.New[string](pool.WithWorkers(2, 8))
	if err != nil {
		fmt.Println(err)
		return
	}
	w := p.Snapshot().Workers
	fmt.Println(w.Min, w.Max, w.Running >= w.Min)
	_ = p.Close(context.Background())
	w = p.Snapshot().Workers
	fmt.Println(w.Running, w.Busy)
	// Output:
	// 2 8 true
	// 0 0
}

// GroupQueued names a room with a backlog; Group holds the pool's key type.
func ExampleGroupQueued() {
	p, err := pool.New[string](pool.WithTopGroups(), pool.WithWorkers(1, 1))
	if err != nil {
		fmt.Println(err)
		return
	}
	hold, started := make(chan struct{}), make(chan struct{})
	_ = p.Submit(context.Background(), "ops", func(context.Context) error { close(started); <-hold; return nil })
	<-started // the only worker is busy: the messages below wait
	for range 40 {
		_ = p.Submit(context.Background(), "announcements", func(context.Context) error { return nil })
	}
	for _, g := range p.Snapshot().TopGroups[:1] {
		room := g.Group.(string)
		fmt.Println("backlog in", room, g.Queued > 0)
	}
	close(hold)
	_ = p.Close(context.Background())
	// Output: backlog in announcements true
}

// Start from the defaults and change what the chat load needs: rooms wake
// up together at the top of the hour, so grow on a smaller surge.
func ExampleScalingPolicy() {
	pol := pool.DefaultScalingPolicy()
	pol.GrowArrivalFactor = 1.2
	pol.Window = 5 * time.Minute
	p, err := pool.New[string](pool.WithWorkers(2, 64), pool.WithScaling(pol))
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = p.Close(context.Background())

	pol.GrowArrivalFactor = 0.5 // must be above 1
	_, err = pool.New[string](pool.WithScaling(pol))
	fmt.Println(errors.Is(err, pool.ErrInvalidScalingPolicy))
	// Output: true
}

// A log line or metric label per scaling decision; without WithScaling the
// pool never decides.
func ExampleScalingReason() {
	describe := func(r pool.ScalingReason) string {
		switch r {
		case pool.ScalingGrowQueue, pool.ScalingGrowArrivals, pool.ScalingGrowSaturated, pool.ScalingGrowBusy:
			return "grew (" + r.String() + ")"
		case pool.ScalingShrinkArrivals, pool.ScalingShrinkIdle:
			return "shrank (" + r.String() + ")"
		default:
			return r.String()
		}
	}
	p, err := pool.New[string]()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close(context.Background())
	fmt.Println(describe(p.Snapshot().Scaling.Reason))
	fmt.Println(describe(pool.ScalingShrinkIdle))
	// Output:
	// none
	// shrank (shrink: idle)
}
