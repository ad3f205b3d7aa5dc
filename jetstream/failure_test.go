package jetstream_test

import (
	"context"
	"errors"
	"math"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
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
	dlq := createDLQ(t, js)
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
		{"huge TTL", []jetstream.Option{jetstream.WithStream("CHAT"), jetstream.WithMember("a"), jetstream.WithLeaseTTL(math.MaxInt64)}, jetstream.ErrBadOption},
		{"huge ack wait", []jetstream.Option{jetstream.WithStream("CHAT"), jetstream.WithMember("a"), jetstream.WithAckWait(math.MaxInt64)}, jetstream.ErrBadOption},
		{"nil dedup", []jetstream.Option{jetstream.WithStream("CHAT"), jetstream.WithMember("a"), jetstream.WithDedup(nil)}, jetstream.ErrBadOption},
		{"zero stream missing limit", []jetstream.Option{jetstream.WithStream("CHAT"), jetstream.WithMember("a"), jetstream.WithStreamMissingLimit(0)}, jetstream.ErrBadOption},
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
	//lint:ignore SA1012 a nil context on purpose: Start must refuse it
	if _, err := jetstream.Start(nil, js, p, h, jetstream.WithStream("CHAT"), jetstream.WithMember("a")); !errors.Is(err, jetstream.ErrBadOption) {
		t.Errorf("nil context: %v, want ErrBadOption", err)
	}
	if _, err := pool.NewBatcher(jetstream.BatchFunc(nil)); err == nil {
		t.Error("pool.NewBatcher(BatchFunc(nil)): no error")
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
	dlq := createDLQ(t, js)
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
	// Rooms are subject tokens, which may hold what a key may not; each
	// gets its own record, apart from the room its encoded key spells.
	rooms := []string{"room:42", "a@b", "", "=", "r1", "x y", "ü", ".a", "a..b", "=cm9vbTo0Mg"}
	for i, room := range rooms {
		if err := d.Record(ctx, room, uint64(100+i)); err != nil {
			t.Errorf("Record(%q): %v", room, err)
		}
	}
	for i, room := range rooms {
		if last, err := d.LastApplied(ctx, room); err != nil || last != uint64(100+i) {
			t.Errorf("LastApplied(%q): %d, %v; want %d", room, last, err, 100+i)
		}
	}
	if _, err := jetstream.NewKVDedup(nil); !errors.Is(err, jetstream.ErrBadOption) {
		t.Errorf("NewKVDedup(nil): %v", err)
	}
}

// TestPoolClosedUnderConsumer: the application closes the consumer's pool
// with a deadline that has passed, so the pool gives up on a queued
// message (a Shutdown dead letter of the pool's) that the consumer holds.
// The consumer must not keep that message alive for ever: it stops with
// ErrPoolClosed, and the message goes back to the server.
func TestPoolClosedUnderConsumer(t *testing.T) {
	s := startServer(t, "s1", nil, 0)
	_, js := connect(t, s.ClientURL())
	createStream(t, js, jetstream.StreamSpec{Name: "CHAT", Partitions: 1})
	started := make(chan struct{})
	release := make(chan struct{})
	var ran2 atomic.Bool
	h := func(ctx context.Context, m *jetstream.Msg) error {
		switch string(m.Data) {
		case "1":
			close(started)
			select {
			case <-release:
			case <-ctx.Done():
			}
		case "2":
			ran2.Store(true)
		}
		return nil
	}
	n := startNode(t, s.ClientURL(), "n1", h)
	publish(t, js, 1, 1, 2) // one room: message 2 queues behind message 1
	<-started
	eventually(t, 10*time.Second, "message 2 queued", func() bool { return n.c.Stats().Delivered == 2 })

	expired, cancel := context.WithCancel(context.Background())
	cancel()
	closed := make(chan error, 1)
	go func() { closed <- n.pool.Close(expired) }()
	eventually(t, 5*time.Second, "the pool closing", func() bool { return n.pool.Snapshot().Closed })
	close(release)
	if err := <-closed; err == nil {
		t.Fatal("pool.Close with a canceled context: nil, want a CloseError")
	}
	if ran2.Load() || n.pool.Snapshot().DeadLetters.Shutdown != 1 {
		t.Fatalf("message 2 ran %v, pool Shutdown letters %d; want it shut down by the pool",
			ran2.Load(), n.pool.Snapshot().DeadLetters.Shutdown)
	}
	select {
	case <-n.c.Done():
	case <-time.After(10 * time.Second):
		t.Fatalf("consumer still running 10 s after its pool gave up on message 2 (held %+v)", n.c.Stats().Partitions)
	}
	if err := n.c.Err(); !errors.Is(err, jetstream.ErrPoolClosed) {
		t.Fatalf("consumer stopped with %v, want ErrPoolClosed", err)
	}
}

// TestStopDrainTimeoutWithBlockingPool: a blocking pool whose group queue
// is full holds the partition's goroutine in Submit; Stop must still end
// the wait, cancel the handlers after WithDrainTimeout and leave at once.
func TestStopDrainTimeoutWithBlockingPool(t *testing.T) {
	s := startServer(t, "s1", nil, 0)
	_, js := connect(t, s.ClientURL())
	createStream(t, js, jetstream.StreamSpec{Name: "CHAT", Partitions: 1})
	p, err := pool.New[string](pool.WithGroupQueueSize(1), pool.WithBatchSize(1))
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{}, 1)
	h := func(ctx context.Context, m *jetstream.Msg) error {
		select {
		case started <- struct{}{}:
		default:
		}
		<-ctx.Done() // a handler that honours cancellation
		return ctx.Err()
	}
	n := launch(t, s.ClientURL(), "n1", func(ctx context.Context, js natsjs.JetStream, opts []jetstream.Option) (*jetstream.Consumer, error) {
		return jetstream.Start(ctx, js, p, h, opts...)
	}, p.Close, []jetstream.Option{jetstream.WithDrainTimeout(300 * time.Millisecond)})
	publish(t, js, 1, 1, 20)
	<-started
	// Message 1 runs, message 2 fills the group's queue: the partition's
	// goroutine waits in Submit with message 3.
	eventually(t, 10*time.Second, "a submission waiting", func() bool { return n.c.Stats().Delivered >= 3 })
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	begun := time.Now()
	err = n.c.Stop(ctx)
	// 300 ms of drain, a pull wait and a lease write: 3 s is generous.
	if took := time.Since(begun); err != nil || took > 3*time.Second {
		t.Fatalf("Stop with WithDrainTimeout(300ms): %v after %v; want nil within about a second", err, took.Round(time.Millisecond))
	}
}

