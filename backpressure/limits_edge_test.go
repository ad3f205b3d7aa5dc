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
		b, _ := newFakeBudget(t, 100*mib+mib/2, 1000*mib, WithBytesPerTask(mib))
		inflight := counted(t, b)
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

// TestCrossCheckTieGoesToTheAncestor: the process's group and its parent
// have the same limit (a pod and its only container, say). The parent's
// charge includes the child's and its other members', so the parent's limit
// is the one the kernel hits first: the cross-check must read the parent's
// charge. Here the parent's other members hold 950 MiB of its 1 GiB.
func TestCrossCheckTieGoesToTheAncestor(t *testing.T) {
	const mib = 1 << 20
	synctest.Test(t, func(t *testing.T) {
		st, err := crossChecked(t, parentAndApp(t, 1024*mib, 1024*mib, 950*mib))
		if st.Outside < 900*mib || !errors.Is(err, ErrMemoryPressure) {
			t.Fatalf("the parent, with the same 1 GiB limit, is charged 950 MiB beyond Go's memory: "+
				"Outside = %d MiB, Admit = %v; want ≥ 900 MiB and ErrMemoryPressure", st.Outside/mib, err)
		}
	})
}

// TestCloseDuringRefresh: an Admit holds the refresher's role (blocked in
// the source's Read) while Close runs and returns. The transition that
// refresh then finds must not be published without its OnStateChange call:
// Close has made every pending call and the loop is gone, so a breaker that
// reports a new state (State, Stats().Entered) afterwards reports a
// transition no callback will ever hear of.
func TestCloseDuringRefresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var rec recorder
		b, src := newFake(t, 500, WithOnStateChange(rec.record))
		_ = b.Admit()
		release := src.hold()
		time.Sleep(3 * time.Millisecond) // the sample goes stale
		refreshed := make(chan error)
		go func() { refreshed <- b.Admit() }() // takes the role, then waits in Read
		synctest.Wait()
		src.setUsed(990)
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		release()
		if err := <-refreshed; !errors.Is(err, ErrClosed) {
			t.Fatalf("Admit racing Close = %v, want ErrClosed", err)
		}
		synctest.Wait()
		st := b.Stats()
		calls := rec.get()
		var entered uint64
		for _, n := range st.Entered {
			entered += n
		}
		if entered != uint64(len(calls)) || (st.State != Normal && len(calls) == 0) {
			t.Fatalf("after Close: state %v, Entered %v, OnStateChange calls %v: a transition without its call",
				st.State, st.Entered, calls)
		}
	})
}

// TestCrossCheckLooserAncestorNearlyFull: the process's group has the
// tightest limit (1 GiB), but its parent's looser limit (1.5 GiB) is shared
// with siblings that hold 1400 MiB of it. The kernel kills when the
// parent's charge reaches 1.5 GiB, so this process has about 100 MiB left,
// however far it is from its own limit: the breaker must refuse.
func TestCrossCheckLooserAncestorNearlyFull(t *testing.T) {
	const mib = 1 << 20
	synctest.Test(t, func(t *testing.T) {
		b := parentAndApp(t, 1536*mib, 1024*mib, 1400*mib)
		if st := b.Stats(); st.Source != BudgetCgroup || st.Budget != 966367641 {
			t.Fatalf("Stats = %+v, want 0.9 GiB from the process's own limit", st)
		}
		if _, err := crossChecked(t, b); !errors.Is(err, ErrMemoryPressure) {
			t.Fatalf("about 100 MiB left before the parent's limit: Admit = %v, want ErrMemoryPressure", err)
		}
	})
}

// TestGoroutineCeilingInProbe: "at or above [the ceiling] nothing is
// admitted" holds in Probe too: a breaker that recovers from Reject while
// the goroutines stand at the ceiling must not let Probe's trickle through.
func TestGoroutineCeilingInProbe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, src := newFake(t, 100, WithMaxGoroutines(1000))
		_ = sample(b, src, 950)
		wantState(t, b, Reject)
		src.update(func(r *Reading) { r.Used, r.Goroutines = 500, 5000 })
		time.Sleep(1100 * time.Millisecond) // a hold time below Recover
		admitted := 0
		for range 5 {
			if b.Admit() == nil {
				admitted++
			}
			time.Sleep(20 * time.Millisecond) // a probe token each time
		}
		wantState(t, b, Probe)
		if admitted > 0 {
			t.Fatalf("Probe at 5000 goroutines, ceiling 1000: admitted %d of 5", admitted)
		}
	})
}

// panicSource is a Source whose Read panics while panics is above zero.
type panicSource struct {
	fakeSource
	panics atomic.Int32
}

func (p *panicSource) Read(r *Reading) {
	if p.panics.Add(-1) >= 0 {
		panic("source failed")
	}
	p.fakeSource.Read(r)
}

// TestSourcePanicReleasesRefresh: a Source whose Read panics during an
// Admit's refresh panics that Admit, but the refresher's role goes back: the
// samples after it are taken and acted on. Before, the role stayed taken for
// good, no sample was ever taken again, and the breaker judged every later
// Admit by the sample before the panic (Reject here, though memory is low).
func TestSourcePanicReleasesRefresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &panicSource{}
		src.r = Reading{Used: 990}
		// The loop samples once an hour: the samples that count are the
		// Admits'.
		b, err := NewBreaker(WithSource(src), WithBudget(1000), WithSampleInterval(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		if b.State() != Reject {
			t.Fatalf("state %v at 99%% of the budget, want Reject", b.State())
		}
		src.panics.Store(1)
		src.setUsed(100)
		time.Sleep(time.Second) // the decision goes stale
		func() {
			defer func() { _ = recover() }()
			_ = b.Admit()
		}()
		// Reject holds, then probes, then Normal: a minute is ample.
		reads := src.readCount()
		for range 60 {
			time.Sleep(time.Second)
			_ = b.Admit()
		}
		if b.State() != Normal || src.readCount() == reads {
			t.Fatalf("state %v after %d reads (%d before the minute), want Normal", b.State(), src.readCount(), reads)
		}
		if err := b.Admit(); err != nil {
			t.Fatalf("Admit at 10%% of the budget: %v", err)
		}
	})
}
