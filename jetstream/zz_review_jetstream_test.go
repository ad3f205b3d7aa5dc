package jetstream_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/shoal-go/shoal/jetstream"
	"github.com/shoal-go/shoal/pool"
)

// TestReviewKillCountsLost: Stats.Lost counts the leases "dropped when the
// consumer stopped without Stop"; a node killed while holding every
// partition counts each of them lost.
func TestReviewKillCountsLost(t *testing.T) {
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

// TestReviewStartFailureLeavesNoMember: Start joined the membership, then
// failed to watch a bucket and returned an error. The member key it
// created must not stay behind: the other nodes would count the node live
// for a TTL and give it partitions nobody consumes.
func TestReviewStartFailureLeavesNoMember(t *testing.T) {
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
