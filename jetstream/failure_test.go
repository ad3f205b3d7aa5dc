package jetstream_test

import (
	"context"
	"errors"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/shoal-go/shoal/jetstream"
	"github.com/shoal-go/shoal/pool"
)

// TestPoisonMessage: a message whose handler keeps failing is retried, then
// published to the dead-letter subject with its reason and attempts and
// terminated; its room's later messages go on. A panic and a permanent
// error are not retried.
func TestPoisonMessage(t *testing.T) {
	s := startServer(t, "s1", nil, 0)
	_, js := connect(t, s.ClientURL())
	const parts, rooms, per = 4, 5, 10
	createStream(t, js, jetstream.StreamSpec{Name: "CHAT", Partitions: parts})
	ctx := context.Background()
	dlq, err := js.CreateStream(ctx, natsjs.StreamConfig{Name: "DLQ", Subjects: []string{"shoal.dlq.CHAT.>"}})
	if err != nil {
		t.Fatal(err)
	}
	ck := newChecker(t)
	var calls atomic.Int32
	h := func(ctx context.Context, m *jetstream.Msg) error {
		i, _ := strconv.Atoi(string(m.Data))
		poison := func() {
			ck.mu.Lock()
			ck.last[m.Room] = i // skipped on purpose: the order check goes on after it
			ck.mu.Unlock()
		}
		switch {
		case m.Room == "r0" && i == 3:
			calls.Add(1)
			poison()
			return errors.New("cannot parse")
		case m.Room == "r1" && i == 5:
			poison()
			panic("handler bug")
		case m.Room == "r2" && i == 7:
			poison()
			return pool.Permanent(errors.New("forbidden"))
		}
		return ck.handle(ctx, m)
	}
	n := startNode(t, s.ClientURL(), "n1", h)
	publish(t, js, rooms, 1, per)
	eventually(t, 30*time.Second, "messages handled", func() bool { return ck.count() == rooms*per-3 })
	ck.verify(t, rooms, per)
	if got := calls.Load(); got != 3 {
		t.Errorf("failing handler called %d times, want 3 (WithRetry(3, ...))", got)
	}
	eventually(t, 10*time.Second, "dead letters stored", func() bool {
		info, err := dlq.Info(ctx)
		return err == nil && info.State.Msgs == 3
	})
	want := map[string]struct {
		reason   jetstream.Reason
		attempts string
		data     string
	}{
		"r0": {jetstream.ReasonFailed, "3", "3"},
		"r1": {jetstream.ReasonPanicked, "1", "5"},
		"r2": {jetstream.ReasonPermanent, "1", "7"},
	}
	for seq := uint64(1); seq <= 3; seq++ {
		m, err := dlq.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		room := m.Header.Get(jetstream.HeaderRoom)
		w, ok := want[room]
		if !ok {
			t.Errorf("dead letter of room %q", room)
			continue
		}
		if r := m.Header.Get(jetstream.HeaderReason); r != string(w.reason) {
			t.Errorf("room %s: reason %q, want %q", room, r, w.reason)
		}
		if a := m.Header.Get(jetstream.HeaderAttempts); a != w.attempts {
			t.Errorf("room %s: attempts %s, want %s", room, a, w.attempts)
		}
		if string(m.Data) != w.data || m.Subject != "shoal.dlq.CHAT."+room || m.Header.Get(jetstream.HeaderError) == "" {
			t.Errorf("room %s: dead letter %q on %s, error %q", room, m.Data, m.Subject, m.Header.Get(jetstream.HeaderError))
		}
	}
	st := n.c.Stats()
	if st.DeadLetters != 3 || st.Retries != 2 {
		t.Errorf("dead letters %d, retries %d; want 3, 2", st.DeadLetters, st.Retries)
	}
	nothingPending(t, js, parts)
}

