package jetstream_test

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/shoal-go/shoal/jetstream"
	"github.com/shoal-go/shoal/pool"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// eventually polls cond every 10 ms until it holds or d passes.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, what)
		}
		<-tick.C
	}
}

// freePorts returns n TCP ports on loopback that were free a moment ago.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, n)
	ls := make([]net.Listener, n)
	for i := range ls {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls[i] = l
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	for _, l := range ls {
		_ = l.Close()
	}
	return ports
}

// startServer runs one in-process JetStream server; clusterPorts, if any,
// are the route ports of all servers of its cluster, index its own.
func startServer(t testing.TB, name string, clusterPorts []int, index int) *server.Server {
	t.Helper()
	opts := &server.Options{
		ServerName: name,
		Host:       "127.0.0.1",
		Port:       -1,
		JetStream:  true,
		StoreDir:   t.TempDir(),
		NoLog:      true,
		NoSigs:     true,
	}
	if clusterPorts != nil {
		opts.Cluster = server.ClusterOpts{Name: "shoal", Host: "127.0.0.1", Port: clusterPorts[index]}
		for i, p := range clusterPorts {
			if i != index {
				opts.Routes = append(opts.Routes, &url.URL{Scheme: "nats", Host: "127.0.0.1:" + strconv.Itoa(p)})
			}
		}
	}
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatalf("server %s not ready", name)
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s
}

// startCluster runs an n-server JetStream cluster and waits for its meta
// leader.
func startCluster(t testing.TB, n int) []*server.Server {
	t.Helper()
	ports := freePorts(t, n)
	ss := make([]*server.Server, n)
	for i := range ss {
		ss[i] = startServer(t, fmt.Sprintf("s%d", i+1), ports, i)
	}
	eventually(t, 30*time.Second, "no JetStream meta leader", func() bool {
		for _, s := range ss {
			if s.JetStreamIsLeader() {
				return true
			}
		}
		return false
	})
	return ss
}

// urls joins the client URLs of servers.
func urls(ss ...*server.Server) string {
	u := make([]string, len(ss))
	for i, s := range ss {
		u[i] = s.ClientURL()
	}
	return strings.Join(u, ",")
}

// connect opens a connection that is closed at the end of the test.
func connect(t testing.TB, url string) (*nats.Conn, natsjs.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond),
		nats.DontRandomize(), nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := natsjs.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// createStream creates the partitioned stream, retrying while a new
// cluster is still electing its leaders.
func createStream(t testing.TB, js natsjs.JetStream, spec jetstream.StreamSpec) {
	t.Helper()
	var err error
	eventually(t, 30*time.Second, "create stream", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err = jetstream.CreateStream(ctx, js, spec)
		return err == nil
	})
}

// createDLQ creates the stream DLQ, which stores the dead letters of the
// stream CHAT (the default dead-letter subject shoal.dlq.CHAT.<room>).
func createDLQ(t testing.TB, js natsjs.JetStream) natsjs.Stream {
	t.Helper()
	dlq, err := js.CreateStream(context.Background(), natsjs.StreamConfig{Name: "DLQ", Subjects: []string{"shoal.dlq.CHAT.>"}})
	if err != nil {
		t.Fatal(err)
	}
	return dlq
}

// publish sends per messages to each of rooms rooms, "r<k>", numbered
// from first in each room, round-robin over the rooms.
func publish(t testing.TB, js natsjs.JetStream, rooms, first, per int) {
	t.Helper()
	for i := first; i < first+per; i++ {
		for k := range rooms {
			for {
				_, err := js.PublishAsync("rooms.r"+strconv.Itoa(k), []byte(strconv.Itoa(i)))
				if err == nil {
					break
				}
				select { // too many outstanding: wait for acks
				case <-js.PublishAsyncComplete():
				case <-time.After(60 * time.Second):
					t.Fatalf("publish: %v", err)
				}
			}
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(60 * time.Second):
		t.Fatal("publish acks did not arrive")
	}
}

// checker is a handler that checks per-room order: message i of a room must
// follow i-1. A message at or below the last one applied is a duplicate;
// one beyond the next is an error (a gap, or a reorder).
type checker struct {
	mu      sync.Mutex
	last    map[string]int
	applied int
	dups    int
	errs    []string
}

// newChecker returns a checker that logs its state if the test fails.
func newChecker(t testing.TB) *checker {
	ck := &checker{last: make(map[string]int)}
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(ck)
		}
	})
	return ck
}

func (ck *checker) handle(_ context.Context, m *jetstream.Msg) error {
	i, err := strconv.Atoi(string(m.Data))
	if err != nil {
		return pool.Permanent(err)
	}
	ck.mu.Lock()
	defer ck.mu.Unlock()
	last := ck.last[m.Room]
	switch {
	case i == last+1:
		ck.last[m.Room] = i
		ck.applied++
	case i <= last:
		ck.dups++
	default:
		if len(ck.errs) < 20 {
			ck.errs = append(ck.errs, fmt.Sprintf("room %s: message %d after %d (seq %d, delivery %d)", m.Room, i, last, m.Seq, m.Deliveries))
		}
	}
	return nil
}

func (ck *checker) String() string {
	ck.mu.Lock()
	defer ck.mu.Unlock()
	return fmt.Sprintf("applied %d, duplicates %d, errors %q", ck.applied, ck.dups, ck.errs)
}

func (ck *checker) count() int {
	ck.mu.Lock()
	defer ck.mu.Unlock()
	return ck.applied
}

