package jetstream

// Invariants:
//
//   - pt.mu guards pending, inPool, emptyCh, dirty and left. A message is
//     in pending from its receipt until its task has acknowledged,
//     terminated or abandoned it, or the drain gave it back (Nak); whoever
//     takes it out of pending, under pt.mu, is the one that settles it, so
//     it gets one of Ack, Term or Nak. InProgress is sent only for
//     messages in pending.
//     inPool counts the entries of pending submitted to the pool.
//   - pt.ctx is cancelled exactly when the partition is fenced: its lease
//     was lost or ran out, the consumer stopped, or the drain ended. After
//     that the node sends nothing for the partition's messages but the
//     drain's Naks: no fetch, no InProgress, no Ack, no Term.
//   - Past validUntil the node acts on the partition no more until a
//     renewal moves validUntil: every fetch, submission, handler start,
//     dead letter's publication, InProgress, Ack and Term checks live()
//     first, which waits, past validUntil, for the control loop's verdict
//     (a renewal, or the fence).
//     The control loop fences only once its renewals have returned, so a
//     renewal that the servers stored late keeps the lease, and nothing was
//     done for the partition meanwhile.
//   - pt.validMu guards validCh, which is closed and replaced each time a
//     renewal moves validUntil.
//   - An entry leaves pending before its Ack or Term is sent, so the
//     server's count of unacknowledged messages is never below what pending
//     holds unless another node acknowledged one of them (see complete).
//   - Every delivery of the partition's consumer after the sequence that
//     recover read (lastDelivery) comes to this node, in delivery order;
//     a gap means one went elsewhere, and recover runs again before any
//     later message is submitted.
//   - pt.leaseMu serializes writes of the partition's lease (renewal,
//     release) and guards rev, released and unknownSince.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/shoal-go/shoal/pool"
)

// partition is a partition held by this node.
type partition struct {
	c     *Consumer
	p     int
	epoch uint64 // the lease revision of the claim
	// settled: recover has handed this node every message left
	// unacknowledged before; a release before that is marked dirty.
	settled atomic.Bool
	// prefix is "<subject>.<p>.", the part of each subject before the room.
	prefix string

	ctx     context.Context
	cancel  context.CancelFunc
	release chan struct{} // closed by startRelease
	relOnce sync.Once
	// submitCtx is the context of the pool's Submit: it ends with ctx, or
	// when the drain timeout has passed since startRelease (submitTimer),
	// so that a blocking pool's wait for room cannot hold a hand-off past
	// it. releasedAt is c.now() at startRelease. Both are written before
	// release is closed and read only after it is seen closed.
	submitCtx   context.Context
	stopSubmit  context.CancelFunc
	submitTimer *time.Timer
	releasedAt  time.Duration

	valid   atomic.Int64 // c.now() until which the lease is ours, in ns
	validMu sync.Mutex
	validCh chan struct{} // closed when valid moves
	lostF   atomic.Bool   // lose has counted this partition
	// lastDelivery is the consumer sequence of the last delivery received,
	// 0 before the first; the fetch loop only.
	lastDelivery uint64
	delivered    uint64 // info.Delivered.Stream as the last consumer info gave it

	// The partition's durable consumer and what recreate needs to create
	// it anew after an operator deleted it; the fetch loop only.
	//
	// cons is the consumer; gen counts its recreations. maxSeq is a stream
	// sequence at or below which every message of the partition was
	// delivered and, unless pending or left holds it, acknowledged or
	// terminated: valid once settled. ackFloor is the
	// server's acknowledged floor as the last consumer info gave it.
	// dupBelow: after a recreation, a delivery at or below it that neither
	// pending nor left holds was acknowledged already.
	cons   natsjs.Consumer
	gen    uint64
	maxSeq atomic.Uint64 // written by the fetch loop only
	// floor0 is the lease's Floor at the claim.
	floor0     uint64
	ackFloor   uint64
	dupBelow   uint64
	recovering bool
	lag        atomic.Uint64

	leaseMu  sync.Mutex
	rev      uint64
	released bool
	// unknownSince is c.now() when the first renewal whose outcome is
	// unknown (it timed out) was sent since the last known revision; -1
	// if none.
	unknownSince time.Duration

	mu      sync.Mutex
	pending map[uint64]*entry // by stream sequence
	inPool  int               // entries of pending submitted to the pool and not done
	emptyCh chan struct{}
	dirty   bool // a message was left unacknowledged (an Ack or a Dedup Record failed)
	// left holds the stream sequences of messages taken out of pending
	// but left unacknowledged (an Ack, a Term or a Dedup Record failed)
	// until they come again: recreate must start at or below them.
	left map[uint64]struct{}
}

// entry is one received message on its way through the pool.
type entry struct {
	pt       *partition
	msg      natsjs.Msg
	m        Msg
	progress time.Duration // c.now() of the last InProgress or receipt; pt.mu
	gen      uint64        // pt.gen of msg's consumer; pt.mu (with msg, once pending)
}

func (c *Consumer) newPartition(p int, rev uint64, sent time.Duration) *partition {
	pt := &partition{
		c:       c,
		p:       p,
		epoch:   rev,
		rev:     rev,
		prefix:  c.cfg.subject + "." + strconv.Itoa(p) + ".",
		release: make(chan struct{}),
		pending: make(map[uint64]*entry),
		left:    make(map[uint64]struct{}),

		unknownSince: -1,
	}
	pt.ctx, pt.cancel = context.WithCancel(c.ctx)
	pt.submitCtx, pt.stopSubmit = context.WithCancel(pt.ctx)
	pt.valid.Store(int64(c.leaseEnd(sent)))
	pt.validCh = make(chan struct{})
	return pt
}

// extend moves the lease's end after a renewal sent at sent, and wakes the
// actions waiting in live.
func (pt *partition) extend(sent time.Duration) {
	pt.valid.Store(int64(pt.c.leaseEnd(sent)))
	pt.validMu.Lock()
	close(pt.validCh)
	pt.validCh = make(chan struct{})
	pt.validMu.Unlock()
}

// live reports whether the node may act on the partition's messages. Before
// the lease's end it returns true at once; past it, it waits for the
// control loop's verdict: true once a renewal moved the end, false once the
// partition is fenced.
func (pt *partition) live() bool {
	for {
		if pt.fenced() {
			return false
		}
		if pt.c.now() < pt.validUntil() {
			return true
		}
		pt.validMu.Lock()
		ch := pt.validCh
		pt.validMu.Unlock()
		if pt.c.now() < pt.validUntil() { // extended before ch was taken
			return true
		}
		select {
		case <-ch:
		case <-pt.ctx.Done():
			return false
		}
	}
}

// liveNow is live without the wait: false past the lease's end.
func (pt *partition) liveNow() bool {
	return !pt.fenced() && pt.c.now() < pt.validUntil()
}

