package jetstream

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
)

// refusingJS is a JetStream whose server has no consumer and refuses to
// create one.
type refusingJS struct {
	natsjs.JetStream
}

var errRefused = errors.New("consumer creation refused")

// epochStream is the stream of a test partition's Consumer, whose
// cfg.streamCreated is 0: created at the Unix epoch. It holds messages up
// to 1000.
type epochStream struct {
	natsjs.Stream
}

func (epochStream) CachedInfo() *natsjs.StreamInfo {
	return &natsjs.StreamInfo{Created: time.Unix(0, 0), State: natsjs.StreamState{LastSeq: 1000}}
}

func (refusingJS) Stream(context.Context, string) (natsjs.Stream, error) { return epochStream{}, nil }

func (refusingJS) Consumer(context.Context, string, string) (natsjs.Consumer, error) {
	return nil, natsjs.ErrConsumerNotFound
}

func (refusingJS) CreateOrUpdateConsumer(context.Context, string, natsjs.ConsumerConfig) (natsjs.Consumer, error) {
	return nil, errRefused
}

// TestRecreatedCountsOnlyCreated: a recreation that ends before the
// consumer could be created (the partition was released or fenced while
// the server refused it) created nothing: Stats.Recreated, which counts
// consumers created anew, must not count it. The next owner creates the
// consumer and counts it there.
func TestRecreatedCountsOnlyCreated(t *testing.T) {
	pt, _ := fakePartition(t)
	pt.c.js = refusingJS{}
	pt.settled.Store(true)
	pt.startRelease() // the drain: consumer gives up on its first refusal
	defer pt.submitTimer.Stop()
	if pt.recreate() {
		t.Fatal("recreate succeeded though every creation was refused")
	}
	if n := pt.c.Stats().Recreated; n != 0 {
		t.Errorf("Stats().Recreated = %d after a recreation that created nothing, want 0", n)
	}
}

// vanishingJS is a JetStream whose partition consumer exists (delivering
// all) until the first creation attempt, which fails; an operator deletes
// the consumer meanwhile. It records the configuration of the consumer it
// finally creates.
type vanishingJS struct {
	natsjs.JetStream
	mu      sync.Mutex
	lookups int
	creates int
	created *natsjs.ConsumerConfig
}

// infoConsumer is a consumer whose CachedInfo gives cfg.
type infoConsumer struct {
	natsjs.Consumer
	cfg natsjs.ConsumerConfig
}

func (c *infoConsumer) CachedInfo() *natsjs.ConsumerInfo {
	return &natsjs.ConsumerInfo{Config: c.cfg}
}

func (*vanishingJS) Stream(context.Context, string) (natsjs.Stream, error) { return epochStream{}, nil }

func (js *vanishingJS) Consumer(context.Context, string, string) (natsjs.Consumer, error) {
	js.mu.Lock()
	defer js.mu.Unlock()
	js.lookups++
	if js.creates == 0 {
		return &infoConsumer{cfg: natsjs.ConsumerConfig{DeliverPolicy: natsjs.DeliverAllPolicy}}, nil
	}
	return nil, natsjs.ErrConsumerNotFound
}

func (js *vanishingJS) CreateOrUpdateConsumer(_ context.Context, _ string, cfg natsjs.ConsumerConfig) (natsjs.Consumer, error) {
	js.mu.Lock()
	defer js.mu.Unlock()
	js.creates++
	if js.creates == 1 {
		return nil, errors.New("timed out") // and the consumer is deleted
	}
	js.created = &cfg
	return &infoConsumer{cfg: cfg}, nil
}

// TestConsumerStartAfterRetry: a partition's consumer is created to
// deliver after the floor (start). A first try found one that exists and
// adopted its start, then failed; the consumer was deleted before the
// next try. That try creates it, and must create it from start, not with
// the start of the consumer that is gone (here the stream's first message:
// every message acknowledged would run again).
func TestConsumerStartAfterRetry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pt, _ := fakePartition(t)
		js := &vanishingJS{}
		pt.c.js = js
		if _, ok := pt.consumer(50, true); !ok {
			t.Fatal("consumer gave up")
		}
		js.mu.Lock()
		defer js.mu.Unlock()
		if got := js.created; got == nil || got.DeliverPolicy != natsjs.DeliverByStartSequencePolicy || got.OptStartSeq != 50 {
			t.Errorf("created %+v; want delivery by start sequence from 50", got)
		}
	})
}

// storeJS is a JetStream that holds at most the one partition consumer,
// created by CreateOrUpdateConsumer.
type storeJS struct {
	natsjs.JetStream
	mu  sync.Mutex
	cfg *natsjs.ConsumerConfig
}

func (*storeJS) Stream(context.Context, string) (natsjs.Stream, error) { return epochStream{}, nil }

// created returns the config of the consumer created last, or nil.
func (js *storeJS) created() *natsjs.ConsumerConfig {
	js.mu.Lock()
	defer js.mu.Unlock()
	return js.cfg
}

func (js *storeJS) Consumer(context.Context, string, string) (natsjs.Consumer, error) {
	js.mu.Lock()
	defer js.mu.Unlock()
	if js.cfg == nil {
		return nil, natsjs.ErrConsumerNotFound
	}
	return &infoConsumer{cfg: *js.cfg}, nil
}

func (js *storeJS) CreateOrUpdateConsumer(_ context.Context, _ string, cfg natsjs.ConsumerConfig) (natsjs.Consumer, error) {
	js.mu.Lock()
	defer js.mu.Unlock()
	js.cfg = &cfg
	return &infoConsumer{cfg: cfg}, nil
}

