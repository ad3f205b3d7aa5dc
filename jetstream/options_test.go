package jetstream_test

import (
	"context"
	"errors"
	"math"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/shoal-go/shoal/jetstream"
	"github.com/shoal-go/shoal/pool"
)

// TestKillCountsLost: Stats.Lost counts the leases "dropped when the
// consumer stopped without Stop"; a node killed while holding every
// partition counts each of them lost.
func TestKillCountsLost(t *testing.T) {
	s := startServer(t, "s1", nil, 0)
	_, js := connect(t, s.ClientURL())
	const parts = 4
	createStream(t, js, jetstream.StreamSpec{Name: "CHAT", Partitions: parts})
	ck := newChecker(t)
	n := startNode(t, s.ClientURL(), "n1", ck.handle)
	eventually(t, 10*time.Second, "partitions held", func() bool { return len(n.c.Stats().Partitions) == parts })
	n.kill()
	st := n.c.Stats()
	if st.Acquired != parts || st.Released != 0 || st.Lost != parts {
		t.Errorf("acquired %d, released %d, lost %d; want %d, 0, %d", st.Acquired, st.Released, st.Lost, parts, parts)
	}
}

// failWatchJS is a JetStream whose leases bucket cannot be watched.
type failWatchJS struct{ natsjs.JetStream }

func (js failWatchJS) CreateOrUpdateKeyValue(ctx context.Context, cfg natsjs.KeyValueConfig) (natsjs.KeyValue, error) {
	kv, err := js.JetStream.CreateOrUpdateKeyValue(ctx, cfg)
	if err != nil || !strings.HasSuffix(cfg.Bucket, "_shoal_leases") {
		return kv, err
	}
	return failWatchKV{kv}, nil
}

type failWatchKV struct{ natsjs.KeyValue }

func (failWatchKV) WatchAll(context.Context, ...natsjs.WatchOpt) (natsjs.KeyWatcher, error) {
	return nil, errors.New("watch refused")
}

// TestStartFailureLeavesNoMember: Start joined the membership, then
// failed to watch a bucket and returned an error. The member key it
// created must not stay behind: the other nodes would count the node live
// for a TTL and give it partitions nobody consumes.
func TestStartFailureLeavesNoMember(t *testing.T) {
	s := startServer(t, "s1", nil, 0)
	_, js := connect(t, s.ClientURL())
	createStream(t, js, jetstream.StreamSpec{Name: "CHAT", Partitions: 2})
	p, err := pool.New[string]()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	ctx := context.Background()
	_, err = jetstream.Start(ctx, failWatchJS{js}, p, func(context.Context, *jetstream.Msg) error { return nil },
		append([]jetstream.Option{jetstream.WithStream("CHAT"), jetstream.WithMember("n1")}, testTiming...)...)
	if err == nil {
		t.Fatal("Start succeeded without a lease watcher")
	}
	kv, err := js.KeyValue(ctx, "CHAT_shoal_members")
	if err != nil {
		t.Fatal(err)
	}
	if e, err := kv.Get(ctx, "n1"); err == nil {
		t.Errorf("member key n1 left behind by the failed Start (revision %d)", e.Revision())
	}
}

// TestDeadLetterOfLargeMessage: a failed message close to the
// server's max_payload cannot be published again with the letter's
// headers added. It must still become a dead letter (and its room go on),
// not be retried forever with its room held back.
func TestDeadLetterOfLargeMessage(t *testing.T) {
	const maxPayload = 8 << 10
	s, err := server.NewServer(&server.Options{
		ServerName: "s1", Host: "127.0.0.1", Port: -1, JetStream: true,
		StoreDir: t.TempDir(), NoLog: true, NoSigs: true, MaxPayload: maxPayload,
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	_, js := connect(t, s.ClientURL())
	createStream(t, js, jetstream.StreamSpec{Name: "CHAT", Partitions: 1})
	dlq := createDLQ(t, js)
	ctx := context.Background()
	var next atomic.Int32
	h := func(_ context.Context, m *jetstream.Msg) error {
		if len(m.Data) > 100 {
			return pool.Permanent(errors.New("too big to handle"))
		}
		next.Add(1)
		return nil
	}
	n := startNode(t, s.ClientURL(), "n1", h)
	big := make([]byte, maxPayload-100)
	if _, err := js.Publish(ctx, "rooms.r0", big); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "rooms.r0", []byte("2")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the large message's letter stored and its room going on", func() bool {
		info, err := dlq.Info(ctx)
		return err == nil && info.State.Msgs == 1 && next.Load() == 1
	})
	m, err := dlq.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if m.Header.Get(jetstream.HeaderSeq) != "1" || m.Header.Get(jetstream.HeaderDataOmitted) != strconv.Itoa(len(big)) {
		t.Errorf("letter headers %v; want %s 1 and %s %d", m.Header, jetstream.HeaderSeq, jetstream.HeaderDataOmitted, len(big))
	}
	if st := n.c.Stats(); st.DeadLetters != 1 {
		t.Errorf("dead letters %d, want 1", st.DeadLetters)
	}
}

