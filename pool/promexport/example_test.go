package promexport_test

import (
	"context"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/shoal-go/shoal/pool"
	"github.com/shoal-go/shoal/pool/promexport"
)

func ExampleCollector() {
	var timings pool.Timings
	p, err := pool.New[string](pool.WithTimings(&timings))
	if err != nil {
		panic(err)
	}
	// The pool's Snapshot carries the histograms (here every task's, as
	// the pool times every task with WithTimings) and any breaker.
	c, err := promexport.New(p, promexport.WithConstLabels(prometheus.Labels{"pool": "messages"}))
	if err != nil {
		panic(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(c) // or prometheus.MustRegister(c), served by promhttp

	for _, room := range []string{"lobby", "lobby", "random"} {
		_ = p.Submit(context.Background(), room, func(context.Context) error { return nil })
	}
	_ = p.Close(context.Background())

	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		switch mf.GetName() {
		case "shoal_tasks_total":
			for _, m := range mf.GetMetric() {
				fmt.Println(mf.GetName(), m.GetLabel()[0].GetValue(), m.GetCounter().GetValue())
			}
		case "shoal_task_wait_seconds":
			fmt.Println(mf.GetName(), "count", mf.GetMetric()[0].GetHistogram().GetSampleCount())
		}
	}
	// Output:
	// shoal_task_wait_seconds count 3
	// shoal_tasks_total completed 3
	// shoal_tasks_total dead_letter 0
}
