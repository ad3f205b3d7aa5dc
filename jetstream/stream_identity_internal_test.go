package jetstream

import (
	"context"
	"errors"
	"testing"

	natsjs "github.com/nats-io/nats.go/jetstream"
)

// TestClaimWithoutFloorChecksStream: a node that has not yet noticed that
// its stream was deleted and created anew claims a partition whose lease
// gives it no floor (none recorded yet, or one that another node wrote for
// the new stream, which it ignores), and finds the partition's consumer
// gone, or created in the new stream by a node started since. It must not
// consume the new stream as if it were the one Start read: its leases
// would record the new stream's floors as the old one's, and its dead
// letters' Nats-Msg-Id "<stream>-<created>-<seq>" would name the old
// stream's incarnation, so that the dead-letter stream's duplicate window
// drops the letter of the new stream's message n as a copy of the old
// stream's letter for n. It stops with ErrStreamRecreated, as a claimant
// with a floor does.
func TestClaimWithoutFloorChecksStream(t *testing.T) {
	for _, exists := range []bool{false, true} {
		name := "gone"
		if exists {
			name = "created in the new stream"
		}
		t.Run(name, func(t *testing.T) {
			pt, _ := fakePartition(t)
			js := &newStreamJS{}
			if exists {
				js.cfg = &natsjs.ConsumerConfig{DeliverPolicy: natsjs.DeliverAllPolicy}
			}
			pt.c.js = js
			if _, ok := pt.consumer(0); ok {
				t.Error("consumer bound or created in a stream other than the one Start read")
			}
			if cause := context.Cause(pt.c.ctx); !errors.Is(cause, ErrStreamRecreated) {
				t.Errorf("the consumer's cause = %v, want ErrStreamRecreated", cause)
			}
		})
	}
}