// leaseEnd is when a lease renewed by a request sent at sent stops being
// ours: a tenth of the TTL before any other node can judge it expired.
func (c *Consumer) leaseEnd(sent time.Duration) time.Duration {
	return sent + c.cfg.leaseTTL - c.cfg.leaseTTL/10
}

func (pt *partition) validUntil() time.Duration { return time.Duration(pt.valid.Load()) }

func (pt *partition) fenced() bool { return pt.ctx.Err() != nil }

// fence stops all traffic for the partition's messages.
func (pt *partition) fence() { pt.cancel() }

// lose fences the partition because its lease is gone.
func (pt *partition) lose() {
	if !pt.fenced() && pt.lostF.CompareAndSwap(false, true) {
		pt.c.st.lost.Add(1)
	}
	pt.fence()
}

// countDropped counts the partition lost as it leaves this node neither
// released nor counted lost already: the consumer was killed (its context
// ended, or Stop's) while it held the partition, which it gives up without
// freeing the lease.
func (pt *partition) countDropped() {
	pt.leaseMu.Lock()
	released := pt.released
	pt.leaseMu.Unlock()
	if !released && pt.lostF.CompareAndSwap(false, true) {
		pt.c.st.lost.Add(1)
	}
}

// startRelease asks the partition's goroutine to hand it over.
func (pt *partition) startRelease() {
	pt.relOnce.Do(func() {
		pt.releasedAt = pt.c.now()
		pt.submitTimer = time.AfterFunc(pt.c.cfg.drainTimeout, pt.stopSubmit)
		close(pt.release)
	})
}

// drainLeft is how much of the drain timeout is left: all of it unless
// the partition is being released, then what remains since startRelease.
func (pt *partition) drainLeft() time.Duration {
	if !pt.releasing() {
		return pt.c.cfg.drainTimeout
	}
	return max(0, pt.c.cfg.drainTimeout-(pt.c.now()-pt.releasedAt))
}

func (pt *partition) releasing() bool {
	select {
	case <-pt.release:
		return true
	default:
		return false
	}
}

// heldRevision reads the partition's lease key: its revision, whether it
// still names this instance as the holder (a renewal that timed out here
// may have been stored, moving the revision), and the read's error.
func (pt *partition) heldRevision(ctx context.Context) (rev uint64, ours bool, err error) {
	e, err := pt.c.leases.Get(ctx, leaseKey(pt.p))
	if err != nil {
		return 0, false, err
	}
	var v leaseValue
	ours = json.Unmarshal(e.Value(), &v) == nil && v.Instance == pt.c.instance && v.State == leaseHeld
	return e.Revision(), ours, nil
}

// renew renews the lease; a revision conflict means another node took it.
func (pt *partition) renew() {
	c := pt.c
	if pt.fenced() {
		return
	}
	pt.leaseMu.Lock()
	defer pt.leaseMu.Unlock()
	if pt.released {
		return
	}
	ctx, cancel := context.WithTimeout(pt.ctx, c.cfg.leaseTTL/4)
	defer cancel()
	val := leaseValue{Owner: c.cfg.member, Instance: c.instance, State: leaseHeld, Floor: pt.floor(), StreamCreated: c.cfg.streamCreated}.encode()
	sent := c.now()
	rev, err := c.leases.Update(ctx, leaseKey(pt.p), val, pt.rev)
	switch {
	case err == nil:
		pt.rev = rev
		pt.unknownSince = -1
		pt.extend(sent)
	case isConflict(err):
		// A renewal that timed out here may have been stored: then the
		// key still names this instance, and the lease is still ours,
		// from that renewal on. Which of the renewals sent since the last
		// known revision was stored is unknown (each was a compare-and-swap
		// on that revision, so one at most): the lease runs from the
		// first of them.
		rev, ours, gerr := pt.heldRevision(ctx)
		if ours {
			pt.rev = rev
			if pt.unknownSince >= 0 {
				pt.extend(pt.unknownSince)
			}
			pt.unknownSince = -1
			return
		}
		if gerr == nil || errors.Is(gerr, natsjs.ErrKeyNotFound) {
			pt.lose()
		}
	default: // timed out, or the connection failed: it may have been stored
		if pt.unknownSince < 0 {
			pt.unknownSince = sent
		}
		c.st.leaseErrors.Add(1)
		c.checkBucket(c.leases)
	}
}

// run consumes the partition until it is fenced or released.
func (pt *partition) run() {
	c := pt.c
	defer c.wg.Done()
	defer c.exited(pt)
	defer pt.countDropped()
	defer pt.cancel()
	defer func() {
		if pt.releasing() {
			pt.submitTimer.Stop()
		}
	}()

	var start uint64
	if pt.floor0 > 0 {
		start = pt.floor0 + 1
	}
	cons, ok := pt.consumer(start, false)
	if !ok {
		pt.finish()
		return
	}
	pt.cons = cons
	if !pt.recover(false) {
		pt.finish()
		return
	}
	pt.settled.Store(true)
	for !pt.fenced() && !pt.releasing() {
		if !pt.fetch() {
			break
		}
	}
	pt.finish()
}

