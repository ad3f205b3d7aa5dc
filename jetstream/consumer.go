package jetstream

// Invariants:
//
//   - c.mu guards memberView, leaseView, parts, ring, ringKey, live, the
//     ready flags, fatalErr and stoppedByStop. It is never held across a
//     network call.
//   - A partition is in c.parts from the successful claim of its lease until
//     its goroutine exits; only that goroutine removes it.
//   - The control goroutine is the only one that claims leases and renews
//     the member key; it and a partition's own goroutine (releasing) are the
//     only ones that write that partition's lease, each under pt.leaseMu.
//   - c.done is closed after every goroutine started by Start has exited.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/shoal-go/shoal/pool"
	"github.com/shoal-go/shoal/shard"
)

// Consumer is one node's share of a partitioned stream: it takes part in the
// cluster's membership, holds the leases of the partitions that the member
// ring assigns to it, pulls their messages, and runs each in the local pool
// keyed by room. See the package documentation for the guarantees.
type Consumer struct {
	cfg      config
	js       natsjs.JetStream
	nc       *nats.Conn
	pool     *pool.Pool[string]              // nil for StartBatcher
	batcher  *pool.Batcher[string, Delivery] // nil for Start
	handler  Handler                         // nil for StartBatcher
	instance string
	members  natsjs.KeyValue
	leases   natsjs.KeyValue
	replicas int
	epoch    time.Time // c.now() is the monotonic time since epoch

	ctx    context.Context // the consumer's life; cancelled when it stops
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup
	kick   chan struct{} // wakes the control loop; capacity 1, sends never block
	leave  chan struct{} // closed by Stop
	once   sync.Once     // closes leave
	done   chan struct{} // closed when every goroutine has exited

	memberRev uint64      // the own member key's revision; control goroutine only
	checking  atomic.Bool // a checkBucket question is under way

	mu            sync.Mutex
	memberView    map[string]*memberSeen
	leaseView     map[int]*leaseSeen
	membersReady  bool
	leasesReady   bool
	parts         map[int]*partition
	ring          *shard.Ring
	ringKey       string
	live          []string
	fatalErr      error // why the consumer stopped; nil after a graceful Stop
	stoppedByStop bool

	st counters
}

// counters are the consumer's monotonic statistics.
type counters struct {
	acquired, released, lost                  atomic.Uint64
	delivered, redelivered, acked, duplicates atomic.Uint64
	retries, deadLetters, refusals, ackErrors atomic.Uint64
	handled, resyncs, dedupErrors, recreated  atomic.Uint64
	letterErrors, leaseErrors, requestErrors  atomic.Uint64
}

// errGraceful is the cause of the consumer's context after a graceful Stop.
var errGraceful = errors.New("shoal/jetstream: left the cluster")

// Start joins the cluster as the member named by WithMember and starts
// consuming the stream named by WithStream into p with h. It returns once
// the node is a member, with an error for a bad configuration: ErrNoStream,
// ErrBadPartitions, ErrNoMember, ErrDuplicateMember, ErrBadOption, or
// ErrPoolClosed for a pool closed already.
//
// ctx bounds the consumer's life. When it is done, the consumer stops at
// once, as a crashed process would: it acknowledges nothing more, cancels
// the contexts of its handlers, and releases no lease, so its partitions
// move to other nodes when their leases expire. Stop leaves gracefully.
//
// p is not closed by the consumer. Handlers run in p as tasks of group
// m.Room; they never return an error to p, so p's retry policy and dead
// letters do not apply to them.
func Start(ctx context.Context, js natsjs.JetStream, p *pool.Pool[string], h Handler, opts ...Option) (*Consumer, error) {
	switch {
	case p == nil:
		return nil, fmt.Errorf("%w: nil pool", ErrBadOption)
	case h == nil:
		return nil, fmt.Errorf("%w: nil handler", ErrBadOption)
	}
	return start(ctx, js, p, nil, h, opts)
}

