package bench

import (
	"fmt"
	"sync"

	"github.com/shoal-go/shoal/shard"
)

// Invariants (lanes):
//   - A lane's queue, head and running flag are guarded by its mutex.
//   - running is true from the Submit that found the lane idle until the
//     drain that found the queue empty: at most one drain per lane is queued
//     or running, so the lane's tasks run one at a time, in queue order.
//   - A task is appended to the queue before running is read, under the same
//     lock, so a drain never misses a task (no lost wake-up).
// Invariants (map lanes): as for lanes, with the lane's fields guarded by
// its map shard's mutex; a lane is in its shard's map from the Submit that
// found none until the drain (or refused Submit) that found its queue
// empty, which moves it to the shard's free list in the same critical
// section, so a group has at most one lane and one drain.
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
			r := &lanesRunner{laneBase: laneBase{inner: inner}, lanes: make([]lane, c.Groups)}
			for i := range r.lanes {
				r.lanes[i].drain = inner.NewTask(r.lanes[i].drainAll)
			}
			return r, nil
		},
	}
}

type lanesRunner struct {
	laneBase
	lanes []lane
}

// laneBase is what both lane wrappers keep: the count of tasks accepted
// into lanes and not yet returned, and the pool that runs the drains.
type laneBase struct {
	tracked
	inner Runner
}

// Wait waits for the lanes' tasks, then for the drains that ran them.
func (r *laneBase) Wait() {
	r.tracked.Wait()
	r.inner.Wait()
}

func (r *laneBase) Close() error { return r.inner.Close() }

// takeBack undoes the start of a lane whose drain the inner pool refused
// (err): the task that started the lane leaves its queue, which mu guards,
// and any task queued behind it runs here, so that none is lost.
func (r *laneBase) takeBack(mu *sync.Mutex, tasks *taskFIFO, drainAll func(), err error) error {
	mu.Lock()
	tasks.pop()
	mu.Unlock()
	r.refused()
	drainAll()
	return err
}

// taskFIFO is a lane's queue; the lane's mutex guards it.
type taskFIFO struct {
	q    []func()
	head int
}

func (f *taskFIFO) push(run func()) { f.q = append(f.q, run) }

// pop takes the first task; on an empty queue it reports false and starts
// the buffer over (kept for the next tasks, its slots cleared).
func (f *taskFIFO) pop() (func(), bool) {
	if f.head == len(f.q) {
		clear(f.q)
		f.q, f.head = f.q[:0], 0
		return nil, false
	}
	run := f.q[f.head]
	f.q[f.head] = nil
	f.head++
	return run, true
}

type lane struct {
	mu      sync.Mutex
	tasks   taskFIFO
	running bool
	drain   Task // the inner task that drains this lane; built once
}

func (r *lanesRunner) Submit(group uint64, t Task) error {
	l := &r.lanes[group%uint64(len(r.lanes))]
	r.accept()
	l.mu.Lock()
	l.tasks.push(t.run)
	start := !l.running
	l.running = true
	l.mu.Unlock()
	if !start {
		return nil
	}
	if err := r.inner.Submit(group, l.drain); err != nil {
		// The lane was empty before this task.
		return r.takeBack(&l.mu, &l.tasks, l.drainAll, err)
	}
	return nil
}

// drainAll runs the lane's tasks in order until the queue is empty.
func (l *lane) drainAll() {
	for {
		l.mu.Lock()
		run, ok := l.tasks.pop()
		if !ok {
			l.running = false
		}
		l.mu.Unlock()
		if !ok {
			return
		}
		run()
	}
}

// mapLaneShards is how many mutex-guarded maps WithMapLanes spreads its
// lanes over.
const mapLaneShards = 256

// WithMapLanes wraps an unordered lib with a FIFO lane per group, as
// WithLanes does, but finds the lanes in maps rather than a slice indexed
// by group number: what code taking arbitrary keys (a room's name, an id
// from a database) must do. The maps are 256 shards, each with its own
// mutex, picked by shard.Hash, shoal's own hash of a group; a lane leaves
// its map when its drain finds it empty and is reused from a free list, so
// memory follows the groups with work, as shoal's queues do.
func WithMapLanes(l Lib) Lib {
	return Lib{
		Name:  l.Name + "+maplanes",
		Order: FIFO,
		New: func(c Config) (Runner, error) {
			inner, err := l.New(c)
			if err != nil {
				return nil, err
			}
			r := &mapLanesRunner{laneBase: laneBase{inner: inner}, shards: make([]mapLaneShard, mapLaneShards)}
			for i := range r.shards {
				r.shards[i].lanes = make(map[uint64]*mapLane)
			}
			return r, nil
		},
	}
}

type mapLanesRunner struct {
	laneBase
	shards []mapLaneShard
}

// mapLaneShard is one map of lanes, padded to a 64-byte line.
type mapLaneShard struct {
	mu    sync.Mutex
	lanes map[uint64]*mapLane
	free  []*mapLane
	_     [64 - 40]byte
}

type mapLane struct {
	tasks taskFIFO
	group uint64
	sh    *mapLaneShard
	drain Task // the inner task that drains this lane; built once per lane
}

func (r *mapLanesRunner) Submit(group uint64, t Task) error {
	sh := &r.shards[shard.Hash(group)%mapLaneShards]
	r.accept()
	sh.mu.Lock()
	l, ok := sh.lanes[group]
	if !ok {
		l = sh.lane(r.inner)
		l.group = group
		sh.lanes[group] = l
	}
	l.tasks.push(t.run)
	sh.mu.Unlock()
	if ok {
		return nil
	}
	if err := r.inner.Submit(group, l.drain); err != nil {
		// The lane was new with this task.
		return r.takeBack(&sh.mu, &l.tasks, l.drainAll, err)
	}
	return nil
}

// lane returns a lane from the free list, or a new one. The caller holds
// sh.mu.
func (sh *mapLaneShard) lane(inner Runner) *mapLane {
	if n := len(sh.free); n > 0 {
		l := sh.free[n-1]
		sh.free[n-1] = nil
		sh.free = sh.free[:n-1]
		return l
	}
	l := &mapLane{sh: sh}
	l.drain = inner.NewTask(l.drainAll)
	return l
}

// drainAll runs the lane's tasks in order until the queue is empty, then
// takes the lane out of its map.
func (l *mapLane) drainAll() {
	sh := l.sh
	for {
		sh.mu.Lock()
		run, ok := l.tasks.pop()
		if !ok {
			delete(sh.lanes, l.group)
			sh.free = append(sh.free, l)
		}
		sh.mu.Unlock()
		if !ok {
			return
		}
		run()
	}
}
