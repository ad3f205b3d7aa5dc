package jetstream_test

import (
	"context"
	"errors"
	"flag"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/shoal-go/shoal/jetstream"
)

// Message counts of the cluster test. The full-size run is 100,000
// messages over 1,000 rooms; the suite runs 30,000 over 1,000 rooms to stay
// within its time budget under the race detector on 2 cores (CLUSTER.md
// gives a 100,000-message run).
const (
	clusterParts = 12
	clusterRooms = 1000
)

// clusterPer is the messages per room of TestClusterR3: 30 (30,000 messages)
// unless -cluster-per says otherwise; -cluster-per=100 is the full size:
//
//	go test -race -run TestClusterR3 . -args -cluster-per=100
var clusterPer = flag.Int("cluster-per", 30, "messages per room in TestClusterR3")

// clusterTiming are the timings of the tests on a three-server cluster:
// replicated writes under the race detector on 2 cores can take hundreds
// of milliseconds, so leases last longer there. Under that load leases
// still run out dozens of times in a run, and each hand-off delivers the
// messages its old owner held once more: a message can be delivered more
// often than the default WithMaxDeliveries (5) allows without being a
// poison message, and these tests have no dead-letter stream.
var clusterTiming = []jetstream.Option{
	jetstream.WithLeaseTTL(3 * time.Second),
	jetstream.WithAckWait(3 * time.Second),
	jetstream.WithMaxDeliveries(1000),
}

// TestClusterR3 runs three shoal nodes on a three-server JetStream cluster
// with an R3 stream: every message handled, none lost, rooms in order, and
// the partitions divided among the nodes as the member ring says.
func TestClusterR3(t *testing.T) {
	ss := startCluster(t, 3)
	_, js := connect(t, urls(ss...))
	createStream(t, js, jetstream.StreamSpec{Name: "CHAT", Partitions: clusterParts, Replicas: 3})
	ck := newChecker(t)
	dd := &jetstream.MemoryDedup{}
	var nodes []*node
	for i, name := range []string{"n1", "n2", "n3"} {
		// Each node prefers a different server.
		order := append(slices.Clone(ss[i:]), ss[:i]...)
		nodes = append(nodes, startNode(t, urls(order...), name, ck.handle, append(clusterTiming, jetstream.WithDedup(dd))...))
	}
	eventually(t, 30*time.Second, "partitions assigned as the ring says", func() bool {
		return assigned(t, clusterParts, nodes...)
	})
	start := time.Now()
	per := *clusterPer
	publish(t, js, clusterRooms, 1, per)
	eventually(t, 120*time.Second, "messages handled", func() bool { return ck.count() == clusterRooms*per })
	t.Logf("%d messages through 3 nodes on an R3 stream in %v (publishing included)", clusterRooms*per, time.Since(start))
	ck.verify(t, clusterRooms, per)
	if ck.dups != 0 {
		t.Errorf("%d duplicates reached the handler", ck.dups)
	}
	var lost, resyncs, redelivered, dups uint64
	for _, n := range nodes {
		st := n.c.Stats()
		lost, resyncs, redelivered, dups = lost+st.Lost, resyncs+st.Resyncs, redelivered+st.Redelivered, dups+st.Duplicates
	}
	t.Logf("leases lost %d, resyncs %d, redelivered %d, duplicates dropped %d", lost, resyncs, redelivered, dups)
}

