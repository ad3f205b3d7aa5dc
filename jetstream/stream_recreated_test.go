package jetstream_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/shoal-go/shoal/jetstream"
)

// TestStreamRecreatedWhileUnheld: the stream is deleted and created anew
// (same name, sequences from 1 again) while no node runs; the leases
// bucket keeps the floor that the last holder recorded, a sequence of the
// old stream. The next claimant must not create the partition's consumer
// after that floor: the new stream's first messages would never be
// delivered.
func TestStreamRecreatedWhileUnheld(t *testing.T) {
	s, js, spec, ck, n1 := streamHandledByN1(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n1.c.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := js.DeleteStream(ctx, "CHAT"); err != nil {
		t.Fatal(err)
	}
	createStream(t, js, spec)
	publish(t, js, 3, 6, 2) // sequences 1 to 6 of the new stream
	startNode(t, s.ClientURL(), "n2", ck.handle)
	eventually(t, 15*time.Second, "the new stream's messages handled", func() bool { return ck.count() == 21 })
	ck.verify(t, 3, 7)
}

// TestStreamRecreatedWhileHeld: the stream is deleted and created anew
// while a node consumes it. The node must not create the partition's
// consumer after its floor, a sequence of the old stream (the new
// stream's first messages would never be delivered): it stops with
// ErrStreamRecreated, and a node started anew consumes the new stream
// from its start.
func TestStreamRecreatedWhileHeld(t *testing.T) {
	s, js, spec, ck, n1 := streamHandledByN1(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := js.DeleteStream(ctx, "CHAT"); err != nil {
		t.Fatal(err)
	}
	createStream(t, js, spec)
	publish(t, js, 3, 6, 2) // sequences 1 to 6 of the new stream
	select {
	case <-n1.c.Done():
	case <-time.After(15 * time.Second):
		t.Fatalf("the node still runs on a stream created anew; handled %d", ck.count())
	}
	if err := n1.c.Err(); !errors.Is(err, jetstream.ErrStreamRecreated) {
		t.Fatalf("Err = %v, want ErrStreamRecreated", err)
	}
	startNode(t, s.ClientURL(), "n2", ck.handle)
	eventually(t, 20*time.Second, "the new stream's messages handled", func() bool { return ck.count() == 21 })
	ck.verify(t, 3, 7)
}

// TestStreamDeletedWhileHeld: the stream is deleted, and not created
// again, while a node consumes it: the server then answers the holder's
// questions about its consumer with "stream not found", not "consumer not
// found". The node must not ask for ever while its lease renews: once the
// stream has been missing for WithStreamMissingLimit it stops with
// ErrStreamDeleted.
func TestStreamDeletedWhileHeld(t *testing.T) {
	_, js, _, ck, n1 := streamHandledByN1(t, jetstream.WithStreamMissingLimit(time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := js.DeleteStream(ctx, "CHAT"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-n1.c.Done():
	case <-time.After(15 * time.Second):
		t.Fatalf("the node still runs 15 s after its stream was deleted, under a 1 s limit; handled %d", ck.count())
	}
	if err := n1.c.Err(); !errors.Is(err, jetstream.ErrStreamDeleted) {
		t.Fatalf("Err = %v, want ErrStreamDeleted", err)
	}
}

// streamHandledByN1 starts a server with a one-partition stream CHAT and a
// node n1 on it (with opts), and waits until n1 has handled and
// acknowledged 15 messages (3 rooms, 5 each).
func streamHandledByN1(t *testing.T, opts ...jetstream.Option) (*server.Server, natsjs.JetStream, jetstream.StreamSpec, *checker, *node) {
	t.Helper()
	s := startServer(t, "s1", nil, 0)
	_, js := connect(t, s.ClientURL())
	spec := jetstream.StreamSpec{Name: "CHAT", Partitions: 1}
	createStream(t, js, spec)
	ck := newChecker(t)
	n1 := startNode(t, s.ClientURL(), "n1", ck.handle, opts...)
	publish(t, js, 3, 1, 5)
	eventually(t, 20*time.Second, "first messages handled", func() bool { return ck.count() == 15 })
	eventually(t, 10*time.Second, "first messages acknowledged", func() bool { return n1.c.Stats().Acked == 15 })
	return s, js, spec, ck, n1
}

// TestBucketDeleted: the members or the leases bucket is deleted while a
// node runs. Nothing can hold a partition without them (the lease is lost
// at its next renewal and never claimed again), so the node must not run
// on with every partition stalled: it stops with ErrBucketDeleted. A node
// started anew creates the buckets again and handles what was published
// meanwhile.
func TestBucketDeleted(t *testing.T) {
	for _, bucket := range []string{"CHAT_shoal_members", "CHAT_shoal_leases"} {
		t.Run(bucket, func(t *testing.T) {
			s, js, _, ck, n1 := streamHandledByN1(t)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := js.DeleteKeyValue(ctx, bucket); err != nil {
				t.Fatal(err)
			}
			publish(t, js, 3, 6, 2)
			select {
			case <-n1.c.Done():
			case <-time.After(15 * time.Second):
				t.Fatalf("the node still runs 15 s after %s was deleted; handled %d", bucket, ck.count())
			}
			if err := n1.c.Err(); !errors.Is(err, jetstream.ErrBucketDeleted) {
				t.Fatalf("Err = %v, want ErrBucketDeleted", err)
			}
			if n := n1.c.Stats().LeaseErrors; n == 0 {
				t.Error("LeaseErrors = 0 after writes to a deleted bucket failed")
			}
			startNode(t, s.ClientURL(), "n2", ck.handle)
			eventually(t, 20*time.Second, "the messages published after the deletion handled", func() bool { return ck.count() == 21 })
			ck.verify(t, 3, 7)
		})
	}
}

// TestMemberKeyDeleted: a node's member key deleted under it (by an
// operator, or by the members bucket's TTL after a long partition) is not
// another node taking its name: the node joins again, creating the key,
// and goes on handling its stream; it does not stop with
// ErrDuplicateMember.
func TestMemberKeyDeleted(t *testing.T) {
	_, js, _, ck, n1 := streamHandledByN1(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, "CHAT_shoal_members")
	if err != nil {
		t.Fatal(err)
	}
	if err := kv.Delete(ctx, "n1"); err != nil {
		t.Fatal(err)
	}
	publish(t, js, 3, 6, 2)
	eventually(t, 10*time.Second, "the member key created again", func() bool {
		_, err := kv.Get(ctx, "n1")
		return err == nil
	})
	eventually(t, 10*time.Second, "the messages published after the deletion handled", func() bool { return ck.count() == 21 })
	select {
	case <-n1.c.Done():
		t.Fatalf("the node stopped: %v", n1.c.Err())
	default:
	}
	ck.verify(t, 3, 7)
}
