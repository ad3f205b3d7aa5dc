package backpressure_test

import (
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/shoal-go/shoal/backpressure"
)

// A chat server asks the breaker before accepting each message and counts
// the messages still being delivered, so that the breaker reserves memory
// for them; once the reservation fills the budget, clients are told to retry.
func ExampleBreaker() {
	b, err := backpressure.NewBreaker(
		backpressure.WithSource(fixed(0)), // the memory measured outside the messages
		backpressure.WithBudget(10_000),
		backpressure.WithBytesPerTask(1_000), // one message's buffers
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close()
	var delivering atomic.Int64
	if err := b.SetInFlightFunc(delivering.Load); err != nil {
		fmt.Println(err)
		return
	}

	for i := range 20 {
		var re *backpressure.RejectError
		if err := b.Admit(); errors.As(err, &re) {
			fmt.Printf("message %d refused: %d of %d bytes reserved\n", i, re.Used, re.Budget)
			break
		}
		delivering.Add(1) // handed to a worker, which subtracts it when done
	}
	fmt.Println("in flight:", delivering.Load())
	// Output:
	// message 9 refused: 9000 of 10000 bytes reserved
	// in flight: 9
}

// Options are plain values: a server can assemble them from its
// configuration before building the breaker.
func ExampleOption() {
	opts := []backpressure.Option{
		backpressure.WithBudget(1000),
		backpressure.WithSource(fixed(700)),
	}
	strict := true // e.g. from a flag
	if strict {
		opts = append(opts, backpressure.WithThresholds(backpressure.Thresholds{
			Throttle: 0.6, Resume: 0.5, Reject: 0.8, Recover: 0.7,
		}))
	}
	b, err := backpressure.NewBreaker(opts...)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close()
	fmt.Println(b.State())

	_, err = backpressure.NewBreaker(backpressure.WithBudget(-1))
	fmt.Println(errors.Is(err, backpressure.ErrInvalidConfig))
	// Output:
	// Throttle
	// true
}

// gateway is a Source for a chat gateway whose message buffers live in an
// arena it accounts for itself; it reports its goroutines too (one per
// connection).
type gateway struct{ arenaBytes, conns int64 }

func (g *gateway) Read(r *backpressure.Reading) {
	r.Used = g.arenaBytes
	r.Goroutines = g.conns
}

// A Source fills in a Reading; with WithMaxGoroutines the breaker also stops
// admitting when too many connections are open, whatever the memory.
func ExampleReading() {
	gw := &gateway{arenaBytes: 100, conns: 50_000}
	b, err := backpressure.NewBreaker(
		backpressure.WithSource(gw),
		backpressure.WithBudget(1000),
		backpressure.WithMaxGoroutines(10_000),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close()
	st := b.Stats()
	fmt.Println(st.Used, st.Goroutines, b.Admit() != nil)
	// Output: 100 50000 true
}
