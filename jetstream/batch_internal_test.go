package jetstream

// Tests of the Batcher path (runBatch, admit, finishHandled, deadLetter,
// settle) and of handle's lease checks, driven in-process with fake
// messages: no server.

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/shoal-go/shoal/pool"
)

// fakeMsg is a natsjs.Msg that counts what the node sends for it.
type fakeMsg struct {
	natsjs.Msg                  // nil: other methods are not used
	acks, terms, naks, progress atomic.Int32
}

func (m *fakeMsg) Ack() error                  { m.acks.Add(1); return nil }
func (m *fakeMsg) Nak() error                  { m.naks.Add(1); return nil }
func (m *fakeMsg) InProgress() error           { m.progress.Add(1); return nil }
func (m *fakeMsg) Term() error                 { m.terms.Add(1); return nil }
func (m *fakeMsg) TermWithReason(string) error { m.terms.Add(1); return nil }
func (m *fakeMsg) settled() int32              { return m.acks.Load() + m.terms.Load() }
func (m *fakeMsg) String() string {
	return fmt.Sprintf("acks %d terms %d naks %d", m.acks.Load(), m.terms.Load(), m.naks.Load())
}

// fakeJS is a JetStream whose PublishMsg (the dead letters) always succeeds
// and records the letters' sequences.
type fakeJS struct {
	natsjs.JetStream
	mu      sync.Mutex
	letters []string
}

func (js *fakeJS) PublishMsg(_ context.Context, m *nats.Msg, _ ...natsjs.PublishOpt) (*natsjs.PubAck, error) {
	js.mu.Lock()
	defer js.mu.Unlock()
	js.letters = append(js.letters, m.Header.Get(HeaderSeq))
	return &natsjs.PubAck{}, nil
}

// fakePartition is testPartition with a fake JetStream for the dead letters.
func fakePartition(t *testing.T) (*partition, *fakeJS) {
	t.Helper()
	pt := testPartition(t, time.Hour)
	js := &fakeJS{}
	pt.c.js = js
	pt.c.cfg.stream = "CHAT"
	pt.c.cfg.dlqSubject = "shoal.dlq.CHAT"
	pt.c.cfg.backoff = 5 * time.Millisecond
	pt.c.cfg.maxBackoff = 20 * time.Millisecond
	return pt, js
}

// fakeEntry makes an entry of pt as receive and submit leave it: in pending,
// counted in inPool.
func fakeEntry(pt *partition, room string, seq, deliveries uint64) (*entry, *fakeMsg) {
	fm := &fakeMsg{}
	e := &entry{pt: pt, msg: fm, m: Msg{
		Room: room, Subject: pt.prefix + room, Data: []byte(fmt.Sprint(seq)),
		Seq: seq, Deliveries: deliveries, Partition: pt.p, Epoch: pt.epoch,
	}, progress: pt.c.now()}
	pt.mu.Lock()
	pt.pending[seq] = e
	pt.inPool++
	pt.mu.Unlock()
	return e, fm
}

func deliveriesOf(es ...*entry) []Delivery {
	ds := make([]Delivery, len(es))
	for i, e := range es {
		ds[i] = Delivery{e}
	}
	return ds
}

// runBatchAsync runs runBatch in a goroutine and returns a channel closed when it
// returned.
func runBatchAsync(h BatchHandler, room string, ds []Delivery) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		runBatch(h, room, ds)
	}()
	return done
}

func waitClosed(t *testing.T, ch <-chan struct{}, d time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(d):
		t.Fatalf("after %v: %s", d, what)
	}
}

