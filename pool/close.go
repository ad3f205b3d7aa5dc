package pool

// Invariants:
//
//   - closing is set once, before the shards are sealed; abandon is set
//     once, after closing, when Close's context ends. closingCh and
//     abandonCh are closed right after their flag is stored.
//   - After every shard is sealed, no queue is created and no task is
//     accepted; Close waits until every shard's live count is zero, which
//     the worker that releases a shard's last queue announces through
//     progress.
//   - The dead-letter channel is closed by Close after every worker has
//     exited, so no send can follow the close.

import "context"

// abandoned is what close reports when its context ended before the
// backlog drained.
type abandoned[L any] struct {
	err         error // the context's
	shutdown    int
	undelivered []L
}

// close stops admission, drains, and stops the workers (Pool.Close). It
// returns a non-nil abandoned when ctx ended first, and an error only for a
// nil ctx or a second Close whose ctx ended.
func (p *core[K, P, L]) close(ctx context.Context) (*abandoned[L], error) {
	if ctx == nil {
		return nil, ErrNilContext
	}
	p.closeMu.Lock()
	if p.closeStarted {
		p.closeMu.Unlock()
		select {
		case <-p.closeDone:
			return nil, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	p.closeStarted = true
	p.closeMu.Unlock()

	// Stops admission: blocked submitters return, new submissions fail.
	p.closing.Store(true)
	close(p.closingCh)
	for i := range p.shards {
		s := &p.shards[i]
		s.mu.Lock()
		s.sealed = true
		s.mu.Unlock()
	}
	if p.stopScaler != nil {
		p.stopScaler()
	}
	done := ctx.Done()
	var cerr *abandoned[L]
	for !p.drained() {
		select {
		case <-p.progress:
		case <-done:
			done = nil
			cerr = &abandoned[L]{err: ctx.Err()}
			p.startAbandon()
		}
	}
	p.ctl.stop()
	close(p.dl)
	if b := p.cfg.ownBreaker; b != nil {
		_ = b.Close()
	}
	if cerr != nil {
		// Every worker has exited: the count is complete.
		cerr.shutdown = int(p.shutdownCount.Load())
		p.undeliveredMu.Lock()
		cerr.undelivered = p.undelivered
		p.undelivered = nil
		p.undeliveredMu.Unlock()
		close(p.closeDone)
		return cerr, nil
	}
	close(p.closeDone)
	return nil, nil
}

// drained reports whether every shard's queues are gone.
func (p *core[K, P, L]) drained() bool {
	for i := range p.shards {
		s := &p.shards[i]
		s.mu.Lock()
		live := s.live
		s.mu.Unlock()
		if live != 0 {
			return false
		}
	}
	return true
}

// startAbandon turns the remaining backlog into Shutdown letters: workers
// letter what they take, and groups parked for a retry are woken now.
func (p *core[K, P, L]) startAbandon() {
	// Tells workers to letter instead of run; published before the channel
	// close that wakes letter senders.
	p.abandon.Store(true)
	close(p.abandonCh)
	if p.onAbandon != nil {
		p.onAbandon()
	}
	for i := range p.shards {
		s := &p.shards[i]
		sched := false
		s.mu.Lock()
		for g := s.parked; g != nil; g = s.parked {
			g.rs.timer.Stop()
			s.unpark(g)
			sched = s.pushReady(g) || sched
		}
		s.mu.Unlock()
		if sched {
			p.ctl.push(uint32(i))
			p.ctl.wakeNow()
		}
	}
}

// notifyProgress tells a waiting Close to re-check.
func (p *core[K, P, L]) notifyProgress() {
	select {
	case p.progress <- struct{}{}:
	default:
	}
}
