package bench

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/alitto/pond/v2"
	"github.com/panjf2000/ants/v2"
)

// Invariants:
//   - Every runner here counts its accepted tasks in its embedded tracked
//     (see runner.go); Close is called after Wait, so no task is in flight
//     when a library is released.
//   - chanRunner's channel is closed once, by Close; Submit after Close is a
//     caller error that the harness never makes.

// ErrConfig is returned for a Config that cannot size a runner.
var ErrConfig = errors.New("bench: bad config")

// releaseTimeout bounds how long Close waits for a peer's goroutines to exit.
const releaseTimeout = 10 * time.Second

func checkConfig(c Config) error {
	if c.Concurrency <= 0 {
		return fmt.Errorf("%w: concurrency %d, want > 0", ErrConfig, c.Concurrency)
	}
	if c.Groups <= 0 {
		return fmt.Errorf("%w: groups %d, want > 0", ErrConfig, c.Groups)
	}
	return nil
}

// goRunner starts one goroutine per task: the baseline with no pool at all.
type goRunner struct{ tracked }

func newGoRunner(c Config) (Runner, error) {
	if err := checkConfig(c); err != nil {
		return nil, err
	}
	return &goRunner{}, nil
}

func (r *goRunner) Submit(_ uint64, t Task) error {
	r.accept()
	go t.run()
	return nil
}

func (r *goRunner) Close() error { return nil }

// goPoolRunner starts one goroutine per task and carries the task in an
// object recycled through a sync.Pool, as handlers that need per-task state
// do to spare the garbage collector.
type goPoolRunner struct {
	tracked
	jobs sync.Pool
}

type goJob struct {
	r   *goPoolRunner
	run func()
}

func (j *goJob) exec() {
	run := j.run
	j.run = nil
	j.r.jobs.Put(j)
	run()
}

func newGoPoolRunner(c Config) (Runner, error) {
	if err := checkConfig(c); err != nil {
		return nil, err
	}
	r := &goPoolRunner{}
	r.jobs.New = func() any { return &goJob{r: r} }
	return r, nil
}

func (r *goPoolRunner) Submit(_ uint64, t Task) error {
	r.accept()
	j := r.jobs.Get().(*goJob)
	j.run = t.run
	go j.exec()
	return nil
}

func (r *goPoolRunner) Close() error { return nil }

// chanRunner is the pool everyone writes first: Concurrency goroutines
// receiving func() values from one buffered channel.
type chanRunner struct {
	tracked
	ch      chan func()
	workers sync.WaitGroup
}

// chanBuffer is the channel pool's buffer: deep enough that producers rarely
// park while workers are busy, as a hand-written pool would be tuned.
const chanBuffer = 1024

func newChanRunner(c Config) (Runner, error) {
	if err := checkConfig(c); err != nil {
		return nil, err
	}
	r := &chanRunner{ch: make(chan func(), chanBuffer)}
	r.workers.Add(c.Concurrency)
	for range c.Concurrency {
		go func() {
			defer r.workers.Done()
			for run := range r.ch {
				run()
			}
		}()
	}
	return r, nil
}

func (r *chanRunner) Submit(_ uint64, t Task) error {
	r.accept()
	r.ch <- t.run
	return nil
}

func (r *chanRunner) Close() error {
	close(r.ch)
	r.workers.Wait()
	return nil
}

// antsRunner drives an ants.Pool of Concurrency workers.
type antsRunner struct {
	tracked
	p *ants.Pool
}

func newAntsRunner(c Config) (Runner, error) {
	if err := checkConfig(c); err != nil {
		return nil, err
	}
	p, err := ants.NewPool(c.Concurrency)
	if err != nil {
		return nil, fmt.Errorf("ants.NewPool: %w", err)
	}
	return &antsRunner{p: p}, nil
}

func (r *antsRunner) Submit(_ uint64, t Task) error {
	r.accept()
	if err := r.p.Submit(t.run); err != nil {
		r.refused()
		return err
	}
	return nil
}

func (r *antsRunner) Close() error { return r.p.ReleaseTimeout(releaseTimeout) }

// antsFuncRunner drives an ants.PoolWithFunc whose function calls its
// argument, a func() boxed without allocation.
type antsFuncRunner struct {
	tracked
	p *ants.PoolWithFunc
}

func newAntsFuncRunner(c Config) (Runner, error) {
	if err := checkConfig(c); err != nil {
		return nil, err
	}
	p, err := ants.NewPoolWithFunc(c.Concurrency, func(arg any) { arg.(func())() })
	if err != nil {
		return nil, fmt.Errorf("ants.NewPoolWithFunc: %w", err)
	}
	return &antsFuncRunner{p: p}, nil
}

func (r *antsFuncRunner) Submit(_ uint64, t Task) error {
	r.accept()
	if err := r.p.Invoke(t.arg); err != nil {
		r.refused()
		return err
	}
	return nil
}

func (r *antsFuncRunner) Close() error { return r.p.ReleaseTimeout(releaseTimeout) }

// antsMultiRunner drives an ants.MultiPool of up to GOMAXPROCS pools, round
// robin, sharing Concurrency workers between them. Every pool of a
// MultiPool has one size, so the pools are as many as the largest divisor
// of Concurrency not above GOMAXPROCS: together they hold exactly
// Concurrency workers, like every other row.
type antsMultiRunner struct {
	tracked
	p *ants.MultiPool
}

func newAntsMultiRunner(c Config) (Runner, error) {
	if err := checkConfig(c); err != nil {
		return nil, err
	}
	n := min(runtime.GOMAXPROCS(0), c.Concurrency)
	for c.Concurrency%n != 0 {
		n--
	}
	p, err := ants.NewMultiPool(n, c.Concurrency/n, ants.RoundRobin)
	if err != nil {
		return nil, fmt.Errorf("ants.NewMultiPool: %w", err)
	}
	return &antsMultiRunner{p: p}, nil
}

func (r *antsMultiRunner) Submit(_ uint64, t Task) error {
	r.accept()
	if err := r.p.Submit(t.run); err != nil {
		r.refused()
		return err
	}
	return nil
}

func (r *antsMultiRunner) Close() error { return r.p.ReleaseTimeout(releaseTimeout) }

// pondRunner drives a pond v2 pool of Concurrency workers, unbounded queue.
type pondRunner struct {
	tracked
	p pond.Pool
}

func newPondRunner(c Config) (Runner, error) {
	if err := checkConfig(c); err != nil {
		return nil, err
	}
	return &pondRunner{p: pond.NewPool(c.Concurrency)}, nil
}

func (r *pondRunner) Submit(_ uint64, t Task) error {
	r.accept()
	if err := r.p.Go(t.run); err != nil {
		r.refused()
		return err
	}
	return nil
}

func (r *pondRunner) Close() error {
	r.p.StopAndWait()
	return nil
}
