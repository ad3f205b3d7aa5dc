package jetstream_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/shoal-go/shoal/jetstream"
)

// TestDeletedConsumerRecreated: an operator deletes a partition's durable
// consumer while its node holds the partition. The node creates it anew,
// starting after what it acknowledged: the later messages are handled, in
// order, nothing acknowledged is handled again, and Stats counts it.
func TestDeletedConsumerRecreated(t *testing.T) {
	s := startServer(t, "s1", nil, 0)
	_, js := connect(t, s.ClientURL())
	createStream(t, js, jetstream.StreamSpec{Name: "CHAT", Partitions: 1})
	ck := newChecker(t)
	// Messages before the node's start: the recreated consumer must not
	// replay them (the stream keeps them, limits retention).
	publish(t, js, 3, 1, 5)
	n := startNode(t, s.ClientURL(), "n1", ck.handle)
	eventually(t, 20*time.Second, "first messages handled", func() bool { return ck.count() == 15 })
	eventually(t, 10*time.Second, "first messages acknowledged", func() bool { return n.c.Stats().Acked == 15 })
	stream, err := js.Stream(context.Background(), "CHAT")
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.DeleteConsumer(context.Background(), "shoal_CHAT_p0"); err != nil {
		t.Fatal(err)
	}
	publish(t, js, 3, 6, 5)
	eventually(t, 30*time.Second, "later messages handled", func() bool { return ck.count() == 30 })
	ck.verify(t, 3, 10)
	eventually(t, 10*time.Second, "later messages acknowledged", func() bool { return n.c.Stats().Acked == 30 })
	st := n.c.Stats()
	if st.Recreated != 1 {
		t.Errorf("Recreated %d, want 1", st.Recreated)
	}
	if ck.dups != 0 || st.Handled != 30 {
		t.Errorf("duplicates %d, handled %d; want 0, 30", ck.dups, st.Handled)
	}
	nothingPending(t, js, 1)
	// The next owner binds the recreated consumer, which delivers from
	// its own start: the server refuses to change it.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.c.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	startNode(t, s.ClientURL(), "n2", ck.handle)
	publish(t, js, 3, 11, 5)
	eventually(t, 30*time.Second, "messages after the hand-off handled", func() bool { return ck.count() == 45 })
	ck.verify(t, 3, 15)
	if ck.dups != 0 {
		t.Errorf("duplicates %d after the hand-off, want 0", ck.dups)
	}
}

// TestDeletedConsumerRecreatedWhileHeld: the consumer is deleted while a
// handler holds a message of one room and later messages of that room
// wait behind it, other rooms going on. The recreated consumer starts at
// the held message: the other rooms' messages acknowledged above it are
// not handled again, the held ones are acknowledged to the new consumer,
// and nothing is left pending.
func TestDeletedConsumerRecreatedWhileHeld(t *testing.T) {
	s := startServer(t, "s1", nil, 0)
	_, js := connect(t, s.ClientURL())
	createStream(t, js, jetstream.StreamSpec{Name: "CHAT", Partitions: 1})
	ck := newChecker(t)
	block := make(chan struct{})
	var once sync.Once
	h := func(ctx context.Context, m *jetstream.Msg) error {
		if m.Room == "r0" && string(m.Data) == "3" {
			once.Do(func() { <-block })
		}
		return ck.handle(ctx, m)
	}
	n := startNode(t, s.ClientURL(), "n1", h)
	publish(t, js, 3, 1, 5)
	eventually(t, 20*time.Second, "rooms r1, r2 and r0's first two handled", func() bool { return ck.count() == 12 })
	stream, err := js.Stream(context.Background(), "CHAT")
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.DeleteConsumer(context.Background(), "shoal_CHAT_p0"); err != nil {
		t.Fatal(err)
	}
	publish(t, js, 3, 6, 5)
	eventually(t, 30*time.Second, "rooms r1 and r2 handled", func() bool { return ck.count() == 22 })
	close(block)
	eventually(t, 30*time.Second, "room r0 handled", func() bool { return ck.count() == 30 })
	ck.verify(t, 3, 10)
	nothingPending(t, js, 1)
	st := n.c.Stats()
	if st.Recreated != 1 || st.Handled != 30 || ck.dups != 0 {
		t.Errorf("recreated %d, handled %d, duplicates %d; want 1, 30, 0", st.Recreated, st.Handled, ck.dups)
	}
	if want := st.Handled + st.Duplicates; st.Acked != want {
		t.Errorf("acked %d, want handled + duplicates = %d", st.Acked, want)
	}
}

// TestConsumerDeletedWhileUnheld: the consumer is deleted while no node
// holds the partition (its holder left with Stop). The next owner creates
// it from the floor that the lease records, not from the stream's start.
func TestConsumerDeletedWhileUnheld(t *testing.T) {
	s := startServer(t, "s1", nil, 0)
	_, js := connect(t, s.ClientURL())
	createStream(t, js, jetstream.StreamSpec{Name: "CHAT", Partitions: 1})
	ck := newChecker(t)
	n1 := startNode(t, s.ClientURL(), "n1", ck.handle)
	publish(t, js, 3, 1, 5)
	eventually(t, 20*time.Second, "first messages handled", func() bool { return ck.count() == 15 })
	eventually(t, 10*time.Second, "first messages acknowledged", func() bool { return n1.c.Stats().Acked == 15 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n1.c.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	stream, err := js.Stream(ctx, "CHAT")
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.DeleteConsumer(ctx, "shoal_CHAT_p0"); err != nil {
		t.Fatal(err)
	}
	publish(t, js, 3, 6, 5)
	n2 := startNode(t, s.ClientURL(), "n2", ck.handle)
	eventually(t, 30*time.Second, "later messages handled", func() bool { return ck.count() == 30 })
	ck.verify(t, 3, 10)
	nothingPending(t, js, 1)
	if st := n2.c.Stats(); ck.dups != 0 || st.Handled != 15 || st.Recreated != 1 {
		t.Errorf("duplicates %d, handled by n2 %d, recreated by n2 %d; want 0, 15, 1", ck.dups, st.Handled, st.Recreated)
	}
}