// StartBatcher is Start for a pool.Batcher made with BatchFunc: each room's
// queued messages are handed to the BatchHandler in one call, and each
// message of the call is acknowledged after the call succeeded. Everything
// else (membership, leases, order across hand-offs, dead letters, dedup,
// backpressure: a Batcher that refuses holds pulling back) is as for
// Start. b is not closed by the consumer.
//
//	b, _ := pool.NewBatcher(shoaljs.BatchFunc(persist), pool.WithMaxBatch(64))
//	c, err := shoaljs.StartBatcher(ctx, js, b, shoaljs.WithStream("CHAT"), shoaljs.WithMember(host))
func StartBatcher(ctx context.Context, js natsjs.JetStream, b *pool.Batcher[string, Delivery], opts ...Option) (*Consumer, error) {
	if b == nil {
		return nil, fmt.Errorf("%w: nil Batcher", ErrBadOption)
	}
	return start(ctx, js, nil, b, nil, opts)
}

// start is Start and StartBatcher: exactly one of p and b is set.
func start(ctx context.Context, js natsjs.JetStream, p *pool.Pool[string], b *pool.Batcher[string, Delivery], h Handler, opts []Option) (*Consumer, error) {
	cfg := defaults()
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o.apply(&cfg); err != nil {
			return nil, err
		}
	}
	switch {
	case ctx == nil:
		return nil, fmt.Errorf("%w: nil context", ErrBadOption)
	case js == nil:
		return nil, fmt.Errorf("%w: nil JetStream", ErrBadOption)
	case cfg.member == "":
		return nil, fmt.Errorf("%w: WithMember is required", ErrNoMember)
	}
	if (p != nil && p.Snapshot().Closed) || (b != nil && b.Snapshot().Closed) {
		return nil, fmt.Errorf("%w: closed before Start", ErrPoolClosed)
	}
	replicas, err := layout(ctx, js, &cfg)
	if err != nil {
		return nil, err
	}
	if cfg.bucketPrefix == "" {
		if !bucketRE.MatchString(cfg.stream) {
			return nil, fmt.Errorf("%w: stream name %q is no bucket prefix; give WithBucketPrefix", ErrBadOption, cfg.stream)
		}
		cfg.bucketPrefix = cfg.stream
	}
	if cfg.dlqSubject == "" {
		cfg.dlqSubject = "shoal.dlq." + cfg.stream
	}
	c := &Consumer{
		cfg:        cfg,
		js:         js,
		nc:         js.Conn(),
		pool:       p,
		batcher:    b,
		handler:    h,
		instance:   nuid.Next(),
		replicas:   replicas,
		epoch:      time.Now(),
		kick:       make(chan struct{}, 1),
		leave:      make(chan struct{}),
		done:       make(chan struct{}),
		memberView: make(map[string]*memberSeen),
		leaseView:  make(map[int]*leaseSeen),
		parts:      make(map[int]*partition),
		live:       []string{cfg.member}, // a member from Start on; rebalance adds the others
	}
	if c.members, err = js.CreateOrUpdateKeyValue(ctx, natsjs.KeyValueConfig{
		Bucket:      cfg.bucketPrefix + "_shoal_members",
		Description: "shoal members of stream " + cfg.stream,
		History:     1,
		TTL:         max(100*cfg.leaseTTL, time.Hour), // forgets crashed members' keys
		Replicas:    replicas,
	}); err != nil {
		return nil, fmt.Errorf("shoal/jetstream: members bucket: %w", err)
	}
	if c.leases, err = js.CreateOrUpdateKeyValue(ctx, natsjs.KeyValueConfig{
		Bucket:      cfg.bucketPrefix + "_shoal_leases",
		Description: "shoal partition leases of stream " + cfg.stream,
		History:     1,
		Replicas:    replicas,
	}); err != nil {
		return nil, fmt.Errorf("shoal/jetstream: leases bucket: %w", err)
	}
	if err := c.join(ctx); err != nil {
		return nil, err
	}
	c.ctx, c.cancel = context.WithCancelCause(context.WithoutCancel(ctx))
	mw, err := c.members.WatchAll(c.ctx)
	if err != nil {
		c.cancel(err)
		c.unjoin(ctx)
		return nil, fmt.Errorf("shoal/jetstream: watch members: %w", err)
	}
	lw, err := c.leases.WatchAll(c.ctx)
	if err != nil {
		_ = mw.Stop()
		c.cancel(err)
		c.unjoin(ctx)
		return nil, fmt.Errorf("shoal/jetstream: watch leases: %w", err)
	}
	stopLife := context.AfterFunc(ctx, func() { c.cancel(context.Cause(ctx)) })
	c.wg.Add(4)
	go c.watch(mw, c.onMember)
	go c.watch(lw, c.onLease)
	go c.control()
	go c.progress()
	go func() {
		c.wg.Wait()
		stopLife()
		close(c.done)
	}()
	return c, nil
}

