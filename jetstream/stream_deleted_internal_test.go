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
