package backpressure

import (
	"errors"
	"fmt"
	"time"
)

// ErrMemoryPressure is matched (errors.Is) by every admission refused because
// memory use is at or above the reject threshold, or would pass it with the
// refused task's reservation (in Throttle or Probe too), or because the
// breaker is probing its way out of Reject.
var ErrMemoryPressure = errors.New("backpressure: memory pressure")

// ErrThrottled is matched (errors.Is) by every admission refused by the token
// bucket of the Throttle state (memory between the throttle and reject
// thresholds, GC CPU share above its bound, goroutine ceiling reached, or a
// sample too old to trust), and by Probe's refusals while the goroutine
// ceiling is reached.
var ErrThrottled = errors.New("backpressure: throttled")

// ErrClosed is returned by Admit and the setters after Close.
var ErrClosed = errors.New("backpressure: breaker closed")

// ErrInvalidConfig is matched by every error that rejects an option, a
// Thresholds value or a budget. The breaker is left unchanged.
var ErrInvalidConfig = errors.New("backpressure: invalid configuration")

// RejectError is the error Admit returns when it refuses work. It is
// immutable and may be shared between callers: do not modify it.
//
// errors.Is(err, ErrMemoryPressure) or errors.Is(err, ErrThrottled) tells the
// two kinds apart; errors.As gives the figures.
type RejectError struct {
	// Err is ErrMemoryPressure or ErrThrottled.
	Err error
	// State is the breaker state that refused the work.
	State State
	// Used is the effective use in bytes at the last sample: measured use
	// plus the reservation for admitted work.
	Used int64
	// Budget is the budget in bytes.
	Budget int64
	// RetryAfter is a hint: the earliest time at which a retry may succeed.
	RetryAfter time.Duration
}

// Error implements error.
func (e *RejectError) Error() string {
	return fmt.Sprintf("%v: state %v, used %d of %d bytes (%.1f%%), retry after %v",
		e.Err, e.State, e.Used, e.Budget, 100*ratio(e.Used, e.Budget), e.RetryAfter)
}

// Unwrap returns Err, so errors.Is matches the sentinel.
func (e *RejectError) Unwrap() error { return e.Err }

func ratio(used, budget int64) float64 {
	if budget <= 0 {
		return 0
	}
	return float64(used) / float64(budget)
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...)
}
