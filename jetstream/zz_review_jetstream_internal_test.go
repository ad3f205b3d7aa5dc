package jetstream

import (
	"context"
	"sync"
	"testing"
)

// recordingDedup is a MemoryDedup that keeps every Record call.
type recordingDedup struct {
	MemoryDedup
	mu      sync.Mutex
	records []uint64
}

func (d *recordingDedup) Record(ctx context.Context, room string, seq uint64) error {
	d.mu.Lock()
	d.records = append(d.records, seq)
	d.mu.Unlock()
	return d.MemoryDedup.Record(ctx, room, seq)
}

// TestReviewMaxDeliveriesOfAppliedMessage: a message delivered past
// WithMaxDeliveries that the Dedup says was applied already (its
// acknowledgement was lost after a later message of its room was applied)
// is a duplicate: acknowledged, with no dead letter, and the Dedup is not
// asked to record a sequence below its record (a Dedup that stores what it
// is given, as KVDedup did, would forget the later message and let it run
// again).
func TestReviewMaxDeliveriesOfAppliedMessage(t *testing.T) {
	pt, js := fakePartition(t)
	d := &recordingDedup{}
	pt.c.cfg.dedup = d
	pt.c.cfg.maxDeliveries = 1
	ctx := context.Background()
	if err := d.MemoryDedup.Record(ctx, "r", 7); err != nil {
		t.Fatal(err)
	}
	e, fm := fakeEntry(pt, "r", 5, 2)
	if err := e.run(ctx); err != nil {
		t.Fatal(err)
	}
	js.mu.Lock()
	letters := len(js.letters)
	js.mu.Unlock()
	if letters != 0 || fm.acks.Load() != 1 || fm.terms.Load() != 0 {
		t.Errorf("applied message past max deliveries: %d letters, %v; want no letter, acknowledged", letters, fm)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.records) != 0 {
		t.Errorf("Record called with %v below the record 7", d.records)
	}
}
