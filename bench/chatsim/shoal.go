package chatsim

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/shoal-go/shoal/backpressure"
	"github.com/shoal-go/shoal/pool"
)

// Invariants:
//   - The dead-letter goroutine is the only reader of the pool's dead-letter
//     channel; it exits when Close has closed that channel, and close waits
//     for it, so every letter is counted before close returns.
//   - The breaker outlives the pool: it is closed after the pool, which
//     makes its pending OnStateChange calls first.

// shoalScheduler runs each message as a task of its room's group.
type shoalScheduler struct {
	pool    *pool.Pool[uint32]
	brk     *backpressure.Breaker
	letters chan struct{} // closed when the dead-letter goroutine exits
}

// shoalRetry retries a failed persist twice, soon: an injected failure fails
// every attempt, so each one ends as a Failed dead letter after three tries,
// its room's later messages waiting behind it.
var shoalRetry = pool.RetryPolicy{MaxAttempts: 3, Base: 2 * time.Millisecond, Max: 20 * time.Millisecond}

func newShoal(cfg *Config, lost func(string), transition func(from, to string)) (*shoalScheduler, error) {
	b, err := backpressure.NewBreaker(
		backpressure.WithBudget(cfg.Budget),
		backpressure.WithOnStateChange(func(from, to backpressure.State) { transition(from.String(), to.String()) }),
	)
	if err != nil {
		return nil, fmt.Errorf("chatsim: breaker: %w", err)
	}
	opts := []pool.Option{
		pool.WithBreaker(b),
		pool.WithWorkers(cfg.MinWorkers, cfg.MaxWorkers),
		pool.WithScaling(pool.DefaultScalingPolicy()),
		pool.WithRetry(shoalRetry),
	}
	if cfg.Shards > 0 {
		opts = append(opts, pool.WithShards(cfg.Shards))
	}
	p, err := pool.New[uint32](opts...)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("chatsim: pool: %w", err), b.Close())
	}
	s := &shoalScheduler{pool: p, brk: b, letters: make(chan struct{})}
	go func() {
		defer close(s.letters)
		for dl := range p.DeadLetters() {
			lost(dl.Reason.String())
		}
	}()
	return s, nil
}

func (s *shoalScheduler) submit(ctx context.Context, room uint32, work func(context.Context) error) error {
	return s.pool.Submit(ctx, room, work)
}

func (s *shoalScheduler) pushback(err error) bool {
	return errors.Is(err, pool.ErrMemoryPressure) || errors.Is(err, pool.ErrThrottled)
}

func (s *shoalScheduler) workers() int    { return s.pool.Snapshot().Workers.Running }
func (s *shoalScheduler) breaker() string { return s.brk.State().String() }

func (s *shoalScheduler) close(ctx context.Context) error {
	err := s.pool.Close(ctx)
	<-s.letters
	return errors.Join(err, s.brk.Close())
}
