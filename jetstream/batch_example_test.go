package jetstream_test

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/shoal-go/shoal/jetstream"
	"github.com/shoal-go/shoal/pool"
)

// A node feeds a pool.Batcher: each room's queued messages are written in
// one call, and each message is acknowledged once its call succeeded.
func ExampleStartBatcher() {
	js, stop := exampleServer()
	defer stop()
	ctx := context.Background()
	if _, err := jetstream.CreateStream(ctx, js, jetstream.StreamSpec{Name: "CHAT", Partitions: 4}); err != nil {
		panic(err)
	}
	written := make(chan []string, 3)
	persist := func(ctx context.Context, room string, msgs []*jetstream.Msg) error {
		texts := make([]string, len(msgs))
		for i, m := range msgs {
			texts[i] = room + ": " + string(m.Data)
		}
		written <- texts // one write for the call's messages
		return nil
	}
	b, err := pool.NewBatcher(jetstream.BatchFunc(persist), pool.WithMaxBatch(64))
	if err != nil {
		panic(err)
	}
	defer func() { _ = b.Close(ctx) }()
	c, err := jetstream.StartBatcher(ctx, js, b, jetstream.WithStream("CHAT"), jetstream.WithMember("node-1"))
	if err != nil {
		panic(err)
	}
	defer func() { _ = c.Stop(ctx) }()
	for _, text := range []string{"hello", "how are you?", "bye"} {
		if _, err := js.Publish(ctx, "rooms.lobby", []byte(text)); err != nil {
			panic(err)
		}
	}
	var all []string // in one call or several, always in order
	for len(all) < 3 {
		all = append(all, <-written...)
	}
	fmt.Println(strings.Join(all, "\n"))
	// Output:
	// lobby: hello
	// lobby: how are you?
	// lobby: bye
}

// A BatchHandler writes a room's messages in one transaction; a message it
// cannot store fails the call for good, and the call's messages become dead
// letters.
func ExampleBatchHandler() {
	var store []string
	var h jetstream.BatchHandler = func(ctx context.Context, room string, msgs []*jetstream.Msg) error {
		tx := make([]string, 0, len(msgs))
		for _, m := range msgs {
			if len(m.Data) == 0 {
				return pool.Permanent(errors.New("empty message"))
			}
			tx = append(tx, fmt.Sprintf("%s#%d %s", room, m.Seq, m.Data))
		}
		store = append(store, tx...) // commit
		return nil
	}
	msgs := []*jetstream.Msg{{Room: "lobby", Seq: 7, Data: []byte("hi")}, {Room: "lobby", Seq: 9, Data: []byte("yo")}}
	fmt.Println(h(context.Background(), "lobby", msgs), store)
	fmt.Println(pool.IsPermanent(h(context.Background(), "lobby", []*jetstream.Msg{{Room: "lobby", Seq: 10}})))
	// Output:
	// <nil> [lobby#7 hi lobby#9 yo]
	// true
}

// The Batcher that StartBatcher feeds carries Deliveries, and its function
// is BatchFunc's: the consumer's bookkeeping travels with each message.
func ExampleDelivery() {
	var b *pool.Batcher[string, jetstream.Delivery]
	b, err := pool.NewBatcher(jetstream.BatchFunc(func(context.Context, string, []*jetstream.Msg) error { return nil }))
	if err != nil {
		panic(err)
	}
	fmt.Println(b.Close(context.Background()))
	// Output: <nil>
}
