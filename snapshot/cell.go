// Invariants:
//   - c.p is nil (the zero Cell: zero value, version 0) or points to a
//     cellItem that is never written after it is published.
//   - Every successful CAS on c.p replaces an item of version n with one of
//     version n+1, so the versions a Cell publishes are 0, 1, 2, ... in order.
//   - A cellItem is built completely before the CAS that publishes it; a
//     reader that loads the pointer sees the whole value (no torn reads).

package snapshot

import "sync/atomic"

// Cell holds one value of type T with a version. Reads are lock-free: one
// atomic pointer load. Every write publishes a new immutable copy whose
// version is one more than the previous one, so versions of one Cell are
// strictly increasing and a version names exactly one value.
//
// The zero Cell is ready to use and holds T's zero value at version 0. A Cell
// must not be copied after first use.
//
// Values are copied in and out of the Cell; if T holds pointers, slices or
// maps, the caller must not mutate what they refer to after storing them.
type Cell[T any] struct {
	_ noCopy
	p atomic.Pointer[cellItem[T]]
}

// cellItem is one published version; immutable once published.
type cellItem[T any] struct {
	v   T
	ver uint64
}

// Load returns the current value and its version. It never blocks and never
// allocates. A Store or successful CompareAndSwap that returned version n is
// synchronized before any Load that returns version n or later.
func (c *Cell[T]) Load() (T, uint64) {
	it := c.p.Load() // acquires the item published by the last successful write
	if it == nil {
		var zero T
		return zero, 0
	}
	return it.v, it.ver
}

// Version returns the current version without copying the value.
func (c *Cell[T]) Version() uint64 {
	it := c.p.Load() // acquires the current item
	if it == nil {
		return 0
	}
	return it.ver
}

// Store replaces the value unconditionally and returns its new version.
func (c *Cell[T]) Store(v T) uint64 {
	n := &cellItem[T]{v: v}
	for {
		old := c.p.Load() // acquires the item we are about to replace
		n.ver = itemVersion(old) + 1
		if c.p.CompareAndSwap(old, n) { // publishes n, fully built
			return n.ver
		}
	}
}

// CompareAndSwap stores v only if the current version is version. It returns
// the version after the call and whether it stored v: on success the new
// version, on failure the current one (so a caller can reload and retry). A
// version that is not current always fails, even if a later write stored an
// equal value.
func (c *Cell[T]) CompareAndSwap(version uint64, v T) (uint64, bool) {
	old := c.p.Load() // acquires the current item
	cur := itemVersion(old)
	if cur != version {
		return cur, false
	}
	n := &cellItem[T]{v: v, ver: cur + 1}
	if c.p.CompareAndSwap(old, n) { // publishes n; fails if anyone wrote since our load
		return n.ver, true
	}
	return c.Version(), false
}

// Update applies fn to the current value and stores the result, retrying
// until no other write intervenes. It returns the value stored and its
// version. fn may run more than once and must not have side effects, nor
// call methods of the same Cell.
func (c *Cell[T]) Update(fn func(T) T) (T, uint64) {
	n := &cellItem[T]{}
	for {
		old := c.p.Load() // acquires the item fn reads
		var cur T
		if old != nil {
			cur = old.v
		}
		n.v = fn(cur)
		n.ver = itemVersion(old) + 1
		if c.p.CompareAndSwap(old, n) { // publishes n, fully built
			return n.v, n.ver
		}
	}
}

func itemVersion[T any](it *cellItem[T]) uint64 {
	if it == nil {
		return 0
	}
	return it.ver
}

// noCopy makes go vet's copylocks check flag copies of a Cell or Store.
type noCopy struct{}

func (*noCopy) Lock()   {}
func (*noCopy) Unlock() {}
