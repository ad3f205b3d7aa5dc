package storm

import (
	"errors"
	"runtime"
	"runtime/metrics"
	"testing"
	"testing/synctest"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestShoalSolvesEveryTower(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Disks, cfg.Towers, cfg.Rounds = 10, 3, 1
	res, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Solved != cfg.Towers || res.Illegal != 0 {
		t.Errorf("solved %d of %d towers, %d illegal moves", res.Solved, cfg.Towers, res.Illegal)
	}
	if want := Moves(cfg.Disks) * uint64(cfg.Towers); res.Moves != want || res.Submitted != want || res.Applied != want {
		t.Errorf("moves %d, submitted %d, applied %d; want %d each", res.Moves, res.Submitted, res.Applied, want)
	}
}

// goUsed is the breaker's view of the memory in use now, after a collection
// so that an earlier test's garbage does not count.
func goUsed() int64 {
	runtime.GC()
	s := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}, {Name: "/memory/classes/heap/free:bytes"}}
	metrics.Read(s)
	return int64(s[0].Value.Uint64() - s[1].Value.Uint64() - s[2].Value.Uint64())
}

// Under a budget far below what the storm would hold, the breaker must push
// back and the towers must still be solved.
func TestShoalPushesBackUnderATightBudget(t *testing.T) {
	cfg := DefaultConfig()
	// 2 × 4,095 moves of 16 KiB (128 MiB) against 40 MiB of headroom, of
	// which the pool's queue slots take about 15 MiB; a move costs about
	// 0.25 ms, so the submitter runs far ahead.
	cfg.Disks, cfg.Towers, cfg.Rounds = 12, 2, 20
	cfg.Budget = goUsed() + 40<<20
	res, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Solved != cfg.Towers || res.Illegal != 0 {
		t.Errorf("solved %d of %d towers, %d illegal moves", res.Solved, cfg.Towers, res.Illegal)
	}
	if res.Pushbacks == 0 {
		t.Error("the breaker never pushed back")
	}
	if res.PeakPending >= int64(res.Moves/2) {
		t.Errorf("%d moves pending at once of %d: the budget did not hold the submitter back", res.PeakPending, res.Moves)
	}
}

func TestRawAccountsForEveryMove(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Variant = Raw
	cfg.Disks, cfg.Towers, cfg.Rounds = 9, 2, 1
	res, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Applied+res.Illegal != res.Submitted || res.Submitted != res.Moves {
		t.Errorf("moves %d, submitted %d, applied %d + illegal %d", res.Moves, res.Submitted, res.Applied, res.Illegal)
	}
	if res.Illegal == 0 && res.Solved != cfg.Towers {
		t.Errorf("no illegal move but %d of %d towers solved", res.Solved, cfg.Towers)
	}
}

// A budget that the process's own use already fills must end the storm with
// ErrBudgetTooSmall, not retry forever.
func TestShoalGivesUpWhenTheBudgetHasNoRoom(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := DefaultConfig()
		cfg.Disks, cfg.Towers, cfg.Rounds = 4, 1, 1
		// Just above current use: the breaker accepts the budget, and
		// the first move's buffer (4 MiB) leaves it no room.
		cfg.Buffer = 4 << 20
		cfg.Budget = goUsed() + 1<<20
		res, err := Run(t.Context(), cfg)
		if !errors.Is(err, ErrBudgetTooSmall) {
			t.Fatalf("Run = %v, want ErrBudgetTooSmall", err)
		}
		if res == nil || res.Solved != 0 || res.Pushbacks == 0 {
			t.Errorf("result %+v, want an unsolved tower and pushbacks", res)
		}
	})
}

func TestConfigRejectsBadInput(t *testing.T) {
	for name, mut := range map[string]func(*Config){
		"variant":   func(c *Config) { c.Variant = "x" },
		"disks":     func(c *Config) { c.Disks = 0 },
		"too many":  func(c *Config) { c.Disks = MaxDisks + 1 },
		"towers":    func(c *Config) { c.Towers = 0 },
		"buffer":    func(c *Config) { c.Buffer = 4 },
		"rounds":    func(c *Config) { c.Rounds = 0 },
		"budget":    func(c *Config) { c.Budget = -1 },
		"raw limit": func(c *Config) { c.RawLimit = -1 },
	} {
		cfg := DefaultConfig()
		mut(&cfg)
		if _, err := Run(t.Context(), cfg); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: Run = %v, want ErrInvalidConfig", name, err)
		}
	}
}