// TestBatchMaxDeliveriesAfterEarlierMessages: a message past
// WithMaxDeliveries becomes a dead letter whose sequence the Dedup
// records, which covers every earlier sequence of its room: the messages
// of the call before it must run first. Here their call runs while the
// Dedup has nothing recorded, the partition is lost during it, and the
// next tenure gets the earlier message again and runs it (it is not taken
// for a duplicate).
func TestBatchMaxDeliveriesAfterEarlierMessages(t *testing.T) {
	pt, _ := fakePartition(t)
	d := &MemoryDedup{}
	pt.c.cfg.dedup = d
	pt.c.cfg.maxDeliveries = 2
	e1, m1 := fakeEntry(pt, "r", 10, 1)
	e2, m2 := fakeEntry(pt, "r", 11, 3) // over the limit: a dead letter
	started := make(chan uint64, 1)
	h := func(ctx context.Context, room string, msgs []*Msg) error {
		last, _ := d.LastApplied(context.Background(), room)
		started <- last
		<-ctx.Done() // the node loses the partition while the call runs
		return ctx.Err()
	}
	done := runBatchAsync(h, "r", deliveriesOf(e1, e2))
	var lastAtCall uint64
	select {
	case lastAtCall = <-started:
	case <-time.After(5 * time.Second):
		t.Fatal("the call did not start")
	}
	pt.lose()
	waitClosed(t, done, 5*time.Second, "runBatch did not return after the fence")
	if lastAtCall != 0 {
		t.Fatalf("the Dedup said %d when seq 10's call started; want 0 (seq 11's letter must come after it)", lastAtCall)
	}
	if m2.settled() != 0 {
		t.Fatalf("seq 11 settled after its partition was lost: %v", m2)
	}
	if m1.settled() != 0 {
		t.Fatalf("seq 10 settled though its call did not complete: %v", m1)
	}
	// The next tenure (here or on another node sharing the Dedup) gets
	// seq 10 again.
	pt2 := pt.c.newPartition(0, 2, pt.c.now())
	e1b, m1b := fakeEntry(pt2, "r", 10, 2)
	var ran atomic.Bool
	h2 := func(_ context.Context, _ string, msgs []*Msg) error {
		for _, m := range msgs {
			if m.Seq == 10 {
				ran.Store(true)
			}
		}
		return nil
	}
	waitClosed(t, runBatchAsync(h2, "r", deliveriesOf(e1b)), 5*time.Second, "second runBatch did not return")
	if !ran.Load() && m1b.terms.Load() == 0 {
		t.Errorf("seq 10 was never handled nor dead-lettered, yet acknowledged (%v) as a duplicate (Duplicates=%d)",
			m1b, pt.c.st.duplicates.Load())
	}
}

// TestBatchHandlerNotStartedAfterFence: the partition is fenced while a
// later message of a call is admitted (its Dedup lookup): the handler
// must not start for the earlier ones; every start checks the lease.
func TestBatchHandlerNotStartedAfterFence(t *testing.T) {
	pt, _ := fakePartition(t)
	var lookups atomic.Int32
	pt.c.cfg.dedup = funcDedup(func(ctx context.Context) (uint64, error) {
		if lookups.Add(1) == 2 {
			pt.lose() // the lease was lost while the Dedup answered
			return 0, ctx.Err()
		}
		return 0, nil
	})
	e1, m1 := fakeEntry(pt, "r", 10, 1)
	e2, _ := fakeEntry(pt, "r", 11, 1)
	var calls, fencedCalls atomic.Int32
	h := func(ctx context.Context, _ string, msgs []*Msg) error {
		calls.Add(1)
		if pt.fenced() || ctx.Err() != nil {
			fencedCalls.Add(1)
		}
		return nil
	}
	waitClosed(t, runBatchAsync(h, "r", deliveriesOf(e1, e2)), 5*time.Second, "runBatch did not return")
	if fencedCalls.Load() > 0 {
		t.Errorf("the BatchHandler started %d time(s) on a fenced partition (calls %d; seq 10: %v)",
			fencedCalls.Load(), calls.Load(), m1)
	}
}

type funcDedup func(ctx context.Context) (uint64, error)

func (f funcDedup) LastApplied(ctx context.Context, _ string) (uint64, error) { return f(ctx) }
func (f funcDedup) Record(context.Context, string, uint64) error              { return nil }