// join makes this node a member under its name. A key left by a crashed node
// of the same name is taken over once it has not changed for one TTL; a key
// that changes meanwhile belongs to a live node.
func (c *Consumer) join(ctx context.Context) error {
	val, _ := json.Marshal(memberValue{Instance: c.instance})
	key := c.cfg.member
	rev, err := c.members.Create(ctx, key, val)
	if err == nil {
		c.memberRev = rev
		return nil
	}
	if !isConflict(err) {
		return fmt.Errorf("shoal/jetstream: join as %q: %w", key, err)
	}
	e, err := c.members.Get(ctx, key)
	if err != nil {
		return fmt.Errorf("shoal/jetstream: join as %q: %w", key, err)
	}
	seen := e.Revision()
	deleted := false // the old process deleted its key (a graceful Stop)
	tick := time.NewTicker(c.cfg.leaseTTL / 8)
	defer tick.Stop()
	deadline := time.Now().Add(c.cfg.leaseTTL + c.cfg.leaseTTL/4)
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		e, err := c.members.Get(ctx, key)
		if err != nil && !errors.Is(err, natsjs.ErrKeyNotFound) {
			return fmt.Errorf("shoal/jetstream: join as %q: %w", key, err)
		}
		if err == nil && e.Revision() != seen {
			return fmt.Errorf("%w: %q is held by a live node", ErrDuplicateMember, key)
		}
		if err != nil {
			deleted = true
			break
		}
	}
	if deleted {
		// Free now: created anew, unless another node took the name
		// meanwhile (then Create fails on the key that exists).
		rev, err = c.members.Create(ctx, key, val)
	} else {
		rev, err = c.members.Update(ctx, key, val, seen)
	}
	if isConflict(err) {
		return fmt.Errorf("%w: %q is held by a live node", ErrDuplicateMember, key)
	}
	if err != nil {
		return fmt.Errorf("shoal/jetstream: join as %q: %w", key, err)
	}
	c.memberRev = rev
	return nil
}

// unjoin deletes the member key that join created, for a Start that fails
// after joining: left, it would make the other nodes count this node live
// for a TTL and give it partitions that nobody consumes.
func (c *Consumer) unjoin(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.leaseTTL/2)
	defer cancel()
	_ = c.members.Delete(ctx, c.cfg.member, natsjs.LastRevision(c.memberRev))
}

// now is the monotonic time since the consumer started.
func (c *Consumer) now() time.Duration { return time.Since(c.epoch) }

// wake asks the control loop to look at the cluster again.
func (c *Consumer) wake() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// watch feeds a bucket's updates to on until the consumer stops.
func (c *Consumer) watch(w natsjs.KeyWatcher, on func(natsjs.KeyValueEntry)) {
	defer c.wg.Done()
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-c.ctx.Done():
			return
		case e, ok := <-w.Updates():
			if !ok {
				if c.ctx.Err() == nil {
					c.fail(fmt.Errorf("shoal/jetstream: watcher ended: %w", nats.ErrConnectionClosed))
				}
				return
			}
			on(e)
			c.wake()
		}
	}
}

