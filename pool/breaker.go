package pool

import (
	"errors"
	"fmt"

	"github.com/shoal-go/shoal/backpressure"
)

// ErrMemoryPressure is matched by every submission refused by the breaker
// because memory use is at or above its reject threshold, or would pass it
// with the refused task's reservation, or while it probes its way out of
// Reject. It is the same value as backpressure.ErrMemoryPressure.
var ErrMemoryPressure = backpressure.ErrMemoryPressure

// ErrThrottled is matched by every submission refused by the breaker's token
// bucket. It is the same value as backpressure.ErrThrottled.
var ErrThrottled = backpressure.ErrThrottled

// admitter is the part of the breaker that Submit uses: one call per
// submission, nil to admit.
type admitter interface{ Admit() error }

var _ admitter = (*backpressure.Breaker)(nil)

// rejectReasonOf classifies an admission error.
func rejectReasonOf(err error) RejectReason {
	switch {
	case errors.Is(err, backpressure.ErrThrottled):
		return RejectThrottled
	case errors.Is(err, backpressure.ErrClosed):
		return RejectClosed
	default:
		return RejectMemoryPressure
	}
}

// WithBreaker makes every submission ask b first: a refusal returns a
// *RejectError with reason MemoryPressure or Throttled (Closed if b is
// closed) that also matches b's own error. The pool registers its count of
// queued and running tasks with b.SetInFlightFunc, so that b reserves memory
// for admitted work; use one breaker per pool, or the last pool wins. The
// pool does not close b.
func WithBreaker(b *backpressure.Breaker) Option {
	return optionFunc(func(c *config) error {
		if b == nil {
			return invalid("WithBreaker(nil)")
		}
		c.breaker, c.ownBreaker, c.budget = b, nil, 0
		return nil
	})
}

// WithMemoryBudget gives the pool its own breaker with a memory budget of
// bytes (see package backpressure for the states and thresholds); Close
// closes it. The budget must be above the process's current memory use.
func WithMemoryBudget(bytes int64) Option {
	return optionFunc(func(c *config) error {
		if bytes <= 0 {
			return invalid("WithMemoryBudget(%d): want > 0", bytes)
		}
		c.breaker, c.budget = nil, bytes
		return nil
	})
}

// setupBreaker creates the pool's own breaker if asked, and registers the
// in-flight count.
func (p *core[K, P, L]) setupBreaker() error {
	if p.cfg.budget > 0 {
		opts := []backpressure.Option{backpressure.WithBudget(p.cfg.budget)}
		if p.oneCall {
			opts = append(opts, backpressure.WithBytesPerTask(BatchBytesPerMessage))
		}
		b, err := backpressure.NewBreaker(opts...)
		if err != nil {
			return fmt.Errorf("%w: WithMemoryBudget(%d): %w", ErrInvalidOption, p.cfg.budget, err)
		}
		p.cfg.breaker, p.cfg.ownBreaker = b, b
	}
	if b := p.cfg.breaker; b != nil {
		p.breaker = b
		p.trackInFlight = true
		if err := b.SetInFlightFunc(p.inFlight.Load); err != nil {
			if p.cfg.ownBreaker != nil {
				_ = p.cfg.ownBreaker.Close()
			}
			return fmt.Errorf("%w: breaker: %w", ErrInvalidOption, err)
		}
	}
	return nil
}