// TestRetryNotStartedPastLeaseEnd: the lease's end passes during a
// failed call's backoff, before any verdict on the lease: the retry waits
// (live) and, once the partition is fenced, does not start.
func TestRetryNotStartedPastLeaseEnd(t *testing.T) {
	pt, _ := fakePartition(t)
	pt.c.cfg.maxAttempts = 3
	e1, _ := fakeEntry(pt, "r", 10, 1)
	var calls, pastEnd atomic.Int32
	h := func(context.Context, string, []*Msg) error {
		if calls.Add(1) == 1 {
			// The lease's end passes during the backoff.
			pt.valid.Store(int64(pt.c.now() - time.Millisecond))
			return errors.New("store busy")
		}
		if pt.c.now() >= pt.validUntil() {
			pastEnd.Add(1)
		}
		return nil
	}
	done := runBatchAsync(h, "r", deliveriesOf(e1))
	select {
	case <-done:
	case <-time.After(500 * time.Millisecond):
		pt.lose() // the verdict: fenced
		waitClosed(t, done, 5*time.Second, "runBatch did not return after the fence")
	}
	if pastEnd.Load() > 0 {
		t.Errorf("the handler was retried %d time(s) past the lease's end, before any verdict", pastEnd.Load())
	}
}

// TestBatchStatsMixedCall: one call with a duplicate, a message over max
// deliveries and two ordinary ones: each settled once, counters as
// documented.
func TestBatchStatsMixedCall(t *testing.T) {
	pt, js := fakePartition(t)
	d := &MemoryDedup{}
	_ = d.Record(context.Background(), "r", 10)
	pt.c.cfg.dedup = d
	pt.c.cfg.maxDeliveries = 2
	e1, m1 := fakeEntry(pt, "r", 10, 2) // duplicate
	e2, m2 := fakeEntry(pt, "r", 11, 3) // max deliveries
	e3, m3 := fakeEntry(pt, "r", 12, 1)
	e4, m4 := fakeEntry(pt, "r", 13, 1)
	var got []uint64
	h := func(_ context.Context, _ string, msgs []*Msg) error {
		got = got[:0]
		for _, m := range msgs {
			got = append(got, m.Seq)
		}
		return nil
	}
	waitClosed(t, runBatchAsync(h, "r", deliveriesOf(e1, e2, e3, e4)), 5*time.Second, "runBatch")
	if fmt.Sprint(got) != "[12 13]" {
		t.Errorf("call got %v, want [12 13]", got)
	}
	for i, m := range []*fakeMsg{m1, m2, m3, m4} {
		if m.settled() != 1 {
			t.Errorf("message %d: %v, want settled once", i, m)
		}
	}
	st := &pt.c.st
	if st.duplicates.Load() != 1 || st.deadLetters.Load() != 1 || st.handled.Load() != 2 || st.acked.Load() != 3 {
		t.Errorf("duplicates %d dead letters %d handled %d acked %d; want 1 1 2 3",
			st.duplicates.Load(), st.deadLetters.Load(), st.handled.Load(), st.acked.Load())
	}
	if last, _ := d.LastApplied(context.Background(), "r"); last != 13 {
		t.Errorf("Dedup last %d, want 13", last)
	}
	if len(js.letters) != 1 || js.letters[0] != "11" {
		t.Errorf("letters %v, want [11]", js.letters)
	}
	if n := len(pt.pending); n != 0 || pt.inPool != 0 {
		t.Errorf("pending %d inPool %d after the call", n, pt.inPool)
	}
}

// TestBatchFailedCallLettersEach: a call failing for good dead-letters
// each of its messages, in order, counts them, records them, and nothing is
// acknowledged.
func TestBatchFailedCallLettersEach(t *testing.T) {
	pt, js := fakePartition(t)
	d := &MemoryDedup{}
	pt.c.cfg.dedup = d
	var ms []*fakeMsg
	var es []*entry
	for s := uint64(1); s <= 4; s++ {
		e, m := fakeEntry(pt, "r", s, 1)
		es, ms = append(es, e), append(ms, m)
	}
	var calls atomic.Int32
	h := func(context.Context, string, []*Msg) error {
		calls.Add(1)
		return errors.New("down")
	}
	waitClosed(t, runBatchAsync(h, "r", deliveriesOf(es...)), 5*time.Second, "runBatch")
	if calls.Load() != 3 || pt.c.st.retries.Load() != 2 {
		t.Errorf("calls %d retries %d, want 3, 2", calls.Load(), pt.c.st.retries.Load())
	}
	for i, m := range ms {
		if m.terms.Load() != 1 || m.acks.Load() != 0 {
			t.Errorf("message %d: %v", i, m)
		}
	}
	if fmt.Sprint(js.letters) != "[1 2 3 4]" || pt.c.st.deadLetters.Load() != 4 || pt.c.st.handled.Load() != 0 || pt.c.st.acked.Load() != 0 {
		t.Errorf("letters %v dead letters %d handled %d acked %d", js.letters, pt.c.st.deadLetters.Load(), pt.c.st.handled.Load(), pt.c.st.acked.Load())
	}
	// A permanent error: one call only.
	pt2, js2 := fakePartition(t)
	e, m := fakeEntry(pt2, "r", 1, 1)
	calls.Store(0)
	hp := func(context.Context, string, []*Msg) error { calls.Add(1); return pool.Permanent(errors.New("bad")) }
	waitClosed(t, runBatchAsync(hp, "r", deliveriesOf(e)), 5*time.Second, "runBatch")
	if calls.Load() != 1 || m.terms.Load() != 1 || len(js2.letters) != 1 {
		t.Errorf("permanent: calls %d, %v, letters %v", calls.Load(), m, js2.letters)
	}
}