// TestBadConfig: a missing stream, zero partitions, a duplicate member name
// and bad options are reported with clear errors.
func TestBadConfig(t *testing.T) {
	s := startServer(t, "s1", nil, 0)
	_, js := connect(t, s.ClientURL())
	ctx := context.Background()
	p, err := pool.New[string]()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = p.Close(ctx) }()
	h := func(context.Context, *jetstream.Msg) error { return nil }

	if _, err := jetstream.CreateStream(ctx, js, jetstream.StreamSpec{Name: "CHAT", Partitions: 0}); !errors.Is(err, jetstream.ErrBadPartitions) {
		t.Errorf("CreateStream with 0 partitions: %v, want ErrBadPartitions", err)
	}
	if _, err := js.CreateStream(ctx, natsjs.StreamConfig{Name: "PLAIN", Subjects: []string{"plain.>"}}); err != nil {
		t.Fatal(err)
	}
	createStream(t, js, jetstream.StreamSpec{Name: "CHAT", Partitions: 4})
	for _, tc := range []struct {
		name string
		opts []jetstream.Option
		want error
	}{
		{"no stream option", []jetstream.Option{jetstream.WithMember("a")}, jetstream.ErrNoStream},
		{"no such stream", []jetstream.Option{jetstream.WithStream("NOPE"), jetstream.WithMember("a")}, jetstream.ErrNoStream},
		{"zero partitions", []jetstream.Option{jetstream.WithStream("CHAT"), jetstream.WithMember("a"), jetstream.WithPartitions(0)}, jetstream.ErrBadPartitions},
		{"partitions disagree", []jetstream.Option{jetstream.WithStream("CHAT"), jetstream.WithMember("a"), jetstream.WithPartitions(5)}, jetstream.ErrBadPartitions},
		{"unpartitioned stream", []jetstream.Option{jetstream.WithStream("PLAIN"), jetstream.WithMember("a")}, jetstream.ErrBadPartitions},
		{"no member", []jetstream.Option{jetstream.WithStream("CHAT")}, jetstream.ErrNoMember},
		{"bad member", []jetstream.Option{jetstream.WithStream("CHAT"), jetstream.WithMember("a.b")}, jetstream.ErrNoMember},
		{"bad TTL", []jetstream.Option{jetstream.WithStream("CHAT"), jetstream.WithMember("a"), jetstream.WithLeaseTTL(0)}, jetstream.ErrBadOption},
		{"nil dedup", []jetstream.Option{jetstream.WithStream("CHAT"), jetstream.WithMember("a"), jetstream.WithDedup(nil)}, jetstream.ErrBadOption},
	} {
		if c, err := jetstream.Start(ctx, js, p, h, tc.opts...); !errors.Is(err, tc.want) {
			if c != nil {
				_ = c.Stop(ctx)
			}
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if _, err := jetstream.Start(ctx, js, nil, h, jetstream.WithStream("CHAT"), jetstream.WithMember("a")); !errors.Is(err, jetstream.ErrBadOption) {
		t.Errorf("nil pool: %v, want ErrBadOption", err)
	}
	if _, err := jetstream.Start(ctx, js, p, nil, jetstream.WithStream("CHAT"), jetstream.WithMember("a")); !errors.Is(err, jetstream.ErrBadOption) {
		t.Errorf("nil handler: %v, want ErrBadOption", err)
	}
	if _, err := jetstream.Assign([]string{"a", "a"}, 4); err == nil {
		t.Error("Assign with a duplicate member: no error")
	}

	startNode(t, s.ClientURL(), "dup", h)
	_, err = jetstream.Start(ctx, js, p, h, append([]jetstream.Option{jetstream.WithStream("CHAT"), jetstream.WithMember("dup")}, testTiming...)...)
	if !errors.Is(err, jetstream.ErrDuplicateMember) {
		t.Errorf("second node named dup: %v, want ErrDuplicateMember", err)
	}
}

// TestRestartAfterCrash: a node that restarts under the name of a crashed
// node is admitted once the old key has gone one TTL without renewal.
func TestRestartAfterCrash(t *testing.T) {
	s := startServer(t, "s1", nil, 0)
	_, js := connect(t, s.ClientURL())
	createStream(t, js, jetstream.StreamSpec{Name: "CHAT", Partitions: 4})
	ck := newChecker(t)
	old := startNode(t, s.ClientURL(), "n1", ck.handle)
	old.kill()
	n := startNode(t, s.ClientURL(), "n1", ck.handle)
	publish(t, js, 10, 1, 10)
	eventually(t, 30*time.Second, "messages handled", func() bool { return ck.count() == 100 })
	ck.verify(t, 10, 10)
	eventually(t, 10*time.Second, "the new node holds every partition", func() bool { return assigned(t, 4, n) })
}

// TestBackpressure: when the pool refuses (here a non-blocking pool whose
// group queue is full), the consumer holds the message and pulls nothing
// more; the server keeps the rest. When the pool frees up, everything is
// handled in order.
func TestBackpressure(t *testing.T) {
	s := startServer(t, "s1", nil, 0)
	nc, js := connect(t, s.ClientURL())
	ctx := context.Background()
	createStream(t, js, jetstream.StreamSpec{Name: "CHAT", Partitions: 1})
	p, err := pool.New[string](pool.WithNonblocking(), pool.WithGroupQueueSize(4))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = p.Close(ctx) }()
	ck := newChecker(t)
	gate := make(chan struct{})
	h := func(ctx context.Context, m *jetstream.Msg) error {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
		return ck.handle(ctx, m)
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c, err := jetstream.Start(cctx, js, p, h, append([]jetstream.Option{
		jetstream.WithStream("CHAT"), jetstream.WithMember("n1"),
		jetstream.WithMaxAckPending(100), jetstream.WithFetch(20, 250*time.Millisecond),
	}, testTiming[:2]...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); <-c.Done() }()
	_ = nc
	const per = 300
	publish(t, js, 1, 1, per)
	eventually(t, 10*time.Second, "the pool refuses", func() bool { return c.Stats().Refusals > 3 })
	cons, err := js.Consumer(ctx, "CHAT", "shoal_CHAT_p0")
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// One pull request of 20 at most was outstanding when the pool refused.
	if info.NumAckPending > 20 || info.NumPending < per-20 {
		t.Errorf("while refused: %d unacknowledged, %d not delivered; want <= 20 and >= %d", info.NumAckPending, info.NumPending, per-20)
	}
	close(gate)
	eventually(t, 30*time.Second, "messages handled", func() bool { return ck.count() == per })
	ck.verify(t, 1, per)
}

// TestLongTask: a handler that runs for several ack waits keeps its message
// (and those queued behind it) alive with InProgress: nothing is redelivered.
func TestLongTask(t *testing.T) {
	s := startServer(t, "s1", nil, 0)
	_, js := connect(t, s.ClientURL())
	createStream(t, js, jetstream.StreamSpec{Name: "CHAT", Partitions: 1})
	ck := newChecker(t)
	h := func(ctx context.Context, m *jetstream.Msg) error {
		if string(m.Data) == "1" {
			// Work that lasts four ack waits.
			select {
			case <-time.After(4 * 300 * time.Millisecond):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return ck.handle(ctx, m)
	}
	n := startNode(t, s.ClientURL(), "n1", h, jetstream.WithAckWait(300*time.Millisecond))
	publish(t, js, 3, 1, 5)
	eventually(t, 30*time.Second, "messages handled", func() bool { return ck.count() == 15 })
	ck.verify(t, 3, 5)
	if st := n.c.Stats(); st.Redelivered != 0 || ck.dups != 0 {
		t.Errorf("redelivered %d, duplicates %d; want 0", st.Redelivered, ck.dups)
	}
}

// TestMaxDeliveries: a message delivered more often than allowed goes to the
// dead letters without running again.
func TestMaxDeliveries(t *testing.T) {
	s := startServer(t, "s1", nil, 0)
	_, js := connect(t, s.ClientURL())
	ctx := context.Background()
	createStream(t, js, jetstream.StreamSpec{Name: "CHAT", Partitions: 1})
	dlq, err := js.CreateStream(ctx, natsjs.StreamConfig{Name: "DLQ", Subjects: []string{"shoal.dlq.CHAT.>"}})
	if err != nil {
		t.Fatal(err)
	}
	// A node that dies holding the message, twice: each kill leaves it
	// unacknowledged.
	for _, name := range []string{"a", "b"} {
		held := make(chan struct{}, 1)
		h := func(ctx context.Context, m *jetstream.Msg) error {
			select {
			case held <- struct{}{}:
			default:
			}
			<-ctx.Done()
			return ctx.Err()
		}
		n := startNode(t, s.ClientURL(), name, h, jetstream.WithMaxDeliveries(2))
		if name == "a" {
			publish(t, js, 1, 1, 1)
		}
		<-held
		n.kill()
	}
	var ran atomic.Bool
	startNode(t, s.ClientURL(), "c", func(context.Context, *jetstream.Msg) error { ran.Store(true); return nil }, jetstream.WithMaxDeliveries(2))
	eventually(t, 30*time.Second, "dead letter stored", func() bool {
		info, err := dlq.Info(ctx)
		return err == nil && info.State.Msgs == 1
	})
	m, err := dlq.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if r := m.Header.Get(jetstream.HeaderReason); r != string(jetstream.ReasonMaxDeliveries) || m.Header.Get(jetstream.HeaderDeliveries) != "3" {
		t.Errorf("reason %q after %s deliveries; want %q after 3", r, m.Header.Get(jetstream.HeaderDeliveries), jetstream.ReasonMaxDeliveries)
	}
	if ran.Load() {
		t.Error("the handler ran on the third delivery")
	}
}

// TestKVDedup: both Dedups start at 0 and return what was recorded.
func TestKVDedup(t *testing.T) {
	s := startServer(t, "s1", nil, 0)
	_, js := connect(t, s.ClientURL())
	ctx := context.Background()
	kv, err := js.CreateKeyValue(ctx, natsjs.KeyValueConfig{Bucket: "applied"})
	if err != nil {
		t.Fatal(err)
	}
	d, err := jetstream.NewKVDedup(kv)
	if err != nil {
		t.Fatal(err)
	}
	for _, dd := range []jetstream.Dedup{d, &jetstream.MemoryDedup{}} {
		if last, err := dd.LastApplied(ctx, "r1"); err != nil || last != 0 {
			t.Errorf("%T: fresh room: %d, %v", dd, last, err)
		}
		if err := dd.Record(ctx, "r1", 42); err != nil {
			t.Fatal(err)
		}
		if last, err := dd.LastApplied(ctx, "r1"); err != nil || last != 42 {
			t.Errorf("%T: after Record(42): %d, %v", dd, last, err)
		}
	}
	if _, err := jetstream.NewKVDedup(nil); !errors.Is(err, jetstream.ErrBadOption) {
		t.Errorf("NewKVDedup(nil): %v", err)
	}
}
