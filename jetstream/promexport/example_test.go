package promexport_test

import (
	"fmt"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shoal-go/shoal/jetstream"
	"github.com/shoal-go/shoal/jetstream/promexport"
)

// printMetrics prints the value of the first series of each named metric.
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

// fixed stands for a running *jetstream.Consumer: a node of three holding
// one partition.
type fixed struct{}

func (fixed) Stats() jetstream.Stats {
	return jetstream.Stats{
		Member:     "n1",
		Members:    []string{"n1", "n2", "n3"},
		Partitions: []jetstream.PartitionStats{{Partition: 5, Held: 3, Lag: 120}},
		Acquired:   2, Lost: 1, Delivered: 500, Handled: 497,
	}
}

func ExampleCollector() {
	// In a server: c, _ := shoaljs.Start(...); pc, _ := promexport.New(c).
	pc, err := promexport.New(fixed{})
	if err != nil {
		panic(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(pc) // or prometheus.MustRegister(pc), served by promhttp
	printMetrics(reg, "shoal_jetstream_members", "shoal_jetstream_partitions_owned", "shoal_jetstream_partition_lag")
	// Output:
	// shoal_jetstream_members 3
	// shoal_jetstream_partition_lag 120
	// shoal_jetstream_partitions_owned 1
}

// current is a Source for a server that restarts its consumer (a new
// stream, a new member name): the collector, registered once, always reads
// the consumer in use.
type current struct{ c atomic.Pointer[fixed] }

func (s *current) Stats() jetstream.Stats {
	if c := s.c.Load(); c != nil {
		return c.Stats()
	}
	return jetstream.Stats{}
}

func ExampleSource() {
	var src current
	pc, err := promexport.New(&src)
	if err != nil {
		panic(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(pc)
	printMetrics(reg, "shoal_jetstream_partitions_owned")
	src.c.Store(&fixed{}) // the consumer has started
	printMetrics(reg, "shoal_jetstream_partitions_owned")
	// Output:
	// shoal_jetstream_partitions_owned 0
	// shoal_jetstream_partitions_owned 1
}

func ExampleOption() {
	// Two streams' consumers in one registry, told apart by a label.
	for _, stream := range []string{"CHAT", "PRESENCE"} {
		_, err := promexport.New(fixed{}, promexport.WithConstLabels(prometheus.Labels{"stream": stream}))
		fmt.Println(stream, err)
	}
	_, err := promexport.New(fixed{}, promexport.WithConstLabels(prometheus.Labels{"partition": "x"}))
	fmt.Println(err)
	// Output:
	// CHAT <nil>
	// PRESENCE <nil>
	// shoal/jetstream/promexport: invalid option: WithConstLabels: bad label name "partition"
}
