package promexport_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/shoal-go/shoal/backpressure"
	"github.com/shoal-go/shoal/pool"
	"github.com/shoal-go/shoal/pool/promexport"
)

// printMetrics prints the value of each named gauge or counter (the first series).
func printMetrics(reg *prometheus.Registry, names ...string) {
	mfs, err := reg.Gather()
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, mf := range mfs {
		for _, name := range names {
			if mf.GetName() != name {
				continue
			}
			m := mf.GetMetric()[0]
			switch {
			case m.GetCounter() != nil:
				fmt.Println(name, m.GetCounter().GetValue())
			case m.GetGauge() != nil:
				fmt.Println(name, m.GetGauge().GetValue())
			}
		}
	}
}

// current is a Source for a chat server that replaces its message pool on a
// configuration reload: the collector, registered once, always reads the
// pool in use.
type current struct {
	p atomic.Pointer[pool.Pool[string]]
}

func (c *current) Snapshot() pool.Stats { return c.p.Load().Snapshot() }

func ExampleSource() {
	var src current
	first, err := pool.New[string]()
	if err != nil {
		fmt.Println(err)
		return
	}
	src.p.Store(first)
	c, err := promexport.New(&src)
	if err != nil {
		fmt.Println(err)
		return
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)

	// A reload: the new pool takes the messages, the old one drains.
	second, err := pool.New[string]()
	if err != nil {
		fmt.Println(err)
		return
	}
	src.p.Store(second)
	_ = first.Close(context.Background())
	for _, room := range []string{"lobby", "random"} {
		_ = second.Submit(context.Background(), room, func(context.Context) error { return nil })
	}
	_ = second.Close(context.Background())

	printMetrics(reg, "shoal_tasks_submitted_total")
	// Output: shoal_tasks_submitted_total 2
}

// fixedUse is a backpressure.Source reporting a constant memory use.
type fixedUse int64

func (f fixedUse) Read(r *backpressure.Reading) { r.Used = int64(f) }

// A breaker that guards the chat gateway's connections rather than a pool is
// exported beside the pool's figures with WithBreaker.
func ExampleBreakerSource() {
	b, err := backpressure.NewBreaker(backpressure.WithSource(fixedUse(250)), backpressure.WithBudget(1000))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close()
	p, err := pool.New[string]()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close(context.Background())

	var src promexport.BreakerSource = b // a *backpressure.Breaker is one
	c, err := promexport.New(p, promexport.WithBreaker(src))
	if err != nil {
		fmt.Println(err)
		return
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	printMetrics(reg, "shoal_memory_budget_bytes", "shoal_memory_pressure_ratio")
	// Output:
	// shoal_memory_budget_bytes 1000
	// shoal_memory_pressure_ratio 0.25
}

// Options label and extend what a Collector exports; a bad one is an error
// from New, not a panic at scrape time.
func ExampleOption() {
	p, err := pool.New[string]()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close(context.Background())

	opts := []promexport.Option{
		promexport.WithConstLabels(prometheus.Labels{"pool": "messages", "region": "eu"}),
	}
	if _, err := promexport.New(p, opts...); err == nil {
		fmt.Println("collector ready")
	}
	_, err = promexport.New(p, promexport.WithBreaker(nil))
	fmt.Println(errors.Is(err, promexport.ErrInvalidOption))
	// Output:
	// collector ready
	// true
}
