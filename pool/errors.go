package pool

import (
	"errors"
	"fmt"

	"github.com/shoal-go/shoal/shard"
)

// ErrClosed is matched by every submission refused because Close has been
// called, and by options or Tune calls made after Close.
var ErrClosed = errors.New("shoal: pool closed")

// ErrQueueFull is matched by every submission refused because the group's
// queue (WithGroupQueueSize) or the pool-wide bound (WithMaxQueued) was
// full: at once with WithNonblocking or TrySubmit, or after the
// submitter's context ended while Submit waited for room.
var ErrQueueFull = errors.New("shoal: queue full")

// ErrNilTask is returned by Submit, TrySubmit and Go for a nil Task.
var ErrNilTask = errors.New("shoal: nil task")

// ErrNilContext is returned by Submit, Go and Close for a nil context.
var ErrNilContext = errors.New("shoal: nil context")

// ErrGoexit is the panic value of a Panicked dead letter whose task called
// runtime.Goexit (for instance through testing.T.FailNow): the worker's
// goroutine ends, another takes its place, and the group goes on. Under
// GODEBUG=panicnil=1 (the default where the main module says go < 1.21), a
// task's panic(nil) looks the same where it is recovered, and is lettered
// the same way; the worker then goes on.
var ErrGoexit = errors.New("shoal: task called runtime.Goexit")

// ErrInvalidOption is matched by every error that New or Tune returns for a
// bad argument: a size that is zero or negative, min > max, and so on.
var ErrInvalidOption = errors.New("shoal: invalid option")

// RejectReason says why a submission was refused.
type RejectReason uint8

// The reasons a submission can be refused.
const (
	// RejectQueueFull: the group's queue (WithGroupQueueSize) or the pool
	// (WithMaxQueued) had no room.
	RejectQueueFull RejectReason = iota
	// RejectClosed: the pool is closed or closing.
	RejectClosed
	// RejectMemoryPressure: the breaker is in its Reject or Probe state, or
	// its reservation for work in flight reached the reject threshold.
	RejectMemoryPressure
	// RejectThrottled: the breaker's token bucket refused the submission.
	RejectThrottled
	numRejectReasons
)

// The earlier names of the refusal reasons.
//
// Deprecated: use RejectQueueFull, RejectClosed, RejectMemoryPressure and
// RejectThrottled, whose names say what they are.
const (
	QueueFull      = RejectQueueFull
	Closed         = RejectClosed
	MemoryPressure = RejectMemoryPressure
	Throttled      = RejectThrottled
)

// String returns the reason's name.
func (r RejectReason) String() string {
	switch r {
	case RejectQueueFull:
		return "QueueFull"
	case RejectClosed:
		return "Closed"
	case RejectMemoryPressure:
		return "MemoryPressure"
	case RejectThrottled:
		return "Throttled"
	}
	return fmt.Sprintf("RejectReason(%d)", uint8(r))
}

func (r RejectReason) sentinel() error {
	switch r {
	case RejectQueueFull:
		return ErrQueueFull
	case RejectClosed:
		return ErrClosed
	case RejectMemoryPressure:
		return ErrMemoryPressure
	case RejectThrottled:
		return ErrThrottled
	}
	return nil
}

// RejectError is the error of a refused submission: the task was not
// accepted and will not run. errors.Is matches the sentinel of its Reason
// (ErrQueueFull, ErrClosed, ErrMemoryPressure, ErrThrottled) and anything
// Err matches (the context's error when a blocked Submit gave up, the
// breaker's *backpressure.RejectError with its figures).
//
// A RejectError may be shared between callers: do not modify it.
type RejectError struct {
	// Reason says why the submission was refused.
	Reason RejectReason
	// Err is the underlying cause, if any: ctx.Err() of a Submit that gave
	// up waiting for room, or the breaker's error.
	Err error
}

// Error implements error.
func (e *RejectError) Error() string {
	if e.Err != nil {
		return "shoal: submission rejected (" + e.Reason.String() + "): " + e.Err.Error()
	}
	return "shoal: submission rejected (" + e.Reason.String() + ")"
}

// Is reports whether target is the sentinel of e.Reason.
func (e *RejectError) Is(target error) bool { return target == e.Reason.sentinel() }

// Unwrap returns Err.
func (e *RejectError) Unwrap() error { return e.Err }

// Shared, immutable rejections for the reasons that carry no cause, so that a
// refused TrySubmit does not allocate.
var (
	rejectQueueFull = &RejectError{Reason: RejectQueueFull}
	rejectClosed    = &RejectError{Reason: RejectClosed}
)

// permanentError marks an error that must not be retried.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent wraps err so that the pool does not retry the task that returned
// it: the task goes to the dead letters as Failed after this attempt.
// errors.Is and errors.As see through the wrapper. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err, or an error it wraps, was marked with
// Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// CloseError is returned by Close when its context ended before the backlog
// was drained. The tasks still queued then were delivered as Shutdown dead
// letters; letters that found the dead-letter channel full once the deadline
// had passed are in Undelivered rather than dropped. errors.Is matches
// ctx's error.
type CloseError[K shard.Key] struct {
	// Err is the error of Close's context.
	Err error
	// Shutdown is the number of accepted tasks that became Shutdown dead
	// letters: those that never ran, and those that had failed and waited
	// for a retry (their letters carry the last error and the attempts).
	Shutdown int
	// Undelivered holds the letters the dead-letter channel had no room for
	// after the deadline, when the pool no longer waits for a reader (an
	// unbuffered channel has room only while a reader is receiving).
	// Every accepted task that neither completed,
	// reached DeadLetters() (or the dead-letter handler), nor was counted
	// in Stats.DeadLettersUntaken (a letter nobody took within
	// DeadLetterWait before the deadline, or whose handler panicked) is
	// here.
	Undelivered []DeadLetter[K]
}

// Error implements error.
func (e *CloseError[K]) Error() string {
	return fmt.Sprintf("shoal: close: %v: %d queued tasks shut down, %d letters undelivered",
		e.Err, e.Shutdown, len(e.Undelivered))
}

// Unwrap returns the context's error.
func (e *CloseError[K]) Unwrap() error { return e.Err }

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidOption}, args...)...)
}
