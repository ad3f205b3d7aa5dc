package jetstream

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

// slowDedup is a MemoryDedup whose LastApplied runs during first before it
// answers: the lease's end passes while the Dedup is asked.
type slowDedup struct {
	MemoryDedup
	during func()
}

func (d *slowDedup) LastApplied(ctx context.Context, room string) (uint64, error) {
	d.during()
	return d.MemoryDedup.LastApplied(ctx, room)
}

// TestDeadLetterNotPublishedPastLeaseEnd: a message past WithMaxDeliveries
// was admitted before the lease's end, which passed while the Dedup
// answered. Its dead letter must wait for the control loop's verdict and,
// once the partition is fenced, not be published: the message is the next
// owner's, which may handle it.
func TestDeadLetterNotPublishedPastLeaseEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pt, js := fakePartition(t)
		pt.c.cfg.maxDeliveries = 1
		pt.c.cfg.dedup = &slowDedup{during: func() {
			pt.valid.Store(int64(pt.c.now() - time.Millisecond)) // the lease's end passes
		}}
		e, fm := fakeEntry(pt, "r", 5, 2)
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = e.run(context.Background())
		}()
		synctest.Wait() // the task waits for a verdict, or published already
		js.mu.Lock()
		letters := len(js.letters)
		js.mu.Unlock()
		if letters != 0 {
			t.Errorf("%d letter(s) published past the lease's end, before any verdict", letters)
		}
		pt.lose() // the verdict: fenced
		<-done
		js.mu.Lock()
		letters = len(js.letters)
		js.mu.Unlock()
		if letters != 0 || fm.terms.Load() != 0 {
			t.Errorf("after the fence: %d letter(s), %v; want none, not terminated", letters, fm)
		}
	})
}

// TestDeadLetterAfterRenewal: a dead letter that waited past the lease's
// end is published, and its message terminated, once a renewal moved the
// end.
func TestDeadLetterAfterRenewal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pt, js := fakePartition(t)
		e, fm := fakeEntry(pt, "r", 5, 1)
		pt.valid.Store(int64(pt.c.now() - time.Millisecond))
		done := make(chan struct{})
		go func() {
			defer close(done)
			pt.deadLetter(e, ReasonPermanent, 1, errors.New("bad"))
		}()
		synctest.Wait()
		pt.extend(pt.c.now()) // a renewal was stored
		<-done
		js.mu.Lock()
		letters := len(js.letters)
		js.mu.Unlock()
		if letters != 1 || fm.terms.Load() != 1 {
			t.Errorf("after a renewal: %d letter(s), %v; want 1, terminated", letters, fm)
		}
	})
}
