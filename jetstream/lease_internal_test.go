package jetstream

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
)

// revKV is a lease bucket of one key for freeLease: a compare-and-swap
// Update on its revision, and Get. Other methods are not used (the
// embedded nil interface would panic).
type revKV struct {
	natsjs.KeyValue
	val     []byte
	rev     uint64
	updates int
}

func (kv *revKV) Update(_ context.Context, _ string, val []byte, last uint64) (uint64, error) {
	kv.updates++
	if last != kv.rev {
		return 0, natsjs.ErrKeyRevisionMismatch
	}
	kv.val, kv.rev = val, kv.rev+1
	return kv.rev, nil
}

func (kv *revKV) Get(_ context.Context, _ string) (natsjs.KeyValueEntry, error) {
	return revEntry{kv.val, kv.rev}, nil
}

type revEntry struct {
	val []byte
	rev uint64
}

func (e revEntry) Bucket() string               { return "leases" }
func (e revEntry) Key() string                  { return leaseKey(0) }
func (e revEntry) Value() []byte                { return e.val }
func (e revEntry) Revision() uint64             { return e.rev }
func (e revEntry) Created() time.Time           { return time.Time{} }
func (e revEntry) Delta() uint64                { return 0 }
func (e revEntry) Operation() natsjs.KeyValueOp { return natsjs.KeyValuePut }

// TestFreeLeaseAfterUnseenRenewal: a renewal stored by the server but
// whose reply the node never saw leaves the node one revision behind. The
// release must still free the lease while the key names this instance,
// and count the partition released; once another node's value is there, it
// counts it lost and writes nothing.
func TestFreeLeaseAfterUnseenRenewal(t *testing.T) {
	pt := testPartition(t, time.Hour)
	pt.c.instance = "me"
	held := leaseValue{Owner: "n1", Instance: "me", State: leaseHeld}.encode()
	kv := &revKV{val: held, rev: 8}
	pt.c.leases = kv
	pt.rev = 7 // the renewal to 8 was stored; its reply was lost
	pt.freeLease(context.Background(), false)
	var v leaseValue
	if err := json.Unmarshal(kv.val, &v); err != nil || v.State != leaseFree || v.Instance != "" {
		t.Fatalf("lease after the release: %s (%v), want it free", kv.val, err)
	}
	if r, l := pt.c.st.released.Load(), pt.c.st.lost.Load(); r != 1 || l != 0 || !pt.released {
		t.Fatalf("released %d, lost %d (released flag %v); want 1, 0, true", r, l, pt.released)
	}

	// Another node holds the key now: lost, and its value stays.
	pt2 := testPartition(t, time.Hour)
	pt2.c.instance = "me"
	other := leaseValue{Owner: "n2", Instance: "them", State: leaseHeld}.encode()
	kv2 := &revKV{val: other, rev: 9}
	pt2.c.leases = kv2
	pt2.rev = 7
	pt2.freeLease(context.Background(), false)
	if string(kv2.val) != string(other) || kv2.updates != 1 {
		t.Fatalf("another node's lease was overwritten: %s after %d updates", kv2.val, kv2.updates)
	}
	if r, l := pt2.c.st.released.Load(), pt2.c.st.lost.Load(); r != 0 || l != 1 {
		t.Fatalf("released %d, lost %d; want 0, 1", r, l)
	}
}
