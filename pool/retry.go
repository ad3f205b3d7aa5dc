package pool

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"time"
)

// RetryPolicy says how often and how late a task that returned an error is
// run again. While a task waits for its next attempt, its group is parked:
// later tasks of the same group wait behind it (order is kept) and the
// worker serves other groups.
//
// The delay before attempt n+1 is drawn uniformly from [0, min(Max,
// Base×Multiplier^(n-1))] ("full jitter"), or is exactly that bound with
// NoJitter, unless Backoff is set.
type RetryPolicy struct {
	// MaxAttempts is the number of attempts in all, the first included
	// (1 = no retry). Must be >= 1.
	MaxAttempts int
	// Base is the bound of the first delay (default 10 ms, or Max if that
	// is less).
	Base time.Duration
	// Max caps every delay (default 10 s, or Base if that is more); it
	// must not be below Base.
	Max time.Duration
	// Multiplier is the growth of the bound per attempt (default 2; >= 1,
	// not NaN).
	Multiplier float64
	// NoJitter uses the bound itself as the delay.
	NoJitter bool
	// Backoff, if set, replaces the computation above: it returns the delay
	// before attempt+1, given the number of attempts made so far (>= 1).
	Backoff func(attempt int) time.Duration
	// Retryable, if set, decides whether an error may be retried; errors
	// marked with Permanent are never retried.
	Retryable func(error) bool
}

func (p *RetryPolicy) validate() error {
	if p.MaxAttempts < 1 {
		return invalid("RetryPolicy.MaxAttempts %d: want >= 1", p.MaxAttempts)
	}
	if p.Base < 0 || p.Max < 0 {
		return invalid("RetryPolicy: negative Base or Max")
	}
	if math.IsNaN(p.Multiplier) || p.Multiplier != 0 && p.Multiplier < 1 {
		return invalid("RetryPolicy.Multiplier %v: want >= 1", p.Multiplier)
	}
	// A default never contradicts the other bound given: Max alone below
	// 10 ms lowers the first delay's bound to it, Base alone above 10 s
	// raises the cap to it.
	if p.Base == 0 {
		p.Base = 10 * time.Millisecond
		if p.Max != 0 {
			p.Base = min(p.Base, p.Max)
		}
	}
	if p.Max == 0 {
		p.Max = max(10*time.Second, p.Base)
	}
	if p.Max < p.Base {
		return invalid("RetryPolicy: Max %v < Base %v", p.Max, p.Base)
	}
	if p.Multiplier == 0 {
		p.Multiplier = 2
	}
	return nil
}

// delay returns the wait before the next attempt, after attempts attempts.
func (p *RetryPolicy) delay(attempts int) time.Duration {
	if p.Backoff != nil {
		return max(p.Backoff(attempts), 0)
	}
	// One Pow, not a product per attempt: a task retried for ever with a
	// Multiplier of 1 (or just above) would cost its worker a loop as long
	// as its attempts at each retry. Past Max it is +Inf, capped below.
	bound := float64(p.Base)
	if attempts > 1 && p.Multiplier != 1 {
		bound *= math.Pow(p.Multiplier, float64(attempts-1))
	}
	// Converted only below Max: a float at or near Max may round past
	// the largest Duration.
	d := p.Max
	if bound < float64(p.Max) {
		d = time.Duration(bound)
	}
	if p.NoJitter || d <= 0 {
		return d
	}
	// In uint64: int64(d)+1 wraps negative at the largest Duration.
	return time.Duration(rand.Uint64N(uint64(d) + 1))
}

// judge is verdict, with the delay before the retry, for the failed
// attempt number attempts that returned err. The error's own methods
// (Unwrap, Is, As, which errors.Is calls) and the policy's Retryable and
// Backoff are the application's code: where one of them panics (a typed
// nil error whose Unwrap reads its receiver), ok is false and pv holds the
// panic's value, and the attempt is a panic of the task. It never lets
// the panic reach the worker.
func (p *RetryPolicy) judge(err error, attempts int) (reason Reason, retry bool, delay time.Duration, pv any, ok bool) {
	defer func() {
		if !ok {
			pv = recover()
		}
	}()
	reason, retry = p.verdict(err, attempts)
	if retry {
		delay = p.delay(attempts)
	}
	return reason, retry, delay, nil, true
}

// verdict says what becomes of a failed attempt, number attempts, that
// returned err: retry, or a letter with reason.
func (p *RetryPolicy) verdict(err error, attempts int) (reason Reason, retry bool) {
	switch {
	case errors.Is(err, context.Canceled):
		return ReasonCanceled, false
	case !p.retryable(err, attempts):
		return ReasonFailed, false
	}
	return 0, true
}

// retryable reports whether err, returned by attempt number attempts, may be
// retried.
func (p *RetryPolicy) retryable(err error, attempts int) bool {
	if attempts >= p.MaxAttempts || IsPermanent(err) {
		return false
	}
	return p.Retryable == nil || p.Retryable(err)
}
