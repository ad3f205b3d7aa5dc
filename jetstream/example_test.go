package jetstream_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/shoal-go/shoal/jetstream"
	"github.com/shoal-go/shoal/pool"
)

// exampleServer starts an in-process JetStream server and connects to it;
// against a real cluster, only the URL given to nats.Connect changes.
func exampleServer() (natsjs.JetStream, func()) {
	dir, err := os.MkdirTemp("", "shoal-example")
	if err != nil {
		panic(err)
	}
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true})
	if err != nil {
		panic(err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		panic("server not ready")
	}
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		panic(err)
	}
	js, err := natsjs.New(nc)
	if err != nil {
		panic(err)
	}
	return js, func() {
		nc.Close()
		s.Shutdown()
		s.WaitForShutdown()
		_ = os.RemoveAll(dir)
	}
}

// A node runs a Consumer beside its pool: messages of each room are
// handled in order, one at a time, and acknowledged after their handler.
func ExampleConsumer() {
	js, stop := exampleServer()
	defer stop()
	ctx := context.Background()
	if _, err := jetstream.CreateStream(ctx, js, jetstream.StreamSpec{Name: "CHAT", Partitions: 4}); err != nil {
		panic(err)
	}
	p, err := pool.New[string]()
	if err != nil {
		panic(err)
	}
	defer func() { _ = p.Close(ctx) }()

	got := make(chan string, 3)
	handle := func(ctx context.Context, m *jetstream.Msg) error {
		got <- m.Room + ": " + string(m.Data)
		return nil
	}
	c, err := jetstream.Start(ctx, js, p, handle, jetstream.WithStream("CHAT"), jetstream.WithMember("node-1"))
	if err != nil {
		panic(err)
	}
	for _, text := range []string{"hello", "how are you?", "bye"} {
		if _, err := js.Publish(ctx, "rooms.lobby", []byte(text)); err != nil {
			panic(err)
		}
	}
	for range 3 {
		fmt.Println(<-got)
	}
	if err := c.Stop(ctx); err != nil {
		panic(err)
	}
	fmt.Println("partitions released:", c.Stats().Released)
	// Output:
	// lobby: hello
	// lobby: how are you?
	// lobby: bye
	// partitions released: 4
}

// CreateStream makes a stream whose subject transform partitions rooms; Start
// reads the partition count back from it.
func ExampleStreamSpec() {
	js, stop := exampleServer()
	defer stop()
	s, err := jetstream.CreateStream(context.Background(), js, jetstream.StreamSpec{
		Name:       "CHAT",
		Subject:    "rooms",
		Partitions: 16,
		Replicas:   1, // 3 on a cluster that must survive the loss of a server
	})
	if err != nil {
		panic(err)
	}
	t := s.CachedInfo().Config.SubjectTransform
	fmt.Println(t.Source, "->", t.Destination)
	// Output: rooms.* -> rooms.{{partition(16,1)}}.{{wildcard(1)}}
}

// Assign shows which member each partition goes to; a new member takes only
// its share.
func ExampleAssign() {
	before, _ := jetstream.Assign([]string{"a", "b"}, 64)
	after, _ := jetstream.Assign([]string{"a", "b", "c"}, 64)
	moved, toC := 0, 0
	for p := range before {
		if before[p] != after[p] {
			moved++
			if after[p] == "c" {
				toC++
			}
		}
	}
	fmt.Println(moved == toC, moved > 10 && moved < 32)
	// Output: true true
}

// PartitionSubject is for publishers that partition on their side.
func ExamplePartitionSubject() {
	subj := jetstream.PartitionSubject("rooms", "lobby", 8)
	fmt.Println(len(subj) > len("rooms..lobby"), subj[len(subj)-len("lobby"):])
	// Output: true lobby
}

// A Handler returns nil to acknowledge, an error to retry in place, or an
// error wrapped with pool.Permanent to dead-letter the message at once.
func ExampleHandler() {
	var h jetstream.Handler = func(ctx context.Context, m *jetstream.Msg) error {
		if len(m.Data) == 0 {
			return pool.Permanent(errors.New("empty message"))
		}
		// m.Deliveries > 1: an earlier delivery was not acknowledged, and
		// may have been applied already; m.Seq tells which message it was.
		return nil
	}
	fmt.Println(pool.IsPermanent(h(context.Background(), &jetstream.Msg{Room: "lobby"})))
	// Output: true
}