// consumer creates or binds the partition's durable pull consumer, retrying
// until it succeeds or the partition is fenced or released. start, if not
// 0, is the stream sequence from which a consumer created anew delivers
// (see recreate); one that exists already keeps where it delivers from.
// A consumer created anew from start (recreate's, or a claimant's that
// found the consumer gone) counts in Stats.Recreated; before it is
// created or bound, sameStream checks that the stream is the one Start
// read (a node that has not yet noticed the stream's recreation may claim
// a partition whose lease holds a floor of the old one, or none), and
// again before a consumer found gone is created from start. A claimant
// that finds it gone first waits goneWait and looks again, as a holder
// does (stillGone) before it calls consumer with waited set.
func (pt *partition) consumer(start uint64, waited bool) (natsjs.Consumer, bool) {
	c := pt.c
	cfg := natsjs.ConsumerConfig{
		Durable:       fmt.Sprintf("shoal_%s_p%d", c.cfg.stream, pt.p),
		Description:   "shoal partition " + strconv.Itoa(pt.p),
		FilterSubject: pt.prefix + "*",
		AckPolicy:     natsjs.AckExplicitPolicy,
		AckWait:       c.cfg.ackWait,
		MaxAckPending: c.cfg.maxAckPending,
		MaxDeliver:    -1, // the consumer enforces WithMaxDeliveries with a dead letter
		DeliverPolicy: natsjs.DeliverAllPolicy,
	}
	// The server refuses to change where a consumer delivers from: an
	// existing one keeps its own start.
	//
	// gone: a try found no consumer, so one created from start is created
	// anew (the creation of a try whose reply was lost shows in the next).
	gone := false
	// streamGone: the last lookup or creation found no stream. sameStream
	// then waits for it (a restore) or stops the consumer with
	// ErrStreamDeleted after WithStreamMissingLimit, as when the stream
	// was missing at the start: a try that only slept would look for it for
	// ever, the partition stalled while its lease renews.
	streamGone := false
	// Whatever start, the stream must be the one Start read: a node that
	// has not yet noticed its stream's recreation, claiming a partition
	// without a floor, would bind or create the consumer in the new stream
	// and go on under the old stream's creation time (the floors its
	// leases record, its dead letters' Nats-Msg-Id).
	if _, ok := pt.sameStream(); !ok {
		return nil, false
	}
	keep := func(ctx context.Context) bool {
		old, err := c.js.Consumer(ctx, c.cfg.stream, cfg.Durable)
		if err != nil {
			gone = gone || errors.Is(err, natsjs.ErrConsumerNotFound)
			streamGone = errors.Is(err, natsjs.ErrStreamNotFound)
			pt.countFailed(err, false)
			return false
		}
		oc := old.CachedInfo().Config
		cfg.DeliverPolicy, cfg.OptStartSeq = oc.DeliverPolicy, oc.OptStartSeq
		return true
	}
	wait := 10 * time.Millisecond
	for {
		ctx, cancel := context.WithTimeout(pt.ctx, c.cfg.leaseTTL/2)
		if start > 0 {
			// Each try wants start again: the consumer whose start an
			// earlier try kept may be gone since.
			cfg.DeliverPolicy, cfg.OptStartSeq = natsjs.DeliverByStartSequencePolicy, start
			// A start is only for a consumer created here, and only
			// in the stream whose sequence it is. A lookup that failed
			// says neither: created now, the consumer might not be
			// counted, or not checked against the stream.
			if !keep(ctx) {
				if streamGone {
					cancel()
					if !pt.streamBack(&wait) {
						return nil, false
					}
					continue
				}
				if !gone {
					cancel()
					if !pt.sleep(&wait) {
						return nil, false
					}
					continue
				}
				if !waited {
					// Deleted a moment ago, its files may not be
					// removed yet (see stillGone): look again after
					// goneWait, and create it only if still gone.
					cancel()
					waited, gone = true, false
					w := goneWait
					if !pt.sleep(&w) {
						return nil, false
					}
					continue
				}
				last, ok := pt.sameStream()
				if !ok {
					cancel()
					return nil, false
				}
				// A start beyond the stream's last message is of
				// messages the stream no longer has: restored from a
				// backup, it keeps its creation time, and numbers the
				// messages published since from last+1 on. Every
				// message up to last was acknowledged (a backup holds
				// a prefix of the stream).
				if start > last+1 {
					start = last + 1
					cfg.OptStartSeq = start
				}
			}
		}
		cons, err := c.js.CreateOrUpdateConsumer(ctx, c.cfg.stream, cfg)
		if err != nil && start == 0 && keep(ctx) && cfg.DeliverPolicy != natsjs.DeliverAllPolicy {
			cons, err = c.js.CreateOrUpdateConsumer(ctx, c.cfg.stream, cfg)
		}
		cancel()
		if err == nil {
			if start > 0 && gone {
				c.st.recreated.Add(1)
			}
			return cons, true
		}
		if errors.Is(err, natsjs.ErrStreamNotFound) {
			if !pt.streamBack(&wait) {
				return nil, false
			}
			continue
		}
		pt.countFailed(err, false)
		if !pt.sleep(&wait) {
			return nil, false
		}
	}
}

// streamBack is consumer's wait after a lookup or a creation found no
// stream: sameStream waits for it to exist again, the same one, and
// stops the consumer once it has been missing for WithStreamMissingLimit.
// It then sleeps before the next try, as after any failed one (the lookup and
// the stream's info may disagree for a moment); false: the partition was
// fenced or released, or the consumer stopped.
func (pt *partition) streamBack(wait *time.Duration) bool {
	_, ok := pt.sameStream()
	return ok && pt.sleep(wait)
}

// dropAbove forgets what the node holds beyond the stream's last sequence:
// a stream restored from a backup (same creation time) ends there and
// numbers the messages published since from last+1 on. Entries above it
// can never be acknowledged (their task may still run: its settle finds
// the entry gone and sends nothing), and a new message reusing their
// number must not be taken for their redelivery; dupBelow and maxSeq come
// down to last so that such a message is not acknowledged as a duplicate.
// A stream's last sequence never goes back otherwise, so this drops
// nothing then. The fetch loop only.
func (pt *partition) dropAbove(last uint64) {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	for s := range pt.pending {
		if s > last {
			delete(pt.pending, s)
		}
	}
	for s := range pt.left {
		if s > last {
			delete(pt.left, s)
		}
	}
	pt.dupBelow = min(pt.dupBelow, last)
	if pt.maxSeq.Load() > last {
		pt.maxSeq.Store(last)
	}
}

// sleep waits *wait (then doubles it, up to a quarter TTL) unless the
// partition is fenced or released first; it reports whether to go on.
func (pt *partition) sleep(wait *time.Duration) bool {
	t := time.NewTimer(*wait)
	defer t.Stop()
	*wait = min(2**wait, pt.c.cfg.leaseTTL/4)
	select {
	case <-t.C:
		return true
	case <-pt.ctx.Done():
		return false
	case <-pt.release:
		return false
	}
}

// recover hands this node, in stream order, the messages that earlier
// deliveries left unacknowledged: those of a previous owner that died or
// released the partition dirty (at a claim), or those lost on the way to
// this node (lost: after a gap in the delivery sequence).
//
// The server redelivers an unacknowledged message one ack wait after its
// last delivery or InProgress, and serves redeliveries before new messages,
// but in the order their ack waits ran out, not in stream order: a message
// redelivered to an owner that then died comes again after a later message
// of its room that the first owner held. So recover reads the consumer's
// delivery sequence, waits one ack wait (every delivery until then has
// become redeliverable, except those this node holds and keeps alive), and
// pulls; it sorts what it pulled by stream sequence and only then submits
// it. A new message pulled with them comes after all of them in the stream.
//
// Pulling ends only when the server's count of unacknowledged messages is
// no larger than what this node holds: every message left unacknowledged is
// then in this node's hands (see complete). The wait alone does not ensure
// that: a redelivery comes later than one ack wait after the sequence was
// read when the server processed an old owner's InProgress late, or ran its
// redelivery timer late, and such a message, pulled after recover had
// submitted later messages of its room, would run out of order.
//
// Every delivery from the sequence read on must come to this node: one that
// went elsewhere (a pull request of an old owner that the server served
// late, or a delivery lost with a connection) shows as a gap, or as a pull
// request that ended abnormally (see abnormal), and recover keeps what it
// holds and starts over.
//
// A claim of a partition that has no unacknowledged message at all skips the
// wait.
func (pt *partition) recover(lost bool) bool {
	c := pt.c
	var got []*entry
	pt.recovering = true
	defer func() { pt.recovering = false }()
recovery:
	for {
		gen := pt.gen
		pendingAtServer, ok := pt.baseline()
		if !ok {
			return false
		}
		if pt.gen != gen {
			// The consumer was deleted and created anew (see recreate):
			// what the old one left unacknowledged, the new one delivers
			// again, in stream order, got's messages among them.
			got = pt.forget(got)
			lost = false
			continue recovery
		}
		if !lost && pendingAtServer == 0 {
			break
		}
		lost = true // from here on, only the server's count shows that nothing is left
		t := time.NewTimer(c.cfg.ackWait + c.cfg.ackWait/10)
		select {
		case <-t.C:
		case <-pt.ctx.Done():
			t.Stop()
			return false
		case <-pt.release:
			t.Stop()
			return false
		}
		if _, ok := pt.baseline(); !ok {
			return false
		}
		for {
			again, ok := pt.collect(&got)
			if !ok {
				return false
			}
			if pt.gen != gen {
				got = pt.forget(got)
				lost = false
				continue recovery
			}
			if !again {
				var done bool
				if done, again, ok = pt.complete(); !ok {
					return false
				}
				if pt.gen != gen {
					got = pt.forget(got)
					lost = false
					continue recovery
				}
				if done {
					break recovery
				}
			}
			if again {
				c.st.resyncs.Add(1)
				continue recovery
			}
		}
	}
	// Every message delivered so far that pending does not hold is
	// acknowledged or terminated (or in left).
	pt.maxSeq.Store(max(pt.maxSeq.Load(), pt.delivered))
	slices.SortFunc(got, func(a, b *entry) int { return cmpSeq(a.m.Seq, b.m.Seq) })
	for _, e := range got {
		switch pt.submit(e) {
		case submitted:
		case held: // the rest of got stays in pending for the drain's Naks
			return false
		case stopped:
			return false
		}
	}
	return true
}