// verify checks that every room reached per and nothing was out of order.
func (ck *checker) verify(t testing.TB, rooms, per int) {
	t.Helper()
	ck.mu.Lock()
	defer ck.mu.Unlock()
	for _, e := range ck.errs {
		t.Error(e)
	}
	for k := range rooms {
		if got := ck.last["r"+strconv.Itoa(k)]; got != per {
			t.Errorf("room r%d: last message %d, want %d", k, got, per)
		}
	}
}

// node is one shoal node of a test: its connection, pool and consumer.
type node struct {
	name   string
	nc     *nats.Conn
	pool   *pool.Pool[string]
	c      *jetstream.Consumer
	cancel context.CancelFunc
}

// startNode starts a consumer named name; it is stopped (killed if still
// running) and its pool closed at the end of the test.
func startNode(t testing.TB, url, name string, h jetstream.Handler, opts ...jetstream.Option) *node {
	t.Helper()
	p, err := pool.New[string]()
	if err != nil {
		t.Fatal(err)
	}
	n := launch(t, url, name, func(ctx context.Context, js natsjs.JetStream, opts []jetstream.Option) (*jetstream.Consumer, error) {
		return jetstream.Start(ctx, js, p, h, opts...)
	}, p.Close, opts)
	n.pool = p
	return n
}

// startBatchNode is startNode for a pool.Batcher made with BatchFunc(h).
func startBatchNode(t testing.TB, url, name string, h jetstream.BatchHandler, opts ...jetstream.Option) *node {
	t.Helper()
	b, err := pool.NewBatcher(jetstream.BatchFunc(h))
	if err != nil {
		t.Fatal(err)
	}
	return launch(t, url, name, func(ctx context.Context, js natsjs.JetStream, opts []jetstream.Option) (*jetstream.Consumer, error) {
		return jetstream.StartBatcher(ctx, js, b, opts...)
	}, b.Close, opts)
}

// launch connects to url and starts a consumer named name with start, with
// testTiming and opts; at the end of the test it is stopped (killed if
// still running) and closeFront closes its pool or Batcher.
func launch(t testing.TB, url, name string,
	start func(context.Context, natsjs.JetStream, []jetstream.Option) (*jetstream.Consumer, error),
	closeFront func(context.Context) error, opts []jetstream.Option) *node {
	t.Helper()
	nc, js := connect(t, url)
	ctx, cancel := context.WithCancel(context.Background())
	all := append([]jetstream.Option{
		jetstream.WithStream("CHAT"),
		jetstream.WithMember(name),
	}, testTiming...)
	c, err := start(ctx, js, append(all, opts...))
	if err != nil {
		cancel()
		_ = closeFront(context.Background())
		t.Fatalf("start %s: %v", name, err)
	}
	n := &node{name: name, nc: nc, c: c, cancel: cancel}
	t.Cleanup(func() {
		if t.Failed() {
			st := c.Stats()
			t.Logf("%s at the failure: %+v", name, st)
		}
		cancel()
		<-c.Done()
		ctx, done := context.WithTimeout(context.Background(), 10*time.Second)
		defer done()
		if err := closeFront(ctx); err != nil {
			t.Errorf("close the pool of %s: %v", name, err)
		}
	})
	return n
}

// kill stops the node as a crash would.
func (n *node) kill() {
	n.cancel()
	<-n.c.Done()
}

// testTiming are the short timings the tests run with: a dead node's
// partitions move after about TTL + ack wait = 2.5 s.
var testTiming = []jetstream.Option{
	jetstream.WithLeaseTTL(time.Second),
	jetstream.WithAckWait(1500 * time.Millisecond),
	jetstream.WithFetch(256, 250*time.Millisecond),
	jetstream.WithRetry(3, 5*time.Millisecond),
	jetstream.WithDrainTimeout(5 * time.Second),
}

// owners returns which node holds each partition, "" for none.
func owners(parts int, nodes ...*node) []string {
	o := make([]string, parts)
	for _, n := range nodes {
		for _, p := range n.c.Stats().Partitions {
			o[p.Partition] = n.name
		}
	}
	return o
}

// assigned reports whether the partitions are held as the member ring of
// nodes says, each by one node, none being released.
func assigned(t testing.TB, parts int, nodes ...*node) bool {
	t.Helper()
	names := make([]string, len(nodes))
	for i, n := range nodes {
		names[i] = n.name
	}
	want, err := jetstream.Assign(names, parts)
	if err != nil {
		t.Fatal(err)
	}
	return slices.Equal(owners(parts, nodes...), want) && settled(parts, nodes...)
}

// settled reports whether every partition is held by exactly one of nodes
// and none is being released.
func settled(parts int, nodes ...*node) bool {
	held := 0
	for _, n := range nodes {
		for _, p := range n.c.Stats().Partitions {
			if p.Releasing {
				return false
			}
			held++
		}
	}
	return held == parts
}

// nothingPending waits until no partition consumer of the stream CHAT has a
// message unacknowledged or not yet delivered.
func nothingPending(t testing.TB, js natsjs.JetStream, parts int) {
	t.Helper()
	ctx := context.Background()
	eventually(t, 10*time.Second, "nothing left pending", func() bool {
		for p := range parts {
			cons, err := js.Consumer(ctx, "CHAT", "shoal_CHAT_p"+strconv.Itoa(p))
			if err != nil {
				return false
			}
			info, err := cons.Info(ctx)
			if err != nil || info.NumAckPending != 0 || info.NumPending != 0 {
				return false
			}
		}
		return true
	})
}