// TestBatchOlderTenureInCall: a call whose first messages belong to a
// fenced earlier tenure of the partition on this node and whose later ones
// to the live tenure: the old ones are neither run nor settled (the next
// owner has them), the new ones run and are acknowledged once; both
// tenures' bookkeeping is released.
func TestBatchOlderTenureInCall(t *testing.T) {
	old, _ := fakePartition(t)
	eo, mo := fakeEntry(old, "r", 10, 1)
	old.lose()
	pt := old.c.newPartition(0, 2, old.c.now())
	e1, m1 := fakeEntry(pt, "r", 10, 2) // the same message, redelivered
	e2, m2 := fakeEntry(pt, "r", 11, 1)
	var got []uint64
	var epochs []uint64
	h := func(_ context.Context, _ string, msgs []*Msg) error {
		for _, m := range msgs {
			got = append(got, m.Seq)
			epochs = append(epochs, m.Epoch)
		}
		return nil
	}
	waitClosed(t, runBatchAsync(h, "r", deliveriesOf(eo, e1, e2)), 5*time.Second, "runBatch")
	if fmt.Sprint(got) != "[10 11]" || fmt.Sprint(epochs) != "[2 2]" {
		t.Errorf("call got %v epochs %v, want [10 11] of epoch 2", got, epochs)
	}
	if mo.settled() != 0 || m1.acks.Load() != 1 || m2.acks.Load() != 1 {
		t.Errorf("old %v, new 10 %v, new 11 %v", mo, m1, m2)
	}
	if len(old.pending) != 0 || old.inPool != 0 || len(pt.pending) != 0 || pt.inPool != 0 {
		t.Errorf("old pending %d inPool %d, new pending %d inPool %d", len(old.pending), old.inPool, len(pt.pending), pt.inPool)
	}
}

// TestBatchDedupCoversCall: a call's last sequence is recorded; a
// redelivered message of the call is dropped, a later one runs.
func TestBatchDedupCoversCall(t *testing.T) {
	pt, _ := fakePartition(t)
	d := &MemoryDedup{}
	pt.c.cfg.dedup = d
	e1, _ := fakeEntry(pt, "r", 10, 1)
	e2, _ := fakeEntry(pt, "r", 11, 1)
	e3, _ := fakeEntry(pt, "r", 12, 1)
	var got []uint64
	h := func(_ context.Context, _ string, msgs []*Msg) error {
		for _, m := range msgs {
			got = append(got, m.Seq)
		}
		return nil
	}
	waitClosed(t, runBatchAsync(h, "r", deliveriesOf(e1, e2, e3)), 5*time.Second, "runBatch")
	r2, mr2 := fakeEntry(pt, "r", 11, 2)
	n4, _ := fakeEntry(pt, "r", 13, 1)
	waitClosed(t, runBatchAsync(h, "r", deliveriesOf(r2, n4)), 5*time.Second, "runBatch")
	if fmt.Sprint(got) != "[10 11 12 13]" || mr2.acks.Load() != 1 || pt.c.st.duplicates.Load() != 1 {
		t.Errorf("got %v, redelivered 11 %v, duplicates %d", got, mr2, pt.c.st.duplicates.Load())
	}
}
