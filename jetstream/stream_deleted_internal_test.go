package jetstream

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
)

// deletedStreamJS is a storeJS whose stream is missing until back, then
// exists again (the one Start read).
type deletedStreamJS struct {
	storeJS
	back time.Time
}

func (js *deletedStreamJS) Stream(context.Context, string) (natsjs.Stream, error) {
	if time.Now().Before(js.back) {
		return nil, natsjs.ErrStreamNotFound
	}
	return epochStream{}, nil
}

// TestStreamDeletedStopsConsumer: a holder that finds its consumer gone
// because its stream was deleted (and not created again) must not look
// for the stream for ever while its leases renew, the partition stalled
// without a sign: once the stream has been missing for StreamMissingLimit
// the consumer stops with ErrStreamDeleted. A stream missing for less (a
// restore from a backup deletes it first) is waited for.
func TestStreamDeletedStopsConsumer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pt, _ := fakePartition(t)
		pt.c.js = &deletedStreamJS{back: time.Now().Add(StreamMissingLimit / 2)}
		if _, ok := pt.consumer(11); !ok {
			t.Fatalf("consumer gave up on a stream missing for less than StreamMissingLimit: %v", context.Cause(pt.c.ctx))
		}
	})
	synctest.Test(t, func(t *testing.T) {
		pt, _ := fakePartition(t)
		pt.c.js = &deletedStreamJS{back: time.Now().Add(10 * StreamMissingLimit)}
		if _, ok := pt.consumer(11); ok {
			t.Error("consumer created after the stream was missing for 10 StreamMissingLimit")
		}
		if cause := context.Cause(pt.c.ctx); !errors.Is(cause, ErrStreamDeleted) {
			t.Errorf("the consumer's cause = %v, want ErrStreamDeleted", cause)
		}
	})
}

// goneAfterFirstJS is a storeJS whose stream is deleted just after the
// consumer's first look at it, and is back (the same one) from back on:
// until then the consumer's lookup and creation find no stream.
type goneAfterFirstJS struct {
	storeJS
	looked bool
	back   time.Time
}

func (js *goneAfterFirstJS) missing() bool {
	js.mu.Lock()
	defer js.mu.Unlock()
	return js.looked && time.Now().Before(js.back)
}

func (js *goneAfterFirstJS) Stream(ctx context.Context, name string) (natsjs.Stream, error) {
	if js.missing() {
		return nil, natsjs.ErrStreamNotFound
	}
	js.mu.Lock()
	js.looked = true
	js.mu.Unlock()
	return js.storeJS.Stream(ctx, name)
}

func (js *goneAfterFirstJS) Consumer(ctx context.Context, stream, name string) (natsjs.Consumer, error) {
	if js.missing() {
		return nil, natsjs.ErrStreamNotFound
	}
	return js.storeJS.Consumer(ctx, stream, name)
}

func (js *goneAfterFirstJS) CreateOrUpdateConsumer(ctx context.Context, stream string, cfg natsjs.ConsumerConfig) (natsjs.Consumer, error) {
	if js.missing() {
		return nil, natsjs.ErrStreamNotFound
	}
	return js.storeJS.CreateOrUpdateConsumer(ctx, stream, cfg)
}

// TestStreamDeletedDuringLookup: a stream deleted after the consumer's
// first look at it, while it looks the consumer up (a claim after a floor)
// or creates it (the first claim): the lookup and the creation then fail
// with ErrStreamNotFound, and the consumer must not retry them for ever,
// the partition stalled while its lease renews. Past StreamMissingLimit it
// stops with ErrStreamDeleted; a stream back sooner (a restore) gets its
// consumer.
func TestStreamDeletedDuringLookup(t *testing.T) {
	for _, start := range []uint64{0, 11} {
		synctest.Test(t, func(t *testing.T) {
			pt, _ := fakePartition(t)
			pt.c.js = &goneAfterFirstJS{back: time.Now().Add(10 * StreamMissingLimit)}
			result := make(chan bool, 1)
			go func() {
				_, ok := pt.consumer(start)
				result <- ok
			}()
			time.Sleep(3 * StreamMissingLimit)
			select {
			case ok := <-result:
				if ok {
					t.Errorf("start %d: consumer created in a stream missing since", start)
				}
				if cause := context.Cause(pt.c.ctx); !errors.Is(cause, ErrStreamDeleted) {
					t.Errorf("start %d: the consumer's cause = %v, want ErrStreamDeleted", start, cause)
				}
			default:
				t.Errorf("start %d: still trying after the stream was missing for 3 StreamMissingLimit", start)
				pt.c.cancel(nil)
				<-result
			}
		})
		synctest.Test(t, func(t *testing.T) {
			pt, _ := fakePartition(t)
			js := &goneAfterFirstJS{back: time.Now().Add(StreamMissingLimit / 2)}
			pt.c.js = js
			if _, ok := pt.consumer(start); !ok {
				t.Fatalf("start %d: consumer gave up on a stream missing for less than StreamMissingLimit: %v", start, context.Cause(pt.c.ctx))
			}
			if js.created() == nil {
				t.Errorf("start %d: no consumer created once the stream was back", start)
			}
		})
	}
}