// TestDeadLetterDropsServerHeaders: a message published with
// Nats-Expected-Stream (the server keeps the header) fails for good; its
// dead letter must not carry that header, which the dead-letter stream
// would refuse for ever, holding the room back. The room goes on.
func TestDeadLetterDropsServerHeaders(t *testing.T) {
	s := startServer(t, "s1", nil, 0)
	_, js := connect(t, s.ClientURL())
	ctx := context.Background()
	createStream(t, js, jetstream.StreamSpec{Name: "CHAT", Partitions: 1})
	dlq := createDLQ(t, js)
	var next atomic.Bool
	h := poisonHandler(&next)
	startNode(t, s.ClientURL(), "n1", h)
	msg := nats.NewMsg("rooms.r0")
	msg.Data = []byte("poison")
	msg.Header.Set("App-Trace", "t-1")
	if _, err := js.PublishMsg(ctx, msg, natsjs.WithExpectStream("CHAT")); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "rooms.r0", []byte("next"), natsjs.WithExpectStream("CHAT")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the dead letter stored and the room's next message handled", func() bool {
		_, err := dlq.GetLastMsgForSubject(ctx, "shoal.dlq.CHAT.r0")
		return err == nil && next.Load()
	})
	dl, err := dlq.GetLastMsgForSubject(ctx, "shoal.dlq.CHAT.r0")
	if err != nil {
		t.Fatal(err)
	}
	if got := dl.Header.Get("App-Trace"); got != "t-1" {
		t.Errorf("the letter's App-Trace header %q, want the original's t-1", got)
	}
	if got := dl.Header.Get("Nats-Expected-Stream"); got != "" {
		t.Errorf("the letter carries Nats-Expected-Stream %q", got)
	}
}