// forget takes got's entries, pulled by recover and not submitted, out of
// pending, and returns got emptied: the consumer that delivered them was
// replaced (see recreate), and the new one delivers them again, in stream
// order with the messages of their rooms that the old one had not yet
// brought back; submitted now, they would run before those.
func (pt *partition) forget(got []*entry) []*entry {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	for _, e := range got {
		if pt.pending[e.m.Seq] == e {
			delete(pt.pending, e.m.Seq)
		}
	}
	return got[:0]
}

// collect pulls into got (and pending) until a first delivery or an empty
// pull. It reports whether recover must start over because of a gap in the
// delivery sequence. A redelivery of a message already in pending is not
// added: its first copy is on its way through the pool.
func (pt *partition) collect(got *[]*entry) (again, ok bool) {
	c := pt.c
	for {
		if !pt.live() {
			return false, false
		}
		left := pt.validUntil() - c.now() - c.cfg.leaseTTL/10
		if left < 10*time.Millisecond {
			wait := c.cfg.leaseTTL / 20
			if !pt.sleep(&wait) {
				return false, false
			}
			continue
		}
		maxWait := min(c.cfg.fetchWait, left)
		started := time.Now()
		batch, err := pt.cons.Fetch(c.cfg.fetchBatch, natsjs.FetchMaxWait(maxWait))
		if err != nil {
			ok, anew := pt.fetchFailed(err)
			if !ok {
				return false, false
			}
			if anew {
				return false, true // recover starts over
			}
			continue
		}
		count, fresh, gap := 0, false, false
		for msg := range batch.Messages() {
			count++
			meta, err := msg.Metadata()
			if err != nil {
				_ = msg.Term()
				continue
			}
			if gap {
				continue // left to expire: it comes again
			}
			if d := meta.Sequence.Consumer; d != pt.lastDelivery+1 {
				gap = true
				continue
			}
			pt.lastDelivery = meta.Sequence.Consumer
			fresh = fresh || meta.NumDelivered == 1
			if e := pt.receive(msg, meta); e != nil {
				*got = append(*got, e)
			}
		}
		if !pt.live() {
			return false, false
		}
		if gap || abnormal(batch, count, c.cfg.fetchBatch, maxWait, started) {
			return true, true
		}
		if fresh || count == 0 {
			return false, true
		}
	}
}

// complete reports whether every message that the partition's consumer
// counts unacknowledged is held by this node, asked while no pull request
// of this node is outstanding. The server's count covers every message
// delivered and neither acknowledged nor terminated; pending covers what
// this node received and has not acknowledged, and an entry leaves pending
// before its acknowledgement is sent. So a count above len(pending) means a
// message left by an earlier delivery has not come back yet: recover pulls
// on. A delivery sequence beyond the last one received means a delivery went
// elsewhere since the baseline: again.
//
// The count can hide a missing message only if another node acknowledged
// one that this node holds: an old owner whose acknowledgement the server
// processed after the message's ack wait had run out there and the message
// had been redelivered here. An owner sends InProgress at least every half
// ack wait, so that acknowledgement was more than half an ack wait late.
func (pt *partition) complete() (done, again, ok bool) {
	info, ok := pt.info()
	if !ok {
		return false, false, false
	}
	if info.Delivered.Consumer != pt.lastDelivery {
		return false, true, true
	}
	pt.mu.Lock()
	held := len(pt.pending)
	pt.mu.Unlock()
	return info.NumAckPending <= held, false, true
}

// baseline reads the consumer's state: it returns how many messages the
// consumer has unacknowledged, and takes its delivery sequence as the point
// from which every delivery must come to this node.
func (pt *partition) baseline() (int, bool) {
	info, ok := pt.info()
	if !ok {
		return 0, false
	}
	pt.lastDelivery = info.Delivered.Consumer
	return info.NumAckPending, true
}

// info asks the server for the consumer's state, retrying until it answers
// or the partition is fenced or released. A consumer that the server no
// longer has (an operator deleted it) is created anew (see recreate), and
// pt.gen moves.
func (pt *partition) info() (*natsjs.ConsumerInfo, bool) {
	c := pt.c
	wait := 10 * time.Millisecond
	for {
		ctx, cancel := context.WithTimeout(pt.ctx, c.cfg.leaseTTL/4)
		info, err := pt.cons.Info(ctx)
		cancel()
		if err == nil {
			pt.ackFloor = info.AckFloor.Stream
			pt.delivered = info.Delivered.Stream
			return info, true
		}
		if errors.Is(err, natsjs.ErrConsumerNotFound) {
			still, ok := pt.stillGone()
			if !ok || (still && !pt.recreate()) {
				return nil, false
			}
			continue
		}
		if errors.Is(err, natsjs.ErrStreamNotFound) {
			// The stream went, and the consumer with it: the server
			// says so, not that the consumer is gone. streamBack waits
			// for the stream, or stops the consumer past
			// WithStreamMissingLimit; the next try then finds the
			// consumer gone and recreates it.
			if !pt.streamBack(&wait) {
				return nil, false
			}
			continue
		}
		pt.countFailed(err, false)
		if !pt.sleep(&wait) {
			return nil, false
		}
	}
}

// goneWait is how long a partition waits after the server said its
// consumer is gone before it looks again (see stillGone).
const goneWait = 250 * time.Millisecond

