package jetstream

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// recordingDedup is a MemoryDedup that keeps every Record call.
type recordingDedup struct {
	MemoryDedup
	mu      sync.Mutex
	records []uint64
}

func (d *recordingDedup) Record(ctx context.Context, room string, seq uint64) error {
	d.mu.Lock()
	d.records = append(d.records, seq)
	d.mu.Unlock()
	return d.MemoryDedup.Record(ctx, room, seq)
}

// TestMaxDeliveriesOfAppliedMessage: a message delivered past
// WithMaxDeliveries that the Dedup says was applied already (its
// acknowledgement was lost after a later message of its room was applied)
// is a duplicate: acknowledged, with no dead letter, and the Dedup is not
// asked to record a sequence below its record (a Dedup that stores what it
// is given, as KVDedup did, would forget the later message and let it run
// again).
func TestMaxDeliveriesOfAppliedMessage(t *testing.T) {
	pt, js := fakePartition(t)
	d := &recordingDedup{}
	pt.c.cfg.dedup = d
	pt.c.cfg.maxDeliveries = 1
	ctx := context.Background()
	if err := d.MemoryDedup.Record(ctx, "r", 7); err != nil {
		t.Fatal(err)
	}
	e, fm := fakeEntry(pt, "r", 5, 2)
	if err := e.run(ctx); err != nil {
		t.Fatal(err)
	}
	js.mu.Lock()
	letters := len(js.letters)
	js.mu.Unlock()
	if letters != 0 || fm.acks.Load() != 1 || fm.terms.Load() != 0 {
		t.Errorf("applied message past max deliveries: %d letters, %v; want no letter, acknowledged", letters, fm)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.records) != 0 {
		t.Errorf("Record called with %v below the record 7", d.records)
	}
}

// TestRetryBackoffNeverShrinks: WithRetry's wait is doubled before
// each later attempt up to 5 s; a first wait above 5 s must not shrink to
// 5 s for the next attempt.
func TestRetryBackoffNeverShrinks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pt := testPartition(t, time.Hour)
		pt.c.cfg.maxAttempts = 3
		pt.c.cfg.backoff = 8 * time.Second
		var at []time.Time
		attempts, _, err := pt.handle(func() error {
			at = append(at, time.Now())
			return errors.New("fails")
		})
		if attempts != 3 || err == nil || len(at) != 3 {
			t.Fatalf("attempts %d, err %v, calls %d", attempts, err, len(at))
		}
		if first, second := at[1].Sub(at[0]), at[2].Sub(at[1]); second < first {
			t.Errorf("waits %v then %v: the backoff shrank", first, second)
		}
	})
}

// failRecordDedup answers LastApplied and fails every Record.
type failRecordDedup struct{ MemoryDedup }

func (*failRecordDedup) Record(context.Context, string, uint64) error {
	return errors.New("store down")
}

// TestRecordFailureMarksDirty: a message whose Record failed is left
// unacknowledged for redelivery; a release after it must be marked dirty
// (the lease's Dirty: messages received and not acknowledged), as after a
// failed Ack.
func TestRecordFailureMarksDirty(t *testing.T) {
	pt, _ := fakePartition(t)
	pt.c.cfg.dedup = &failRecordDedup{}
	e, fm := fakeEntry(pt, "r", 5, 1)
	pt.finishHandled([]*entry{e}, 1, "", nil)
	pt.done(e)
	pt.mu.Lock()
	dirty, held := pt.dirty, len(pt.pending)
	pt.mu.Unlock()
	if fm.settled() != 0 || held != 0 || !dirty {
		t.Errorf("after a failed Record: %v, %d pending, dirty %v; want unacknowledged, none pending, dirty", fm, held, dirty)
	}
}

// TestDeadLetterRecordErrorCounted: Stats.DedupErrors counts every
// Dedup call that failed, the Record after a dead letter's Term included.
func TestDeadLetterRecordErrorCounted(t *testing.T) {
	pt, js := fakePartition(t)
	pt.c.cfg.dedup = &failRecordDedup{}
	e, fm := fakeEntry(pt, "r", 5, 1)
	pt.deadLetter(e, ReasonPermanent, 1, errors.New("bad"))
	js.mu.Lock()
	letters := len(js.letters)
	js.mu.Unlock()
	if letters != 1 || fm.terms.Load() != 1 {
		t.Fatalf("%d letters, %v; want 1 letter, terminated", letters, fm)
	}
	if n := pt.c.Stats().DedupErrors; n != 1 {
		t.Errorf("DedupErrors %d after a failed Record, want 1", n)
	}
}

// TestBatchOfTwoConsumers: one Batcher fed by two consumers (two
// streams, one BatchFunc) groups their messages by room name, so a call
// can hold messages of a room of each stream. Each must be handled and
// acknowledged, not dropped unacknowledged (it would come back an ack
// wait later, after the later messages of its room).
func TestBatchOfTwoConsumers(t *testing.T) {
	ptA, _ := fakePartition(t)
	ptB, _ := fakePartition(t)
	eA, fmA := fakeEntry(ptA, "lobby", 5, 1)
	eB, fmB := fakeEntry(ptB, "lobby", 9, 1)
	var calls [][]uint64
	h := func(_ context.Context, _ string, msgs []*Msg) error {
		var seqs []uint64
		for _, m := range msgs {
			seqs = append(seqs, m.Seq)
		}
		calls = append(calls, seqs)
		return nil
	}
	runBatch(h, "lobby", deliveriesOf(eA, eB))
	if fmA.acks.Load() != 1 || fmB.acks.Load() != 1 || len(calls) != 2 {
		t.Errorf("calls %v; stream A's message %v, stream B's %v; want two calls, both acknowledged", calls, fmA, fmB)
	}
}

// drainCtx is a partition's context whose Err, the first time it is asked,
// runs drain before it answers: a drain that gives the held messages back
// just after a task's lease check passed.
type drainCtx struct {
	context.Context
	drain func()
}

func (c *drainCtx) Err() error {
	err := c.Context.Err()
	if f := c.drain; f != nil {
		c.drain = nil
		f()
	}
	return err
}

// TestDrainRacingSettle: the drain timeout has passed and the drain gives
// back (Naks) the messages still held while a task settles one of them,
// between the task's lease check and its taking the message out of
// pending. The message must be settled once: acknowledged or given back,
// never both (the Ack would follow a Nak that had it redelivered).
func TestDrainRacingSettle(t *testing.T) {
	pt, _ := fakePartition(t)
	e, fm := fakeEntry(pt, "r", 5, 1)
	pt.ctx = &drainCtx{Context: pt.ctx, drain: func() { pt.giveBack() }}
	pt.ack(e)
	pt.done(e)
	if n := fm.settled() + fm.naks.Load(); n != 1 {
		t.Errorf("settled %d times (%v), want once", n, fm)
	}
}
