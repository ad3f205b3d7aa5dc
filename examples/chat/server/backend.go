package server

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/alitto/pond/v2"
	"github.com/shoal-go/shoal/backpressure"
	"github.com/shoal-go/shoal/pool"
)

// Backend names for Config.Backend.
const (
	// BackendShoal runs each room as a shoal group: its ops reach the
	// handler in submission order, several at a time, and each call
	// stores its messages in one transaction.
	BackendShoal = "shoal"
	// BackendPond runs each op as a task of a pond v2 pool, serialized per
	// room by a mutex: what a user writes by hand with a plain worker pool.
	// Each message is its own transaction, and ops of one room may start
	// out of submission order: a sender's messages can be numbered in
	// another order than it sent them, and a leave can run before the join
	// it follows (it then finds no membership and is answered with
	// nothing, and the join makes the connection a member of a room it
	// left).
	BackendPond = "pond"
)

// errClosed is what submit returns once the backend is closing.
var errClosed = errors.New("chat: server closing")

// backend runs the hub's handler per room.
type backend interface {
	// submit queues o for room; nil means o will be handled (or its sender
	// told that it failed). It waits for room in a full room until ctx
	// ends.
	submit(ctx context.Context, room string, o op) error
	// close stops admission and waits until every queued op was handled.
	close(ctx context.Context) error
	// snapshot returns the scheduler's figures; ok is false when it has none
	// in pool.Stats form.
	snapshot() (st pool.Stats, ok bool)
}

// shoalBackend gives every room a group of a pool.Batcher: a room's queued
// ops reach hub.handle together, in submission order, one call at a time,
// and each call stores its messages in one transaction.
type shoalBackend struct {
	h    *hub
	b    *pool.Batcher[string, op]
	done chan struct{}
}

func newShoalBackend(h *hub, cfg *Config) (*shoalBackend, error) {
	opts := []pool.Option{
		pool.WithTopGroups(),
		pool.WithMaxBatch(cfg.MaxBatch),
		pool.WithRetry(pool.RetryPolicy{MaxAttempts: handleAttempts}),
	}
	if cfg.Breaker != nil {
		opts = append(opts, pool.WithBreaker(cfg.Breaker))
	}
	b, err := pool.NewBatcher(h.handle, opts...)
	if err != nil {
		return nil, err
	}
	sb := &shoalBackend{h: h, b: b, done: make(chan struct{})}
	go sb.drainLetters()
	return sb, nil
}

// drainLetters tells the senders of ops whose batch failed for good that
// their messages were not stored; it ends when Close closes the channel.
func (b *shoalBackend) drainLetters() {
	defer close(b.done)
	for dl := range b.b.DeadLetters() {
		b.h.stats.deadLetters.Add(1)
		b.h.failed(dl.Group, dl.Msgs, dl.Err)
	}
}

func (b *shoalBackend) submit(ctx context.Context, room string, o op) error {
	return b.b.Submit(ctx, room, o)
}

func (b *shoalBackend) close(ctx context.Context) error {
	err := b.b.Close(ctx)
	<-b.done
	return err
}

func (b *shoalBackend) snapshot() (pool.Stats, bool) { return b.b.Snapshot(), true }

// pondBackend runs every op as a pond task that holds its room's mutex.
type pondBackend struct {
	h       *hub
	p       pond.Pool
	breaker *backpressure.Breaker

	mu    sync.Mutex
	locks map[string]*sync.Mutex
}

func newPondBackend(h *hub, cfg *Config) *pondBackend {
	return &pondBackend{h: h, p: pond.NewPool(cfg.PondWorkers), breaker: cfg.Breaker, locks: make(map[string]*sync.Mutex)}
}

func (b *pondBackend) lock(room string) *sync.Mutex {
	b.mu.Lock()
	defer b.mu.Unlock()
	l := b.locks[room]
	if l == nil {
		l = new(sync.Mutex)
		b.locks[room] = l
	}
	return l
}

func (b *pondBackend) submit(ctx context.Context, room string, o op) error {
	if b.breaker != nil {
		if err := b.breaker.Admit(); err != nil {
			return err
		}
	}
	l := b.lock(room)
	err := b.p.Go(func() {
		l.Lock()
		defer l.Unlock()
		b.h.handleRetry(context.Background(), room, []op{o})
	})
	if err != nil {
		return fmt.Errorf("%w: %w", errClosed, err)
	}
	return nil
}

func (b *pondBackend) close(ctx context.Context) error {
	t := b.p.Stop()
	select {
	case <-t.Done():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (b *pondBackend) snapshot() (pool.Stats, bool) {
	return pool.Stats{
		Submitted: b.p.SubmittedTasks(),
		Completed: b.p.CompletedTasks(),
		// As pool.Stats counts it: accepted and not yet finished, the
		// running tasks (one per running worker) included.
		Queued:  int(b.p.WaitingTasks()) + int(b.p.RunningWorkers()),
		Workers: pool.WorkerCounts{Running: int(b.p.RunningWorkers()), Busy: int(b.p.RunningWorkers()), Max: b.p.MaxConcurrency()},
	}, false
}