// onMember records a member key's change; nil marks the end of the initial
// values.
func (c *Consumer) onMember(e natsjs.KeyValueEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e == nil {
		c.membersReady = true
		return
	}
	var v memberValue
	_ = json.Unmarshal(e.Value(), &v)
	c.memberView[e.Key()] = &memberSeen{
		rev:      e.Revision(),
		at:       c.now(),
		deleted:  e.Operation() != natsjs.KeyValuePut,
		instance: v.Instance,
	}
}

// onLease records a lease key's change.
func (c *Consumer) onLease(e natsjs.KeyValueEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e == nil {
		c.leasesReady = true
		return
	}
	p, ok := partitionOfKey(e.Key())
	if !ok {
		return
	}
	c.leaseView[p] = c.leaseSeenOf(e)
}

// leaseSeenOf is the view of the lease entry e, seen now.
func (c *Consumer) leaseSeenOf(e natsjs.KeyValueEntry) *leaseSeen {
	s := &leaseSeen{rev: e.Revision(), at: c.now(), deleted: e.Operation() != natsjs.KeyValuePut}
	if !s.deleted && json.Unmarshal(e.Value(), &s.val) != nil {
		s.val = leaseValue{State: leaseHeld} // unreadable: treat as held by someone
	}
	return s
}