// TestDeadLetterOverStreamMaxMsgSize: as above, for a dead-letter
// stream whose largest message is smaller than the letter.
func TestDeadLetterOverStreamMaxMsgSize(t *testing.T) {
	s := startServer(t, "s1", nil, 0)
	_, js := connect(t, s.ClientURL())
	createStream(t, js, jetstream.StreamSpec{Name: "CHAT", Partitions: 1})
	ctx := context.Background()
	dlq, err := js.CreateStream(ctx, natsjs.StreamConfig{Name: "DLQ", Subjects: []string{"shoal.dlq.CHAT.>"}, MaxMsgSize: 2048})
	if err != nil {
		t.Fatal(err)
	}
	var next atomic.Int32
	startNode(t, s.ClientURL(), "n1", func(_ context.Context, m *jetstream.Msg) error {
		if len(m.Data) > 100 {
			return pool.Permanent(errors.New("too big to handle"))
		}
		next.Add(1)
		return nil
	})
	if _, err := js.Publish(ctx, "rooms.r0", make([]byte, 1900)); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "rooms.r0", []byte("2")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the large message's letter stored and its room going on", func() bool {
		info, err := dlq.Info(ctx)
		return err == nil && info.State.Msgs == 1 && next.Load() == 1
	})
}

// TestBucketPrefixValidated: '=' is valid in a stream name but not in
// a bucket name; a bucket prefix with it (given, or the stream's name by
// default) is a bad option, said as such before anything is created.
func TestBucketPrefixValidated(t *testing.T) {
	s := startServer(t, "s1", nil, 0)
	_, js := connect(t, s.ClientURL())
	ctx := context.Background()
	createStream(t, js, jetstream.StreamSpec{Name: "CHAT", Partitions: 1})
	createStream(t, js, jetstream.StreamSpec{Name: "A=B", Subject: "other", Partitions: 1})
	p, err := pool.New[string]()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	for _, opts := range [][]jetstream.Option{
		{jetstream.WithStream("CHAT"), jetstream.WithBucketPrefix("a=b")},
		{jetstream.WithStream("A=B")},
	} {
		if err := startErr(ctx, js, p, append(opts, jetstream.WithMember("n1"))...); !errors.Is(err, jetstream.ErrBadOption) {
			t.Errorf("Start: %v; want ErrBadOption", err)
		}
	}
}

// TestTransformPartitionsBounded: a stream made outside CreateStream
// whose transform has more partitions than the package allows is refused
// as WithPartitions refuses the same count.
func TestTransformPartitionsBounded(t *testing.T) {
	s := startServer(t, "s1", nil, 0)
	_, js := connect(t, s.ClientURL())
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, natsjs.StreamConfig{
		Name: "CHAT", Subjects: []string{"rooms.*"},
		SubjectTransform: &natsjs.SubjectTransformConfig{Source: "rooms.*", Destination: "rooms.{{partition(5000,1)}}.{{wildcard(1)}}"},
	}); err != nil {
		t.Fatal(err)
	}
	p, err := pool.New[string]()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	if err := startErr(ctx, js, p, append([]jetstream.Option{jetstream.WithStream("CHAT"), jetstream.WithMember("n1")}, testTiming...)...); !errors.Is(err, jetstream.ErrBadPartitions) {
		t.Errorf("Start on a stream of 5000 partitions: %v; want ErrBadPartitions", err)
	}
}

// TestKVDedupKeepsHighest: a Record below the room's record (an old
// owner whose handler ran past its lease records after the new owner
// recorded later messages) leaves it unchanged, as MemoryDedup does;
// otherwise the later messages would run again when redelivered.
func TestKVDedupKeepsHighest(t *testing.T) {
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
	for _, seq := range []uint64{12, 10} {
		if err := d.Record(ctx, "r1", seq); err != nil {
			t.Fatal(err)
		}
	}
	if last, err := d.LastApplied(ctx, "r1"); err != nil || last != 12 {
		t.Errorf("after Record(12), Record(10): %d, %v; want 12", last, err)
	}
	if err := d.Record(ctx, "r1", 13); err != nil {
		t.Fatal(err)
	}
	if last, err := d.LastApplied(ctx, "r1"); err != nil || last != 13 {
		t.Errorf("after Record(13): %d, %v; want 13", last, err)
	}
}

// TestSecondStopMessage: Stop after a graceful Stop returns
// ErrStopped with a readable message (the consumer's Err is nil then).
func TestSecondStopMessage(t *testing.T) {
	s := startServer(t, "s1", nil, 0)
	_, js := connect(t, s.ClientURL())
	createStream(t, js, jetstream.StreamSpec{Name: "CHAT", Partitions: 1})
	n := startNode(t, s.ClientURL(), "n1", func(context.Context, *jetstream.Msg) error { return nil })
	ctx := context.Background()
	if err := n.c.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	err := n.c.Stop(ctx)
	if !errors.Is(err, jetstream.ErrStopped) || strings.Contains(err.Error(), "%!") {
		t.Errorf("second Stop: %q; want ErrStopped with a readable message", err)
	}
}

