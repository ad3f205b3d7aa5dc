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
	// Each message is its own transaction; a room's ops wait in a FIFO
	// queue, since its tasks may take the mutex in another order than they
	// were submitted, and each task handles the room's oldest op.
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
	h *hub
	b *pool.Batcher[string, op]
}

func newShoalBackend(h *hub, cfg *Config) (*shoalBackend, error) {
	opts := []pool.Option{
		pool.WithTopGroups(),
		pool.WithMaxBatch(cfg.MaxBatch),
		pool.WithRetry(pool.RetryPolicy{MaxAttempts: handleAttempts}),
		pool.WithBatchDeadLetterHandler(h.deadLetter),
	}
	if cfg.Breaker != nil {
		opts = append(opts, pool.WithBreaker(cfg.Breaker))
	}
	b, err := pool.NewBatcher(h.handle, opts...)
	if err != nil {
		return nil, err
	}
	return &shoalBackend{h: h, b: b}, nil
}

// deadLetter tells the senders of ops whose batch failed for good that
// their messages were not stored, and the joiners and leavers that they
// are where they were. The Batcher calls it on the worker that holds the
// room, before the room's next call: the answers reach each client before
// any frame of a later call, as a pond room's do. (Read from
// Batcher.DeadLetters by a goroutine of its own, they could come after the
// next call's acks.)
func (h *hub) deadLetter(dl pool.BatchDeadLetter[string, op]) {
	h.stats.deadLetters.Add(1)
	h.failed(dl.Group, dl.Msgs, dl.Err)
}

func (b *shoalBackend) submit(ctx context.Context, room string, o op) error {
	return b.b.Submit(ctx, room, o)
}

func (b *shoalBackend) close(ctx context.Context) error {
	return b.b.Close(ctx)
}

func (b *shoalBackend) snapshot() (pool.Stats, bool) { return b.b.Snapshot(), true }

// pondBackend runs every op as a pond task that holds its room's mutex.
// The room's ops wait in a FIFO queue: a task handles the room's oldest
// op, not necessarily the one it was submitted with, since the room's
// tasks may take the mutex in another order than they were submitted.
type pondBackend struct {
	h       *hub
	p       pond.Pool
	breaker *backpressure.Breaker
	// ctx is the handlers' context: close cancels it when its own ends.
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex
	rooms  map[string]*pondRoom
	closed bool
}

// pondRoom is a room's mutex and its ops not yet taken by a task.
type pondRoom struct {
	l     sync.Mutex
	ops   []op // guarded by pondBackend.mu
	tasks int  // submitted tasks not yet finished; guarded by pondBackend.mu
}

func newPondBackend(h *hub, cfg *Config) *pondBackend {
	ctx, cancel := context.WithCancel(context.Background())
	return &pondBackend{h: h, p: pond.NewPool(cfg.PondWorkers), breaker: cfg.Breaker, ctx: ctx, cancel: cancel,
		rooms: make(map[string]*pondRoom)}
}

func (b *pondBackend) submit(ctx context.Context, room string, o op) error {
	if b.breaker != nil {
		if err := b.breaker.Admit(); err != nil {
			return err
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return errClosed
	}
	r := b.rooms[room]
	if r == nil {
		r = new(pondRoom)
		b.rooms[room] = r
	}
	// The pool's queue is unbounded: Go does not block.
	if err := b.p.Go(func() { b.run(room, r) }); err != nil {
		if r.tasks == 0 {
			delete(b.rooms, room)
		}
		return fmt.Errorf("%w: %w", errClosed, err)
	}
	r.ops = append(r.ops, o)
	r.tasks++
	return nil
}

// run handles room's oldest op under the room's mutex. Once close's
// context has ended, it answers the op as failed instead.
func (b *pondBackend) run(room string, r *pondRoom) {
	r.l.Lock()
	defer r.l.Unlock()
	b.mu.Lock()
	o := r.ops[0]
	r.ops[0] = op{}
	r.ops = r.ops[1:]
	b.mu.Unlock()
	if err := b.ctx.Err(); err != nil {
		b.h.failed(room, []op{o}, fmt.Errorf("%w: %w", errClosed, context.Cause(b.ctx)))
	} else {
		b.h.handleRetry(b.ctx, room, []op{o})
	}
	b.mu.Lock()
	if r.tasks--; r.tasks == 0 {
		delete(b.rooms, room)
	}
	b.mu.Unlock()
}

// close stops admission and waits for every task. If ctx ends first, the
// running calls' context is canceled and the ops still queued are answered
// as failed; close returns ctx's error once every task has finished.
func (b *pondBackend) close(ctx context.Context) error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	t := b.p.Stop()
	select {
	case <-t.Done():
		b.cancel()
		return nil
	case <-ctx.Done():
		b.cancel()
		<-t.Done()
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
