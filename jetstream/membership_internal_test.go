package jetstream

// The lease and membership protocol, from inside the package, with a few
// helpers of its own for an in-process server (main_test.go's are in
// package jetstream_test).

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/shoal-go/shoal/pool"
)

// inprocServer runs one in-process JetStream server for the test.
func inprocServer(t *testing.T) *server.Server {
	t.Helper()
	s, err := server.NewServer(&server.Options{
		ServerName: "s1", Host: "127.0.0.1", Port: -1, JetStream: true,
		StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

// inprocConnect opens a connection closed at the end of the test.
func inprocConnect(t *testing.T, url string) natsjs.JetStream {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := natsjs.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// inprocEventually polls cond every 10 ms until it holds or d passes.
func inprocEventually(t *testing.T, d time.Duration, what string, cond func() bool) {
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

// inprocTiming are the tests' timings (as main_test.go's testTiming).
var inprocTiming = []Option{
	WithLeaseTTL(time.Second),
	WithAckWait(1500 * time.Millisecond),
	WithFetch(256, 250*time.Millisecond),
	WithRetry(3, 5*time.Millisecond),
	WithDrainTimeout(5 * time.Second),
}

// inprocStart starts a node named name on js with a no-op handler; it is killed
// (if still running) and its pool closed at the end of the test.
func inprocStart(t *testing.T, js natsjs.JetStream, name string, opts ...Option) *Consumer {
	t.Helper()
	p, err := pool.New[string]()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	all := append(append([]Option{WithStream("CHAT"), WithMember(name)}, inprocTiming...), opts...)
	c, err := Start(ctx, js, p, func(context.Context, *Msg) error { return nil }, all...)
	if err != nil {
		cancel()
		_ = p.Close(context.Background())
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		cancel()
		<-c.Done()
		ctx, done := context.WithTimeout(context.Background(), 10*time.Second)
		defer done()
		_ = p.Close(ctx)
	})
	return c
}

// wrappedJS is a JetStream whose key-value buckets are wrapped by wrap.
type wrappedJS struct {
	natsjs.JetStream
	wrap func(bucket string, kv natsjs.KeyValue) natsjs.KeyValue
}

func (js *wrappedJS) CreateOrUpdateKeyValue(ctx context.Context, cfg natsjs.KeyValueConfig) (natsjs.KeyValue, error) {
	kv, err := js.JetStream.CreateOrUpdateKeyValue(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return js.wrap(cfg.Bucket, kv), nil
}

// lostReplyKV is a bucket whose next Update, once armed, is stored by the
// server but answered with a timeout, as a request whose reply was lost.
type lostReplyKV struct {
	natsjs.KeyValue
	armed atomic.Bool
	lost  chan struct{} // closed after the lost reply
}

func (kv *lostReplyKV) Update(ctx context.Context, key string, val []byte, last uint64) (uint64, error) {
	rev, err := kv.KeyValue.Update(ctx, key, val, last)
	if err == nil && kv.armed.CompareAndSwap(true, false) {
		close(kv.lost)
		return 0, context.DeadlineExceeded
	}
	return rev, err
}

// TestStopAfterLostMemberRenewalReply: a member renewal stored by the
// server whose reply was lost leaves the node's member revision one
// behind; a Stop then must still delete its member key (re-reading it
// while it names this instance), so that the other node drops it from its
// ring and takes its partitions at once, not a TTL later.
func TestStopAfterLostMemberRenewalReply(t *testing.T) {
	s := inprocServer(t)
	js := inprocConnect(t, s.ClientURL())
	if _, err := CreateStream(context.Background(), js, StreamSpec{Name: "CHAT", Partitions: 8}); err != nil {
		t.Fatal(err)
	}
	const ttl = 2 * time.Second // renewals every 500 ms
	members := &lostReplyKV{lost: make(chan struct{})}
	wrapped := &wrappedJS{JetStream: inprocConnect(t, s.ClientURL()), wrap: func(bucket string, kv natsjs.KeyValue) natsjs.KeyValue {
		if bucket == "CHAT_shoal_members" {
			members.KeyValue = kv
			return members
		}
		return kv
	}}
	n1 := inprocStart(t, wrapped, "n1", WithLeaseTTL(ttl))
	n2 := inprocStart(t, inprocConnect(t, s.ClientURL()), "n2", WithLeaseTTL(ttl))
	inprocEventually(t, 10*time.Second, "both nodes hold partitions", func() bool {
		return len(n1.Stats().Partitions) > 0 && len(n2.Stats().Partitions) > 0 &&
			len(n1.Stats().Partitions)+len(n2.Stats().Partitions) == 8
	})

	members.armed.Store(true)
	select {
	case <-members.lost:
	case <-time.After(5 * time.Second):
		t.Fatal("no member renewal within 5 s")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n1.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	stopped := time.Now()

	kv, err := js.KeyValue(ctx, "CHAT_shoal_members")
	if err != nil {
		t.Fatal(err)
	}
	if e, err := kv.Get(ctx, "n1"); !errors.Is(err, natsjs.ErrKeyNotFound) {
		rev := uint64(0)
		if e != nil {
			rev = e.Revision()
		}
		t.Errorf("after Stop, n1's member key is still there (revision %d, get error %v); want it deleted", rev, err)
	}
	inprocEventually(t, 5*time.Second, "n2 holds every partition", func() bool {
		return len(n2.Stats().Partitions) == 8
	})
	took := time.Since(stopped)
	t.Logf("n2 held every partition %v after n1's Stop returned (n2's members then: %v)", took, n2.Stats().Members)
	if took > ttl/2 {
		t.Errorf("hand-off after Stop took %v (TTL %v): n2 kept the stopped node in its ring", took, ttl)
	}
}

// slowStaleKV is a lease bucket whose every round trip takes rtt: Update
// fails on the revision (the key moved on: another node renewed it) and
// Get returns that node's lease at a newer revision. Calls are counted.
type slowStaleKV struct {
	natsjs.KeyValue // nil: other methods are not used
	rtt             time.Duration
	updates, gets   atomic.Int32
}

func (kv *slowStaleKV) wait(ctx context.Context) error {
	t := time.NewTimer(kv.rtt)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (kv *slowStaleKV) Update(ctx context.Context, _ string, _ []byte, _ uint64) (uint64, error) {
	kv.updates.Add(1)
	if err := kv.wait(ctx); err != nil {
		return 0, err
	}
	return 0, natsjs.ErrKeyRevisionMismatch
}

func (kv *slowStaleKV) Get(ctx context.Context, _ string) (natsjs.KeyValueEntry, error) {
	kv.gets.Add(1)
	if err := kv.wait(ctx); err != nil {
		return nil, err
	}
	return revEntry{leaseValue{Owner: "n2", Instance: "other", State: leaseHeld}.encode(), 1000}, nil
}

// TestClaimsDoNotStarveRenewals: a node holds partition 0, renewed a
// quarter TTL ago, and its views of 8 other leases are stale (a watcher
// behind after a reconnection), so one pass of the control loop makes 8
// claims that fail, each with a read of the key, every round trip taking
// TTL/20. The claims run at once: the pass ends well within the lease of
// partition 0, which is not fenced.
func TestClaimsDoNotStarveRenewals(t *testing.T) {
	const ttl = time.Second
	const parts = 9
	kv := &slowStaleKV{rtt: ttl / 20}
	c := &Consumer{cfg: defaults(), epoch: time.Now(), instance: "me",
		memberView: map[string]*memberSeen{}, leaseView: map[int]*leaseSeen{}, parts: map[int]*partition{},
		kick: make(chan struct{}, 1), membersReady: true, leasesReady: true, leases: kv}
	c.cfg.leaseTTL, c.cfg.member, c.cfg.partitions = ttl, "n1", parts
	c.ctx, c.cancel = context.WithCancelCause(context.Background())
	t.Cleanup(func() { c.cancel(nil) })
	// Time passes so that c.now() - 2*ttl is a valid sighting time.
	c.epoch = c.epoch.Add(-3 * ttl)

	held := c.newPartition(0, 100, c.now()-ttl/4) // renewed a quarter TTL ago
	c.parts[0] = held
	for p := 1; p < parts; p++ {
		c.leaseView[p] = &leaseSeen{rev: 5, at: c.now() - 2*ttl,
			val: leaseValue{Owner: "n2", Instance: "other", State: leaseHeld}}
	}
	left := held.validUntil() - c.now()
	start := time.Now()
	c.rebalance()
	took := time.Since(start)
	t.Logf("one rebalance pass: %v (%d claims, %d refresh reads); partition 0's lease had %v left", took, kv.updates.Load(), kv.gets.Load(), left)
	if !held.liveNow() {
		t.Errorf("partition 0's lease ran out during one control pass of failed claims (%v, round trips of TTL/20): "+
			"the control loop renewed nothing while it claimed", took)
	}
	c.checkValidity() // what a kick pass does next
	if held.fenced() {
		t.Errorf("partition 0 fenced as lost (lost %d) though every write took TTL/20", c.st.lost.Load())
	}
}

// readSignalKV closes read after its first Get.
type readSignalKV struct {
	natsjs.KeyValue
	reads atomic.Int32
	read  chan struct{}
}

func (kv *readSignalKV) Get(ctx context.Context, key string) (natsjs.KeyValueEntry, error) {
	e, err := kv.KeyValue.Get(ctx, key)
	if kv.reads.Add(1) == 1 {
		close(kv.read)
	}
	return e, err
}

// TestJoinAfterOldKeyDeleted: a node starts under a name whose key exists;
// while it waits for the key to go stale, the old process leaves
// gracefully and deletes the key. The name is free: Start joins (it must
// not answer ErrDuplicateMember for a name nobody holds).
func TestJoinAfterOldKeyDeleted(t *testing.T) {
	s := inprocServer(t)
	js := inprocConnect(t, s.ClientURL())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := CreateStream(ctx, js, StreamSpec{Name: "CHAT", Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	// The previous process's member key, as its join and renewals leave it.
	kv, err := js.CreateOrUpdateKeyValue(ctx, natsjs.KeyValueConfig{Bucket: "CHAT_shoal_members", History: 1, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Create(ctx, "n1", []byte(`{"instance":"old"}`)); err != nil {
		t.Fatal(err)
	}
	members := &readSignalKV{read: make(chan struct{})}
	wrapped := &wrappedJS{JetStream: inprocConnect(t, s.ClientURL()), wrap: func(bucket string, b natsjs.KeyValue) natsjs.KeyValue {
		if bucket == "CHAT_shoal_members" {
			members.KeyValue = b
			return members
		}
		return b
	}}
	p, err := pool.New[string]()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = p.Close(context.Background()) }()
	type result struct {
		c   *Consumer
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := Start(ctx, wrapped, p, func(context.Context, *Msg) error { return nil },
			append([]Option{WithStream("CHAT"), WithMember("n1")}, inprocTiming...)...)
		done <- result{c, err}
	}()
	select {
	case <-members.read: // join saw the old key and waits for it to go stale
	case <-time.After(10 * time.Second):
		t.Fatal("join did not read the member key")
	}
	if err := kv.Delete(ctx, "n1"); err != nil { // the old process's Stop
		t.Fatal(err)
	}
	r := <-done
	if r.c != nil {
		defer func() { _ = r.c.Stop(ctx) }()
	}
	if r.err != nil {
		t.Errorf("Start after the old process deleted its key: %v; want it to join (nobody holds the name)", r.err)
	}
}

// failingKV answers every Update at once with err (no revision conflict).
type failingKV struct {
	natsjs.KeyValue
	err error
}

func (kv *failingKV) Update(context.Context, string, []byte, uint64) (uint64, error) {
	return 0, kv.err
}

// TestFreeLeaseErrorIsReleased: a release whose free write fails at once
// with an error other than a revision conflict (no responders while the
// bucket's stream elects a leader) counts Released, as one that timed out:
// the key still names this node and runs out in one TTL; nothing took it.
func TestFreeLeaseErrorIsReleased(t *testing.T) {
	pt := testPartition(t, time.Hour)
	pt.c.instance = "me"
	pt.c.leases = &failingKV{err: nats.ErrNoResponders}
	pt.freeLease(context.Background(), false)
	if r, l := pt.c.st.released.Load(), pt.c.st.lost.Load(); l != 0 {
		t.Errorf("free write failed with %v: released %d, lost %d; counted as taken by another node", nats.ErrNoResponders, r, l)
	}
}

// heldWatchKV is a bucket whose watchers report nothing (their initial
// values never arrive) and whose watchers' Stop waits until release is
// closed (nil: it does not wait).
type heldWatchKV struct {
	natsjs.KeyValue
	release chan struct{}
}

func (kv *heldWatchKV) WatchAll(ctx context.Context, opts ...natsjs.WatchOpt) (natsjs.KeyWatcher, error) {
	w, err := kv.KeyValue.WatchAll(ctx, opts...)
	if err != nil {
		return nil, err
	}
	return &heldWatcher{KeyWatcher: w, release: kv.release}, nil
}

type heldWatcher struct {
	natsjs.KeyWatcher
	release chan struct{}
}

func (w *heldWatcher) Updates() <-chan natsjs.KeyValueEntry { return nil }

func (w *heldWatcher) Stop() error {
	if w.release != nil {
		<-w.release
	}
	return w.KeyWatcher.Stop()
}

// holdWatchers returns a JetStream on s whose members bucket is a
// heldWatchKV with release.
func holdWatchers(t *testing.T, s *server.Server, release chan struct{}) natsjs.JetStream {
	return &wrappedJS{JetStream: inprocConnect(t, s.ClientURL()), wrap: func(bucket string, kv natsjs.KeyValue) natsjs.KeyValue {
		if bucket == "CHAT_shoal_members" {
			return &heldWatchKV{KeyValue: kv, release: release}
		}
		return kv
	}}
}

// TestMembersBeforeFirstRebalance: Stats.Members counts this node from
// Start on, before its watcher has brought the members' initial values
// (here it never does), not only after its first rebalance.
func TestMembersBeforeFirstRebalance(t *testing.T) {
	s := inprocServer(t)
	js := inprocConnect(t, s.ClientURL())
	if _, err := CreateStream(context.Background(), js, StreamSpec{Name: "CHAT", Partitions: 4}); err != nil {
		t.Fatal(err)
	}
	c := inprocStart(t, holdWatchers(t, s, nil), "n1")
	if got := c.Stats().Members; !slices.Equal(got, []string{"n1"}) {
		t.Errorf("Stats().Members after Start = %q, want [n1]", got)
	}
}