// stillGone waits a moment after the server said the consumer is gone and
// reports whether it still is; ok is false when the partition was fenced or
// released meanwhile. The server forgets a deleted consumer before it
// removes its files: a consumer of the same name created in between loses
// its own files to that removal, and the server then refuses every update
// of it. The wait also leaves an operator who recreates it himself first.
func (pt *partition) stillGone() (still, ok bool) {
	for {
		wait := goneWait
		if !pt.sleep(&wait) {
			return false, false
		}
		ctx, cancel := context.WithTimeout(pt.ctx, pt.c.cfg.leaseTTL/4)
		_, err := pt.cons.Info(ctx)
		cancel()
		if err == nil || errors.Is(err, natsjs.ErrConsumerNotFound) || errors.Is(err, natsjs.ErrStreamNotFound) {
			// With no stream, recreate's consumer waits for it
			// (sameStream) or stops.
			return err != nil, true
		}
		pt.countFailed(err, false)
	}
}

// countFailed counts a failed request about the partition's consumer or
// stream in Stats.RequestErrors. Not counted: a request cut short because
// the partition was fenced or the consumer stopped (its context ended),
// and, unless it is a pull request (pull), an answer that the consumer or
// the stream is gone, which the callers handle apart.
func (pt *partition) countFailed(err error, pull bool) {
	if err == nil || pt.ctx.Err() != nil {
		return
	}
	if !pull && (errors.Is(err, natsjs.ErrConsumerNotFound) || errors.Is(err, natsjs.ErrStreamNotFound)) {
		return
	}
	pt.c.st.requestErrors.Add(1)
}

// floor is a stream sequence at or below which every message of the
// partition was acknowledged or terminated: once settled, the lowest
// sequence that pending or left holds, less one, or maxSeq; before, the
// lease's Floor at the claim.
func (pt *partition) floor() uint64 {
	if !pt.settled.Load() {
		return pt.floor0
	}
	floor := pt.maxSeq.Load()
	pt.mu.Lock()
	defer pt.mu.Unlock()
	for s := range pt.pending {
		floor = min(floor, s-1)
	}
	for s := range pt.left {
		floor = min(floor, s-1)
	}
	return floor
}

// gone reports whether err, from a pull request, may mean that the
// partition's consumer no longer exists.
func gone(err error) bool {
	return errors.Is(err, natsjs.ErrConsumerNotFound) || errors.Is(err, natsjs.ErrConsumerDeleted) ||
		errors.Is(err, nats.ErrNoResponders)
}

// recreate creates the partition's consumer anew after the server lost it
// (an operator deleted it): without it the partition would stall for ever,
// its lease renewed. The new consumer delivers from the partition's
// acknowledged floor on, not from the stream's start: below the floor
// every message was acknowledged or terminated. Once settled, the node
// knows the floor exactly (the lowest sequence that pending or left holds,
// or maxSeq), and a redelivery at or below maxSeq of a message it holds
// neither is acknowledged at once as a duplicate: nothing acknowledged is
// handled again, nothing unacknowledged is skipped. (maxSeq moves only
// with deliveries received outside recover, or with the delivered sequence
// once recover has every unacknowledged message in hand: a delivery lost
// before a resync is of a later sequence.) Before the first recover has
// settled, it starts after the server's floor as last read, and messages
// acknowledged above it are handled again (a Dedup drops them).
//
// Entries in pending keep their place; their redelivery by the new
// consumer replaces the message they acknowledge.
func (pt *partition) recreate() bool {
	var start uint64
	if pt.settled.Load() {
		start, pt.dupBelow = pt.floor()+1, pt.maxSeq.Load()
	} else {
		start, pt.dupBelow = max(pt.ackFloor, pt.floor0)+1, 0
		pt.maxSeq.Store(0)
	}
	pt.mu.Lock()
	pt.gen++
	pt.mu.Unlock()
	cons, ok := pt.consumer(start, true) // counts the recreation in Stats.Recreated
	if !ok {
		return false
	}
	pt.cons = cons
	pt.lastDelivery = 0
	return true
}

// sameStream reports whether the stream is still the one that Start read
// (the same creation time), and its last sequence, retrying until the
// server answers or the partition is fenced or released (false); what the
// node holds beyond that last sequence it drops (dropAbove: a stream
// restored from a backup ends there). A consumer that the server no
// longer has may have gone with its stream, deleted and created anew under
// its name: its sequences start over, and neither the floor nor the
// messages held, all of the old stream, mean anything in the new one. The
// consumer then stops with ErrStreamRecreated, instead of creating the
// consumer after a floor that would skip the new stream's first messages.
// A stream missing for WithStreamMissingLimit (deleted and not created
// again) stops the consumer with ErrStreamDeleted: the partition would
// otherwise stall for ever, its lease renewed.
func (pt *partition) sameStream() (last uint64, ok bool) {
	c := pt.c
	wait := 10 * time.Millisecond
	missing := time.Duration(-1) // c.now() when the stream was first found missing
	for {
		ctx, cancel := context.WithTimeout(pt.ctx, c.cfg.leaseTTL/4)
		s, err := c.js.Stream(ctx, c.cfg.stream)
		cancel()
		if errors.Is(err, natsjs.ErrStreamNotFound) {
			if missing < 0 {
				missing = c.now()
			} else if c.now()-missing >= c.cfg.streamMissing {
				c.fail(fmt.Errorf("%w: %q missing for %v", ErrStreamDeleted, c.cfg.stream, c.cfg.streamMissing))
				return 0, false
			}
		} else {
			missing = -1
		}
		if err == nil {
			info := s.CachedInfo()
			if info.Created.UnixNano() != c.cfg.streamCreated {
				c.fail(fmt.Errorf("%w: %q", ErrStreamRecreated, c.cfg.stream))
				return 0, false
			}
			pt.dropAbove(info.State.LastSeq)
			return info.State.LastSeq, true
		}
		pt.countFailed(err, false)
		if !pt.sleep(&wait) {
			return 0, false
		}
	}
}

