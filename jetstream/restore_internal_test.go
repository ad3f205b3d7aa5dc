package jetstream

import "testing"

// TestRecreateAfterRestoreDropsEntriesBeyondStreamEnd: a holder's consumer
// is gone because its stream was restored from a backup that ends at 5
// (same creation time), while the holder still holds 4 and 8 and has
// received up to 9. The messages published since the restore are numbered
// 6 on: held entry 8 can never be acknowledged (the stream has no such
// message), and a new message 7 or 8 must not be taken for a redelivery
// of a held entry, nor acknowledged as a duplicate (at or below dupBelow).
// recreate drops the entries above 5 (a later settle of one sends
// nothing), keeps 4, and lowers maxSeq and dupBelow to 5.
func TestRecreateAfterRestoreDropsEntriesBeyondStreamEnd(t *testing.T) {
	pt, _ := fakePartition(t)
	pt.c.js = &restoredJS{}
	pt.settled.Store(true)
	e4, _ := fakeEntry(pt, "a", 4, 1)
	e8, m8 := fakeEntry(pt, "b", 8, 1)
	pt.maxSeq.Store(9)
	if !pt.recreate() {
		t.Fatal("recreate gave up")
	}
	pt.mu.Lock()
	_, has8 := pt.pending[8]
	has4 := pt.pending[4] == e4
	pt.mu.Unlock()
	if has8 || !has4 {
		t.Errorf("after the recreation pending holds 8: %v, 4: %v; want only 4", has8, has4)
	}
	if pt.maxSeq.Load() > 5 || pt.dupBelow > 5 {
		t.Errorf("maxSeq = %d, dupBelow = %d beyond the restored stream's end 5", pt.maxSeq.Load(), pt.dupBelow)
	}
	pt.ack(e8) // its task ends after the recreation
	if n := m8.acks.Load(); n != 0 {
		t.Errorf("a dropped entry's settle sent %d acks", n)
	}
	pt.done(e8)
	pt.done(e4)
}