// poisonHandler fails a message whose data is "poison" for good and sets
// next when it handles any other.
func poisonHandler(next *atomic.Bool) jetstream.Handler {
	return func(_ context.Context, m *jetstream.Msg) error {
		if string(m.Data) == "poison" {
			return pool.Permanent(errors.New("cannot parse"))
		}
		next.Store(true)
		return nil
	}
}

// TestDeadLetterWaitsForItsStream: a message that fails for good while no
// stream stores the dead-letter subject is not dropped: its room waits
// (the room's next message does not run), each failed publication counts
// in Stats.LetterErrors, and once a stream for the subject exists the
// letter is stored there and the room goes on.
func TestDeadLetterWaitsForItsStream(t *testing.T) {
	s := startServer(t, "s1", nil, 0)
	_, js := connect(t, s.ClientURL())
	ctx := context.Background()
	createStream(t, js, jetstream.StreamSpec{Name: "CHAT", Partitions: 1})
	var next atomic.Bool
	h := poisonHandler(&next)
	n := startNode(t, s.ClientURL(), "n1", h)
	for _, data := range []string{"poison", "next"} {
		if _, err := js.Publish(ctx, "rooms.r0", []byte(data)); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 10*time.Second, "failed publications of the letter counted", func() bool { return n.c.Stats().LetterErrors >= 2 })
	if next.Load() {
		t.Fatal("the room's next message ran while its failed message's letter was not stored")
	}
	if st := n.c.Stats(); st.DeadLetters != 0 {
		t.Fatalf("DeadLetters = %d with no stream to store the letter", st.DeadLetters)
	}
	dlq := createDLQ(t, js)
	eventually(t, 10*time.Second, "the letter stored and the room's next message handled", func() bool {
		_, err := dlq.GetLastMsgForSubject(ctx, "shoal.dlq.CHAT.r0")
		return err == nil && next.Load()
	})
	if st := n.c.Stats(); st.DeadLetters != 1 {
		t.Errorf("DeadLetters = %d, want 1", st.DeadLetters)
	}
}

// flakyDedup fails its first LastApplied call, as a store does on a
// transient error.
type flakyDedup struct {
	jetstream.MemoryDedup
	failed atomic.Bool
}

func (d *flakyDedup) LastApplied(ctx context.Context, room string) (uint64, error) {
	if d.failed.CompareAndSwap(false, true) {
		return 0, errors.New("store unavailable")
	}
	return d.MemoryDedup.LastApplied(ctx, room)
}

// TestDedupErrorHoldsRoom: when the Dedup cannot say whether a message was
// applied, the message must not run until it can: a message recorded as
// applied is dropped as a duplicate once the Dedup answers, the room's
// next message runs after it, and the failure is counted.
func TestDedupErrorHoldsRoom(t *testing.T) {
	s := startServer(t, "s1", nil, 0)
	_, js := connect(t, s.ClientURL())
	createStream(t, js, jetstream.StreamSpec{Name: "CHAT", Partitions: 1})
	d := &flakyDedup{}
	// Stream sequence 1 was applied by an earlier owner that died before
	// acknowledging it.
	if err := d.Record(context.Background(), "r0", 1); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var ran []uint64
	h := func(_ context.Context, m *jetstream.Msg) error {
		mu.Lock()
		ran = append(ran, m.Seq)
		mu.Unlock()
		return nil
	}
	n := startNode(t, s.ClientURL(), "n1", h, jetstream.WithDedup(d))
	publish(t, js, 1, 1, 2)
	eventually(t, 10*time.Second, "both messages settled", func() bool {
		st := n.c.Stats()
		return st.Acked == 2 && st.Duplicates == 1 // the duplicate is acknowledged too
	})
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(ran, []uint64{2}) {
		t.Fatalf("handled sequences %v, want [2]: sequence 1 is recorded as applied", ran)
	}
	if got := n.c.Stats().DedupErrors; got != 1 {
		t.Fatalf("DedupErrors %d, want 1", got)
	}
}
