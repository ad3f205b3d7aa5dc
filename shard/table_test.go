package shard

import (
	"errors"
	"testing"
)

func mustTable(t *testing.T, n int) *Table {
	t.Helper()
	tb, err := NewTable(n)
	if err != nil {
		t.Fatalf("NewTable(%d): %v", n, err)
	}
	return tb
}

func TestTableBadCount(t *testing.T) {
	for _, n := range []int{0, -1, MaxTableShards + 1} {
		if tb, err := NewTable(n); !errors.Is(err, ErrBadShardCount) || tb != nil {
			t.Errorf("NewTable(%d) = %v, %v; want nil, ErrBadShardCount", n, tb, err)
		}
	}
	var nilTable *Table
	if nilTable.Shard(123) != 0 || nilTable.Len() != 0 {
		t.Error("nil Table: want shard 0 and length 0")
	}
}

// TestTableSlotBalance checks that every shard owns floor(S/n) or
// ceil(S/n) slots.
func TestTableSlotBalance(t *testing.T) {
	for _, n := range []int{1, 2, 3, 7, 64, 256, 1000, 1024, 40000, MaxTableShards} {
		tb := mustTable(t, n)
		if tb.Len() != n {
			t.Fatalf("Len() = %d, want %d", tb.Len(), n)
		}
		counts := make([]int, n)
		for _, s := range tb.slots {
			counts[s]++
		}
		lo := TableSlots / n
		for shard, c := range counts {
			if c < lo || c > lo+1 || (TableSlots%n == 0 && c != lo) {
				t.Fatalf("n=%d: shard %d owns %d slots, want %d or %d", n, shard, c, lo, lo+1)
			}
		}
	}
}

// TestTableGrowth checks consistency between NewTable(n) and NewTable(n+1):
// slots either stay or move to shard n, and the new shard takes
// floor or ceil of S/(n+1) slots.
func TestTableGrowth(t *testing.T) {
	ns := []int{63, 255, 1023, 4095, MaxTableShards - 1}
	for n := 1; n <= 24; n++ {
		ns = append(ns, n)
	}
	for _, n := range ns {
		a, b := mustTable(t, n), mustTable(t, n+1)
		moved := 0
		for s := range TableSlots {
			if a.slots[s] == b.slots[s] {
				continue
			}
			if int(b.slots[s]) != n {
				t.Fatalf("n=%d: slot %d moved from old shard %d to old shard %d", n, s, a.slots[s], b.slots[s])
			}
			moved++
		}
		if lo := TableSlots / (n + 1); moved < lo || moved > lo+1 {
			t.Errorf("n=%d->%d: %d slots moved, want %d or %d", n, n+1, moved, lo, lo+1)
		}
	}
}

func TestTableKeys(t *testing.T) {
	hs := keyHashes(t)
	const shards = 256
	tb := mustTable(t, shards)
	counts := make([]int, shards)
	for _, h := range hs {
		counts[tb.Shard(h)]++
	}
	maxMean, stdMean := loadStats(counts)
	t.Logf("%d keys over %d shards: max/mean %.4f, std/mean %.4f", numKeys, shards, maxMean, stdMean)
	// The same bounds as TestJumpBalance; see its comment.
	if maxMean > 1.06 || stdMean > 0.02 {
		t.Errorf("max/mean %.4f, std/mean %.4f; want <= 1.06 and <= 0.02", maxMean, stdMean)
	}

	a, b := mustTable(t, 64), mustTable(t, 65)
	moved := 0
	for _, h := range hs {
		if x, y := a.Shard(h), b.Shard(h); x != y {
			if y != 64 {
				t.Fatalf("hash %#x moved from old shard %d to old shard %d", h, x, y)
			}
			moved++
		}
	}
	frac, opt := float64(moved)/numKeys, 1.0/65
	t.Logf("growing 64->65 moved %.4f of keys, optimum %.4f (ratio %.3f)", frac, opt, frac/opt)
	if frac > 1.05*opt {
		t.Errorf("moved %.4f of keys, want <= 1.05 x %.4f", frac, opt)
	}
}

func TestTableAllocs(t *testing.T) {
	tb := mustTable(t, 1024)
	key := "0123456789abcdef"
	var sink int
	if n := testing.AllocsPerRun(1000, func() { sink += tb.Shard(Hash(key)) }); n != 0 {
		t.Errorf("Shard(Hash(key)): %v allocations per call, want 0", n)
	}
	_ = sink
}