// failover kills a node with kill while it holds messages: its handler
// blocks on every message once the first messages were handled, until its
// context is cancelled. It then checks that nothing was lost, no room went
// out of order, the survivors took every partition within the bound of one
// lease TTL plus one ack wait (plus scheduling slack), and the messages held
// by the victim were redelivered.
func failover(t testing.TB, kill func(n *node)) (survivors []*node, handoff, drained time.Duration, ck *checker) {
	s := startServer(t, "s1", nil, 0)
	_, js := connect(t, s.ClientURL())
	const parts, rooms, per = 12, 200, 40
	createStream(t, js, jetstream.StreamSpec{Name: "CHAT", Partitions: parts})
	ck = newChecker(t)
	dd := &jetstream.MemoryDedup{}
	var stall atomic.Bool
	stalling := func(ctx context.Context, m *jetstream.Msg) error {
		if stall.Load() {
			<-ctx.Done()
			return ctx.Err()
		}
		return ck.handle(ctx, m)
	}
	n1 := startNode(t, s.ClientURL(), "n1", ck.handle, jetstream.WithDedup(dd))
	victim := startNode(t, s.ClientURL(), "n2", stalling, jetstream.WithDedup(dd))
	n3 := startNode(t, s.ClientURL(), "n3", ck.handle, jetstream.WithDedup(dd))
	survivors = []*node{n1, n3}
	eventually(t, 30*time.Second, "partitions assigned", func() bool { return assigned(t, parts, n1, victim, n3) })
	publish(t, js, rooms, 1, per/4)
	eventually(t, 30*time.Second, "first messages handled", func() bool { return ck.count() >= rooms*per/8 })
	stall.Store(true)
	publish(t, js, rooms, per/4+1, per/4)
	held := 0
	eventually(t, 30*time.Second, "the victim holds messages", func() bool {
		held = 0
		for _, p := range victim.c.Stats().Partitions {
			held += p.Held
		}
		return held > 0
	})
	killed := time.Now()
	kill(victim)
	publish(t, js, rooms, per/2+1, per/2)
	eventually(t, 30*time.Second, "survivors hold every partition", func() bool {
		return assigned(t, parts, survivors...)
	})
	handoff = time.Since(killed)
	eventually(t, 60*time.Second, "messages handled", func() bool { return ck.count() == rooms*per })
	drained = time.Since(killed)
	ck.verify(t, rooms, per)
	bound := time.Second + 1500*time.Millisecond // lease TTL + ack wait of testTiming
	if handoff > bound+5*time.Second {
		t.Errorf("hand-off took %v, bound %v", handoff, bound)
	}
	var dups, redelivered uint64
	for _, n := range survivors {
		dups += n.c.Stats().Duplicates
		redelivered += n.c.Stats().Redelivered
	}
	if redelivered == 0 {
		t.Errorf("the victim held %d messages at the kill, and none was redelivered", held)
	}
	t.Logf("victim held %d messages; partitions claimed %v after the kill, every message handled after %v; redelivered %d; duplicates dropped by the dedup: %d, reaching the handler: %d",
		held, handoff, drained, redelivered, dups, ck.dups)
	return survivors, handoff, drained, ck
}

// TestKillNodeContext kills a node by cancelling its context: no drain, no
// release; its partitions move when their leases run out.
func TestKillNodeContext(t *testing.T) {
	failover(t, func(n *node) {
		n.kill()
		if err := n.c.Err(); !errors.Is(err, context.Canceled) {
			t.Errorf("killed node's Err = %v, want context.Canceled", err)
		}
	})
}

// TestKillNodeConnection drops a node's NATS connection: the node can renew
// nothing, fences its partitions when their leases run out, and stops with
// the connection's error.
func TestKillNodeConnection(t *testing.T) {
	var victim *node
	failover(t, func(n *node) {
		victim = n
		n.nc.Close()
	})
	eventually(t, 10*time.Second, "the node stops", func() bool {
		select {
		case <-victim.c.Done():
			return true
		default:
			return false
		}
	})
	if err := victim.c.Err(); !errors.Is(err, nats.ErrConnectionClosed) {
		t.Errorf("Err = %v, want nats.ErrConnectionClosed", err)
	}
}