// refreshLease reads the lease of partition p after a claim of it failed,
// and records it if the view is older: a watcher can miss changes for
// seconds (across a reconnection, nats.go resets it only after missed
// heartbeats), and a claim from a stale revision would fail on every pass
// until it catches up.
func (c *Consumer) refreshLease(ctx context.Context, p int) {
	e, err := c.leases.Get(ctx, leaseKey(p))
	if err != nil {
		return // gone (the next claim creates it) or unreachable: the watcher will tell
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur := c.leaseView[p]; cur == nil || e.Revision() > cur.rev {
		c.leaseView[p] = c.leaseSeenOf(e)
	}
}

// checkBucket asks, after a write to kv failed for another reason than a
// conflict, whether the server still has the bucket; one deleted stops the
// consumer with ErrBucketDeleted. (Nothing else would tell: the watchers
// of a deleted bucket fall silent, and the partitions' leases, lost at
// their next renewal, could never be claimed again.) The question runs
// on a goroutine of its own, one at a time: a write to a deleted bucket
// fails only when its context ends (nats.go retries it), as one to an
// unreachable server does, and the control loop must not wait a second
// round trip before it renews the leases. The bucket must be missing at
// two questions a quarter TTL apart: stopping the consumer is the
// application's to undo.
func (c *Consumer) checkBucket(kv natsjs.KeyValue) {
	if !c.checking.CompareAndSwap(false, true) {
		return
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer c.checking.Store(false)
		missing := func() bool {
			ctx, cancel := context.WithTimeout(c.ctx, c.cfg.leaseTTL/4)
			defer cancel()
			_, err := c.js.KeyValue(ctx, kv.Bucket())
			return errors.Is(err, natsjs.ErrBucketNotFound)
		}
		if !missing() {
			return
		}
		select {
		case <-c.ctx.Done():
			return
		case <-time.After(c.cfg.leaseTTL / 4):
		}
		if missing() {
			c.fail(fmt.Errorf("%w: %q", ErrBucketDeleted, kv.Bucket()))
		}
	}()
}

// fail stops the consumer at once with err.
func (c *Consumer) fail(err error) {
	c.mu.Lock()
	if c.fatalErr == nil && !c.stoppedByStop {
		c.fatalErr = err
	}
	c.mu.Unlock()
	c.cancel(err)
}

// control runs membership, lease renewal and partition assignment.
func (c *Consumer) control() {
	defer c.wg.Done()
	tick := time.NewTicker(c.cfg.leaseTTL / 4)
	defer tick.Stop()
	leave := c.leave
	leaving := false
	for {
		renew := false
		select {
		case <-c.ctx.Done():
			c.fenceAll()
			return
		case <-tick.C:
			renew = true
		case <-c.kick:
		case <-leave:
			leave = nil
			leaving = true
			c.startLeaving()
		}
		if c.nc.IsClosed() {
			c.fail(fmt.Errorf("shoal/jetstream: %w", nats.ErrConnectionClosed))
			continue
		}
		if renew {
			if !leaving {
				c.renewMember()
			}
			c.renewLeases()
		}
		c.checkValidity()
		if leaving {
			c.mu.Lock()
			n := len(c.parts)
			c.mu.Unlock()
			if n == 0 {
				c.cancel(errGraceful)
			}
			continue
		}
		c.rebalance()
	}
}

// renewMember renews this node's member key.
func (c *Consumer) renewMember() {
	val, _ := json.Marshal(memberValue{Instance: c.instance})
	ctx, cancel := context.WithTimeout(c.ctx, c.cfg.leaseTTL/4)
	defer cancel()
	rev, err := c.members.Update(ctx, c.cfg.member, val, c.memberRev)
	switch {
	case err == nil:
		c.memberRev = rev
	case !isConflict(err):
		// Timed out, unreachable, or the bucket is gone.
		c.st.leaseErrors.Add(1)
		c.checkBucket(c.members)
	default:
		// A renewal that timed out may have been stored: then the key
		// still names this instance.
		e, gerr := c.members.Get(ctx, c.cfg.member)
		var v memberValue
		if gerr == nil && json.Unmarshal(e.Value(), &v) == nil && v.Instance == c.instance {
			c.memberRev = e.Revision()
			return
		}
		if errors.Is(gerr, natsjs.ErrKeyNotFound) {
			// Deleted (by an operator, or by the bucket's TTL after a
			// long partition), not taken over: this node is alive, and
			// joins again. The others saw it leave and rebalanced; they
			// see it join. Its leases, fenced by instance, are what they
			// are. A key created meanwhile under its name is another
			// node's: a duplicate.
			rev, cerr := c.members.Create(ctx, c.cfg.member, val)
			switch {
			case cerr == nil:
				c.memberRev = rev
			case isConflict(cerr):
				c.fail(fmt.Errorf("%w: %q was deleted and taken by another node", ErrDuplicateMember, c.cfg.member))
			default:
				c.st.leaseErrors.Add(1) // tried again at the next renewal
			}
			return
		}
		if gerr == nil {
			c.fail(fmt.Errorf("%w: %q was taken over while this node could not renew it", ErrDuplicateMember, c.cfg.member))
		}
	}
}

// startLeaving removes this node from the membership and starts releasing
// every partition it holds.
func (c *Consumer) startLeaving() {
	ctx, cancel := context.WithTimeout(c.ctx, c.cfg.leaseTTL/2)
	err := c.members.Delete(ctx, c.cfg.member, natsjs.LastRevision(c.memberRev))
	if isConflict(err) {
		// A renewal whose reply was lost moved the revision: while the
		// key still names this instance, it is ours to delete at its
		// revision. Left, it would keep this node in the others' rings
		// for a TTL, and its partitions unowned.
		if e, gerr := c.members.Get(ctx, c.cfg.member); gerr == nil && e.Operation() == natsjs.KeyValuePut {
			var v memberValue
			if json.Unmarshal(e.Value(), &v) == nil && v.Instance == c.instance {
				_ = c.members.Delete(ctx, c.cfg.member, natsjs.LastRevision(e.Revision()))
			}
		}
	}
	cancel()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, pt := range c.parts {
		pt.startRelease()
	}
}

// renewLeases renews the lease of every partition held, and fences those
// taken by another node.
func (c *Consumer) renewLeases() {
	c.mu.Lock()
	held := make([]*partition, 0, len(c.parts))
	for _, pt := range c.parts {
		held = append(held, pt)
	}
	c.mu.Unlock()
	// In parallel: a replicated write takes a round of consensus, and a
	// node holding many partitions must renew them all within the TTL.
	var wg sync.WaitGroup
	for _, pt := range held {
		wg.Go(pt.renew)
	}
	wg.Wait()
}

// checkValidity fences the partitions whose lease has run out unrenewed.
func (c *Consumer) checkValidity() {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, pt := range c.parts {
		if now >= pt.validUntil() {
			pt.lose()
		}
	}
}

// fenceAll fences every partition held; the consumer is stopping.
func (c *Consumer) fenceAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, pt := range c.parts {
		pt.fence()
	}
}

