package pool

// Invariants:
//
//   - A letter is sent by the worker that holds the task's group, so one
//     group's letters arrive in the order of its tasks.
//   - A worker waits for room in the channel up to DeadLetterWait, or
//     until Close's deadline (abandonCh); after the deadline, letters go to
//     CloseError.Undelivered, under undeliveredMu; after the wait, the
//     letter is counted in untaken and logged. No letter disappears
//     without a trace.

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/shoal-go/shoal/shard"
)

// Reason says why a task became a dead letter.
type Reason uint8

// The reasons a task can become a dead letter.
const (
	// ReasonFailed: the task returned an error on its last attempt, or an
	// error marked with Permanent, or one RetryPolicy.Retryable refused.
	ReasonFailed Reason = iota
	// ReasonPanicked: the task panicked. Panics are not retried.
	ReasonPanicked
	// ReasonCanceled: the task returned an error matching context.Canceled
	// (it gave up on purpose); such errors are not retried.
	ReasonCanceled
	// ReasonExpired: the deadline of the task's context passed before an
	// attempt could start (or while it returned an error).
	ReasonExpired
	// ReasonShutdown: Close's context ended before the task could run.
	ReasonShutdown
	numReasons
)

// The earlier names of the reasons.
//
// Deprecated: use ReasonFailed, ReasonPanicked, ReasonCanceled,
// ReasonExpired and ReasonShutdown, whose names say what they are.
const (
	Failed   = ReasonFailed
	Panicked = ReasonPanicked
	Canceled = ReasonCanceled
	Expired  = ReasonExpired
	Shutdown = ReasonShutdown
)

// String returns the reason's name.
func (r Reason) String() string {
	switch r {
	case ReasonFailed:
		return "Failed"
	case ReasonPanicked:
		return "Panicked"
	case ReasonCanceled:
		return "Canceled"
	case ReasonExpired:
		return "Expired"
	case ReasonShutdown:
		return "Shutdown"
	}
	return fmt.Sprintf("Reason(%d)", uint8(r))
}

// DeadLetter is an accepted task that did not complete, with why.
type DeadLetter[K shard.Key] struct {
	// Group is the task's group (the zero K for Go).
	Group K
	// Task is the task itself, so it can be inspected or resubmitted.
	Task Task
	// Err is the last error: the task's, context.DeadlineExceeded for
	// Expired, an error describing the panic for Panicked, ErrClosed for
	// Shutdown when the task never ran.
	Err error
	// Reason says why the task is here.
	Reason Reason
	// Attempts is how many times the task ran.
	Attempts int
	// Panic is the recovered value for Panicked, nil otherwise.
	Panic any
	// Stack is the panicking goroutine's stack for Panicked.
	Stack []byte
	// EnqueuedAt is when the task was accepted.
	EnqueuedAt time.Time
	// FailedAt is when the task became a dead letter.
	FailedAt time.Time
}

// PanicError is the Err of a Panicked dead letter.
type PanicError struct {
	// Value is the value passed to panic.
	Value any
}

// Error implements error.
func (e *PanicError) Error() string { return fmt.Sprintf("shoal: task panicked: %v", e.Value) }

// Unwrap returns the panic value if it is an error.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// letterInfo is what the log line of an untaken letter says.
type letterInfo[K shard.Key] struct {
	group    K
	reason   Reason
	attempts int
	err      error
}

// deliver hands the dead letter dl to the handler, or sends it on the
// channel. When the channel is full the worker waits up to dlWait
// (pressure flows back to submitters), unless Close's deadline has passed:
// then the letter is kept for the close error's Undelivered. A letter still
// without room after the wait is counted as untaken and logged.
func (p *core[K, P, L]) deliver(w *worker, dl L, info letterInfo[K]) {
	if p.dlHandler != nil {
		if !p.handle(dl) {
			p.giveUp(info, "the dead-letter handler panicked or called runtime.Goexit")
		}
		return
	}
	select {
	case p.dl <- dl:
		return
	default:
	}
	// Once Close's deadline has passed, nobody waits any more.
	if !p.abandon.Load() {
		// Publishes the stall at once: the worker may wait here for long.
		w.stats.pub[cStalls].Add(1)
		t := time.NewTimer(p.cfg.dlWait)
		select {
		case p.dl <- dl:
			t.Stop()
			return
		case <-t.C:
			p.giveUp(info, "nobody took it from DeadLetters() within "+p.cfg.dlWait.String())
			return
		case <-p.abandonCh:
			t.Stop()
		}
	}
	p.undeliveredMu.Lock()
	p.undelivered = append(p.undelivered, dl)
	p.undeliveredMu.Unlock()
}

// handle calls the dead-letter handler (see contain); it reports false if
// it panicked or called runtime.Goexit.
func (p *core[K, P, L]) handle(dl L) bool {
	return contain(func() { p.dlHandler(dl) })
}

// giveUp counts a letter nobody took and logs it, at most once a second
// (with the count so far).
func (p *core[K, P, L]) giveUp(dl letterInfo[K], why string) {
	n := p.untaken.Add(1)
	p.untakenLog.Do(func() {
		slog.Warn("shoal: dead letter not taken", "why", why, "untaken", n,
			"group", dl.group, "reason", dl.reason, "attempts", dl.attempts, "err", dl.err)
	})
}
