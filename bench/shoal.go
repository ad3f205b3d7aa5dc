package bench

import (
	"context"
	"fmt"

	"github.com/shoal-go/shoal/pool"
)

// shoalLibs holds shoal's own rows: keyed Submit (per-group order) and
// unkeyed Go (no order, any shard). Both use the pool's defaults except the
// most workers, which is the workload's concurrency like every other row.
var shoalLibs = []Lib{
	{Name: "shoal.Submit", Order: FIFO, New: func(c Config) (Runner, error) { return newShoalRunner(c, true) }},
	{Name: "shoal.Go", Order: Unordered, New: func(c Config) (Runner, error) { return newShoalRunner(c, false) }},
}

// shoalRunner drives a pool.Pool keyed by group number.
type shoalRunner struct {
	tracked
	p     *pool.Pool[uint64]
	ctx   context.Context
	keyed bool
}

func newShoalRunner(c Config, keyed bool) (Runner, error) {
	if err := checkConfig(c); err != nil {
		return nil, err
	}
	p, err := pool.New[uint64](pool.WithWorkers(1, c.Concurrency))
	if err != nil {
		return nil, fmt.Errorf("pool.New: %w", err)
	}
	return &shoalRunner{p: p, ctx: context.Background(), keyed: keyed}, nil
}

func (r *shoalRunner) Submit(group uint64, t Task) error {
	r.accept()
	var err error
	if r.keyed {
		err = r.p.Submit(r.ctx, group, t.ctx)
	} else {
		err = r.p.Go(r.ctx, t.ctx)
	}
	if err != nil {
		r.refused()
	}
	return err
}

func (r *shoalRunner) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
	defer cancel()
	return r.p.Close(ctx)
}
