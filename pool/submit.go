package pool

// Invariants:
//
//   - A task is accepted when it is in its group's queue and the shard's
//     mutex is released: from then on it is in that queue, or being run by
//     the group's holder, or being delivered as a dead letter by it.
//   - A group that gains a task while not held becomes held and joins its
//     shard's ready list in the same critical section, so no accepted task
//     waits without its group being ready, held, or parked (queue.go).
//   - sealed is set on every shard, under its mutex, right after closing;
//     no task is accepted by a shard once it is sealed.
//   - Pool-wide room: room + Σ shard credits + queued tasks is the bound
//     set by WithMaxQueued (constant). A submitter that finds no room
//     announces itself in roomWaiters, under its shard's mutex, before it
//     re-checks room; a worker that gives room back loads roomWaiters
//     after its add. Both are sequentially consistent, so one sees the
//     other. A worker whose shard had no credit and gets some wakes the
//     waiters too: the shard's submitters can take it.

import (
	"context"
	"math/bits"
)

// shardOfHash maps a hash to a shard with Lemire's multiply-shift range
// reduction: uniform for a well-mixed hash and about 1 ns.
func (p *core[K, P, L]) shardOfHash(h uint64) uint32 {
	hi, _ := bits.Mul64(h, p.nshards)
	return uint32(hi)
}

// enqueueResult says what enqueue did.
type enqueueResult uint8

const (
	enqOK enqueueResult = iota
	enqGroupFull
	enqPoolFull
	enqSealed
)

