package chatsim_test

import (
	"context"
	"fmt"
	"time"

	"github.com/shoal-go/shoal/bench/chatsim"
)

func ExampleRun() {
	cfg := chatsim.DefaultConfig()
	cfg.Rooms = 100
	cfg.Rate = 2_000
	cfg.Duration = 200 * time.Millisecond
	res, err := chatsim.Run(context.Background(), cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("variant:", res.Variant)
	fmt.Println("all accepted:", res.Accepted == res.Generated)
	fmt.Println("lost:", res.Lost())
	fmt.Println("order violations:", res.OutOfOrder+res.Overlaps)
	// Output:
	// variant: shoal
	// all accepted: true
	// lost: 0
	// order violations: 0
}

func ExampleFormat() {
	cfg := chatsim.DefaultConfig()
	cfg.Rooms = 100
	cfg.Rate = 1_000
	cfg.Duration = 100 * time.Millisecond
	var results []*chatsim.Result
	for _, v := range []string{chatsim.Shoal, chatsim.Pond} {
		c := cfg
		c.Variant = v
		res, err := chatsim.Run(context.Background(), c)
		if err != nil {
			fmt.Println(err)
			return
		}
		results = append(results, res)
	}
	// Format writes one column per run: shoal, then pond+mutex+batch.
	var sb = new(countingWriter)
	chatsim.Format(sb, cfg, results...)
	fmt.Println(sb.lines > 20)
	// Output:
	// true
}

// countingWriter counts the lines written to it.
type countingWriter struct{ lines int }

func (w *countingWriter) Write(p []byte) (int, error) {
	for _, b := range p {
		if b == '\n' {
			w.lines++
		}
	}
	return len(p), nil
}

func ExampleTransition() {
	t := chatsim.Transition{At: 1500 * time.Millisecond, From: "Normal", To: "Throttle"}
	fmt.Printf("%s→%s at %v\n", t.From, t.To, t.At)
	// Output:
	// Normal→Throttle at 1.5s
}
