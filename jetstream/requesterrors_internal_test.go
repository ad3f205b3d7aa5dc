package jetstream

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
)

// flakyJS is a JetStream whose stream lookups and consumer creations time
// out a given number of times before they answer. Its consumer is always
// unknown to a lookup, so each creation is of a new one. cutAt, if not 0,
// is the creation at which the partition is fenced while it waits: that
// request ends with its context, cut short.
type flakyJS struct {
	natsjs.JetStream
	pt *partition

	mu                       sync.Mutex
	streamFails, createFails int
	cutAt                    int
	streams, creates         int
}

func (js *flakyJS) Stream(context.Context, string) (natsjs.Stream, error) {
	js.mu.Lock()
	defer js.mu.Unlock()
	js.streams++
	if js.streams <= js.streamFails {
		return nil, context.DeadlineExceeded
	}
	return epochStream{}, nil
}

func (js *flakyJS) Consumer(context.Context, string, string) (natsjs.Consumer, error) {
	return nil, natsjs.ErrConsumerNotFound
}

func (js *flakyJS) CreateOrUpdateConsumer(ctx context.Context, _ string, _ natsjs.ConsumerConfig) (natsjs.Consumer, error) {
	js.mu.Lock()
	js.creates++
	n := js.creates
	js.mu.Unlock()
	if n == js.cutAt {
		js.pt.fence()
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if n <= js.createFails {
		return nil, nats.ErrTimeout
	}
	return &flakyConsumer{}, nil
}

// flakyConsumer is a consumer whose state reads time out infoFails times,
// then say it is gone if gone is set, and otherwise answer.
type flakyConsumer struct {
	natsjs.Consumer

	mu        sync.Mutex
	infoFails int
	gone      bool
	infos     int
}

func (c *flakyConsumer) Info(context.Context) (*natsjs.ConsumerInfo, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.infos++
	switch {
	case c.infos <= c.infoFails:
		return nil, context.DeadlineExceeded
	case c.gone:
		return nil, natsjs.ErrConsumerNotFound
	}
	return &natsjs.ConsumerInfo{}, nil
}

// TestRequestErrorsCounted: every request about a partition's consumer or
// stream that fails and is tried again counts once in Stats.RequestErrors
// (stream lookups, consumer creations, state reads, pull requests); an
// answer that the consumer is gone does not, nor does a request cut short
// because the partition was fenced.
func TestRequestErrorsCounted(t *testing.T) {
	cases := []struct {
		name string
		what string // what run did, for the message
		want uint64
		run  func(t *testing.T, pt *partition)
	}{{
		// Each failed creation is followed by a lookup that finds no
		// consumer: not a failed request.
		name: "stream lookups and creations", what: "2 failed stream lookups and 3 failed creations", want: 5,
		run: func(t *testing.T, pt *partition) {
			pt.c.js = &flakyJS{pt: pt, streamFails: 2, createFails: 3}
			if _, ok := pt.consumer(0, false); !ok {
				t.Fatal("consumer gave up")
			}
		},
	}, {
		name: "state reads", what: "3 failed state reads", want: 3,
		run: func(t *testing.T, pt *partition) {
			pt.cons = &flakyConsumer{infoFails: 3}
			if _, ok := pt.info(); !ok {
				t.Fatal("info gave up")
			}
		},
	}, {
		name: "a consumer gone", what: "a failed state read and an answer that the consumer is gone", want: 1,
		run: func(t *testing.T, pt *partition) {
			pt.cons = &flakyConsumer{infoFails: 1, gone: true}
			if still, ok := pt.stillGone(); !ok || !still {
				t.Fatalf("stillGone = %v, %v, want true, true", still, ok)
			}
		},
	}, {
		name: "pull requests", what: "2 failed pull requests", want: 2,
		run: func(t *testing.T, pt *partition) {
			for range 2 {
				if ok, anew := pt.fetchFailed(nats.ErrTimeout); !ok || anew {
					t.Fatalf("fetchFailed = %v, %v after a timeout, want true, false", ok, anew)
				}
			}
		},
	}, {
		name: "cut short by a fence", what: "a failed creation and one cut short by the fence", want: 1,
		run: func(t *testing.T, pt *partition) {
			pt.c.js = &flakyJS{pt: pt, createFails: 1, cutAt: 2}
			if _, ok := pt.consumer(0, false); ok {
				t.Fatal("consumer succeeded on a fenced partition")
			}
		},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				pt, _ := fakePartition(t)
				c.run(t, pt)
				if n := pt.c.Stats().RequestErrors; n != c.want {
					t.Errorf("RequestErrors = %d after %s, want %d", n, c.what, c.want)
				}
			})
		})
	}
}
