package pool_test

import (
	"bytes"
	"context"
	"fmt"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/shoal-go/shoal/pool"
)

// Tasks that run longer than 50 ms are counted and logged with their room.
func ExampleWithSlowTask() {
	p, err := pool.New[string](pool.WithSlowTask(50*time.Millisecond, func(s pool.SlowTask[string]) {
		fmt.Printf("slow: %s (attempt %d)\n", s.Group, s.Attempt)
	}))
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = p.Submit(context.Background(), "room-1", func(context.Context) error {
		time.Sleep(100 * time.Millisecond) // a slow delivery
		return nil
	})
	_ = p.Submit(context.Background(), "room-2", func(context.Context) error { return nil })
	if err := p.Close(context.Background()); err != nil {
		fmt.Println(err)
	}
	fmt.Println(p.Snapshot().SlowTasks, "slow of", p.Snapshot().Completed)
	// Output:
	// slow: room-1 (attempt 1)
	// 1 slow of 2
}

// A task's worker carries the label "shard" while the task runs, so a CPU
// profile (go tool pprof -tags) splits the pool's time by shard. Here the
// task finds its label in a goroutine profile taken from inside it.
func ExampleWithProfilerLabels() {
	p, err := pool.New[string](pool.WithProfilerLabels())
	if err != nil {
		fmt.Println(err)
		return
	}
	done := make(chan bool)
	_ = p.Submit(context.Background(), "room-1", func(context.Context) error {
		var b bytes.Buffer
		_ = pprof.Lookup("goroutine").WriteTo(&b, 1)
		done <- strings.Contains(b.String(), fmt.Sprintf(`"shard":"%d"`, p.ShardOf("room-1")))
		return nil
	})
	fmt.Println("labelled:", <-done)
	if err := p.Close(context.Background()); err != nil {
		fmt.Println(err)
	}
	// Output: labelled: true
}