// submit accepts v for group, whose hash is h (a random one for Go's
// tasks, anon).
func (p *core[K, P, L]) submit(ctx context.Context, h uint64, group K, anon bool, v P, block bool) error {
	if ctx == nil {
		return ErrNilContext
	}
	// ctx first: a done ctx is its own answer, and must not spend the
	// breaker's throttle or probe tokens or count as its refusal.
	plain := ctx.Done() == nil
	if !plain {
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	if p.breaker != nil {
		if err := p.breaker.Admit(); err != nil {
			if p.closing.Load() {
				// Closed is the answer that holds: a breaker the pool
				// does not own stays open after Close.
				p.rejects[RejectClosed].Add(1)
				return rejectClosed
			}
			return p.reject(rejectReasonOf(err), err)
		}
	}
	ectx := ctx
	if p.noCtx {
		ectx, plain = nil, true
	}
	idx := p.shardOfHash(h)
	s := &p.shards[idx]
	e := entry[K, P]{val: v, ctx: ectx}
	if plain {
		e.enq = stampPlain
	}
	var waitingOn *gqueue[K, P] // a queue whose waiters count this call
	for {
		s.mu.Lock()
		if waitingOn != nil {
			p.stopWaiting(s, waitingOn)
			waitingOn = nil
		}
		r, g, sched := p.enqueue(s, idx, h, group, anon, &e)
		if r == enqOK {
			// The group is yieldBehind tasks behind with this one.
			behind := block && g.n-g.taken == p.ctl.yieldBehind
			if p.trackInFlight {
				// Counts the task for the breaker's reservation
				// before the unlock makes it visible to workers: the
				// worker that takes, runs and finishes it subtracts it
				// (publish) only after its own lock of s.mu, so the
				// count never reads below zero.
				p.inFlight.Add(1)
				s.mu.Unlock()
				if p.ctl.hook != nil {
					p.ctl.hook(hookAccepted)
				}
			} else {
				s.mu.Unlock()
			}
			if sched {
				p.ctl.push(idx)
				p.ctl.wake()
			}
			if behind && p.ctl.crowded.Load() {
				// Lets the workers catch up (see yieldBehind).
				p.ctl.yield()
			}
			return nil
		}
		if r == enqSealed {
			s.mu.Unlock()
			p.rejects[RejectClosed].Add(1)
			return rejectClosed
		}
		if !block {
			s.mu.Unlock()
			p.rejects[RejectQueueFull].Add(1)
			return rejectQueueFull
		}
		var ch <-chan struct{}
		if r == enqGroupFull {
			ch, waitingOn = g.waitRoom(), g
			s.mu.Unlock()
		} else {
			// Announced before the shard's mu is released: a task of
			// this shard that gives its credit back then sees the
			// waiter (returnCredit).
			ch = p.waitPoolRoom()
			s.mu.Unlock()
			// Re-checks after the announcement (see Invariants).
			if p.room.Load() > 0 {
				p.roomWaiters.Add(-1)
				continue
			}
		}
		select {
		case <-ch:
		case <-ctx.Done():
			p.leaveWait(s, waitingOn, r)
			return p.reject(RejectQueueFull, ctx.Err())
		case <-p.closingCh:
			p.leaveWait(s, waitingOn, r)
			p.rejects[RejectClosed].Add(1)
			return rejectClosed
		}
		if r == enqPoolFull {
			p.roomWaiters.Add(-1)
		}
	}
}

// enqueue appends e to group's queue in shard s (idx), whose mutex the
// caller holds. On enqOK, sched says the caller must push the shard to the
// run queue; on enqGroupFull, g is the full queue.
func (p *core[K, P, L]) enqueue(s *shardq[K, P], idx uint32, h uint64, group K, anon bool, e *entry[K, P]) (r enqueueResult, g *gqueue[K, P], sched bool) {
	if s.sealed {
		return enqSealed, nil, false
	}
	if !anon {
		// The group's bound before the pool's: a full group takes no
		// pool-wide room (it would keep it from every other shard).
		g = s.find(h, group)
		if g != nil && g.n-g.taken >= p.groupMax {
			return enqGroupFull, g, false
		}
	}
	if !p.takeCredit(s) {
		return enqPoolFull, nil, false
	}
	if g != nil {
		s.revive(g)
	}
	if g == nil {
		g = s.alloc(idx)
		if anon {
			g.anon = true
		} else {
			g.key = group
			s.insert(h, g)
		}
	}
	pos := s.submitted
	e.enq = p.stamp(idx, pos) | e.enq&stampPlain
	if p.top != nil && !anon {
		p.countTop(e, h, group, pos)
	}
	g.push(s, e)
	s.credit--
	s.queued++
	s.submitted++
	if !g.held {
		g.held = true
		sched = s.pushReady(g)
	}
	return enqOK, g, sched
}

// stopWaiting withdraws a woken submitter from g's waiters, releasing g if
// it was kept only for them. The caller holds s.mu.
func (p *core[K, P, L]) stopWaiting(s *shardq[K, P], g *gqueue[K, P]) {
	g.waiters--
	if g.waiters == 0 && g.n == 0 && !g.held {
		s.release(g)
		// Tells a waiting Close that a queue went away.
		if s.live == 0 && p.closing.Load() {
			p.notifyProgress()
		}
	}
}

// leaveWait withdraws a submitter that gives up waiting.
func (p *core[K, P, L]) leaveWait(s *shardq[K, P], g *gqueue[K, P], r enqueueResult) {
	if r == enqPoolFull {
		p.roomWaiters.Add(-1)
		return
	}
	s.mu.Lock()
	p.stopWaiting(s, g)
	s.mu.Unlock()
}

// takeCredit makes sure s holds pool-wide room for one more task, taking a
// chunk of it from p.room; it reports false when the pool is full. The
// caller holds s.mu.
func (p *core[K, P, L]) takeCredit(s *shardq[K, P]) bool {
	if s.credit > 0 {
		return true
	}
	c := p.creditChunk
	// Takes a chunk of the pool-wide room; given back if it overdrew.
	if p.room.Add(-c) >= 0 {
		s.credit = int32(c)
		return true
	}
	if p.cfg.overdrawn != nil {
		p.cfg.overdrawn()
	}
	left := p.room.Add(c)
	if c > 1 {
		if left = p.room.Add(-1); left >= 0 {
			if left > 0 {
				p.wakeRoomWaiters() // the chunk given back may serve one
			}
			s.credit = 1
			return true
		}
		left = p.room.Add(1)
	}
	// Room a task returned while this overdraw hid it: a submitter that
	// re-checked room meanwhile saw none, and waits for this. Only when
	// there is room: a waiter woken for none fails again and would wake
	// the others, which would wake it, for ever.
	if left > 0 {
		p.wakeRoomWaiters()
	}
	return false
}

// returnCredit gives the room of k finished tasks back to s, and the part
// of s's credit above one chunk back to the pool. The caller holds s.mu.
func (p *core[K, P, L]) returnCredit(s *shardq[K, P], k int64) {
	had := s.credit
	s.credit += int32(k)
	if int64(s.credit) <= p.creditKeep {
		if had <= 0 {
			// The shard had no room, and has some: a submitter of it
			// waiting for pool-wide room can take it.
			p.wakeRoomWaiters()
		}
		return
	}
	give := int64(s.credit) - p.creditKeep/2
	s.credit -= int32(give)
	// Publishes the room; then looks for submitters waiting for it.
	p.room.Add(give)
	p.wakeRoomWaiters()
}

// wakeRoomWaiters wakes the submitters waiting for pool-wide room, if any;
// the caller has just published room (see Invariants).
func (p *core[K, P, L]) wakeRoomWaiters() {
	if p.roomWaiters.Load() != 0 {
		p.roomMu.Lock()
		if p.roomCh != nil {
			close(p.roomCh)
			p.roomCh = nil
		}
		p.roomMu.Unlock()
	}
}

// waitPoolRoom announces a submitter waiting for pool-wide room and
// returns the channel closed when room is given back. The caller must
// decrement roomWaiters when it stops waiting.
func (p *core[K, P, L]) waitPoolRoom() <-chan struct{} {
	p.roomMu.Lock()
	// Announces the waiter before its re-check of room.
	p.roomWaiters.Add(1)
	if p.roomCh == nil {
		p.roomCh = make(chan struct{})
	}
	ch := p.roomCh
	p.roomMu.Unlock()
	return ch
}

func (p *core[K, P, L]) reject(r RejectReason, err error) error {
	p.rejects[r].Add(1)
	return &RejectError{Reason: r, Err: err}
}

// stamp returns the acceptance time of the task at submission position pos
// of shard idx: the monitor's coarse clock (within about a millisecond, one
// shared load), or the real clock when a Clock or a per-task observer asked
// for exact times, or for the one task in TimingSampleEvery that the pool
// times (flagged stampTimed). The two low bits hold flags
// (stats_metrics.go).
func (p *core[K, P, L]) stamp(idx uint32, pos uint64) int64 {
	if p.sampleTimes && timingSampled(idx, pos) {
		return p.nanotime()&^stampFlags | stampTimed
	}
	if p.exactStamps {
		return p.nanotime() &^ stampFlags
	}
	// While the monitor sleeps its clock is stale (a group parked on a
	// retry timer can accept tasks without waking it): read the real one.
	if p.ctl.asleep.Load() {
		return p.nanotime() &^ stampFlags
	}
	return p.ctl.coarse.Load() &^ stampFlags
}
