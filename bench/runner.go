package bench

import (
	"context"
	"sync"
)

// Invariants:
//   - A Task is built by the Runner that submits it (NewTask), before the timed
//     loop, and is submitted by value any number of times; it is immutable.
//   - Each Runner counts accepted tasks in a sync.WaitGroup: Add(1) before the
//     task is handed to the library, Done after the task's function returned
//     (or at once when the library refused it). Wait is therefore synchronized
//     after every accepted task's function.

// A Runner runs tasks through one library, the same way for every library.
//
// NewTask prepares a function once; Submit hands the prepared task over, as
// often as needed, without allocating on the harness's behalf. Submit,
// NewTask and Wait may be called from many goroutines; Close once, after Wait.
type Runner interface {
	// NewTask wraps fn in the shape the library takes, with the runner's
	// completion signal after it.
	NewTask(fn func()) Task
	// Submit hands t over; group says which conversation it belongs to.
	// Runners without groups ignore it.
	Submit(group uint64, t Task) error
	// Wait blocks until every task accepted by Submit has returned.
	Wait()
	// Close releases the library's goroutines and waits for them to exit.
	Close() error
}

// Task is a function prepared by a Runner's NewTask. The adapters are built
// once so that handing the same work to any library costs the library, not
// the harness: a func() value, a func(context.Context) error for shoal, and
// the func() boxed in an interface for ants.PoolWithFunc (a func value fits
// in an interface without an allocation).
type Task struct {
	run func()
	ctx func(context.Context) error
	arg any
}

// Run calls the task's function directly, as a worker would.
func (t Task) Run() { t.run() }

// tracked is embedded by runners: it counts accepted tasks and builds tasks
// whose function ends with the completion signal.
type tracked struct {
	wg sync.WaitGroup
}

// NewTask builds the adapters for every library shape: one closure each.
func (tr *tracked) NewTask(fn func()) Task {
	run := func() {
		fn()
		tr.wg.Done()
	}
	return Task{
		run: run,
		ctx: func(context.Context) error { run(); return nil },
		arg: run,
	}
}

func (tr *tracked) tracker() *tracked { return tr }

// trackerOf is implemented by every runner of this package; the +mutex
// wrapper uses it to build its per-submission task with a single closure.
type trackerOf interface{ tracker() *tracked }

// accept records one task about to be handed over; refused must be called
// if the library then refuses it.
func (tr *tracked) accept()  { tr.wg.Add(1) }
func (tr *tracked) refused() { tr.wg.Done() }

func (tr *tracked) Wait() { tr.wg.Wait() }

// Order says what a row guarantees about the tasks of one group.
type Order int

const (
	// Unordered rows may run tasks of one group at the same time, in any order.
	Unordered Order = iota
	// Exclusive rows never overlap tasks of one group, but may start them out
	// of submission order (a mutex per group).
	Exclusive
	// FIFO rows start tasks of one group one at a time, in submission order.
	FIFO
)

// String returns "no", "exclusive" or "fifo".
func (o Order) String() string {
	switch o {
	case Exclusive:
		return "exclusive"
	case FIFO:
		return "fifo"
	default:
		return "no"
	}
}

// Config sizes a Runner.
type Config struct {
	// Concurrency is the most tasks a pool runs at once: ants' size, pond's
	// maximum concurrency, the channel pool's workers, shoal's maximum
	// workers. Raw goroutines have no bound.
	Concurrency int
	// Groups is how many distinct groups the workload spreads over; the
	// +mutex and +lanes wrappers keep one mutex or lane per group.
	Groups int
}

// Lib is one row of the comparison: a library or pattern and how to build it.
type Lib struct {
	// Name identifies the row in tables, JSON and benchmark names
	// (no spaces, no slashes, no '=').
	Name string
	// Order is what the row guarantees per group.
	Order Order
	// New builds a runner; Close it when done.
	New func(Config) (Runner, error)
}