// TestStartRefusesClosedPool: a pool that is closed already can run
// nothing; Start must say so (ErrPoolClosed) rather than join the cluster,
// take leases, and die at the first message.
func TestStartRefusesClosedPool(t *testing.T) {
	s := startServer(t, "s1", nil, 0)
	_, js := connect(t, s.ClientURL())
	createStream(t, js, jetstream.StreamSpec{Name: "CHAT", Partitions: 1})
	ctx := context.Background()
	p, err := pool.New[string]()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := startErr(ctx, js, p, append([]jetstream.Option{jetstream.WithStream("CHAT"), jetstream.WithMember("n1")}, testTiming...)...); !errors.Is(err, jetstream.ErrPoolClosed) {
		t.Errorf("Start with a closed pool: %v; want ErrPoolClosed", err)
	}
}

// TestCreateStreamNilArguments: CreateStream with a nil JetStream or
// a nil context returns ErrBadOption, as Start does, instead of panicking.
func TestCreateStreamNilArguments(t *testing.T) {
	spec := jetstream.StreamSpec{Name: "CHAT", Partitions: 4}
	for _, tc := range []struct {
		name string
		ctx  context.Context
		js   natsjs.JetStream
	}{
		{"nil JetStream", context.Background(), nil},
		{"nil context", nil, failWatchJS{}},
	} {
		func() {
			defer func() {
				if v := recover(); v != nil {
					t.Errorf("%s: panic %v", tc.name, v)
				}
			}()
			if _, err := jetstream.CreateStream(tc.ctx, tc.js, spec); !errors.Is(err, jetstream.ErrBadOption) {
				t.Errorf("%s: %v; want ErrBadOption", tc.name, err)
			}
		}()
	}
}

// TestSubjectNotInStream: a stream without a transform whose subjects
// do not capture "<prefix>.<p>.<room>" for the prefix given (or the
// default "rooms") would be consumed by partition consumers that match
// nothing: Start must refuse it rather than run and consume nothing.
func TestSubjectNotInStream(t *testing.T) {
	s := startServer(t, "s1", nil, 0)
	_, js := connect(t, s.ClientURL())
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, natsjs.StreamConfig{Name: "CHAT", Subjects: []string{"chat.*.*"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, natsjs.StreamConfig{Name: "SPLIT", Subjects: []string{"split.0.*", "split.1.*"}}); err != nil {
		t.Fatal(err)
	}
	p, err := pool.New[string]()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	start := func(opts ...jetstream.Option) error { return startErr(ctx, js, p, append(opts, testTiming...)...) }
	if err := start(jetstream.WithStream("CHAT"), jetstream.WithMember("n1"), jetstream.WithPartitions(2)); !errors.Is(err, jetstream.ErrBadOption) {
		t.Errorf("default prefix rooms on a stream of chat.*.*: %v; want ErrBadOption", err)
	}
	if err := start(jetstream.WithStream("CHAT"), jetstream.WithMember("n1"), jetstream.WithPartitions(2), jetstream.WithSubject("chat")); err != nil {
		t.Errorf("prefix chat on a stream of chat.*.*: %v", err)
	}
	if err := start(jetstream.WithStream("SPLIT"), jetstream.WithMember("n2"), jetstream.WithPartitions(2), jetstream.WithSubject("split")); err != nil {
		t.Errorf("2 partitions on a stream of split.0.* and split.1.*: %v", err)
	}
	if err := start(jetstream.WithStream("SPLIT"), jetstream.WithMember("n3"), jetstream.WithPartitions(3), jetstream.WithSubject("split")); !errors.Is(err, jetstream.ErrBadOption) {
		t.Errorf("3 partitions on a stream of split.0.* and split.1.*: %v; want ErrBadOption", err)
	}
}

// TestFetchBatchBounded: the pull batch sizes the client's buffer of
// each pull request (nats.go makes a channel of that capacity): a huge
// WithFetch batch must be refused as a bad option, not accepted and then
// panic ("makechan: size out of range") or exhaust memory in the first
// pull.
func TestFetchBatchBounded(t *testing.T) {
	p, err := pool.New[string]()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	_, err = jetstream.Start(context.Background(), failWatchJS{}, p, func(context.Context, *jetstream.Msg) error { return nil },
		jetstream.WithFetch(math.MaxInt, time.Second))
	if !errors.Is(err, jetstream.ErrBadOption) {
		t.Errorf("WithFetch(math.MaxInt, 1s): %v; want ErrBadOption", err)
	}
}

// startErr starts a consumer of p with a handler that does nothing, stops
// it if it started, and returns Start's error.
func startErr(ctx context.Context, js natsjs.JetStream, p *pool.Pool[string], opts ...jetstream.Option) error {
	c, err := jetstream.Start(ctx, js, p, func(context.Context, *jetstream.Msg) error { return nil }, opts...)
	if err == nil {
		_ = c.Stop(ctx)
	}
	return err
}
