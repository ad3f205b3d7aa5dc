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
// without a sign: once the stream has been missing for DefaultStreamMissingLimit
// the consumer stops with ErrStreamDeleted. A stream missing for less (a
// restore from a backup deletes it first) is waited for.
func TestStreamDeletedStopsConsumer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pt, _ := fakePartition(t)
		pt.c.js = &deletedStreamJS{back: time.Now().Add(DefaultStreamMissingLimit / 2)}
		if _, ok := pt.consumer(11, true); !ok {
			t.Fatalf("consumer gave up on a stream missing for less than DefaultStreamMissingLimit: %v", context.Cause(pt.c.ctx))
		}
	})
	synctest.Test(t, func(t *testing.T) {
		pt, _ := fakePartition(t)
		pt.c.js = &deletedStreamJS{back: time.Now().Add(10 * DefaultStreamMissingLimit)}
		_, ok := pt.consumer(11, true) // missing for 10 limits
		stoppedWith(t, pt, ok, ErrStreamDeleted)
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
// the partition stalled while its lease renews. Past DefaultStreamMissingLimit it
// stops with ErrStreamDeleted; a stream back sooner (a restore) gets its
// consumer.
func TestStreamDeletedDuringLookup(t *testing.T) {
	for _, start := range []uint64{0, 11} {
		synctest.Test(t, func(t *testing.T) {
			pt, _ := fakePartition(t)
			pt.c.js = &goneAfterFirstJS{back: time.Now().Add(10 * DefaultStreamMissingLimit)}
			result := make(chan bool, 1)
			go func() {
				_, ok := pt.consumer(start, false)
				result <- ok
			}()
			time.Sleep(3 * DefaultStreamMissingLimit)
			select {
			case ok := <-result:
				stoppedWith(t, pt, ok, ErrStreamDeleted)
			default:
				t.Errorf("start %d: still trying after the stream was missing for 3 DefaultStreamMissingLimit", start)
				pt.c.cancel(nil)
				<-result
			}
		})
		synctest.Test(t, func(t *testing.T) {
			pt, _ := fakePartition(t)
			js := &goneAfterFirstJS{back: time.Now().Add(DefaultStreamMissingLimit / 2)}
			pt.c.js = js
			if _, ok := pt.consumer(start, false); !ok {
				t.Fatalf("start %d: consumer gave up on a stream missing for less than DefaultStreamMissingLimit: %v", start, context.Cause(pt.c.ctx))
			}
			if js.created() == nil {
				t.Errorf("start %d: no consumer created once the stream was back", start)
			}
		})
	}
}

// TestStreamMissingLimitOption: WithStreamMissingLimit sets how long a
// missing stream is looked for: a restore that takes longer than the
// default is waited for under a longer limit, and a shorter limit stops
// the consumer sooner.
func TestStreamMissingLimitOption(t *testing.T) {
	limit := func(pt *partition, d time.Duration) {
		if err := WithStreamMissingLimit(d).apply(&pt.c.cfg); err != nil {
			t.Fatal(err)
		}
	}
	synctest.Test(t, func(t *testing.T) {
		pt, _ := fakePartition(t)
		limit(pt, 5*DefaultStreamMissingLimit)
		pt.c.js = &deletedStreamJS{back: time.Now().Add(3 * DefaultStreamMissingLimit)}
		if _, ok := pt.consumer(11, true); !ok {
			t.Fatalf("consumer gave up on a stream missing for 3 minutes under a 5-minute limit: %v", context.Cause(pt.c.ctx))
		}
	})
	synctest.Test(t, func(t *testing.T) {
		pt, _ := fakePartition(t)
		limit(pt, time.Second)
		start := time.Now()
		pt.c.js = &deletedStreamJS{back: start.Add(DefaultStreamMissingLimit / 2)}
		_, ok := pt.consumer(11, true)
		stoppedWith(t, pt, ok, ErrStreamDeleted)
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("stopped after %v under a 1 s limit", took)
		}
	})
	for _, d := range []time.Duration{0, -time.Second} {
		if err := WithStreamMissingLimit(d).apply(&config{}); !errors.Is(err, ErrBadOption) {
			t.Errorf("WithStreamMissingLimit(%v): %v, want ErrBadOption", d, err)
		}
	}
}

// namedKV is a bucket that only has a name.
type namedKV struct{ natsjs.KeyValue }

func (namedKV) Bucket() string { return "CHAT_shoal_leases" }

// KeyValue answers a bucket lookup as Stream does: not found until back,
// then the bucket.
func (js *deletedStreamJS) KeyValue(context.Context, string) (natsjs.KeyValue, error) {
	if time.Now().Before(js.back) {
		return nil, natsjs.ErrBucketNotFound
	}
	return namedKV{}, nil
}

// TestCheckBucketAsksTwice: a bucket found missing once, and there again
// a quarter TTL later (an answer of the moment), leaves the consumer
// running; one missing at both questions stops it with ErrBucketDeleted.
func TestCheckBucketAsksTwice(t *testing.T) {
	for _, tc := range []struct {
		name    string
		missing time.Duration
		stop    bool
	}{
		{"missing for a moment", time.Second / 10, false},
		{"missing", time.Hour, true},
	} {
		synctest.Test(t, func(t *testing.T) {
			c := testPartition(t, 4*time.Second).c
			c.js = &deletedStreamJS{back: time.Now().Add(tc.missing)}
			c.checkBucket(namedKV{})
			c.checkBucket(namedKV{}) // one question at a time: no second goroutine
			c.wg.Wait()
			cause := context.Cause(c.ctx)
			if stopped := cause != nil; stopped != tc.stop {
				t.Errorf("%s: the consumer's cause %v, want stopped %v", tc.name, cause, tc.stop)
			}
			if tc.stop && !errors.Is(cause, ErrBucketDeleted) {
				t.Errorf("%s: the consumer's cause %v, want ErrBucketDeleted", tc.name, cause)
			}
		})
	}
}

// stoppedWith checks that a consumer call gave up (ok false) and that the
// consumer stopped with want.
func stoppedWith(t *testing.T, pt *partition, ok bool, want error) {
	t.Helper()
	if ok {
		t.Error("the consumer was bound or created; want the call to give up")
	}
	if cause := context.Cause(pt.c.ctx); !errors.Is(cause, want) {
		t.Errorf("the consumer's cause = %v, want %v", cause, want)
	}
}
