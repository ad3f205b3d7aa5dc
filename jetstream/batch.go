package jetstream

import (
	"context"

	"github.com/shoal-go/shoal/pool"
)

// BatchHandler handles the queued messages of one room in one call, in
// stream order (a room's backlog persisted in one write). It runs in the
// local pool.Batcher, never at the same time as another call for the same
// room on this node. A nil error acknowledges every message of the call; an
// error fails the whole call, which is retried in place with the same
// messages (WithRetry) unless the error is wrapped with pool.Permanent;
// after the last attempt, or on a panic, every message of the call goes to
// the dead letters with the call's error.
//
// ctx and the order and delivery guarantees are those of Handler: a call may
// be repeated after a hand-off for messages its node did not acknowledge.
// msgs and the messages are the consumer's and must not be retained after
// the handler returns.
type BatchHandler func(ctx context.Context, room string, msgs []*Msg) error

// Delivery is a received message on its way through a pool.Batcher fed by
// StartBatcher. It is opaque: the Batcher's function must be one made by
// BatchFunc, which handles, acknowledges or dead-letters each Delivery.
type Delivery struct {
	e *entry
}

// BatchFunc returns the function of the pool.Batcher that StartBatcher
// feeds: it hands each room's queued messages to h, retries a failed call
// in place, then acknowledges each message (or publishes each as a dead
// letter). It never returns an error to the Batcher, so the Batcher's own
// retry policy and dead letters do not apply to these messages.
//
// A message that its node can no longer act on (the partition's lease was
// lost meanwhile), that exceeds WithMaxDeliveries, or that the Dedup says
// was applied already is left out of the call, as Start's consumer leaves
// it out of the handler.
//
// BatchFunc(nil) returns nil, which pool.NewBatcher refuses, as Start
// refuses a nil Handler.
func BatchFunc(h BatchHandler) pool.BatchFunc[string, Delivery] {
	if h == nil {
		return nil
	}
	return func(_ context.Context, room string, ds []Delivery) error {
		runBatch(h, room, ds)
		return nil
	}
}

// runBatch handles one call's deliveries, in stream order. They belong to
// one room, hence to one partition of each consumer that feeds the Batcher
// (a Batcher fed by consumers of two streams groups both streams' messages
// by room name): each run of one partition's messages is handed to h in a
// call of its own. Deliveries of a partition instance that was fenced (an
// earlier tenure of this node) are left for the next owner, as a single
// message's task leaves them.
//
// A message past WithMaxDeliveries becomes a dead letter in admit, which
// records its sequence in the Dedup, and a Dedup's record covers every
// earlier sequence of the room: the messages admitted before it are
// handed to h first, in a call of their own.
func runBatch(h BatchHandler, room string, ds []Delivery) {
	var pt *partition
	es := make([]*entry, 0, len(ds))
	for _, d := range ds {
		e := d.e
		if len(es) > 0 && (e.pt != pt || e.m.Deliveries > uint64(e.pt.c.cfg.maxDeliveries)) {
			callBatch(h, room, pt, es)
			es = es[:0]
		}
		if !e.pt.admit(e) {
			e.pt.done(e)
			continue
		}
		if len(es) == 0 {
			pt = e.pt
		}
		es = append(es, e)
	}
	if len(es) > 0 {
		callBatch(h, room, pt, es)
	}
}

// callBatch hands es, admitted messages of pt's room in stream order, to
// h in one call (retried in place), settles them and marks them done.
func callBatch(h BatchHandler, room string, pt *partition, es []*entry) {
	defer func() {
		for _, e := range es {
			pt.done(e)
		}
	}()
	msgs := make([]*Msg, len(es))
	attempts, reason, err := pt.handle(func() error {
		// Fresh copies for each attempt: the handler must not change
		// our bookkeeping.
		for i, e := range es {
			m := e.m
			msgs[i] = &m
		}
		return h(pt.ctx, room, msgs)
	})
	pt.finishHandled(es, attempts, reason, err)
}
