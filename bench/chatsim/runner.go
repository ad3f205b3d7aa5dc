package chatsim

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alitto/pond/v2"
	"github.com/panjf2000/ants/v2"
	"github.com/shoal-go/shoal/pool"
)

// Invariants:
//   - Every scheduler counts what it could not deliver through lost, once per
//     failed call, with the call's items (lost skips those already
//     delivered): shoal from its dead-letter channel, the others from guard,
//     which recovers panics.
//   - close returns only after every accepted message's call has returned
//     and every goroutine the scheduler started has exited.
//   - ants and pond keep a pending slice per room, guarded by the room's mu,
//     and run every drain under the room's run mutex: a drain takes the
//     oldest pending messages under run, so the messages of a room are
//     written in the order they were appended, one write at a time. Every
//     accepted message is appended before its drain task is submitted, and
//     that task drains until pending is empty, so no message stays behind.

// scheduler is one way of running the simulation's messages.
type scheduler interface {
	// submit hands one message over. nil means accepted: the message will be
	// delivered or reach lost.
	submit(ctx context.Context, room uint32, it *item) error
	// pushback reports whether err is a refusal worth retrying after a
	// pause (memory pressure), not a failure.
	pushback(err error) bool
	// workers returns the number of goroutines running tasks now.
	workers() int
	// breaker returns the admission state's name, or "" without one.
	breaker() string
	// batchStats returns the scheduler's own account of its calls, if it
	// keeps one.
	batchStats() (pool.BatchStats, bool)
	// close drains and stops the scheduler.
	close(ctx context.Context) error
}

// Dead-letter reasons used for schedulers without a dead-letter channel; they
// match the names of shoal's reasons.
const (
	reasonFailed   = "Failed"
	reasonPanicked = "Panicked"
)

// guard runs one call of handle and reports an error or a panic to lost with
// the call's items, as a dead-letter channel would. It does not retry.
func guard(handle func(uint32, []*item) error, lost func(string, []*item), room uint32, items []*item) {
	defer func() {
		if r := recover(); r != nil {
			lost(reasonPanicked, items)
		}
	}()
	if err := handle(room, items); err != nil {
		lost(reasonFailed, items)
	}
}

// roomQueues is what a user of ants or pond writes to batch a room's
// writes: per room, a slice of pending messages and a mutex that one drain
// holds across its writes. Each entry is padded to a cache line.
type roomQueues struct {
	rooms    []roomQueue
	maxBatch int
	handle   func(uint32, []*item) error
	lost     func(string, []*item)
}

type roomQueue struct {
	run     sync.Mutex // held by the drain of the room, across its writes
	mu      sync.Mutex // guards pending; held for an append or a take only
	pending []*item
	_       [64 - 8 - 8 - 24]byte
}

func newRoomQueues(cfg *Config, handle func(uint32, []*item) error, lost func(string, []*item)) roomQueues {
	return roomQueues{rooms: make([]roomQueue, cfg.Rooms), maxBatch: cfg.maxBatch(), handle: handle, lost: lost}
}

// add appends it to its room's pending messages.
func (q *roomQueues) add(room uint32, it *item) {
	r := &q.rooms[room]
	r.mu.Lock()
	r.pending = append(r.pending, it)
	r.mu.Unlock()
}

// withdraw takes it back after its drain task was refused, and reports
// whether it could: a drain running meanwhile may have taken it already,
// and then it is accepted after all.
func (q *roomQueues) withdraw(room uint32, it *item) bool {
	r := &q.rooms[room]
	r.mu.Lock()
	defer r.mu.Unlock()
	if n := len(r.pending); n > 0 && r.pending[n-1] == it {
		r.pending[n-1] = nil
		r.pending = r.pending[:n-1]
		return true
	}
	return false
}

// drain writes room's pending messages, oldest first, at most maxBatch per
// write, until none is left. One drain runs per room at a time; the drain
// tasks of messages an earlier drain took find nothing and return.
func (q *roomQueues) drain(room uint32) {
	r := &q.rooms[room]
	r.run.Lock()
	defer r.run.Unlock()
	for {
		r.mu.Lock()
		n := min(len(r.pending), q.maxBatch)
		if n == 0 {
			r.mu.Unlock()
			return
		}
		batch := r.pending[:n:n]
		if n == len(r.pending) {
			r.pending = nil // the drain owns the old array now
		} else {
			r.pending = append([]*item(nil), r.pending[n:]...)
		}
		r.mu.Unlock()
		guard(q.handle, q.lost, room, batch)
	}
}

