package backpressure

import (
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestReservationReachesThrottle: as in TestReservation, but the room below
// the throttle threshold is not a whole number of tasks (699.5). The burst
// must still carry the breaker into Throttle, whose token bucket admits past
// the throttle level, instead of leaving it Normal below the threshold and
// refusing every Admit for as long as the work stays in flight.
func TestReservationReachesThrottle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const mib = 1 << 20
		src := &fakeSource{r: Reading{Used: 100*mib + mib/2}}
		b, err := NewBreaker(WithSource(src), WithBudget(1000*mib), WithBytesPerTask(mib))
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		var inflight atomic.Int64
		if err := b.SetInFlightFunc(inflight.Load); err != nil {
			t.Fatal(err)
		}
		for range 100000 {
			if b.Admit() != nil {
				break
			}
			inflight.Add(1)
		}
		// Let samples go stale and be taken again: nothing changes in the
		// memory or the count, so the state must not be stuck either way.
		time.Sleep(10 * time.Millisecond)
		var last error
		for range 10 {
			if last = b.Admit(); last == nil {
				inflight.Add(1)
			}
		}
		n := inflight.Load()
		t.Logf("admitted %d, state %v, pressure %.4f, last Admit %v", n, b.State(), b.Pressure(), last)
		if s := b.State(); s != Throttle && s != Reject {
			t.Fatalf("%d in flight, pressure %.4f: State = %v, want Throttle or Reject", n, b.Pressure(), s)
		}
		if n <= 700 {
			t.Fatalf("admitted %d: the Throttle band (700..820) was never entered", n)
		}
		if errors.Is(last, ErrClosed) {
			t.Fatal(last)
		}
	})
}