// Msg carries what a handler needs to stay idempotent: the stream sequence,
// the delivery count and the lease epoch.
func ExampleMsg() {
	m := jetstream.Msg{Room: "lobby", Seq: 42, Deliveries: 2, Partition: 3, Epoch: 7}
	fmt.Printf("%s #%d, delivery %d, partition %d at epoch %d\n", m.Room, m.Seq, m.Deliveries, m.Partition, m.Epoch)
	// Output: lobby #42, delivery 2, partition 3 at epoch 7
}

// A Dedup records each room's last applied sequence; a message at or below
// it is a duplicate.
func ExampleDedup() {
	var d jetstream.Dedup = &jetstream.MemoryDedup{}
	ctx := context.Background()
	_ = d.Record(ctx, "lobby", 10)
	last, _ := d.LastApplied(ctx, "lobby")
	fmt.Println(last, 9 <= last, 11 <= last)
	// Output: 10 true false
}

// MemoryDedup's zero value is ready; pass it to Start with WithDedup.
func ExampleMemoryDedup() {
	d := &jetstream.MemoryDedup{}
	ctx := context.Background()
	_ = d.Record(ctx, "lobby", 5)
	_ = d.Record(ctx, "lobby", 3) // lower: ignored
	last, _ := d.LastApplied(ctx, "lobby")
	fmt.Println(last)
	// Output: 5
}

// KVDedup keeps the records in a bucket that every node sees.
func ExampleKVDedup() {
	js, stop := exampleServer()
	defer stop()
	ctx := context.Background()
	kv, err := js.CreateKeyValue(ctx, natsjs.KeyValueConfig{Bucket: "applied"})
	if err != nil {
		panic(err)
	}
	d, err := jetstream.NewKVDedup(kv)
	if err != nil {
		panic(err)
	}
	_ = d.Record(ctx, "lobby", 7)
	last, _ := d.LastApplied(ctx, "lobby")
	fmt.Println(last)
	// Output: 7
}

// Options configure Start; every node of a cluster must agree on the lease
// TTL.
func ExampleOption() {
	opts := []jetstream.Option{
		jetstream.WithStream("CHAT"),
		jetstream.WithMember("node-1"),
		jetstream.WithLeaseTTL(5 * time.Second),
		jetstream.WithAckWait(10 * time.Second),
		jetstream.WithRetry(3, 100*time.Millisecond),
		jetstream.WithDeadLetterSubject("dlq.chat"),
		jetstream.WithDedup(&jetstream.MemoryDedup{}),
	}
	fmt.Println(len(opts), "options")
	// Output: 7 options
}

// Stats gives the partitions held, with their lag, and the counters.
func ExampleStats() {
	js, stop := exampleServer()
	defer stop()
	ctx := context.Background()
	if _, err := jetstream.CreateStream(ctx, js, jetstream.StreamSpec{Name: "CHAT", Partitions: 2}); err != nil {
		panic(err)
	}
	p, _ := pool.New[string]()
	defer func() { _ = p.Close(ctx) }()
	done := make(chan struct{}, 1)
	c, err := jetstream.Start(ctx, js, p, func(context.Context, *jetstream.Msg) error { done <- struct{}{}; return nil },
		jetstream.WithStream("CHAT"), jetstream.WithMember("node-1"))
	if err != nil {
		panic(err)
	}
	if _, err := js.Publish(ctx, "rooms.lobby", []byte("hi")); err != nil {
		panic(err)
	}
	<-done
	if err := c.Stop(ctx); err != nil { // drains: the message is acknowledged
		panic(err)
	}
	s := c.Stats()
	fmt.Println(s.Member, s.Delivered, "delivered,", s.Acked, "acked,", s.Acquired, "acquired,", s.Released, "released")
	// Output:
	// node-1 1 delivered, 1 acked, 2 acquired, 2 released
}

// PartitionStats describes one held partition.
func ExamplePartitionStats() {
	ps := jetstream.PartitionStats{Partition: 3, Epoch: 12, Held: 5, Lag: 100}
	fmt.Printf("partition %d (epoch %d): %d held, %d behind\n", ps.Partition, ps.Epoch, ps.Held, ps.Lag)
	// Output: partition 3 (epoch 12): 5 held, 100 behind
}

// A dead letter's Reason is in its Shoal-Reason header.
func ExampleReason() {
	h := nats.Header{}
	h.Set(jetstream.HeaderReason, string(jetstream.ReasonPanicked))
	fmt.Println(jetstream.Reason(h.Get(jetstream.HeaderReason)) == jetstream.ReasonPanicked)
	// Output: true
}