// fetch runs one pull request and submits what it brings; it reports
// whether to go on pulling.
//
// The pull request's expiry is left to the server (FetchMaxWait, whose
// client-side timer runs a second longer), never cut short by the client: a
// message that the server delivers to a request the client has abandoned
// would be redelivered only after the ack wait, behind later messages of
// its room. Deliveries can still be lost (a dropped connection); the
// consumer's delivery sequence, which grows by one with every delivery of
// the partition's consumer, reveals it, and resync handles it. The skipped
// messages stay unacknowledged, without InProgress, and come again.
func (pt *partition) fetch() bool {
	c := pt.c
	left := pt.validUntil() - c.now() - c.cfg.leaseTTL/10
	if left < 10*time.Millisecond {
		// The lease is about to run out: wait for a renewal.
		wait := c.cfg.leaseTTL / 20
		return pt.sleep(&wait)
	}
	maxWait := min(c.cfg.fetchWait, left)
	started := time.Now()
	batch, err := pt.cons.Fetch(c.cfg.fetchBatch, natsjs.FetchMaxWait(maxWait))
	if err != nil {
		ok, anew := pt.fetchFailed(err)
		if ok && anew {
			// recover reads the new consumer's delivery sequence.
			return pt.recover(false)
		}
		return ok
	}
	count := 0
	msgs := batch.Messages()
	hold := false // releasing under backpressure: keep the rest for the drain's Naks
	skip := false // a delivery was lost: leave the rest to expire and come again
	for {
		var msg natsjs.Msg
		var ok bool
		select {
		case <-pt.ctx.Done():
			return false // the rest is redelivered to the next owner
		case msg, ok = <-msgs:
		}
		if !ok {
			break
		}
		count++
		if skip {
			continue
		}
		meta, err := msg.Metadata()
		if err != nil {
			_ = msg.Term() // not a JetStream message: cannot happen on a pull consumer
			continue
		}
		// lastDelivery was read from the server by recover (0: nothing
		// delivered yet), so even the first delivery is checked.
		if d := meta.Sequence.Consumer; d != pt.lastDelivery+1 {
			skip = true
			continue
		}
		pt.lastDelivery = meta.Sequence.Consumer
		e := pt.receive(msg, meta)
		if hold || e == nil {
			continue
		}
		switch pt.submit(e) {
		case submitted:
		case held:
			hold = true
		case stopped:
			return false
		}
	}
	if hold {
		return false
	}
	if skip || abnormal(batch, count, c.cfg.fetchBatch, maxWait, started) {
		return pt.resync()
	}
	return true
}

// fetchFailed is what follows a pull request that could not be made: a
// pause of 20 ms, and, where the error may mean that the server no longer
// has the consumer, info, which creates it anew if so.
// It reports whether to go on (false: the partition was fenced or
// released, or the consumer stopped) and whether the consumer is a new
// one, whose delivery sequence recover must read. The fetch loop only.
func (pt *partition) fetchFailed(err error) (ok, anew bool) {
	pt.countFailed(err, true)
	wait := 20 * time.Millisecond
	if !pt.sleep(&wait) {
		return false, false
	}
	if !gone(err) {
		return true, false
	}
	gen := pt.gen
	if _, ok := pt.info(); !ok {
		return false, false
	}
	return true, pt.gen != gen
}

// abnormal reports whether a pull request may have lost deliveries without
// a gap to show it: it ended with an error (a consumer leadership change, a
// dropped connection), or neither full nor by the server's expiry notice
// (the client's own timer, a second later, ended it: the server that held
// the request is gone, and what it sent may be lost).
func abnormal(batch natsjs.MessageBatch, count, size int, maxWait time.Duration, started time.Time) bool {
	if err := batch.Error(); err != nil && !errors.Is(err, natsjs.ErrNoMessages) && !errors.Is(err, nats.ErrTimeout) {
		return true
	}
	return count < size && time.Since(started) >= maxWait+950*time.Millisecond
}

// resync recovers from a lost delivery: the lost message precedes, in the
// stream, what came after it, and handling those first could reorder a room.
// The rest of the pull request was skipped; recover brings them all back
// in stream order.
func (pt *partition) resync() bool {
	pt.c.st.resyncs.Add(1)
	return pt.recover(true)
}

// receive records a message as held by this node. It returns nil for a
// redelivery of a message that pending already holds (its ack wait ran out
// at the server while it waited in the pool): the copy in the pool is
// handled and acknowledged in its turn, and handling the second copy would
// only repeat it.
func (pt *partition) receive(msg natsjs.Msg, meta *natsjs.MsgMetadata) *entry {
	c := pt.c
	subj := msg.Subject()
	room := subj[min(len(pt.prefix), len(subj)):]
	e := &entry{
		pt:  pt,
		msg: msg,
		m: Msg{
			Room:       room,
			Subject:    subj,
			Data:       msg.Data(),
			Header:     msg.Headers(),
			Seq:        meta.Sequence.Stream,
			Deliveries: meta.NumDelivered,
			Partition:  pt.p,
			Epoch:      pt.epoch,
			Published:  meta.Timestamp,
		},
		progress: c.now(),
	}
	c.st.delivered.Add(1)
	if meta.NumDelivered > 1 {
		c.st.redelivered.Add(1)
	}
	pt.lag.Store(meta.NumPending)
	// maxSeq moves under pt.mu once pending holds the message: floor,
	// which reads maxSeq before pending, must never see the new maxSeq
	// without the entry that keeps the floor below it. (A duplicate is at
	// or below dupBelow, hence maxSeq, already.)
	pt.mu.Lock()
	if held, ok := pt.pending[e.m.Seq]; ok {
		held.progress = e.progress // the server restarted its ack wait
		if held.gen != pt.gen {
			// Delivered by a consumer created anew: the old one's
			// acknowledgement would go nowhere.
			held.msg, held.gen = msg, pt.gen
		}
		pt.received(e.m.Seq)
		pt.mu.Unlock()
		return nil
	}
	if _, ok := pt.left[e.m.Seq]; ok {
		delete(pt.left, e.m.Seq)
	} else if e.m.Seq <= pt.dupBelow {
		// Acknowledged to the consumer that recreate replaced.
		pt.mu.Unlock()
		if !pt.live() {
			return nil // the next owner gets it again
		}
		c.st.duplicates.Add(1)
		if err := msg.Ack(); err != nil {
			c.st.ackErrors.Add(1)
		} else {
			c.st.acked.Add(1)
		}
		return nil
	}
	e.gen = pt.gen
	pt.pending[e.m.Seq] = e
	pt.received(e.m.Seq)
	pt.mu.Unlock()
	return e
}

// received moves maxSeq up to seq, a message that pending holds, unless
// recover is pulling (it sets maxSeq itself once it has every
// unacknowledged message in hand). pt.mu is held.
func (pt *partition) received(seq uint64) {
	if !pt.recovering {
		pt.maxSeq.Store(max(pt.maxSeq.Load(), seq))
	}
}

// submitResult is what became of a submission.
type submitResult uint8

const (
	submitted submitResult = iota // the pool accepted it
	held                          // refused while releasing: left for the drain
	stopped                       // fenced, or the pool is closed
)

// submit hands one received message to the pool, waiting while the pool
// refuses it (backpressure: nothing more is pulled meanwhile).
func (pt *partition) submit(e *entry) submitResult {
	c := pt.c
	wait := c.cfg.refusalWait / 16
	for {
		if !pt.live() {
			return stopped
		}
		pt.mu.Lock()
		pt.inPool++ // before Submit: the task may finish before Submit returns
		pt.mu.Unlock()
		var err error
		if c.batcher != nil {
			err = c.batcher.Submit(pt.submitCtx, e.m.Room, Delivery{e})
		} else {
			err = c.pool.Submit(pt.submitCtx, e.m.Room, e.run)
		}
		if err == nil {
			return submitted
		}
		pt.mu.Lock()
		pt.inPool--
		pt.mu.Unlock()
		if pt.fenced() {
			return stopped
		}
		if errors.Is(err, pool.ErrClosed) {
			c.fail(fmt.Errorf("%w: %w", ErrPoolClosed, err))
			return stopped
		}
		if pt.releasing() && pt.submitCtx.Err() != nil {
			// The drain timeout passed while a blocking pool held the
			// submission.
			return held
		}
		// Refused (memory pressure, throttled, or a full group queue of a
		// non-blocking pool): hold the message, pull nothing, try again.
		c.st.refusals.Add(1)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-pt.ctx.Done():
			t.Stop()
			return stopped
		case <-pt.release:
			t.Stop()
			return held
		}
		wait = min(2*wait, c.cfg.refusalWait)
	}
}

