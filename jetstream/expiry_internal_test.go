package jetstream

import (
	"context"
	"testing"
	"time"
)

// TestExpiryFences: a partition whose lease reaches its end is fenced by its
// own timer, with no control loop running (the control loop may be blocked
// in key-value writes), and not before the end: a renewal that moved the end
// is honoured.
func TestExpiryFences(t *testing.T) {
	c := &Consumer{cfg: defaults(), epoch: time.Now()}
	c.cfg.leaseTTL = 200 * time.Millisecond
	c.ctx, c.cancel = context.WithCancelCause(context.Background())
	defer c.cancel(nil)
	pt := c.newPartition(0, 1, c.now())
	defer pt.expiry.Load().Stop()
	if !pt.live() {
		t.Fatal("a lease just claimed is not live")
	}
	// A renewal sent now moves the end by the time since the claim.
	end := c.leaseEnd(c.now() + 100*time.Millisecond)
	pt.valid.Store(int64(end))
	select {
	case <-pt.ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the partition was not fenced at its lease's end")
	}
	if now := c.now(); now < end {
		t.Errorf("fenced %v before the renewed end", end-now)
	}
	if pt.live() {
		t.Error("live after the lease's end")
	}
	if got := c.st.lost.Load(); got != 1 {
		t.Errorf("lost %d, want 1", got)
	}
}

// TestLiveFencesPastEnd: past its lease's end a partition is not live, and
// live fences it, even before the timer fired.
func TestLiveFencesPastEnd(t *testing.T) {
	c := &Consumer{cfg: defaults(), epoch: time.Now()}
	c.ctx, c.cancel = context.WithCancelCause(context.Background())
	defer c.cancel(nil)
	pt := c.newPartition(0, 1, c.now())
	defer pt.expiry.Load().Stop()
	pt.valid.Store(int64(c.now() - time.Millisecond))
	if pt.live() {
		t.Fatal("live past the lease's end")
	}
	if !pt.fenced() || c.st.lost.Load() != 1 {
		t.Errorf("fenced %v, lost %d; want true, 1", pt.fenced(), c.st.lost.Load())
	}
	pt.lose()
	if got := c.st.lost.Load(); got != 1 {
		t.Errorf("lost counted %d times, want once", got)
	}
}
