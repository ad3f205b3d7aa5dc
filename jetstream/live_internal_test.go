package jetstream

import (
	"context"
	"testing"
	"time"
)

// testPartition returns a partition claimed now, with a lease TTL of ttl,
// outside any cluster.
func testPartition(t *testing.T, ttl time.Duration) *partition {
	c := &Consumer{cfg: defaults(), epoch: time.Now()}
	c.cfg.leaseTTL = ttl
	c.ctx, c.cancel = context.WithCancelCause(context.Background())
	t.Cleanup(func() { c.cancel(nil) })
	return c.newPartition(0, 1, c.now())
}

// TestLivePausesPastEnd: past the lease's end, live holds every action back
// until the control loop's verdict; a renewal lets it go on, and nothing
// was allowed in between.
func TestLivePausesPastEnd(t *testing.T) {
	pt := testPartition(t, time.Hour)
	if !pt.live() || !pt.liveNow() {
		t.Fatal("a lease just claimed is not live")
	}
	pt.valid.Store(int64(pt.c.now() - time.Millisecond)) // the end has passed
	if pt.liveNow() {
		t.Fatal("liveNow past the lease's end")
	}
	result := make(chan bool, 1)
	go func() { result <- pt.live() }()
	select {
	case <-result:
		t.Fatal("live returned past the lease's end, before any verdict")
	case <-time.After(50 * time.Millisecond):
	}
	pt.extend(pt.c.now()) // a renewal was stored
	if !<-result {
		t.Error("live after a renewal: false")
	}
	if pt.fenced() || pt.c.st.lost.Load() != 0 {
		t.Error("a renewed partition was fenced")
	}
}

// TestLiveEndsAtFence: an action waiting past the lease's end gives up when
// the control loop fences the partition, and lose counts it once.
func TestLiveEndsAtFence(t *testing.T) {
	pt := testPartition(t, time.Hour)
	pt.valid.Store(int64(pt.c.now() - time.Millisecond))
	result := make(chan bool, 1)
	go func() { result <- pt.live() }()
	pt.lose()
	pt.lose()
	if <-result {
		t.Error("live after the fence: true")
	}
	if got := pt.c.st.lost.Load(); got != 1 {
		t.Errorf("lost counted %d times, want once", got)
	}
}
