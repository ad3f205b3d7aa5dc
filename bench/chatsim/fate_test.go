package chatsim

// Fake schedulers, correct or not, driven through the simulation's own
// handle and lost callbacks: the figures Run reports must notice every
// misbehaviour, and stay clean for a correct run.

import (
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// fakeSim builds the state Run builds, with no persist time and no
// fan-out work, so that a test can play a scheduler by hand.
func fakeSim(rooms int) *sim {
	cfg := DefaultConfig()
	cfg.Rooms = rooms
	cfg.FanoutRounds = 0
	return &sim{cfg: cfg, order: newOrderChecker(rooms), dead: make(map[string]uint64), start: time.Now()}
}

// fakeItem is an accepted message of room with sequence number seq, counted
// as the generator counts it.
func fakeItem(s *sim, room uint32, seq uint64, f fault) *item {
	s.accepted.Add(1)
	return &item{message: message{room: room, seq: seq, members: 1, fault: f}}
}

// resultOf fills the fields of a Result exactly as Run does once the
// scheduler has closed.
func resultOf(s *sim) *Result {
	res := &Result{Accepted: s.accepted.Load(), Completed: s.done.Load(), DeadLetters: s.dead, Bystanders: s.bystanders}
	res.OutOfOrder, res.Overlaps = s.order.violations()
	res.Duplicates = s.dups.Load()
	return res
}

// runCall is what every peer scheduler does with a call: run it, and on
// an error or a panic hand the call's items to lost.
func runCall(s *sim, room uint32, items []*item) { guard(s.handle, s.lost, room, items) }

func clean(r *Result) bool {
	return r.Lost() == 0 && r.OutOfOrder == 0 && r.Overlaps == 0 && r.Duplicates == 0
}

// TestCorrectSchedulerIsClean: a correct scheduler, with batches, a
// failing write and a panicking fan-out, is reported clean.
func TestCorrectSchedulerIsClean(t *testing.T) {
	s := fakeSim(2)
	a1, a2, a3 := fakeItem(s, 0, 1, faultNone), fakeItem(s, 0, 2, faultNone), fakeItem(s, 0, 3, faultError)
	a4, a5 := fakeItem(s, 0, 4, faultNone), fakeItem(s, 0, 5, faultPanic)
	b1, b2 := fakeItem(s, 1, 1, faultNone), fakeItem(s, 1, 2, faultNone)
	runCall(s, 0, []*item{a1, a2})
	runCall(s, 1, []*item{b1})
	if s.handle(0, []*item{a3}) == nil { // fails; retried, not lettered yet
		t.Fatal("a write carrying an injected failure succeeded")
	}
	runCall(s, 0, []*item{a3}) // its last attempt, lettered, as shoal's Batcher does
	runCall(s, 0, []*item{a4, a5})
	runCall(s, 1, []*item{b2})
	res := resultOf(s)
	if !clean(res) || res.Completed != 5 {
		t.Fatalf("correct run reported lost %d, %d out of order, %d overlaps, %d completed (want 0, 0, 0, 5); dead %v",
			res.Lost(), res.OutOfOrder, res.Overlaps, res.Completed, res.DeadLetters)
	}
}

// TestDuplicateDeliveryDoesNotHideALoss: a successful call run twice and a
// message never handed over: the duplicate must be counted, and must not
// make up for the lost message in Lost.
func TestDuplicateDeliveryDoesNotHideALoss(t *testing.T) {
	s := fakeSim(2)
	a1 := fakeItem(s, 0, 1, faultNone)
	_ = fakeItem(s, 1, 1, faultNone) // accepted, then dropped by the scheduler
	runCall(s, 0, []*item{a1})
	runCall(s, 0, []*item{a1}) // the same successful call, delivered again
	res := resultOf(s)
	if res.Lost() != 1 || res.Duplicates != 1 {
		t.Errorf("one message delivered twice and one never delivered: report says lost %d, %d duplicates (completed %d of %d accepted); want 1, 1",
			res.Lost(), res.Duplicates, res.Completed, res.Accepted)
	}
}

// TestDuplicateLetterDoesNotHideALoss: the same with a failed call whose
// messages reach lost twice.
func TestDuplicateLetterDoesNotHideALoss(t *testing.T) {
	s := fakeSim(2)
	a1 := fakeItem(s, 0, 1, faultError)
	_ = fakeItem(s, 1, 1, faultNone) // accepted, then dropped
	runCall(s, 0, []*item{a1})
	s.lost(reasonFailed, []*item{a1}) // the same failure lettered a second time
	res := resultOf(s)
	if res.Lost() != 1 || res.Duplicates != 1 {
		t.Errorf("one failure lettered twice and one message never delivered: report says lost %d, %d duplicates (dead %v); want 1, 1",
			res.Lost(), res.Duplicates, res.DeadLetters)
	}
}

// TestOverlapsWhileTheFirstCallRuns: two calls each begin while the first
// runs, the second of them after the first overlapper ended: two
// overlaps, not one.
func TestOverlapsWhileTheFirstCallRuns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := fakeSim(1)
		a, b, c := fakeItem(s, 0, 1, faultNone), fakeItem(s, 0, 2, faultNone), fakeItem(s, 0, 3, faultNone)
		a.persist, b.persist, c.persist = 10*time.Millisecond, 2*time.Millisecond, 10*time.Millisecond
		var wg sync.WaitGroup
		wg.Go(func() { runCall(s, 0, []*item{a}) }) // runs [0, 10ms]
		time.Sleep(time.Millisecond)
		wg.Go(func() { runCall(s, 0, []*item{b}) }) // runs [1, 3ms]: overlaps a
		time.Sleep(4 * time.Millisecond)
		wg.Go(func() { runCall(s, 0, []*item{c}) }) // runs [5, 15ms]: overlaps a
		wg.Wait()
		res := resultOf(s)
		if res.Overlaps != 2 {
			t.Errorf("b and c each began while a ran: %d overlaps reported, want 2", res.Overlaps)
		}
	})
}

