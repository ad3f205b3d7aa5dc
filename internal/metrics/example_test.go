package metrics_test

import (
	"fmt"
	"time"

	"github.com/shoal-go/shoal/internal/metrics"
)

func ExampleHistogram() {
	var wait metrics.Histogram
	for i := 1; i <= 100; i++ {
		wait.Record(time.Duration(i) * time.Millisecond)
	}
	s := wait.Snapshot()
	sum := s.Summary()
	fmt.Println("count:", sum.Count, "max:", sum.Max)
	fmt.Println("p50 within 25%:", sum.P50 > 40*time.Millisecond && sum.P50 < 63*time.Millisecond)
	// Output:
	// count: 100 max: 100ms
	// p50 within 25%: true
}

func ExampleRate() {
	arrivals := metrics.NewRate(10 * time.Second)
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	arrivals.Tick(start)
	for s := 1; s <= 5; s++ {
		arrivals.Add(250) // 250 tasks arrive in each second
		arrivals.Tick(start.Add(time.Duration(s) * time.Second))
	}
	fmt.Printf("%.0f tasks/s\n", arrivals.Rate())
	// Output: 250 tasks/s
}

func ExampleTopK() {
	var hot metrics.TopK[string]
	hot.SetSampleEvery(1) // count every task; the default samples 1 in 8
	rooms := map[string]uint64{"lobby": 1<<32 | 1, "random": 2<<32 | 2}
	for range 40 {
		hot.Inc(rooms["lobby"], "lobby")
	}
	for range 3 {
		hot.Inc(rooms["random"], "random")
	}
	hot.Dec(rooms["lobby"]) // one lobby task ran
	for _, g := range hot.Top(nil) {
		fmt.Println(g.Group, g.Queued)
	}
	// Output:
	// lobby 39
	// random 3
}
