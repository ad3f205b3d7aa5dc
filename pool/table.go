package pool

// Invariants:
//
//   - A shard's table (slots) holds each group of the shard that has a
//     queue in the table (live, or idle on the idle list) exactly once, in
//     open addressing with linear probing: a group with hash h sits at the
//     first slot from h&mask on that holds it, and no empty slot lies
//     between h&mask and it (removal shifts later slots back, so there are
//     no tombstones). A slot is empty when its queue is nil.
//   - The table's length is a power of two, at least minSlots, and its
//     groups fill at most 3/4 of it; it is nil while the shard has never
//     held a group, and again after it emptied having held remapAfter.

import "github.com/shoal-go/shoal/shard"

// minSlots is the length of a shard's table when its first group arrives:
// 16 slots, 256 bytes.
const minSlots = 16

// gslot is one slot of a shard's table: a group's hash and its queue.
type gslot[K shard.Key, P any] struct {
	h uint64
	g *gqueue[K, P]
}

// find returns the queue of group, whose hash is h, or nil.
func (s *shardq[K, P]) find(h uint64, group K) *gqueue[K, P] {
	if s.slots == nil {
		return nil
	}
	mask := uint64(len(s.slots)) - 1
	for i := h & mask; ; i = (i + 1) & mask {
		sl := &s.slots[i]
		if sl.g == nil {
			return nil
		}
		if sl.h == h && sl.g.key == group {
			return sl.g
		}
	}
}

// insert adds g, whose group (with hash h) is not in the table.
func (s *shardq[K, P]) insert(h uint64, g *gqueue[K, P]) {
	if 4*(s.ngroups+1) > 3*int32(len(s.slots)) {
		s.resize(max(minSlots, 2*len(s.slots)))
	}
	s.place(h, g)
	s.ngroups++
	s.peak = max(s.peak, s.ngroups)
}

// place puts g in the first empty slot from h's.
func (s *shardq[K, P]) place(h uint64, g *gqueue[K, P]) {
	mask := uint64(len(s.slots)) - 1
	i := h & mask
	for s.slots[i].g != nil {
		i = (i + 1) & mask
	}
	s.slots[i] = gslot[K, P]{h: h, g: g}
}

// pageSlots is the number of slots in a 4 KiB page (16-byte slots on
// 64-bit platforms).
const pageSlots = 4096 / 16

// resize moves the groups to a new table of n slots.
func (s *shardq[K, P]) resize(n int) {
	old := s.slots
	s.slots = make([]gslot[K, P], n)
	// The new table's memory may be fresh from the operating system, and
	// place reads a slot before it writes one: a store to each page first
	// faults it in once, writable (see newChunk).
	for i := 0; i < n; i += pageSlots {
		s.slots[i].h = 0
	}
	for _, sl := range old {
		if sl.g != nil {
			s.place(sl.h, sl.g)
		}
	}
}

// remove takes g, whose group has hash h, out of the table, if it is
// there, shifting the slots after it back so that every group stays
// reachable from its home slot.
func (s *shardq[K, P]) remove(h uint64, g *gqueue[K, P]) {
	if s.slots == nil {
		return
	}
	mask := uint64(len(s.slots)) - 1
	i := h & mask
	for s.slots[i].g != g {
		if s.slots[i].g == nil {
			return
		}
		i = (i + 1) & mask
	}
	for j := (i + 1) & mask; s.slots[j].g != nil; j = (j + 1) & mask {
		// The group at j may move to i if its home slot is not in the
		// cyclic range (i, j].
		if home := s.slots[j].h & mask; (j-home)&mask >= (j-i)&mask {
			s.slots[i] = s.slots[j]
			i = j
		}
	}
	s.slots[i] = gslot[K, P]{}
	s.ngroups--
	if s.ngroups == 0 && s.peak >= remapAfter {
		s.slots, s.peak = nil, 0
	}
}
