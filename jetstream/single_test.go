package jetstream_test

import (
	"context"
	"testing"
	"time"

	"github.com/shoal-go/shoal/jetstream"
)

// TestSingleServer runs one node on one server: every message handled once,
// in order per room, acknowledged, and the node holds every partition.
func TestSingleServer(t *testing.T) {
	s := startServer(t, "s1", nil, 0)
	_, js := connect(t, s.ClientURL())
	const parts, rooms, per = 8, 100, 50
	createStream(t, js, jetstream.StreamSpec{Name: "CHAT", Partitions: parts})
	ck := newChecker(t)
	n := startNode(t, s.ClientURL(), "n1", ck.handle)
	publish(t, js, rooms, 1, per)
	eventually(t, 60*time.Second, "messages handled", func() bool { return ck.count() == rooms*per })
	ck.verify(t, rooms, per)
	eventually(t, 10*time.Second, "acks counted", func() bool { return n.c.Stats().Acked == rooms*per })
	st := n.c.Stats()
	if len(st.Partitions) != parts || st.Acquired != parts {
		t.Errorf("holds %d partitions, acquired %d; want %d", len(st.Partitions), st.Acquired, parts)
	}
	if st.Redelivered != 0 || ck.dups != 0 {
		t.Errorf("redelivered %d, duplicates %d; want 0", st.Redelivered, ck.dups)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.c.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if st := n.c.Stats(); st.Released != parts {
		t.Errorf("released %d leases, want %d", st.Released, parts)
	}
}