// liveMembersLocked returns the sorted names of the members whose key
// changed within one TTL, this node included.
func (c *Consumer) liveMembersLocked(now time.Duration) []string {
	live := []string{c.cfg.member}
	for name, m := range c.memberView {
		if name == c.cfg.member || m.deleted || now-m.at > c.cfg.leaseTTL {
			continue
		}
		live = append(live, name)
	}
	slices.Sort(live)
	return live
}

// partitionHash places partition p on the member ring.
func partitionHash(p int) uint64 { return shard.Hash(uint64(p)) }

// Assign returns the member that each of partitions partitions goes to when
// members are the live members: the owner of partition p is the member that
// a shard.Ring of members (default table size) gives for
// shard.Hash(uint64(p)). Every node computes the same assignment from the
// same members; a join or a leave moves about 1/n of the partitions. It
// returns shard.NewRing's error for bad member names (empty, duplicated).
func Assign(members []string, partitions int) ([]string, error) {
	if partitions <= 0 {
		return nil, fmt.Errorf("%w: %d", ErrBadPartitions, partitions)
	}
	r, err := shard.NewRing(members)
	if err != nil {
		return nil, err
	}
	out := make([]string, partitions)
	for p := range out {
		out[p] = r.Lookup(partitionHash(p))
	}
	return out, nil
}

// rebalance releases the partitions that the ring gives to others and claims
// those it gives to this node once their lease is free or expired.
func (c *Consumer) rebalance() {
	now := c.now()
	type claim struct {
		p    int
		seen *leaseSeen
	}
	var claims []claim
	c.mu.Lock()
	if !c.membersReady || !c.leasesReady {
		c.mu.Unlock()
		return
	}
	live := c.liveMembersLocked(now)
	if key := strings.Join(live, "\x00"); key != c.ringKey || c.ring == nil {
		r, err := shard.NewRing(live)
		if err != nil { // names are valid keys and unique: cannot happen
			c.mu.Unlock()
			c.fail(fmt.Errorf("shoal/jetstream: member ring: %w", err))
			return
		}
		c.ring, c.ringKey, c.live = r, key, live
	}
	for p := range c.cfg.partitions {
		owner := c.ring.Lookup(partitionHash(p))
		if pt, ok := c.parts[p]; ok {
			if owner != c.cfg.member {
				pt.startRelease()
			}
			continue
		}
		if owner != c.cfg.member {
			continue
		}
		s := c.leaseView[p]
		switch {
		case s == nil || s.deleted || s.val.State == leaseFree:
		case s.val.Instance == c.instance:
			// Held in this instance's name, though it holds no such
			// partition: a renewal stored after the partition was
			// fenced (one that waited out a disconnection), or a release
			// whose write did not arrive. It is this instance's to take
			// back, from that revision.
		case now-s.at > c.cfg.leaseTTL: // expired
		default:
			continue
		}
		claims = append(claims, claim{p, s})
	}
	c.mu.Unlock()
	// The claims run at once, not one after another: each is a round trip
	// (two when it fails), and the control loop renews nothing until the
	// pass ends, so k claims in a row could outlast the leases it holds.
	var wg sync.WaitGroup
	for _, cl := range claims {
		wg.Go(func() { c.claim(cl.p, cl.seen) })
	}
	wg.Wait()
}

