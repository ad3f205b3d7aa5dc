package jetstream

import (
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
)

// recvMsg is a fakeMsg that receive can read.
type recvMsg struct {
	fakeMsg
	subject string
}

func (m *recvMsg) Subject() string      { return m.subject }
func (m *recvMsg) Data() []byte         { return nil }
func (m *recvMsg) Headers() nats.Header { return nil }

// TestFloorNeverCoversReceived: while the fetch loop receives messages and
// their tasks acknowledge them one by one, the floor that a renewal computes
// at the same time never covers a message received and not yet
// acknowledged. A lease's Floor above such a message would have the next
// claimant, finding the consumer deleted, create it past the message: it
// would never be delivered again.
func TestFloorNeverCoversReceived(t *testing.T) {
	pt := testPartition(t, time.Hour)
	pt.settled.Store(true)
	var acked atomic.Uint64 // every sequence up to it may be acknowledged
	stop := make(chan struct{})
	bad := make(chan [2]uint64, 1)
	go func() {
		defer close(bad)
		for {
			select {
			case <-stop:
				return
			default:
			}
			f := pt.floor()
			if a := acked.Load(); f > a {
				bad <- [2]uint64{f, a}
				return
			}
			runtime.Gosched()
		}
	}()
	const n = 50000
	for s := uint64(1); s <= n; s++ {
		meta := &natsjs.MsgMetadata{
			Sequence:     natsjs.SequencePair{Consumer: s, Stream: s},
			NumDelivered: 1,
		}
		e := pt.receive(&recvMsg{subject: pt.prefix + "r"}, meta)
		if e == nil {
			t.Fatalf("receive(%d) = nil", s)
		}
		acked.Store(s) // from here on its task may settle it
		pt.ack(e)
		if s%1000 == 0 {
			select {
			case v, ok := <-bad:
				if ok {
					t.Fatalf("floor %d while message %d was received and unacknowledged", v[0], v[1]+1)
				}
			default:
			}
		}
	}
	close(stop)
	if v, ok := <-bad; ok {
		t.Fatalf("floor %d while message %d was received and unacknowledged", v[0], v[1]+1)
	}
}
