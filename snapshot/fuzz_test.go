package snapshot_test

import (
	"errors"
	"testing"

	"github.com/shoal-go/shoal/snapshot"
)

// FuzzStoreModel runs a sequence of operations against a Store and a plain
// map that keeps every version and every tombstone forever, and checks each
// result against the model.
func FuzzStoreModel(f *testing.F) {
	f.Add([]byte{0, 1, 5, 0, 2, 6, 1, 1, 0, 3, 1, 0, 4, 0, 0, 2, 1, 0})
	f.Add([]byte{0, 0, 1, 1, 0, 0, 0, 0, 2, 1, 0, 0, 0, 1, 3, 1, 1, 0, 4, 3, 0})
	f.Fuzz(storeModel)
}

func storeModel(t *testing.T, ops []byte) {
	defer snapshot.SetPurgeMin(2)()
	var s snapshot.Store[int, int]
	// Keys from two shards only, so that shards fill up and purge.
	var keys []int
	for k := 0; len(keys) < 12; k++ {
		if sh := snapshot.ShardOf(&s, k); sh == 0 || sh == 1 {
			keys = append(keys, k)
		}
	}
	type state struct {
		v   int
		ver uint64
		del bool
	}
	model := make(map[int]state)
	var clock uint64
	var seen []uint64 // versions a follower might ask Since for
	for i := 0; i+2 < len(ops); i += 3 {
		k := keys[int(ops[i+1])%len(keys)]
		v := int(ops[i+2])
		m, known := model[k]
		live := known && !m.del
		switch ops[i] % 5 {
		case 0: // Set
			ver := s.Set(k, v)
			clock++
			if ver != clock {
				t.Fatalf("Set: version %d, want %d", ver, clock)
			}
			model[k] = state{v, ver, false}
		case 1: // Delete
			ver, ok := s.Delete(k)
			if ok != live {
				t.Fatalf("Delete(%d): ok %v, model live %v", k, ok, live)
			}
			if ok {
				clock++
				if ver != clock {
					t.Fatalf("Delete: version %d, want %d", ver, clock)
				}
				model[k] = state{0, ver, true}
			}
		case 2: // Get
			got, ver, ok := s.Get(k)
			if ok != live || (live && (got != m.v || ver != m.ver)) {
				t.Fatalf("Get(%d) = (%d, %d, %v), model %+v known %v", k, got, ver, ok, m, known)
			}
			if !live && ver < m.ver {
				t.Fatalf("Get(%d) of an absent key: version %d below its deletion %d", k, ver, m.ver)
			}
		case 3: // CompareAndSwap, current or stale
			_, cur, _ := s.Get(k)
			stale := v%2 == 1 && cur > 0
			try := cur
			if stale {
				try = cur - 1
			}
			ver, ok := s.CompareAndSwap(k, try, v)
			if ok == stale {
				t.Fatalf("CAS(%d, %d) with current %d: ok %v", k, try, cur, ok)
			}
			if ok {
				clock++
				if ver != clock {
					t.Fatalf("CAS: version %d, want %d", ver, clock)
				}
				model[k] = state{v, ver, false}
			}
		case 4: // Since from an earlier version
			from := uint64(0)
			if len(seen) > 0 {
				from = seen[v%len(seen)]
			}
			if v%5 == 0 {
				from = 0
			}
			ch, next, err := s.Since(from)
			if errors.Is(err, snapshot.ErrTooOld) && from > 0 {
				break
			}
			if err != nil || next != clock {
				t.Fatalf("Since(%d): next %d err %v, clock %d", from, next, err, clock)
			}
			want := 0
			for mk, ms := range model {
				if ms.ver > from && (from > 0 || !ms.del) {
					want++
					_ = mk
				}
			}
			if len(ch) != want {
				t.Fatalf("Since(%d): %d changes, model has %d: %v", from, len(ch), want, ch)
			}
			for j, c := range ch {
				ms := model[c.Key]
				if c.Version != ms.ver || c.Deleted != ms.del || (!ms.del && c.Value != ms.v) {
					t.Fatalf("Since(%d): change %+v, model %+v", from, c, ms)
				}
				if j > 0 && ch[j-1].Version >= c.Version {
					t.Fatalf("Since(%d): not sorted by version: %v", from, ch)
				}
			}
		}
		seen = append(seen, clock)
	}
	if live := func() int {
		n := 0
		for _, m := range model {
			if !m.del {
				n++
			}
		}
		return n
	}(); s.Len() != live {
		t.Fatalf("Len %d, model %d", s.Len(), live)
	}
}
