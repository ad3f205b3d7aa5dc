package jetstream_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/shoal-go/shoal/jetstream"
)

// BenchmarkThroughput measures messages per second end to end (pull,
// handle, acknowledge) through shoal nodes (a pool.Pool, or a pool.Batcher
// that hands a room's queued messages to one call), side by side with a
// plain loop that pulls each partition and acknowledges each message
// itself, on the same partitioned stream with the same partitions per
// connection: the floor that JetStream sets. Shoal runs with its default
// timings. The messages
// (b.N, over up to 1,000 rooms) are published before the timer starts;
// with several shoal nodes, the rate counts from when they have divided the
// partitions among them.
//
//	go test -run '^$' -bench Throughput -benchtime 100000x ./...
func BenchmarkThroughput(b *testing.B) {
	const parts = 12
	for _, layout := range []struct {
		name     string
		servers  int
		replicas int
		nodes    int
	}{
		{"R1-1node", 1, 1, 1},
		{"R3-3nodes", 3, 3, 3},
	} {
		for _, mode := range []string{"plain", "shoal", "batcher"} {
			b.Run(layout.name+"/"+mode, func(b *testing.B) {
				var ss []*server.Server
				if layout.servers == 1 {
					ss = []*server.Server{startServer(b, "s1", nil, 0)}
				} else {
					ss = startCluster(b, layout.servers)
				}
				_, js := connect(b, urls(ss...))
				createStream(b, js, jetstream.StreamSpec{Name: "CHAT", Partitions: parts, Replicas: layout.replicas})
				rooms := min(1000, b.N)
				per := max(1, b.N/rooms)
				total := rooms * per
				publish(b, js, rooms, 1, per)
				var handled atomic.Int64
				done := make(chan struct{})
				count := func() {
					if handled.Add(1) == int64(total) {
						close(done)
					}
				}
				b.ResetTimer()
				start, before := time.Now(), int64(0)
				var nodes []*node
				if mode == "plain" {
					stop := plainLoop(b, ss, layout.nodes, parts, count)
					defer stop()
				} else {
					h := func(context.Context, *jetstream.Msg) error { count(); return nil }
					bh := func(_ context.Context, _ string, msgs []*jetstream.Msg) error {
						for range msgs {
							count()
						}
						return nil
					}
					for i := range layout.nodes {
						order := append(slices.Clone(ss[i%len(ss):]), ss[:i%len(ss)]...)
						name := fmt.Sprintf("n%d", i+1)
						if mode == "shoal" {
							nodes = append(nodes, startNode(b, urls(order...), name, h, benchTiming...))
						} else {
							nodes = append(nodes, startBatchNode(b, urls(order...), name, bh, benchTiming...))
						}
					}
					// Nodes that join one after the other first hand
					// partitions over to each other; the rate is measured
					// from when the assignment has settled.
					eventually(b, time.Minute, "partitions assigned", func() bool { return assigned(b, parts, nodes...) })
					start, before = time.Now(), handled.Load()
				}
				select {
				case <-done:
				case <-time.After(5 * time.Minute):
					b.Fatalf("%d of %d messages after 5 minutes", handled.Load(), total)
				}
				elapsed := time.Since(start)
				b.StopTimer()
				b.ReportMetric(float64(int64(total)-before)/elapsed.Seconds(), "msgs/s")
				for _, n := range nodes {
					st := n.c.Stats()
					b.Logf("%s: delivered %d, redelivered %d, resyncs %d, refusals %d, leases lost %d",
						n.name, st.Delivered, st.Redelivered, st.Resyncs, st.Refusals, st.Lost)
				}
				b.ReportMetric(0, "ns/op")
			})
		}
	}
}

// benchTiming restores the defaults that testTiming shortens: the
// throughput figures are for a consumer as shipped (a lease TTL of 1 s
// renews 4 leases a second per partition, each a replicated write that the
// servers on the same 2 cores pay for).
var benchTiming = []jetstream.Option{
	jetstream.WithLeaseTTL(5 * time.Second),
	jetstream.WithAckWait(10 * time.Second),
	jetstream.WithFetch(256, time.Second),
	jetstream.WithRetry(3, 100*time.Millisecond),
	jetstream.WithDrainTimeout(30 * time.Second),
}

// plainLoop consumes every partition with its own durable pull consumer,
// acknowledging each message after calling handle, on nodes connections
// (each preferring the server a shoal node of the same index prefers). The
// partitions are dealt to the connections as Assign deals them to shoal
// nodes n1, n2, ..., so that both sides carry the same load per
// connection. It returns a function that stops it.
func plainLoop(b *testing.B, ss []*server.Server, nodes, parts int, handle func()) func() {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	names := make([]string, nodes)
	for i := range names {
		names[i] = fmt.Sprintf("n%d", i+1)
	}
	owner, err := jetstream.Assign(names, parts)
	if err != nil {
		b.Fatal(err)
	}
	for i := range nodes {
		order := append(slices.Clone(ss[i%len(ss):]), ss[:i%len(ss)]...)
		_, js := connect(b, urls(order...))
		for p := range parts {
			if owner[p] != names[i] {
				continue
			}
			cons, err := js.CreateOrUpdateConsumer(ctx, "CHAT", natsjs.ConsumerConfig{
				Durable:       "plain_p" + strconv.Itoa(p),
				FilterSubject: "rooms." + strconv.Itoa(p) + ".*",
				AckPolicy:     natsjs.AckExplicitPolicy,
				MaxAckPending: 1024,
			})
			if err != nil {
				b.Fatal(err)
			}
			wg.Go(func() {
				for ctx.Err() == nil {
					batch, err := cons.Fetch(256, natsjs.FetchMaxWait(time.Second))
					if err != nil {
						continue
					}
					for msg := range batch.Messages() {
						handle()
						_ = msg.Ack()
					}
				}
			})
		}
	}
	return func() {
		cancel()
		wg.Wait()
	}
}

// BenchmarkHandoff kills a node that holds messages (its context cancelled,
// no drain) among three on one server, 12 partitions, with the tests'
// timings (lease TTL 1 s, ack wait 1.5 s), and reports how long after the
// kill the survivors held every partition (claim-s: about one TTL) and
// handled every message, the victim's and those published after the kill
// included (handled-s: the claim, one ack wait of recovery, the rest).
//
//	go test -run '^$' -bench Handoff -benchtime 1x -count 5 .
func BenchmarkHandoff(b *testing.B) {
	var claim, handled time.Duration
	for range b.N {
		_, c, h, _ := failover(b, func(n *node) { n.kill() })
		claim += c
		handled += h
	}
	b.ReportMetric(claim.Seconds()/float64(b.N), "claim-s")
	b.ReportMetric(handled.Seconds()/float64(b.N), "handled-s")
	b.ReportMetric(0, "ns/op")
}
