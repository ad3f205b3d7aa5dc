package chatsim

import (
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/shoal-go/shoal/pool"
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

// checkAccounts checks that every message of cfg's load was accepted and
// then either delivered or counted as a dead letter, that every message
// carrying an injected fault is among the dead letters, and that the writes
// carried every delivered message.
func checkAccounts(t *testing.T, cfg Config, res *Result) {
	t.Helper()
	n, errs, panics := injected(cfg)
	if res.Generated != n || res.Accepted != n {
		t.Fatalf("generated %d, accepted %d; the load has %d messages", res.Generated, res.Accepted, n)
	}
	if res.Lost() != 0 {
		t.Errorf("completed %d + dead letters %v != accepted %d", res.Completed, res.DeadLetters, res.Accepted)
	}
	var dead uint64
	for _, d := range res.DeadLetters {
		dead += d
	}
	// A faulty message is never delivered: its write fails or its fan-out
	// panics. So the dead letters with a fault are exactly the faults.
	if dead-res.Bystanders != errs+panics {
		t.Errorf("dead letters %v with %d bystanders; the load carries %d errors and %d panics", res.DeadLetters, res.Bystanders, errs, panics)
	}
	if res.DeadLetters[reasonFailed] < errs {
		t.Errorf("%d Failed dead letters, fewer than the %d injected persist failures", res.DeadLetters[reasonFailed], errs)
	}
	if errs+panics > 0 && dead == 0 {
		t.Error("no dead letters from a load with injected faults")
	}
	b := res.Batches
	if b.Messages < res.Completed || b.Calls == 0 || b.Calls > b.Messages {
		t.Errorf("%d writes carried %d messages; %d were delivered", b.Calls, b.Messages, res.Completed)
	}
	if got, limit := b.Quantile(1), cfg.maxBatch(); sizeBucket(got) > sizeBucket(limit) {
		t.Errorf("a write in the bucket up to %d messages; the bound is %d", got, limit)
	}
}

// runInOrder runs cfg, and checks that every room kept its order and that
// the accounts balance (checkAccounts).
func runInOrder(t *testing.T, cfg Config) *Result {
	t.Helper()
	res, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.OutOfOrder != 0 || res.Overlaps != 0 {
		t.Errorf("%s: order violations: %d out of order, %d overlaps", cfg.Variant, res.OutOfOrder, res.Overlaps)
	}
	checkAccounts(t, cfg, res)
	return res
}

func TestShoalKeepsOrderAndLosesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		res := runInOrder(t, smallLoad(Shoal))
		if res.P50 <= 0 || res.P99 < res.P50 || res.P999 < res.P99 || res.Max < res.P999 {
			t.Errorf("latencies not ordered: p50 %v p99 %v p999 %v max %v", res.P50, res.P99, res.P999, res.Max)
		}
	})
}

// Under a backlog the Batcher hands a room's queued messages to one call:
// writes of more than one message appear, none above MaxBatch, every
// message is still delivered in order, and the Batcher's own count of its
// calls is the simulation's.
func TestShoalBatchesTheBacklogInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := smallLoad(Shoal)
		cfg.Rooms = 5
		cfg.MaxBatch = 8
		res := runInOrder(t, cfg)
		b := res.Batches
		if b != res.ownBatches {
			t.Errorf("the Batcher counted %+v, the simulation %+v", b, res.ownBatches)
		}
		if b.Mean() <= 1.5 || b.Quantile(1) != 8 {
			t.Errorf("5 busy rooms: mean write %.2f messages, largest up to %d; want batches, capped at 8", b.Mean(), b.Quantile(1))
		}
		for i := sizeBucket(8) + 1; i < sizeBuckets; i++ {
			if b.Sizes[i] != 0 {
				t.Errorf("%d writes of more than 8 messages", b.Sizes[i])
			}
		}
	})
}

// A fault fails the write that carries it: with many faults the dead letters
// hold every faulty message and the batch-mates that shared its write, and
// the accounts still balance.
func TestInjectedFaultsEndAsDeadLetters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := smallLoad(Shoal)
		cfg.Rooms = 5
		cfg.ErrorRate, cfg.PanicRate = 0.05, 0.02
		res := runInOrder(t, cfg)
		if res.DeadLetters[reasonPanicked] == 0 || res.Bystanders == 0 {
			t.Errorf("dead letters %v, %d bystanders: want panics and batch-mates among them", res.DeadLetters, res.Bystanders)
		}
	})
}

func TestFormatPrintsBatchSizes(t *testing.T) {
	cfg := smallLoad(Shoal)
	res := &Result{Variant: Shoal, Batches: pool.BatchStats{Calls: 4, Messages: 10, Sizes: [sizeBuckets]uint64{0: 1, 1: 1, 2: 1, 3: 1}}}
	none := &Result{Variant: Raw}
	var sb strings.Builder
	Format(&sb, cfg, res, none)
	var line string
	for l := range strings.Lines(sb.String()) {
		if strings.HasPrefix(l, "batch size") {
			line = l
		}
	}
	// Sizes 1, 2, 3..4, 5..8: mean 2.5; the median (the second of four
	// writes) up to 2; p99 and max up to 8.
	if !strings.Contains(line, "2.5 / ≤2 / ≤8 / ≤8") || !strings.HasSuffix(strings.TrimSpace(line), "-") {
		t.Errorf("batch size row %q, want shoal's 2.5 / ≤2 / ≤8 / ≤8 and - for a run without writes; report:\n%s", line, sb.String())
	}
	if !strings.Contains(sb.String(), "persist writes") {
		t.Errorf("no persist writes row:\n%s", sb.String())
	}
}

// The peers run in real time: a goroutine waiting on a sync.Mutex is not
// durably blocked, so a synctest bubble would never advance its clock while
// a room's mutex is held across a simulated persist. Their hand-written
// per-room pending slices keep order and batch too.
func TestPeersAccountForEveryMessage(t *testing.T) {
	for _, v := range []string{Ants, Pond} {
		t.Run(v, func(t *testing.T) {
			cfg := smallLoad(v)
			cfg.Duration = 300 * time.Millisecond
			res := runInOrder(t, cfg)
			if b := res.Batches; b.Messages <= b.Calls {
				t.Errorf("%d writes for %d messages: no write took more than one", b.Calls, b.Messages)
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
