package jetstream

import (
	"context"
	"testing"
	"time"

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
			_, ok := pt.consumer(0, false)
			stoppedWith(t, pt, ok, ErrStreamRecreated)
		})
	}
}

// flakyLookupJS is a storeJS whose first consumer lookup times out.
type flakyLookupJS struct {
	storeJS
	lookups int
}

func (js *flakyLookupJS) Consumer(ctx context.Context, stream, name string) (natsjs.Consumer, error) {
	js.mu.Lock()
	js.lookups++
	first := js.lookups == 1
	js.mu.Unlock()
	if first {
		return nil, context.DeadlineExceeded
	}
	return js.storeJS.Consumer(ctx, stream, name)
}

// TestClaimAfterFailedLookupCounted: a claimant with a floor whose lookup
// of the partition's consumer fails (a timeout) does not know whether the
// consumer is gone. It must not create it from the floor then: the
// creation would go uncounted in Stats.Recreated (an operator deleted the
// consumer while nobody held the partition, and the claimant created it
// anew), and skip the check that the stream is still the one whose
// sequence the floor is. It asks again, finds the consumer gone, and
// counts the consumer it creates.
func TestClaimAfterFailedLookupCounted(t *testing.T) {
	pt := claimCreates(t, &flakyLookupJS{}, 11)
	if n := pt.c.Stats().Recreated; n != 1 {
		t.Errorf("Recreated = %d after the claimant created the deleted consumer anew, want 1", n)
	}
}

// restoredJS is a storeJS whose stream, the one Start read (same creation
// time, as a stream restored from a backup on one server keeps it), ends
// at sequence 5.
type restoredJS struct {
	storeJS
}

type restoredStream struct {
	natsjs.Stream
}

func (restoredStream) CachedInfo() *natsjs.StreamInfo {
	return &natsjs.StreamInfo{Created: time.Unix(0, 0), State: natsjs.StreamState{LastSeq: 5}}
}

func (*restoredJS) Stream(context.Context, string) (natsjs.Stream, error) {
	return restoredStream{}, nil
}

// TestClaimFloorBeyondStreamEnd: a claimant finds the partition's consumer
// gone and the lease's floor (10) beyond the stream's last message (5): the
// stream was restored from a backup taken before messages 6 to 10, and
// keeps its creation time. Every message up to 5 was acknowledged (a
// backup holds a prefix of the stream), but the messages published since
// the restore are numbered 6 on: a consumer created from 11 would never
// deliver 6 to 10. It is created from 6.
func TestClaimFloorBeyondStreamEnd(t *testing.T) {
	claimCreates(t, &restoredJS{}, 6)
}

// claimCreates runs the claim of a partition whose lease's floor is 10 on
// js and checks that it created the consumer from want.
func claimCreates(t *testing.T, js interface {
	natsjs.JetStream
	created() *natsjs.ConsumerConfig
}, want uint64) *partition {
	t.Helper()
	pt, _ := fakePartition(t)
	pt.c.js = js
	if _, ok := pt.consumer(11, false); !ok {
		t.Fatal("consumer gave up")
	}
	if created := js.created(); created == nil || created.OptStartSeq != want {
		t.Fatalf("created %+v, want a consumer from %d", created, want)
	}
	return pt
}