// run is the pool task of one message.
func (e *entry) run(context.Context) error {
	pt := e.pt
	defer pt.done(e)
	if !pt.admit(e) {
		return nil
	}
	c := pt.c
	attempts, reason, err := pt.handle(func() error {
		m := e.m // the handler gets a copy: it must not change our bookkeeping
		return c.handler(pt.ctx, &m)
	})
	one := [1]*entry{e}
	pt.finishHandled(one[:], attempts, reason, err)
	return nil
}

// admit decides whether e goes to the handler: not once the partition is no
// longer live (the next owner gets it again), not when the Dedup has it
// applied already (acknowledged as a duplicate), not past WithMaxDeliveries
// (a dead letter). The Dedup is asked first: a message applied already is
// no failure, and its letter's Record would set the room's record back
// below later messages applied since.
func (pt *partition) admit(e *entry) bool {
	if !pt.live() {
		return false
	}
	c := pt.c
	if d := c.cfg.dedup; d != nil {
		last, ok := pt.lastApplied(d, e.m.Room)
		if !ok {
			return false // fenced: the next owner asks again
		}
		if e.m.Seq <= last {
			c.st.duplicates.Add(1)
			pt.ack(e)
			return false
		}
	}
	if e.m.Deliveries > uint64(c.cfg.maxDeliveries) {
		pt.deadLetter(e, ReasonMaxDeliveries, 0, fmt.Errorf("delivered %d times, limit %d", e.m.Deliveries, c.cfg.maxDeliveries))
		return false
	}
	return true
}

// lastApplied asks d for room's last applied sequence. A failure is asked
// again, with backoff, the room held back meanwhile (its later messages
// must not overtake this one, which must not run before d has said it is
// new), until d answers or the partition is fenced (false).
func (pt *partition) lastApplied(d Dedup, room string) (uint64, bool) {
	c := pt.c
	wait := 10 * time.Millisecond
	for {
		ctx, cancel := context.WithTimeout(pt.ctx, c.cfg.leaseTTL/4)
		last, err := d.LastApplied(ctx, room)
		cancel()
		if err == nil {
			return last, true
		}
		c.st.dedupErrors.Add(1)
		if !pt.backoff(&wait) {
			return 0, false
		}
	}
}

// backoff waits *wait, then doubles it up to WithRetry's most; it reports
// false, at once, if the partition is fenced first.
func (pt *partition) backoff(wait *time.Duration) bool {
	t := time.NewTimer(*wait)
	defer t.Stop()
	select {
	case <-t.C:
	case <-pt.ctx.Done():
		return false
	}
	*wait = min(2**wait, pt.c.cfg.maxBackoff)
	return true
}

// finishHandled settles es, handled in one call (a message, or a batch of
// one room in stream order) that ended with err after attempts: on success
// each is recorded in the Dedup and acknowledged, in order; on failure each
// becomes a dead letter with reason.
func (pt *partition) finishHandled(es []*entry, attempts int, reason Reason, err error) {
	c := pt.c
	if err == nil {
		c.st.handled.Add(uint64(len(es)))
		if d := c.cfg.dedup; d != nil {
			// Recorded even if the partition was lost meanwhile: the
			// effect happened, and the next owner must not repeat it.
			// The last sequence of the call covers the others.
			ctx, cancel := context.WithTimeout(context.WithoutCancel(pt.ctx), c.cfg.leaseTTL/4)
			rerr := d.Record(ctx, es[0].m.Room, es[len(es)-1].m.Seq)
			cancel()
			if rerr != nil {
				c.st.dedupErrors.Add(1)
				pt.mu.Lock()
				pt.dirty = true // a release leaves them unacknowledged
				for _, e := range es {
					pt.left[e.m.Seq] = struct{}{}
				}
				pt.mu.Unlock()
				return // unacknowledged: redelivered, and handled again
			}
		}
	}
	for _, e := range es {
		if !pt.live() {
			return
		}
		if err != nil {
			pt.deadLetter(e, reason, attempts, err)
		} else {
			pt.ack(e)
		}
	}
}

// errNotLive is handle's error when the partition was fenced before an
// attempt could start: the messages are left for the next owner.
var errNotLive = errors.New("shoal/jetstream: partition no longer held")

// handle calls call (the handler), retrying in place; it returns the
// attempts made and, for a final failure, its reason and error
// (errNotLive, with no verdict to act on, when the partition was fenced
// before an attempt).
func (pt *partition) handle(call func() error) (int, Reason, error) {
	c := pt.c
	wait := c.cfg.backoff
	for attempt := 1; ; attempt++ {
		// Every start, a retry's included, checks the lease first: the
		// messages were admitted a moment ago (a Dedup's answer, a
		// Batcher call's other messages) or a backoff ago.
		if !pt.live() {
			return attempt - 1, ReasonFailed, errNotLive
		}
		err, panicked := guard(call)
		if err == nil {
			return attempt, "", nil
		}
		if panicked {
			return attempt, ReasonPanicked, err
		}
		if pool.IsPermanent(err) {
			return attempt, ReasonPermanent, err
		}
		if attempt >= c.cfg.maxAttempts {
			return attempt, ReasonFailed, err
		}
		if pt.fenced() {
			return attempt, ReasonFailed, err
		}
		c.st.retries.Add(1)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-pt.ctx.Done():
			t.Stop()
			return attempt, ReasonFailed, err
		}
		wait = min(2*wait, max(c.cfg.maxBackoff, c.cfg.backoff)) // a first wait above the cap stays
	}
}

// guard runs call once, turning a panic into an error.
func guard(call func() error) (err error, panicked bool) {
	defer func() {
		if v := recover(); v != nil {
			err, panicked = fmt.Errorf("handler panicked: %v", v), true
		}
	}()
	return call(), false
}

// ack acknowledges e unless the partition is no longer live.
func (pt *partition) ack(e *entry) {
	msg, ok := pt.settle(e)
	if !ok {
		return
	}
	if err := msg.Ack(); err != nil {
		pt.ackFailed(e)
		return
	}
	pt.c.st.acked.Add(1)
}

