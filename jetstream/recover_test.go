package jetstream_test

import (
	"context"
	"sync"
	"testing"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/shoal-go/shoal/jetstream"
)

// TestLateLeftover: a message left unacknowledged by an earlier holder can
// come back later than one ack wait after the new owner claimed the
// partition: the server processed the old owner's InProgress late, or ran
// its redelivery timer late. Here the old holder is a plain pull that keeps
// the room's first message alive past the new owner's pause. The new owner
// must not run the room's later messages first: it pulls until the server
// counts no unacknowledged message outside its hands, then runs them all in
// stream order.
func TestLateLeftover(t *testing.T) {
	s := startServer(t, "s1", nil, 0)
	_, js := connect(t, s.ClientURL())
	createStream(t, js, jetstream.StreamSpec{Name: "CHAT", Partitions: 1})
	ctx := context.Background()
	// The partition consumer as Start configures it, with testTiming's ack
	// wait.
	cons, err := js.CreateOrUpdateConsumer(ctx, "CHAT", natsjs.ConsumerConfig{
		Durable:       "shoal_CHAT_p0",
		Description:   "shoal partition 0",
		FilterSubject: "rooms.0.*",
		AckPolicy:     natsjs.AckExplicitPolicy,
		AckWait:       1500 * time.Millisecond,
		MaxAckPending: 1024,
		MaxDeliver:    -1,
		DeliverPolicy: natsjs.DeliverAllPolicy,
	})
	if err != nil {
		t.Fatal(err)
	}
	publish(t, js, 1, 1, 1)
	batch, err := cons.Fetch(1, natsjs.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var first natsjs.Msg
	for m := range batch.Messages() {
		first = m
	}
	if first == nil {
		t.Fatalf("the old holder got no message: %v", batch.Error())
	}
	publish(t, js, 1, 2, 4)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				_ = first.InProgress()
			}
		}
	})
	ck := newChecker(t)
	n := startNode(t, s.ClientURL(), "n1", ck.handle)
	// The node claims the partition, pauses one ack wait, and pulls the
	// room's later messages while the first is still held elsewhere.
	eventually(t, 10*time.Second, "the node pulled messages 2 to 5", func() bool {
		return n.c.Stats().Delivered >= 4
	})
	close(stop)
	wg.Wait()
	released := time.Now()
	eventually(t, 30*time.Second, "messages handled", func() bool { return ck.count() == 5 })
	ck.verify(t, 1, 5)
	st := n.c.Stats()
	if st.Redelivered != 1 || ck.dups != 0 {
		t.Errorf("redelivered %d, duplicates %d; want 1, 0", st.Redelivered, ck.dups)
	}
	t.Logf("room handled %v after the old holder let go", time.Since(released))
}
