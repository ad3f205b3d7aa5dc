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
)

// Invariants:
//   - Every scheduler counts what it could not complete through lost, exactly
//     once per accepted message whose work did not return nil: shoal from its
//     dead-letter channel, the others from guard, which recovers panics.
//   - close returns only after every accepted message's work has returned
//     and every goroutine the scheduler started has exited.
//   - The per-room mutexes of ants and pond give mutual exclusion, not order:
//     two messages of a room queued at once may take the mutex in either
//     order. The order checker counts what that costs.

// scheduler is one way of running the simulation's messages.
type scheduler interface {
	// submit hands one message's work over. nil means accepted.
	submit(ctx context.Context, room uint32, work func(context.Context) error) error
	// pushback reports whether err is a refusal worth retrying after a
	// pause (memory pressure), not a failure.
	pushback(err error) bool
	// workers returns the number of goroutines running tasks now.
	workers() int
	// breaker returns the admission state's name, or "" without one.
	breaker() string
	// close drains and stops the scheduler.
	close(ctx context.Context) error
}

// Dead-letter reasons used for schedulers without a dead-letter channel; they
// match the names of shoal's reasons.
const (
	reasonFailed   = "Failed"
	reasonPanicked = "Panicked"
)

// guard runs work and reports an error or a panic to lost, as a dead-letter
// channel would.
func guard(work func(context.Context) error, lost func(reason string)) {
	defer func() {
		if r := recover(); r != nil {
			lost(reasonPanicked)
		}
	}()
	if err := work(context.Background()); err != nil {
		lost(reasonFailed)
	}
}

// roomLocks is a mutex per room, padded so that neighbours do not share a
// cache line.
type roomLocks []struct {
	sync.Mutex
	_ [56]byte
}

// antsScheduler runs each message as an ants task holding its room's mutex.
type antsScheduler struct {
	pool  *ants.Pool
	locks roomLocks
	wg    sync.WaitGroup
	lost  func(string)
}

func newAnts(cfg *Config, lost func(string)) (*antsScheduler, error) {
	p, err := ants.NewPool(cfg.MaxWorkers)
	if err != nil {
		return nil, fmt.Errorf("chatsim: ants: %w", err)
	}
	return &antsScheduler{pool: p, locks: make(roomLocks, cfg.Rooms), lost: lost}, nil
}

func (a *antsScheduler) submit(_ context.Context, room uint32, work func(context.Context) error) error {
	a.wg.Add(1)
	err := a.pool.Submit(func() {
		defer a.wg.Done()
		l := &a.locks[room]
		l.Lock()
		defer l.Unlock()
		guard(work, a.lost)
	})
	if err != nil {
		a.wg.Done()
	}
	return err
}

func (a *antsScheduler) pushback(err error) bool { return errors.Is(err, ants.ErrPoolOverload) }
func (a *antsScheduler) workers() int            { return a.pool.Running() }
func (a *antsScheduler) breaker() string         { return "" }

func (a *antsScheduler) close(ctx context.Context) error {
	a.wg.Wait()
	timeout := 10 * time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	return a.pool.ReleaseTimeout(timeout)
}

// pondScheduler runs each message as a pond task holding its room's mutex.
type pondScheduler struct {
	pool  pond.Pool
	locks roomLocks
	lost  func(string)
}

func newPond(cfg *Config, lost func(string)) *pondScheduler {
	return &pondScheduler{pool: pond.NewPool(cfg.MaxWorkers), locks: make(roomLocks, cfg.Rooms), lost: lost}
}

func (p *pondScheduler) submit(_ context.Context, room uint32, work func(context.Context) error) error {
	return p.pool.Go(func() {
		l := &p.locks[room]
		l.Lock()
		defer l.Unlock()
		guard(work, p.lost)
	})
}

func (p *pondScheduler) pushback(err error) bool { return errors.Is(err, pond.ErrQueueFull) }
func (p *pondScheduler) workers() int            { return int(p.pool.RunningWorkers()) }
func (p *pondScheduler) breaker() string         { return "" }

func (p *pondScheduler) close(context.Context) error {
	p.pool.StopAndWait()
	return nil
}

// rawScheduler starts a goroutine per message, with no lock: no order and no
// mutual exclusion.
type rawScheduler struct {
	wg      sync.WaitGroup
	lost    func(string)
	running atomic.Int64
}

func newRaw(lost func(string)) *rawScheduler { return &rawScheduler{lost: lost} }

func (r *rawScheduler) submit(_ context.Context, _ uint32, work func(context.Context) error) error {
	r.wg.Add(1)
	r.running.Add(1) // a gauge
	go func() {
		defer r.wg.Done()
		defer r.running.Add(-1) // a gauge
		guard(work, r.lost)
	}()
	return nil
}

func (r *rawScheduler) pushback(error) bool { return false }
func (r *rawScheduler) workers() int        { return int(r.running.Load()) } // a gauge
func (r *rawScheduler) breaker() string     { return "" }

func (r *rawScheduler) close(context.Context) error {
	r.wg.Wait()
	return nil
}
