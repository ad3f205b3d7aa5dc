package jetstream

import (
	"context"
	"errors"
	"testing"

	natsjs "github.com/nats-io/nats.go/jetstream"
)

// refusingJS is a JetStream whose server has no consumer and refuses to
// create one.
type refusingJS struct {
	natsjs.JetStream
}

var errRefused = errors.New("consumer creation refused")

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
