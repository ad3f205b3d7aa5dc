package pool

import (
	"testing"

	"github.com/shoal-go/shoal/shard"
)

// tableOf returns the groups in s's table as a map, for tests; it fails
// the test if a group is there twice.
func tableOf[K shard.Key, P any](t testing.TB, s *shardq[K, P]) map[K]*gqueue[K, P] {
	t.Helper()
	m := map[K]*gqueue[K, P]{}
	for _, sl := range s.slots {
		if sl.g == nil {
			continue
		}
		if _, ok := m[sl.g.key]; ok {
			t.Fatalf("group %v is in the table twice", sl.g.key)
		}
		m[sl.g.key] = sl.g
	}
	if len(m) != int(s.ngroups) {
		t.Fatalf("the table holds %d groups, ngroups says %d", len(m), s.ngroups)
	}
	return m
}

// addGroup puts q in s's table under key, as enqueue does.
func addGroup[K shard.Key, P any](s *shardq[K, P], key K, q *gqueue[K, P]) {
	q.key = key
	s.insert(shard.Hash(key), q)
}

// FuzzTable drives a shard's table with inserts and removals against a
// map: every group in it is found under its hash, no other is, removing
// a group that is not there changes nothing, the
// groups fill at most 3/4 of a power-of-two table, and a table that held
// remapAfter groups is dropped when it empties. Hashes are taken from a
// few bits, so that groups collide and wrap around the table's end.
func FuzzTable(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 130, 131, 132})
	f.Add([]byte{0, 16, 32, 48, 64, 15, 31, 128, 144, 160})
	f.Fuzz(func(t *testing.T, ops []byte) {
		s := &shardq[int, Task]{}
		model := map[int]*gqueue[int, Task]{}
		// hash gives key k a hash whose low bits come from k's low
		// bits, so that distinct keys share home slots.
		hash := func(k int) uint64 { return uint64(k%37) * 0x9e3779b97f4a7c15 >> 7 & 0xff }
		peak := 0
		for _, op := range ops {
			k := int(op & 0x7f)
			if op&0x80 == 0 {
				if _, ok := model[k]; ok {
					continue
				}
				q := &gqueue[int, Task]{key: k}
				s.insert(hash(k), q)
				model[k] = q
				peak = max(peak, len(model))
			} else {
				q, ok := model[k]
				if !ok {
					// A queue not in the table: removing it
					// changes nothing.
					s.remove(hash(k), &gqueue[int, Task]{key: k})
					if int(s.ngroups) != len(model) {
						t.Fatalf("removing an absent group left %d groups, want %d", s.ngroups, len(model))
					}
					continue
				}
				s.remove(hash(k), q)
				delete(model, k)
				if len(model) == 0 && peak >= remapAfter {
					if s.slots != nil {
						t.Fatalf("the table emptied after holding %d groups and was kept", peak)
					}
					peak = 0
				}
			}
			got := tableOf(t, s)
			if len(got) != len(model) {
				t.Fatalf("table holds %d groups, model %d", len(got), len(model))
			}
			n := len(s.slots)
			if n != 0 && (n&(n-1) != 0 || n < minSlots || 4*len(model) > 3*n) {
				t.Fatalf("%d groups in a table of %d slots", len(model), n)
			}
			for key := range 128 {
				want := model[key]
				if g := s.find(hash(key), key); g != want {
					t.Fatalf("find(%d) = %p, want %p", key, g, want)
				}
			}
		}
	})
}

// TestTableGrowsAndShrinks: 1,000 groups in one shard grow its table to
// the smallest power of two they fill at most 3/4 of, all found; when they
// leave, the table is dropped.
func TestTableGrowsAndShrinks(t *testing.T) {
	s := &shardq[int, Task]{}
	var qs []*gqueue[int, Task]
	for k := range 1000 {
		q := &gqueue[int, Task]{}
		addGroup(s, k, q)
		qs = append(qs, q)
	}
	if len(s.slots) != 2048 {
		t.Fatalf("1,000 groups in a table of %d slots, want 2,048", len(s.slots))
	}
	for k, q := range qs {
		if g := s.find(shard.Hash(k), k); g != q {
			t.Fatalf("group %d not found", k)
		}
	}
	if g := s.find(shard.Hash(1000), 1000); g != nil {
		t.Fatal("found a group never added")
	}
	for k, q := range qs {
		s.remove(shard.Hash(k), q)
	}
	if s.slots != nil || s.ngroups != 0 || s.peak != 0 {
		t.Fatalf("after every group left: %d slots, %d groups, peak %d; want none", len(s.slots), s.ngroups, s.peak)
	}
}
