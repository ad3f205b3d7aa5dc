package backpressure_test

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/shoal-go/shoal/backpressure"
)

// Admit before starting work; count the work in flight so that the breaker
// reserves memory for it until it finishes.
func Example() {
	b, err := backpressure.NewBreaker(backpressure.WithBudget(1 << 40))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close()
	var inflight atomic.Int64
	if err := b.SetInFlightFunc(inflight.Load); err != nil {
		fmt.Println(err)
		return
	}

	var wg sync.WaitGroup
	for i := range 3 {
		if err := b.Admit(); err != nil {
			fmt.Println("refused:", err) // tell the client to come back later
			continue
		}
		inflight.Add(1)
		wg.Go(func() {
			defer inflight.Add(-1)
			_ = make([]byte, 1024*(i+1)) // the work
		})
	}
	wg.Wait()
	fmt.Println(b.State())
	// Output: Normal
}

// fixed is a Source that always reports the same use.
type fixed int64

func (f fixed) Read(r *backpressure.Reading) { r.Used = int64(f) }

// A Source replaces the runtime/metrics reading, e.g. with the use of a
// cache the process manages itself, or a fake in tests.
func ExampleSource() {
	b, err := backpressure.NewBreaker(backpressure.WithSource(fixed(850)), backpressure.WithBudget(1000))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close()
	fmt.Println(b.State(), b.Pressure())
	// Output: Throttle 0.85
}

// A refusal carries the figures and a hint for when to retry.
func ExampleRejectError() {
	b, err := backpressure.NewBreaker(backpressure.WithSource(fixed(950)), backpressure.WithBudget(1000))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close()
	err = b.Admit()
	var re *backpressure.RejectError
	if errors.Is(err, backpressure.ErrMemoryPressure) && errors.As(err, &re) {
		fmt.Println(re.State, re.Used, re.Budget, re.RetryAfter)
	}
	// Output: Reject 950 1000 1s
}

// Thresholds can be changed while the breaker runs; invalid ones change
// nothing.
func ExampleThresholds() {
	b, err := backpressure.NewBreaker(backpressure.WithSource(fixed(600)), backpressure.WithBudget(1000))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close()
	fmt.Println(b.State())

	err = b.SetThresholds(backpressure.Thresholds{Throttle: 0.9, Resume: 0.5, Reject: 0.8, Recover: 0.7})
	fmt.Println(errors.Is(err, backpressure.ErrInvalidConfig), b.State())

	err = b.SetThresholds(backpressure.Thresholds{Throttle: 0.5, Resume: 0.45, Reject: 0.9, Recover: 0.8})
	fmt.Println(err, b.State())
	// Output:
	// Normal
	// true Normal
	// <nil> Throttle
}

// Stats shows where the budget came from and the last sample's figures.
func ExampleStats() {
	b, err := backpressure.NewBreaker(backpressure.WithSource(fixed(250)), backpressure.WithBudget(1000))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close()
	st := b.Stats()
	fmt.Println(st.State, st.Source, st.Used, st.Budget, st.Pressure)
	// Output: Normal explicit 250 1000 0.25
}

func ExampleState() {
	for s := backpressure.Normal; s <= backpressure.Probe; s++ {
		fmt.Print(s, " ")
	}
	fmt.Println()
	// Output: Normal Throttle Reject Probe
}

func ExampleBudgetSource() {
	fmt.Println(backpressure.BudgetCgroup, backpressure.BudgetGOMEMLIMIT, backpressure.BudgetNone)
	// Output: cgroup GOMEMLIMIT none
}
