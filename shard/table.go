package shard

import "fmt"

// TableSlots is the number of slots of a Table: a Table routes a hash by its
// top 16 bits.
const TableSlots = 1 << 16

// MaxTableShards is the largest shard count NewTable accepts.
const MaxTableShards = TableSlots

// Table is a precomputed consistent mapping from hashes to n shards with O(1)
// lookup: one shift and one load from a 128 KiB table, against Jump's
// O(ln n) loop of floating-point divisions.
//
// A Table is its own mapping: Table.Shard(h) is NOT Jump(h, n). Jump cannot
// be tabulated exactly, because its result depends on every bit of h; a table
// of Jump results over the top bits of h would be a different mapping that
// merely looks like Jump. Every process that must agree on routing has to use
// the same one of the two.
//
// The mapping has the same guarantees as Jump, and balances better:
//   - Consistency: NewTable(n+1) differs from NewTable(n) only in slots that
//     move to the new shard n; no key moves between two old shards, and
//     shrinking back returns every key to its old shard.
//   - Minimal movement: exactly floor(S/(n+1)) or ceil(S/(n+1)) of the
//     S = TableSlots slots move on growth, the optimal 1/(n+1).
//   - Balance: every shard owns floor(S/n) or ceil(S/n) slots, so the load
//     differs from an ideal assignment only by the rounding (1.6 % at most up
//     to n = 1024, where S/n >= 64) and by the randomness of the keys.
//
// Only the top 16 bits of h are used, so keys whose hashes share them always
// share a shard, and h must be well mixed in its high bits, as Hash's results
// are. Shard counts far above 1024 leave few slots per shard and the rounding
// dominates the balance (at n = 40000 some shards own two slots, others one).
//
// The construction is deterministic and part of the contract: the slots are
// put in a fixed pseudo-random order, all owned by shard 0, and for k = 1 to
// n-1 shard k takes slots one at a time from the largest of the shards
// 0..k-1, visited in a fixed cyclic order, until it holds floor(S/(k+1)) and
// no other shard holds more than one slot more than it. Building costs
// O(S ln n + n): a few milliseconds at n = 1024.
//
// A Table is immutable and safe for concurrent use.
type Table struct {
	n     int
	slots [TableSlots]uint16 // slot -> shard
}

// NewTable builds the table for n shards. n outside [1, MaxTableShards] is an
// error wrapping ErrBadShardCount.
func NewTable(n int) (*Table, error) {
	if n < 1 || n > MaxTableShards {
		return nil, fmt.Errorf("%w: got %d, want 1 to %d", ErrBadShardCount, n, MaxTableShards)
	}
	t := &Table{n: n}

	// owned[i] lists the slots of shard i; it gives them away from the end.
	owned := make([][]uint16, n)
	all := make([]uint16, TableSlots)
	for i := range all {
		all[i] = uint16(i)
	}
	// Fisher-Yates driven by splitmix64, so that each shard's slots are
	// spread over the hash space rather than forming contiguous ranges.
	for i := len(all) - 1; i > 0; i-- {
		j := Mix64(uint64(i)) % uint64(i+1)
		all[i], all[j] = all[j], all[i]
	}
	owned[0] = all // t.slots is already all zero

	// The old shards form a cycle (next); from ptr onwards their sizes are
	// non-increasing and differ by at most one, so the largest is at ptr.
	// last is the element before ptr.
	next := make([]int32, n)
	ptr, last := int32(0), int32(0)
	for k := 1; k < n; k++ {
		target := TableSlots / (k + 1)
		owned[k] = make([]uint16, 0, target+1)
		for len(owned[k]) < target || len(owned[ptr]) > len(owned[k])+1 {
			from := owned[ptr]
			s := from[len(from)-1]
			owned[ptr] = from[:len(from)-1]
			owned[k] = append(owned[k], s)
			t.slots[s] = uint16(k)
			last, ptr = ptr, next[ptr]
		}
		// Insert k before ptr: as the new head if it is as large as the
		// largest old shard, otherwise as the tail.
		next[last], next[k] = int32(k), ptr
		if len(owned[k]) >= len(owned[ptr]) {
			ptr = int32(k)
		} else {
			last = int32(k)
		}
	}
	return t, nil
}

// Shard returns the shard of hash h, in [0, Len()). It does not allocate. A
// nil Table returns 0, as Jump does for a shard count below one.
func (t *Table) Shard(h uint64) int {
	if t == nil {
		return 0
	}
	return int(t.slots[h>>48])
}

// Len returns the number of shards; 0 for a nil Table.
func (t *Table) Len() int {
	if t == nil {
		return 0
	}
	return t.n
}
