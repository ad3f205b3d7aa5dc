package pool

import (
	"context"
	"errors"
	"math"
	"testing"
	"testing/synctest"
	"time"
)

// TestReviewJitterAtLargestMax: a policy whose Max is the largest Duration
// (which validate accepts) with jitter on must draw a delay, not panic in
// rand.Int64N (int64(Max)+1 wraps negative), which made a retryable
// failure a Panicked letter.
func TestReviewJitterAtLargestMax(t *testing.T) {
	rp := RetryPolicy{MaxAttempts: 100, Base: math.MaxInt64, Max: math.MaxInt64}
	if err := rp.validate(); err != nil {
		t.Fatal(err)
	}
	_, retry, d, pv, ok := rp.judge(errors.New("transient"), 1)
	if !ok || !retry || d < 0 {
		t.Fatalf("judge: retry %v delay %v ok %v panic %v; want a retry with a delay >= 0", retry, d, ok, pv)
	}
	synctest.Test(t, func(t *testing.T) {
		p := mustNew[int](t, WithRetry(RetryPolicy{MaxAttempts: 2, Max: math.MaxInt64, Multiplier: math.Inf(1)}))
		_, letters := collect(p)
		runs := 0
		if err := p.Submit(context.Background(), 1, func(context.Context) error {
			runs++
			return errors.New("transient")
		}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = p.Close(ctx)
		for _, dl := range letters() {
			if dl.Reason == ReasonPanicked {
				t.Fatalf("letter %v after %d attempts: %v", dl.Reason, dl.Attempts, dl.Err)
			}
		}
	})
}
