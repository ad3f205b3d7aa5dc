package snapshot_test

import (
	"runtime"
	"testing"

	"github.com/shoal-go/shoal/snapshot"
)

// heapAfterGC returns the live heap after two collections.
func heapAfterGC() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestStoreMemoryAfterDeletes: "Memory is thus at most about twice the live
// keys". After 400,000 keys are written and all deleted, the shards drop
// their tombstones; the store then holds no key, and must not keep the
// memory of 400,000 (the Go maps of its shards never shrink by deletion).
func TestStoreMemoryAfterDeletes(t *testing.T) {
	const n = 400_000
	s := new(snapshot.Store[int, int])
	base := heapAfterGC()
	for i := range n {
		s.Set(i, i)
	}
	full := heapAfterGC()
	for i := range n {
		s.Delete(i)
	}
	if s.Len() != 0 {
		t.Fatalf("Len %d after deleting everything", s.Len())
	}
	// Tombstones left below purgeMin per shard: at most 64 × 256 keys.
	left := heapAfterGC()
	t.Logf("heap: empty %d KiB, %d keys %d KiB, all deleted %d KiB", base>>10, n, full>>10, left>>10)
	if left > base && left-base > (full-base)/8 {
		t.Fatalf("all %d keys deleted: the store still holds %d KiB, %d%% of what %d live keys took",
			n, (left-base)>>10, 100*(left-base)/(full-base), n)
	}
	runtime.KeepAlive(s)
}