// TestClaimantRecreationCounted: a claimant that finds the partition's
// consumer gone (deleted while nobody held the partition) creates it anew
// after the lease's floor; Stats.Recreated counts it, as it counts a
// holder's recreation. Binding a consumer that exists, or creating the
// first one (no floor yet), counts nothing.
func TestClaimantRecreationCounted(t *testing.T) {
	pt, _ := fakePartition(t)
	js := &storeJS{}
	pt.c.js = js
	if _, ok := pt.consumer(0, false); !ok { // the first claim ever
		t.Fatal("consumer gave up")
	}
	if _, ok := pt.consumer(11, false); !ok { // a claim that binds the consumer
		t.Fatal("consumer gave up")
	}
	if n := pt.c.Stats().Recreated; n != 0 {
		t.Fatalf("Recreated = %d after creating the first consumer and binding it, want 0", n)
	}
	js.mu.Lock()
	js.cfg = nil // an operator deletes it while nobody holds the partition
	js.mu.Unlock()
	if _, ok := pt.consumer(11, false); !ok { // the next claimant, floor 10
		t.Fatal("consumer gave up")
	}
	if n := pt.c.Stats().Recreated; n != 1 {
		t.Errorf("Recreated = %d after a claimant created the deleted consumer anew, want 1", n)
	}
}

// newStreamJS is a storeJS whose stream was created anew since Start read
// it.
type newStreamJS struct {
	storeJS
}

func (*newStreamJS) Stream(context.Context, string) (natsjs.Stream, error) {
	return newStream{}, nil
}

type newStream struct {
	natsjs.Stream
}

func (newStream) CachedInfo() *natsjs.StreamInfo {
	return &natsjs.StreamInfo{Created: time.Unix(0, 0).Add(time.Hour)}
}

// TestClaimAfterStreamRecreated: a node that has not yet noticed that the
// stream was deleted and created anew claims a partition whose lease holds
// a floor that it wrote itself for the old stream (so the lease's stream
// matches its own), and finds the consumer gone. It must not create the
// consumer after that floor, in the new stream whose sequences started
// over: it stops with ErrStreamRecreated.
func TestClaimAfterStreamRecreated(t *testing.T) {
	pt, _ := fakePartition(t)
	js := &newStreamJS{}
	pt.c.js = js
	_, ok := pt.consumer(11, false)
	stoppedWith(t, pt, ok, ErrStreamRecreated)
	if created := js.created(); created != nil {
		t.Errorf("created %+v after an old stream's floor", *created)
	}
}

// backSoonJS is a storeJS whose consumer, deleted, is looked up as gone
// until back (the server's view settling, or an operator who created it
// again himself), then as it was; it records when a consumer was created.
type backSoonJS struct {
	storeJS
	back      time.Time
	createdAt time.Time
}

func (js *backSoonJS) Consumer(ctx context.Context, stream, name string) (natsjs.Consumer, error) {
	if time.Now().Before(js.back) {
		return nil, natsjs.ErrConsumerNotFound
	}
	return js.storeJS.Consumer(ctx, stream, name)
}

func (js *backSoonJS) CreateOrUpdateConsumer(ctx context.Context, stream string, cfg natsjs.ConsumerConfig) (natsjs.Consumer, error) {
	js.mu.Lock()
	js.createdAt = time.Now()
	js.mu.Unlock()
	return js.storeJS.CreateOrUpdateConsumer(ctx, stream, cfg)
}

// TestClaimantWaitsBeforeRecreating: a claimant that finds the partition's
// consumer gone waits goneWait and looks again before it creates one, as a
// holder does: the server forgets a deleted consumer before it removes its
// files, and a consumer created in between loses its own to that removal.
// One found again after the wait is bound, not created anew (Recreated 0);
// one still gone is created after the wait, from the floor (Recreated 1).
func TestClaimantWaitsBeforeRecreating(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pt, _ := fakePartition(t)
		js := &backSoonJS{back: time.Now().Add(goneWait / 2)}
		js.cfg = &natsjs.ConsumerConfig{DeliverPolicy: natsjs.DeliverAllPolicy} // as the server has it
		pt.c.js = js
		if _, ok := pt.consumer(11, false); !ok {
			t.Fatal("consumer gave up")
		}
		if cfg := js.created(); cfg.DeliverPolicy != natsjs.DeliverAllPolicy {
			t.Errorf("the consumer found again was created anew from %d, want it bound as it was", cfg.OptStartSeq)
		}
		if n := pt.c.Stats().Recreated; n != 0 {
			t.Errorf("Recreated = %d for a consumer found again, want 0", n)
		}
	})
	synctest.Test(t, func(t *testing.T) {
		pt, _ := fakePartition(t)
		js := &backSoonJS{back: time.Now().Add(time.Hour)}
		pt.c.js = js
		start := time.Now()
		if _, ok := pt.consumer(11, false); !ok {
			t.Fatal("consumer gave up")
		}
		if took := js.createdAt.Sub(start); took < goneWait {
			t.Errorf("a consumer found gone was created %v after the lookup, before goneWait (%v)", took, goneWait)
		}
		if cfg := js.created(); cfg.DeliverPolicy != natsjs.DeliverByStartSequencePolicy || cfg.OptStartSeq != 11 {
			t.Errorf("created with %v from %d, want from the floor, 11", cfg.DeliverPolicy, cfg.OptStartSeq)
		}
		if n := pt.c.Stats().Recreated; n != 1 {
			t.Errorf("Recreated = %d, want 1", n)
		}
	})
}