// TestAddNode adds a node mid-stream: exactly the partitions that the ring
// gives to the new node move, each handed over gracefully (no redelivery),
// and order holds.
func TestAddNode(t *testing.T) {
	s := startServer(t, "s1", nil, 0)
	_, js := connect(t, s.ClientURL())
	const parts, rooms, per = 24, 200, 40
	createStream(t, js, jetstream.StreamSpec{Name: "CHAT", Partitions: parts})
	ck := newChecker(t)
	n1 := startNode(t, s.ClientURL(), "n1", ck.handle)
	n2 := startNode(t, s.ClientURL(), "n2", ck.handle)
	eventually(t, 30*time.Second, "two nodes assigned", func() bool { return assigned(t, parts, n1, n2) })
	before := owners(parts, n1, n2)
	releasedBefore := n1.c.Stats().Released + n2.c.Stats().Released
	lostBefore := n1.c.Stats().Lost + n2.c.Stats().Lost
	publish(t, js, rooms, 1, per/2)
	eventually(t, 30*time.Second, "first messages handled", func() bool { return ck.count() >= rooms*per/8 })
	added := time.Now()
	n3 := startNode(t, s.ClientURL(), "n3", ck.handle)
	want, err := jetstream.Assign([]string{"n1", "n2", "n3"}, parts)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "partitions moved to the new node", func() bool {
		return assigned(t, parts, n1, n2, n3)
	})
	moved := 0
	for p := range parts {
		if before[p] != want[p] {
			moved++
			if want[p] != "n3" {
				t.Errorf("partition %d moved from %s to %s, not to the new node", p, before[p], want[p])
			}
		}
	}
	t.Logf("%d of %d partitions moved to the new node in %v", moved, parts, time.Since(added))
	if moved == 0 || moved > parts/2 {
		t.Errorf("%d of %d partitions moved, want about a third", moved, parts)
	}
	publish(t, js, rooms, per/2+1, per/2)
	eventually(t, 60*time.Second, "messages handled", func() bool { return ck.count() == rooms*per })
	ck.verify(t, rooms, per)
	released, lost, redelivered := -releasedBefore, -lostBefore, uint64(0)
	for _, n := range []*node{n1, n2, n3} {
		st := n.c.Stats()
		released += st.Released
		lost += st.Lost
		redelivered += st.Redelivered
	}
	t.Logf("released %d, lost %d, redelivered %d", released, lost, redelivered)
	if ck.dups != 0 {
		t.Errorf("%d duplicates reached the handler", ck.dups)
	}
	// A lease can run out under load (the race detector on 2 cores) before
	// its holder renews it; the partition then moves by expiry, with
	// redeliveries. Without that, every move is a clean release.
	if lost == 0 && (released != uint64(moved) || redelivered != 0) {
		t.Errorf("released %d (want %d), redelivered %d (want 0)", released, moved, redelivered)
	}
}

// TestGracefulStop stops a node mid-stream: its partitions move at once,
// with nothing redelivered.
func TestGracefulStop(t *testing.T) {
	s := startServer(t, "s1", nil, 0)
	_, js := connect(t, s.ClientURL())
	const parts, rooms, per = 12, 200, 40
	createStream(t, js, jetstream.StreamSpec{Name: "CHAT", Partitions: parts})
	ck := newChecker(t)
	n1 := startNode(t, s.ClientURL(), "n1", ck.handle)
	n2 := startNode(t, s.ClientURL(), "n2", ck.handle)
	eventually(t, 30*time.Second, "two nodes assigned", func() bool { return assigned(t, parts, n1, n2) })
	publish(t, js, rooms, 1, per/2)
	eventually(t, 30*time.Second, "first messages handled", func() bool { return ck.count() >= rooms*per/8 })
	held := len(n2.c.Stats().Partitions)
	stopped := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := n2.c.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	eventually(t, 10*time.Second, "n1 holds every partition", func() bool { return assigned(t, parts, n1) })
	t.Logf("graceful hand-off of %d partitions: %v", held, time.Since(stopped))
	publish(t, js, rooms, per/2+1, per/2)
	eventually(t, 60*time.Second, "messages handled", func() bool { return ck.count() == rooms*per })
	ck.verify(t, rooms, per)
	// As in TestAddNode, only a lease that ran out under load excuses a
	// move that was not a clean release.
	if lost := n1.c.Stats().Lost + n2.c.Stats().Lost; lost == 0 {
		if st := n2.c.Stats(); st.Released != uint64(held) {
			t.Errorf("n2 released %d partitions, held %d", st.Released, held)
		}
		if r := n1.c.Stats().Redelivered + n2.c.Stats().Redelivered; r != 0 || ck.dups != 0 {
			t.Errorf("redelivered %d, duplicates %d; want 0", r, ck.dups)
		}
	}
	if err := n2.c.Stop(ctx); !errors.Is(err, jetstream.ErrStopped) {
		t.Errorf("second Stop = %v, want ErrStopped", err)
	}
}

