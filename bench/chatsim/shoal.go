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
//   - The dead-letter goroutine is the only reader of the Batcher's
//     dead-letter channel; it exits when Close has closed that channel, and
//     close waits for it, so every letter is counted before close returns.
//   - The breaker outlives the Batcher: it is closed after the Batcher,
//     which makes its pending OnStateChange calls first.

// shoalScheduler persists each room's queued messages through a
// pool.Batcher: one call, one write, per batch of a room.
type shoalScheduler struct {
	batcher *pool.Batcher[uint32, *item]
	brk     *backpressure.Breaker
	letters chan struct{} // closed when the dead-letter goroutine exits
}

// shoalRetry retries a failed write twice, soon: an injected failure fails
// every attempt, so its batch ends as one Failed dead letter after three
// tries, its room's later messages waiting behind it.
var shoalRetry = pool.RetryPolicy{MaxAttempts: 3, Base: 2 * time.Millisecond, Max: 20 * time.Millisecond}

// messageBytes is the breaker's reservation per accepted message not yet
// handled (backpressure.WithBytesPerTask): what a chat message may still
// allocate after admission, its encoding for the write and the fan-out's
// buffers. The breaker's default, 64 KiB, is sized for a task that grows a
// goroutine stack; under a Batcher every queued message holds a
// reservation, and with the default a backlog of about 6,500 messages (at
// the 512 MiB default budget) put the breaker in Throttle while the
// process held 30 MiB.
const messageBytes = 4 << 10

func newShoal(cfg *Config, handle func(uint32, []*item) error, lost func(string, []*item), transition func(from, to string)) (*shoalScheduler, error) {
	b, err := backpressure.NewBreaker(
		backpressure.WithBudget(cfg.Budget),
		backpressure.WithBytesPerTask(messageBytes),
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
		pool.WithMaxBatch(cfg.maxBatch()),
	}
	if cfg.Shards > 0 {
		opts = append(opts, pool.WithShards(cfg.Shards))
	}
	fn := func(_ context.Context, room uint32, items []*item) error { return handle(room, items) }
	bt, err := pool.NewBatcher(fn, opts...)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("chatsim: batcher: %w", err), b.Close())
	}
	s := &shoalScheduler{batcher: bt, brk: b, letters: make(chan struct{})}
	go func() {
		defer close(s.letters)
		for dl := range bt.DeadLetters() {
			lost(dl.Reason.String(), dl.Msgs)
		}
	}()
	return s, nil
}

func (s *shoalScheduler) submit(ctx context.Context, room uint32, it *item) error {
	return s.batcher.Submit(ctx, room, it)
}

func (s *shoalScheduler) pushback(err error) bool {
	return errors.Is(err, pool.ErrMemoryPressure) || errors.Is(err, pool.ErrThrottled)
}

func (s *shoalScheduler) workers() int    { return s.batcher.Snapshot().Workers.Running }
func (s *shoalScheduler) breaker() string { return s.brk.State().String() }

func (s *shoalScheduler) batchStats() (pool.BatchStats, bool) {
	return s.batcher.Snapshot().Batches, true
}

func (s *shoalScheduler) close(ctx context.Context) error {
	err := s.batcher.Close(ctx)
	<-s.letters
	return errors.Join(err, s.brk.Close())
}