// settle takes e out of pending before its Ack or Term is sent (see
// complete), and reports whether the node may still send it, and the
// message to send it to (a redelivery by a recreated consumer replaces it).
// Taking e out of pending is what entitles the caller to settle it: an
// entry that is no longer there was given back by the drain (giveBack),
// possibly after the lease check here, and has its Nak.
func (pt *partition) settle(e *entry) (natsjs.Msg, bool) {
	if !pt.live() {
		return nil, false
	}
	pt.mu.Lock()
	defer pt.mu.Unlock()
	if pt.pending[e.m.Seq] != e {
		return nil, false
	}
	delete(pt.pending, e.m.Seq)
	return e.msg, true
}

// ackFailed records an Ack or Term of e that could not be sent: the message
// is redelivered, so a release must be marked dirty.
func (pt *partition) ackFailed(e *entry) {
	pt.c.st.ackErrors.Add(1)
	pt.mu.Lock()
	pt.dirty = true
	pt.left[e.m.Seq] = struct{}{}
	pt.mu.Unlock()
}

// done takes e out of pending, if settle did not, and out of the pool's
// count.
func (pt *partition) done(e *entry) {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	if pt.pending[e.m.Seq] == e {
		delete(pt.pending, e.m.Seq)
	}
	pt.inPool--
	if pt.inPool == 0 && pt.emptyCh != nil {
		close(pt.emptyCh)
		pt.emptyCh = nil
	}
}

// finish ends the partition's life on this node: after a release request it
// drains, returns what it could not finish to the server and releases the
// lease; when fenced it does nothing, the lease running out on its own.
func (pt *partition) finish() {
	c := pt.c
	if pt.fenced() {
		return
	}
	pt.mu.Lock()
	var empty chan struct{}
	if pt.inPool > 0 {
		empty = make(chan struct{})
		pt.emptyCh = empty
	}
	pt.mu.Unlock()
	if empty != nil {
		t := time.NewTimer(pt.drainLeft())
		select {
		case <-empty:
		case <-t.C:
		case <-pt.ctx.Done():
		}
		t.Stop()
	}
	if c.ctx.Err() != nil {
		return // killed while draining
	}
	if !pt.live() {
		return
	}
	dirty := pt.giveBack() || !pt.settled.Load()
	ctx, cancel := context.WithTimeout(c.ctx, c.cfg.leaseTTL/4)
	defer cancel()
	_ = c.nc.FlushWithContext(ctx)
	pt.freeLease(ctx, dirty)
}

// giveBack ends a drain: it fences the partition and Naks, in stream order,
// the messages still held. It reports whether the release is dirty: a
// message given back, or one left unacknowledged before.
//
// It takes them out of pending (into left, which keeps the lease's Floor
// below them) in the same critical section that lists them, so that a
// task that passed its lease check before the fence cannot settle one of
// them too (see settle): each message gets an Ack, a Term or a Nak, never
// two of them.
func (pt *partition) giveBack() (dirty bool) {
	pt.mu.Lock()
	left := make([]*entry, 0, len(pt.pending))
	for s, e := range pt.pending {
		left = append(left, e)
		delete(pt.pending, s)
		pt.left[s] = struct{}{}
	}
	dirty = pt.dirty || len(left) > 0
	pt.mu.Unlock()
	pt.fence() // tasks still queued for left must not act on them now
	slices.SortFunc(left, func(a, b *entry) int { return cmpSeq(a.m.Seq, b.m.Seq) })
	for _, e := range left {
		pt.mu.Lock()
		msg := e.msg
		pt.mu.Unlock()
		_ = msg.Nak()
	}
	return dirty
}

// freeLease writes the partition's lease free (dirty: with messages left
// unacknowledged) and counts the partition released, or lost when another
// node took the lease first.
func (pt *partition) freeLease(ctx context.Context, dirty bool) {
	c := pt.c
	pt.leaseMu.Lock()
	defer pt.leaseMu.Unlock()
	val := leaseValue{State: leaseFree, Dirty: dirty, Floor: pt.floor(), StreamCreated: c.cfg.streamCreated}.encode()
	_, err := c.leases.Update(ctx, leaseKey(pt.p), val, pt.rev)
	if isConflict(err) {
		// A renewal whose reply was lost may have moved the revision
		// (see renew): while the key still names this instance, the
		// lease is ours to free at its revision.
		if rev, ours, _ := pt.heldRevision(ctx); ours {
			pt.rev = rev
			_, err = c.leases.Update(ctx, leaseKey(pt.p), val, rev)
		}
	}
	switch {
	case err == nil || (c.ctx.Err() == nil && !isConflict(err)):
		// Freed, or its write failed otherwise (timed out with an
		// unknown outcome, no responders during an election): either
		// way the node handed the partition over (drained, leftovers
		// returned, fenced); an unwritten free lease, which still names
		// this node, runs out in one TTL.
		pt.released = true
		c.st.released.Add(1)
	case c.ctx.Err() == nil:
		// The revision moved: another node took the lease first.
		if pt.lostF.CompareAndSwap(false, true) {
			c.st.lost.Add(1)
		}
	}
}

func cmpSeq(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// progress keeps the messages held by this node alive: every message held
// for a third of the ack wait without news gets an InProgress. It also
// stops the consumer (ErrPoolClosed) once the pool was closed with some of
// them still in it: their tasks will never run (see poolAbandoned).
func (c *Consumer) progress() {
	defer c.wg.Done()
	every := c.cfg.ackWait / 6
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-tick.C:
		}
		c.mu.Lock()
		held := make([]*partition, 0, len(c.parts))
		for _, pt := range c.parts {
			held = append(held, pt)
		}
		c.mu.Unlock()
		if c.poolAbandoned(held) {
			c.fail(fmt.Errorf("%w: its Close left messages of this consumer unhandled", ErrPoolClosed))
			return
		}
		for _, pt := range held {
			if !pt.liveNow() {
				continue
			}
			// Read the clock per message: sending to many messages takes
			// time, and none may be sent past the lease's end.
			end := pt.validUntil()
			pt.mu.Lock()
			for _, e := range pt.pending {
				now := c.now()
				if now >= end {
					break
				}
				if now-e.progress >= c.cfg.ackWait/3 {
					_ = e.msg.InProgress()
					e.progress = now
				}
			}
			pt.mu.Unlock()
		}
	}
}

// poolAbandoned reports whether the pool (or Batcher) is closed and holds no
// task, while held partitions count messages submitted to it and not done:
// its Close gave up on them (they became its Shutdown dead letters), so
// nothing will handle or acknowledge them here. A message's task marks it
// done before the task returns to the pool, so a closed pool with no task
// queued or running has run every task it ever will.
func (c *Consumer) poolAbandoned(held []*partition) bool {
	inPool := 0
	for _, pt := range held {
		pt.mu.Lock()
		inPool += pt.inPool
		pt.mu.Unlock()
	}
	if inPool == 0 {
		return false
	}
	var s pool.Stats
	if c.batcher != nil {
		s = c.batcher.Snapshot()
	} else {
		s = c.pool.Snapshot()
	}
	return s.Closed && s.Queued == 0
}
