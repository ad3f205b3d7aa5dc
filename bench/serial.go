package bench

import (
	"fmt"
	"sync"
)

// Invariants (lanes):
//   - A lane's queue, head and running flag are guarded by its mutex.
//   - running is true from the Submit that found the lane idle until the
//     drain that found the queue empty: at most one drain per lane is queued
//     or running, so the lane's tasks run one at a time, in queue order.
//   - A task is appended to the queue before running is read, under the same
//     lock, so a drain never misses a task (no lost wake-up).
// Invariants (mutex):
//   - A task of group g runs with mus[g%len] held: tasks of a group never
//     overlap; their start order is whatever order the pool picks them up.

// WithMutex wraps an unordered lib so that tasks of one group hold a mutex
// while they run. The mutexes sit in a slice indexed by group number, the
// cheapest form a user could write; each submission allocates one closure, as
// a user's own closure would.
func WithMutex(l Lib) Lib {
	return Lib{
		Name:  l.Name + "+mutex",
		Order: Exclusive,
		New: func(c Config) (Runner, error) {
			inner, err := l.New(c)
			if err != nil {
				return nil, err
			}
			tr, ok := inner.(trackerOf)
			if !ok {
				_ = inner.Close()
				return nil, fmt.Errorf("%w: %s cannot be wrapped", ErrConfig, l.Name)
			}
			return &mutexRunner{inner: inner, tr: tr.tracker(), mus: make([]sync.Mutex, c.Groups)}, nil
		},
	}
}

type mutexRunner struct {
	inner Runner
	tr    *tracked // the inner runner's completion count
	mus   []sync.Mutex
}

// NewTask returns fn untracked: the per-submission wrapper carries the inner
// runner's completion signal.
func (r *mutexRunner) NewTask(fn func()) Task { return Task{run: fn, arg: fn} }

func (r *mutexRunner) Submit(group uint64, t Task) error {
	mu := &r.mus[group%uint64(len(r.mus))]
	fn, tr := t.run, r.tr
	run := func() {
		mu.Lock()
		fn()
		mu.Unlock()
		tr.wg.Done()
	}
	return r.inner.Submit(group, Task{run: run, arg: run})
}

func (r *mutexRunner) Wait()        { r.inner.Wait() }
func (r *mutexRunner) Close() error { return r.inner.Close() }

// WithLanes wraps an unordered lib with a FIFO lane per group: Submit appends
// to the group's lane and, if the lane was idle, submits one task that drains
// it. Tasks of a group then start in submission order and never overlap, as
// in shoal. Lanes sit in a slice indexed by group number.
func WithLanes(l Lib) Lib {
	return Lib{
		Name:  l.Name + "+lanes",
		Order: FIFO,
		New: func(c Config) (Runner, error) {
			inner, err := l.New(c)
			if err != nil {
				return nil, err
			}
			r := &lanesRunner{inner: inner, lanes: make([]lane, c.Groups)}
			for i := range r.lanes {
				r.lanes[i].drain = inner.NewTask(r.lanes[i].drainAll)
			}
			return r, nil
		},
	}
}

type lanesRunner struct {
	tracked // tasks accepted into lanes and not yet returned
	inner   Runner
	lanes   []lane
}

type lane struct {
	mu      sync.Mutex
	q       []func()
	head    int
	running bool
	drain   Task // the inner task that drains this lane; built once
}

func (r *lanesRunner) Submit(group uint64, t Task) error {
	l := &r.lanes[group%uint64(len(r.lanes))]
	r.accept()
	l.mu.Lock()
	l.q = append(l.q, t.run)
	start := !l.running
	l.running = true
	l.mu.Unlock()
	if !start {
		return nil
	}
	if err := r.inner.Submit(group, l.drain); err != nil {
		// The lane was empty before this task; take it back, and run any
		// task queued behind it here so that none is lost.
		l.mu.Lock()
		l.q[l.head] = nil
		l.head++
		l.mu.Unlock()
		r.refused()
		l.drainAll()
		return err
	}
	return nil
}

// drainAll runs the lane's tasks in order until the queue is empty.
func (l *lane) drainAll() {
	for {
		l.mu.Lock()
		if l.head == len(l.q) {
			clear(l.q)
			l.q, l.head, l.running = l.q[:0], 0, false
			l.mu.Unlock()
			return
		}
		run := l.q[l.head]
		l.q[l.head] = nil
		l.head++
		l.mu.Unlock()
		run()
	}
}

// Wait waits for the lanes' tasks, then for the drains that ran them.
func (r *lanesRunner) Wait() {
	r.tracked.Wait()
	r.inner.Wait()
}

func (r *lanesRunner) Close() error { return r.inner.Close() }