// TestServerKill shuts one server of three down mid-stream: the R3 stream
// keeps serving, the nodes connected to it reconnect, nothing is lost and
// no room goes out of order.
func TestServerKill(t *testing.T) {
	ss := startCluster(t, 3)
	_, js := connect(t, urls(ss[0], ss[1]))
	const rooms, per = 300, 20
	createStream(t, js, jetstream.StreamSpec{Name: "CHAT", Partitions: clusterParts, Replicas: 3})
	ck := newChecker(t)
	dd := &jetstream.MemoryDedup{}
	var nodes []*node
	for i, name := range []string{"n1", "n2", "n3"} {
		order := append(slices.Clone(ss[i:]), ss[:i]...)
		nodes = append(nodes, startNode(t, urls(order...), name, ck.handle, append(clusterTiming, jetstream.WithDedup(dd))...))
	}
	eventually(t, 30*time.Second, "partitions assigned", func() bool { return assigned(t, clusterParts, nodes...) })
	publish(t, js, rooms, 1, per/2)
	eventually(t, 30*time.Second, "first messages handled", func() bool { return ck.count() >= rooms*per/8 })
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if si, err := js.Stream(ctx, "CHAT"); err == nil {
			t.Logf("stream: %+v leader %v", si.CachedInfo().State, si.CachedInfo().Cluster)
		}
		for p := range clusterParts {
			cons, err := js.Consumer(ctx, "CHAT", "shoal_CHAT_p"+strconv.Itoa(p))
			if err != nil {
				t.Logf("p%d: %v", p, err)
				continue
			}
			i := cons.CachedInfo()
			t.Logf("p%d: pending %d ackpending %d waiting %d redelivered %d delivered %+v leader %+v", p, i.NumPending, i.NumAckPending, i.NumWaiting, i.NumRedelivered, i.Delivered, i.Cluster)
		}
	})
	ss[2].Shutdown()
	ss[2].WaitForShutdown()
	publish(t, js, rooms, per/2+1, per/2)
	eventually(t, 90*time.Second, "messages handled", func() bool { return ck.count() == rooms*per })
	ck.verify(t, rooms, per)
	var lost, dups uint64
	for _, n := range nodes {
		lost += n.c.Stats().Lost
		dups += n.c.Stats().Duplicates
	}
	var resyncs uint64
	for _, n := range nodes {
		resyncs += n.c.Stats().Resyncs
	}
	t.Logf("leases lost during the server's loss: %d; lost deliveries resynced: %d; duplicates dropped: %d, reaching the handler: %d", lost, resyncs, dups, ck.dups)
}

// TestDrainTimeout stops a node whose handlers do not finish: past the drain
// timeout their contexts are cancelled, the messages are given back (Nak) in
// stream order, the lease is released dirty, and the next owner handles
// them, in order, after recovering.
func TestDrainTimeout(t *testing.T) {
	s := startServer(t, "s1", nil, 0)
	_, js := connect(t, s.ClientURL())
	const parts, rooms, per = 4, 40, 20
	createStream(t, js, jetstream.StreamSpec{Name: "CHAT", Partitions: parts})
	ck := newChecker(t)
	var stall atomic.Bool
	stalling := func(ctx context.Context, m *jetstream.Msg) error {
		if stall.Load() {
			<-ctx.Done()
			return ctx.Err()
		}
		return ck.handle(ctx, m)
	}
	n1 := startNode(t, s.ClientURL(), "n1", ck.handle)
	n2 := startNode(t, s.ClientURL(), "n2", stalling, jetstream.WithDrainTimeout(300*time.Millisecond))
	eventually(t, 30*time.Second, "two nodes assigned", func() bool { return assigned(t, parts, n1, n2) })
	held := len(n2.c.Stats().Partitions)
	if held == 0 {
		t.Fatal("the ring gave n2 no partition")
	}
	stall.Store(true)
	publish(t, js, rooms, 1, per)
	eventually(t, 30*time.Second, "n2 holds messages", func() bool {
		for _, p := range n2.c.Stats().Partitions {
			if p.Held > 0 {
				return true
			}
		}
		return false
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := n2.c.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if st := n2.c.Stats(); st.Released != uint64(held) || st.Acked != 0 {
		t.Errorf("n2 released %d of %d partitions and acknowledged %d; want all, 0", st.Released, held, st.Acked)
	}
	eventually(t, 30*time.Second, "messages handled", func() bool { return ck.count() == rooms*per })
	ck.verify(t, rooms, per)
	if st := n1.c.Stats(); st.Redelivered == 0 {
		t.Error("nothing was redelivered to n1")
	}
}
