package backpressure

import (
	"runtime"
	"testing"
	"testing/synctest"
	"time"
)

// TestBallast uses the real runtime/metrics signal: with a budget of the
// current use + 64 MiB, ballast allocated in steps drives the breaker to
// Throttle and then Reject before the ballast reaches 64 MiB; freed and
// collected, it lets the breaker recover.
func TestBallast(t *testing.T) {
	const mib = 1 << 20
	synctest.Test(t, func(t *testing.T) {
		runtime.GC()
		var r Reading
		newRuntimeSource().Read(&r)
		b, err := NewBreaker(WithBudget(r.Used + 64*mib))
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		if err := b.Admit(); err != nil {
			t.Fatalf("Admit before the ballast = %v", err)
		}

		const step = 2 * mib
		var ballast [][]byte
		throttleAt, rejectAt := -1, -1
		for size := step; size <= 80*mib && rejectAt < 0; size += step {
			ballast = append(ballast, make([]byte, step))
			time.Sleep(3 * time.Millisecond) // the sample goes stale
			_ = b.Admit()
			switch b.State() {
			case Throttle:
				if throttleAt < 0 {
					throttleAt = size
				}
			case Reject:
				rejectAt = size
			}
		}
		t.Logf("budget %d MiB: Throttle at %d MiB of ballast, Reject at %d MiB", b.Stats().Budget/mib, throttleAt/mib, rejectAt/mib)
		if throttleAt < 0 || rejectAt < 0 || throttleAt >= rejectAt || rejectAt >= 64*mib {
			t.Fatalf("Throttle at %d, Reject at %d bytes of ballast: want Throttle, then Reject, both below 64 MiB", throttleAt, rejectAt)
		}
		runtime.KeepAlive(ballast)

		ballast = nil
		runtime.GC()
		time.Sleep(2100 * time.Millisecond) // hold in Reject, hold in Probe
		synctest.Wait()
		if err := b.Admit(); err != nil {
			t.Fatalf("Admit after freeing the ballast = %v (stats %+v)", err, b.Stats())
		}
		if s := b.State(); s != Normal {
			t.Fatalf("State after freeing the ballast = %v, want Normal (stats %+v)", s, b.Stats())
		}
	})
}