// claim takes the lease of partition p, last seen as s (nil: never seen),
// and starts consuming it.
func (c *Consumer) claim(p int, s *leaseSeen) {
	var floor uint64
	if s != nil && !s.deleted && s.val.StreamCreated == c.cfg.streamCreated {
		floor = s.val.Floor
	}
	val := leaseValue{Owner: c.cfg.member, Instance: c.instance, State: leaseHeld, Floor: floor, StreamCreated: c.cfg.streamCreated}.encode()
	ctx, cancel := context.WithTimeout(c.ctx, c.cfg.leaseTTL/4)
	defer cancel()
	sent := c.now()
	var rev uint64
	var err error
	if s == nil || s.deleted {
		rev, err = c.leases.Create(ctx, leaseKey(p), val)
	} else {
		rev, err = c.leases.Update(ctx, leaseKey(p), val, s.rev)
	}
	if err != nil {
		if !isConflict(err) {
			c.st.leaseErrors.Add(1)
			c.checkBucket(c.leases)
		}
		// Someone else was faster, or the view is stale: the next pass
		// judges from the key as it is now.
		c.refreshLease(ctx, p)
		return
	}
	pt := c.newPartition(p, rev, sent)
	pt.floor0 = floor
	c.mu.Lock()
	c.parts[p] = pt
	c.mu.Unlock()
	c.st.acquired.Add(1)
	c.wg.Add(1)
	go pt.run()
}

// exited removes pt after its goroutine has finished with it.
func (c *Consumer) exited(pt *partition) {
	c.mu.Lock()
	if c.parts[pt.p] == pt {
		delete(c.parts, pt.p)
	}
	c.mu.Unlock()
	c.wake()
}

// Stop leaves the cluster gracefully: the node leaves the membership, stops
// pulling, lets the messages it holds finish and acknowledges them (or, past
// the drain timeout, releases them for redelivery), and releases its leases,
// so that the next owners start at once. It returns nil after a graceful
// leave; ctx's error if ctx ended first (the consumer is then stopped as if
// killed); an error matching ErrStopped if the consumer had already
// stopped, or stopped otherwise before its leave was over (a failure, or
// Start's context ended), which wraps Err's error when there is one; and
// an error matching ErrBadOption, doing nothing, for a nil ctx.
func (c *Consumer) Stop(ctx context.Context) error {
	if ctx == nil {
		return fmt.Errorf("%w: nil context", ErrBadOption)
	}
	select {
	case <-c.done:
		if err := c.Err(); err != nil {
			return fmt.Errorf("%w: %w", ErrStopped, err)
		}
		return ErrStopped // after a graceful Stop
	default:
	}
	c.mu.Lock()
	c.stoppedByStop = true
	c.mu.Unlock()
	c.once.Do(func() { close(c.leave) })
	select {
	case <-c.done:
		// A failure or a kill may have come first, or during the leave:
		// the consumer stopped, but not by this Stop's graceful leave.
		if err := c.Err(); err != nil {
			return fmt.Errorf("%w: %w", ErrStopped, err)
		}
		return nil
	case <-ctx.Done():
		c.cancel(ctx.Err())
		<-c.done
		return ctx.Err()
	}
}

// Done returns a channel that is closed when the consumer has stopped and
// every goroutine it started has exited.
func (c *Consumer) Done() <-chan struct{} { return c.done }

// Err returns why the consumer stopped: nil while it runs and after a
// graceful Stop, the cause of Start's context after a kill, or the error that
// stopped it (its connection closed, ErrDuplicateMember, ErrPoolClosed,
// ErrStreamRecreated, ErrStreamDeleted, ErrBucketDeleted).
func (c *Consumer) Err() error {
	select {
	case <-c.done:
	default:
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fatalErr != nil {
		return c.fatalErr
	}
	if cause := context.Cause(c.ctx); cause != errGraceful {
		return cause
	}
	return nil
}

// Member returns this node's member name.
func (c *Consumer) Member() string { return c.cfg.member }

// Partitions returns the stream's partition count.
func (c *Consumer) Partitions() int { return c.cfg.partitions }