// TestFirstAttemptViolations: plain reorders and a message twice in one
// call are noticed.
func TestFirstAttemptViolations(t *testing.T) {
	s := fakeSim(1)
	a1, a2 := fakeItem(s, 0, 1, faultNone), fakeItem(s, 0, 2, faultNone)
	runCall(s, 0, []*item{a2})
	runCall(s, 0, []*item{a1})
	if res := resultOf(s); res.OutOfOrder == 0 {
		t.Errorf("2 before 1 not reported")
	}
	s = fakeSim(1)
	a1 = fakeItem(s, 0, 1, faultNone)
	runCall(s, 0, []*item{a1, a1}) // one message twice in a first attempt
	if res := resultOf(s); clean(res) {
		t.Errorf("a message twice in one call not reported")
	}
}

// TestLatencyNotBelowThePersist: a message handed over before its due time
// (the generator submits, without sleeping, what is due within the
// millisecond) counts its latency from the hand-off, not from a due time
// still ahead: no latency is below the 100 µs every message spends in its
// persist.
func TestLatencyNotBelowThePersist(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := DefaultConfig()
		cfg.Variant = Shoal
		cfg.Rooms = 50
		cfg.Rate = 2_000
		cfg.Duration = 200 * time.Millisecond
		cfg.ErrorRate, cfg.PanicRate = 0, 0
		cfg.MaxWorkers = 64
		cfg.MaxMembers = 50
		cfg.PersistMin, cfg.PersistMax = 100*time.Microsecond, 100*time.Microsecond
		res, err := Run(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if res.P50 < cfg.PersistMin {
			t.Errorf("latency p50 %v (p99 %v, max %v) below the %v every message spends in its persist", res.P50, res.P99, res.Max, cfg.PersistMin)
		}
	})
}
