package chatsim

import (
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

var errorsIs = errors.Is

// smallLoad is a load that runs in well under a second of fake time and still
// puts several messages of a room in flight at once.
func smallLoad(variant string) Config {
	cfg := DefaultConfig()
	cfg.Variant = variant
	cfg.Rooms = 50
	cfg.Rate = 4_000
	cfg.Duration = 500 * time.Millisecond
	cfg.ErrorRate = 0.02
	cfg.PanicRate = 0.005
	cfg.MaxWorkers = 64
	cfg.MaxMembers = 50
	if testing.Short() {
		cfg.Duration = 200 * time.Millisecond
	}
	return cfg
}

// injected counts the faults the load of cfg carries.
func injected(cfg Config) (n, errs, panics uint64) {
	g := newGenerator(&cfg)
	for {
		m, ok := g.next()
		if !ok {
			return n, errs, panics
		}
		n++
		switch m.fault {
		case faultError:
			errs++
		case faultPanic:
			panics++
		}
	}
}

func TestShoalKeepsOrderAndLosesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := smallLoad(Shoal)
		res, err := Run(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		n, errs, panics := injected(cfg)
		if res.Generated != n || res.Accepted != n {
			t.Fatalf("generated %d, accepted %d; the load has %d messages", res.Generated, res.Accepted, n)
		}
		if res.OutOfOrder != 0 || res.Overlaps != 0 {
			t.Errorf("order violations: %d out of order, %d overlaps", res.OutOfOrder, res.Overlaps)
		}
		if res.Lost() != 0 {
			t.Errorf("completed %d + dead letters %v != accepted %d", res.Completed, res.DeadLetters, res.Accepted)
		}
		if res.DeadLetters[reasonFailed] != errs || res.DeadLetters[reasonPanicked] != panics {
			t.Errorf("dead letters %v, want Failed %d and Panicked %d", res.DeadLetters, errs, panics)
		}
		if res.Completed != n-errs-panics {
			t.Errorf("completed %d, want %d", res.Completed, n-errs-panics)
		}
		if res.P50 <= 0 || res.P99 < res.P50 || res.P999 < res.P99 || res.Max < res.P999 {
			t.Errorf("latencies not ordered: p50 %v p99 %v p999 %v max %v", res.P50, res.P99, res.P999, res.Max)
		}
	})
}

// The peers run in real time: a goroutine waiting on a sync.Mutex is not
// durably blocked, so a synctest bubble would never advance its clock while
// a room's mutex is held across a simulated persist.
func TestPeersAccountForEveryMessage(t *testing.T) {
	for _, v := range []string{Ants, Pond} {
		t.Run(v, func(t *testing.T) {
			cfg := smallLoad(v)
			cfg.Duration = 300 * time.Millisecond
			res, err := Run(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if res.Lost() != 0 || res.Accepted != res.Generated {
				t.Errorf("generated %d, accepted %d, completed %d, dead %v", res.Generated, res.Accepted, res.Completed, res.DeadLetters)
			}
			if res.Overlaps != 0 {
				t.Errorf("%d overlaps under a per-room mutex", res.Overlaps)
			}
		})
	}
}

// A scheduler that keeps no order must be caught: the check can fail.
func TestOrderCheckCatchesABrokenScheduler(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := smallLoad(Raw)
		cfg.Rooms = 3
		res, err := Run(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if res.OutOfOrder == 0 || res.Overlaps == 0 {
			t.Errorf("raw goroutines over 3 busy rooms: %d out of order, %d overlaps; the checker missed them", res.OutOfOrder, res.Overlaps)
		}
		if res.Lost() != 0 {
			t.Errorf("completed %d + dead %v != accepted %d", res.Completed, res.DeadLetters, res.Accepted)
		}
	})
}
