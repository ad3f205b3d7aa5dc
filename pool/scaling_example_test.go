package pool_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/shoal-go/shoal/pool"
)

// A pool that keeps warm the workers its load needs, between 2 and 64.
func ExampleWithScaling() {
	pol := pool.DefaultScalingPolicy()
	pol.ShrinkCooldown = 5 * time.Second // give workers back more slowly
	p, err := pool.New[string](pool.WithWorkers(2, 64), pool.WithScaling(pol))
	if err != nil {
		fmt.Println(err)
		return
	}
	for i := range 100 {
		room := fmt.Sprintf("room-%d", i%10)
		_ = p.Submit(context.Background(), room, func(context.Context) error { return nil })
	}
	if err := p.Close(context.Background()); err != nil {
		fmt.Println(err)
	}
	fmt.Println(p.Snapshot().Completed)
	// Output: 100
}

// The last decision of the scaler, for a log line or a metric.
func ExampleScalingDecision() {
	p, err := pool.New[string](pool.WithWorkers(1, 32), pool.WithScaling(pool.DefaultScalingPolicy()))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close(context.Background())

	d := p.Snapshot().Scaling
	fmt.Printf("%d workers kept warm since %s: %v (%.0f arrivals/s, baseline %.0f)\n",
		d.Target, d.At.Format(time.TimeOnly), d.Reason, d.Rate, d.Baseline)
}

// A policy out of range makes New fail, naming the field.
func ExampleScalingPolicyError() {
	pol := pool.DefaultScalingPolicy()
	pol.GrowStep = 0
	_, err := pool.New[string](pool.WithScaling(pol))
	var pe *pool.ScalingPolicyError
	if errors.As(err, &pe) {
		fmt.Println(pe.Field, pe.Want)
	}
	fmt.Println(errors.Is(err, pool.ErrInvalidOption), errors.Is(err, pool.ErrInvalidScalingPolicy))
	// Output:
	// GrowStep in (0, 10]
	// true true
}