// antsScheduler runs a drain of the message's room as an ants task per
// message.
type antsScheduler struct {
	pool *ants.Pool
	q    roomQueues
	wg   sync.WaitGroup
}

func newAnts(cfg *Config, handle func(uint32, []*item) error, lost func(string, []*item)) (*antsScheduler, error) {
	p, err := ants.NewPool(cfg.MaxWorkers)
	if err != nil {
		return nil, fmt.Errorf("chatsim: ants: %w", err)
	}
	return &antsScheduler{pool: p, q: newRoomQueues(cfg, handle, lost)}, nil
}

func (a *antsScheduler) submit(_ context.Context, room uint32, it *item) error {
	a.q.add(room, it)
	a.wg.Add(1)
	err := a.pool.Submit(func() {
		defer a.wg.Done()
		a.q.drain(room)
	})
	if err != nil {
		a.wg.Done()
		if !a.q.withdraw(room, it) {
			return nil
		}
	}
	return err
}

func (a *antsScheduler) pushback(err error) bool { return errors.Is(err, ants.ErrPoolOverload) }
func (a *antsScheduler) workers() int            { return a.pool.Running() }
func (a *antsScheduler) breaker() string         { return "" }

func (a *antsScheduler) batchStats() (pool.BatchStats, bool) { return pool.BatchStats{}, false }

func (a *antsScheduler) close(ctx context.Context) error {
	a.wg.Wait()
	timeout := 10 * time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	return a.pool.ReleaseTimeout(timeout)
}

// pondScheduler runs a drain of the message's room as a pond task per
// message.
type pondScheduler struct {
	pool pond.Pool
	q    roomQueues
}

func newPond(cfg *Config, handle func(uint32, []*item) error, lost func(string, []*item)) *pondScheduler {
	return &pondScheduler{pool: pond.NewPool(cfg.MaxWorkers), q: newRoomQueues(cfg, handle, lost)}
}

func (p *pondScheduler) submit(_ context.Context, room uint32, it *item) error {
	p.q.add(room, it)
	err := p.pool.Go(func() { p.q.drain(room) })
	if err != nil && !p.q.withdraw(room, it) {
		return nil
	}
	return err
}

func (p *pondScheduler) pushback(err error) bool { return errors.Is(err, pond.ErrQueueFull) }
func (p *pondScheduler) workers() int            { return int(p.pool.RunningWorkers()) }
func (p *pondScheduler) breaker() string         { return "" }

func (p *pondScheduler) batchStats() (pool.BatchStats, bool) { return pool.BatchStats{}, false }

func (p *pondScheduler) close(context.Context) error {
	p.pool.StopAndWait()
	return nil
}

// rawScheduler starts a goroutine per message, which writes it alone, with
// no lock: no order and no mutual exclusion.
type rawScheduler struct {
	wg      sync.WaitGroup
	handle  func(uint32, []*item) error
	lost    func(string, []*item)
	running atomic.Int64
}

func newRaw(handle func(uint32, []*item) error, lost func(string, []*item)) *rawScheduler {
	return &rawScheduler{handle: handle, lost: lost}
}

func (r *rawScheduler) submit(_ context.Context, room uint32, it *item) error {
	r.wg.Add(1)
	r.running.Add(1) // a gauge
	go func() {
		defer r.wg.Done()
		defer r.running.Add(-1) // a gauge
		guard(r.handle, r.lost, room, []*item{it})
	}()
	return nil
}

func (r *rawScheduler) pushback(error) bool { return false }
func (r *rawScheduler) workers() int        { return int(r.running.Load()) } // a gauge
func (r *rawScheduler) breaker() string     { return "" }

func (r *rawScheduler) batchStats() (pool.BatchStats, bool) { return pool.BatchStats{}, false }

func (r *rawScheduler) close(context.Context) error {
	r.wg.Wait()
	return nil
}
