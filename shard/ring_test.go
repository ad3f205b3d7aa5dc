package shard

import (
	"errors"
	"fmt"
	"slices"
	"testing"
)

func nodeNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("node-%02d", i)
	}
	return names
}

func mustRing(t *testing.T, members []string, opts ...RingOption) *Ring {
	t.Helper()
	r, err := NewRing(members, opts...)
	if err != nil {
		t.Fatalf("NewRing(%d members): %v", len(members), err)
	}
	return r
}

func TestRingBalance(t *testing.T) {
	names := nodeNames(64)
	r := mustRing(t, names)
	load := map[string]int{}
	for _, h := range keyHashes(t) {
		load[r.Lookup(h)]++
	}
	if len(load) != len(names) {
		t.Fatalf("%d members own keys, want %d", len(load), len(names))
	}
	counts := make([]int, 0, len(load))
	for _, c := range load {
		counts = append(counts, c)
	}
	maxMean, stdMean := loadStats(counts)
	t.Logf("%d keys over %d members: max/mean %.4f, std/mean %.4f", numKeys, len(names), maxMean, stdMean)
	if maxMean > 1.10 {
		t.Errorf("max/mean = %.4f, want <= 1.10", maxMean)
	}
}

func TestRingRemove(t *testing.T) {
	names := nodeNames(64)
	r := mustRing(t, names)
	hs := keyHashes(t)
	for _, gone := range []string{names[0], names[17], names[40], names[63]} {
		r2, err := r.Remove(gone)
		if err != nil {
			t.Fatalf("Remove(%q): %v", gone, err)
		}
		others, movedOthers, orphans := 0, 0, 0
		for i, h := range hs {
			before, after := r.Lookup(h), r2.Lookup(h)
			if after == gone {
				t.Fatalf("key %d still routed to removed member %q", i, gone)
			}
			if before == gone {
				orphans++
				continue
			}
			others++
			if after != before {
				movedOthers++
			}
		}
		frac := float64(movedOthers) / float64(others)
		t.Logf("removing %s: its %d keys moved, and %.3f %% of the other keys", gone, orphans, 100*frac)
		if orphans == 0 {
			t.Errorf("removed member %q owned no keys", gone)
		}
		if frac > 0.01 {
			t.Errorf("removing %q moved %.3f %% of the keys it did not own, want <= 1 %%", gone, 100*frac)
		}
	}
}

func TestRingAdd(t *testing.T) {
	names := nodeNames(64)
	r := mustRing(t, names)
	hs := keyHashes(t)
	opt := 1.0 / 65
	for _, added := range []string{"node-64", "extra", "a-first-in-order"} {
		r2, err := r.Add(added)
		if err != nil {
			t.Fatalf("Add(%q): %v", added, err)
		}
		moved, toNew := 0, 0
		for _, h := range hs {
			after := r2.Lookup(h)
			if after != r.Lookup(h) {
				moved++
			}
			if after == added {
				toNew++
			}
		}
		frac := float64(moved) / numKeys
		t.Logf("adding %s moved %.4f of keys (%.3f x optimum %.4f), %.4f to it",
			added, frac, frac/opt, opt, float64(toNew)/numKeys)
		if frac > 1.4*opt {
			t.Errorf("adding %q moved %.4f of keys, want <= 1.4 x %.4f", added, frac, opt)
		}
		if toNew == 0 {
			t.Errorf("added member %q owns no keys", added)
		}
	}
}

// TestRingSameSetSameTable checks that routing depends only on the set of
// members: order of construction, Add and Remove make no difference.
func TestRingSameSetSameTable(t *testing.T) {
	names := nodeNames(10)
	a := mustRing(t, names)
	rev := slices.Clone(names)
	slices.Reverse(rev)
	b := mustRing(t, rev)
	c, err := mustRing(t, names[:9]).Add(names[9])
	if err != nil {
		t.Fatal(err)
	}
	d, err := mustRing(t, append(slices.Clone(names), "x")).Remove("x")
	if err != nil {
		t.Fatal(err)
	}
	for _, other := range []*Ring{b, c, d} {
		if !slices.Equal(a.table, other.table) || !slices.Equal(a.Members(), other.Members()) {
			t.Fatal("rings over the same members differ")
		}
	}
	if !slices.IsSorted(a.Members()) {
		t.Errorf("Members() = %v, want sorted", a.Members())
	}
}

// TestRingImmutable checks that Add and Remove leave the receiver unchanged.
func TestRingImmutable(t *testing.T) {
	names := nodeNames(5)
	r := mustRing(t, names, WithTableSize(1009))
	table := slices.Clone(r.table)
	if _, err := r.Add("new"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Remove(names[2]); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.table, table) || !slices.Equal(r.Members(), names) {
		t.Fatal("Add or Remove changed the receiver")
	}
	if r.TableSize() != 1009 {
		t.Errorf("TableSize() = %d, want 1009", r.TableSize())
	}
	m := r.Members()
	m[0] = "changed"
	if r.Members()[0] != names[0] {
		t.Error("Members() exposes the ring's own slice")
	}
}

// TestRingTableShares checks Maglev's defining property: every member owns
// floor(M/n) or ceil(M/n) slots.
func TestRingTableShares(t *testing.T) {
	for _, n := range []int{1, 2, 7, 64, 300} {
		r := mustRing(t, nodeNames(n), WithTableSize(65537))
		slots := make([]int, n)
		for _, idx := range r.table {
			slots[idx]++
		}
		lo, hi := slices.Min(slots), slices.Max(slots)
		if want := r.TableSize() / n; lo < want || hi > want+1 {
			t.Errorf("n=%d: slots per member in [%d, %d], want %d or %d", n, lo, hi, want, want+1)
		}
	}
}

func TestRingLookupAllocs(t *testing.T) {
	r := mustRing(t, nodeNames(64))
	key := "0123456789abcdef"
	var sink string
	if n := testing.AllocsPerRun(1000, func() { sink = r.Lookup(Hash(key)) }); n != 0 {
		t.Errorf("Lookup(Hash(key)): %v allocations per call, want 0", n)
	}
	_ = sink
}

func TestRingZeroValue(t *testing.T) {
	var r *Ring
	if got := r.Lookup(1); got != "" {
		t.Errorf("nil Ring Lookup = %q, want empty", got)
	}
	if r.Members() != nil || r.TableSize() != 0 {
		t.Error("nil Ring has members or a table")
	}
	r2, err := r.Add("a")
	if err != nil || r2.Lookup(1) != "a" {
		t.Errorf("nil Ring Add(a) = %v, %v; want a ring routing to a", r2, err)
	}
	if got := new(Ring).Lookup(1); got != "" {
		t.Errorf("zero Ring Lookup = %q, want empty", got)
	}
}

func TestBadInput(t *testing.T) {
	three := mustRing(t, []string{"a", "b", "c"})
	one := mustRing(t, []string{"solo"})
	tests := []struct {
		name string
		call func() error
		want error
	}{
		{"NewRing nil", func() error { _, err := NewRing(nil); return err }, ErrNoMembers},
		{"NewRing empty", func() error { _, err := NewRing([]string{}); return err }, ErrNoMembers},
		{"NewRing empty name", func() error { _, err := NewRing([]string{"a", ""}); return err }, ErrEmptyMember},
		{"NewRing duplicate", func() error { _, err := NewRing([]string{"a", "b", "a"}); return err }, ErrDuplicateMember},
		{"table size 0", func() error { _, err := NewRing([]string{"a"}, WithTableSize(0)); return err }, ErrBadTableSize},
		{"table size negative", func() error { _, err := NewRing([]string{"a"}, WithTableSize(-5)); return err }, ErrBadTableSize},
		{"table size too big", func() error { _, err := NewRing([]string{"a"}, WithTableSize(MaxTableSize+1)); return err }, ErrBadTableSize},
		{"more members than slots", func() error { _, err := NewRing(nodeNames(6), WithTableSize(4)); return err }, ErrTooManyMembers},
		{"more than MaxMembers", func() error { _, err := NewRing(nodeNames(MaxMembers + 1)); return err }, ErrTooManyMembers},
		{"Add empty", func() error { _, err := three.Add(""); return err }, ErrEmptyMember},
		{"Add duplicate", func() error { _, err := three.Add("b"); return err }, ErrDuplicateMember},
		{"Add beyond slots", func() error {
			r := mustRing(t, []string{"a", "b"}, WithTableSize(2))
			_, err := r.Add("c")
			return err
		}, ErrTooManyMembers},
		{"Remove unknown", func() error { _, err := three.Remove("z"); return err }, ErrUnknownMember},
		{"Remove from nil", func() error { _, err := (*Ring)(nil).Remove("z"); return err }, ErrUnknownMember},
		{"Remove last", func() error { _, err := one.Remove("solo"); return err }, ErrNoMembers},
		{"JumpChecked zero", func() error { _, err := JumpChecked(1, 0); return err }, ErrBadShardCount},
		{"JumpChecked negative", func() error { _, err := JumpChecked(1, -3); return err }, ErrBadShardCount},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if !errors.Is(err, tt.want) {
				t.Errorf("error = %v, want %v", err, tt.want)
			}
		})
	}
	// A nil option is ignored.
	if _, err := NewRing([]string{"a"}, nil); err != nil {
		t.Errorf("NewRing with a nil option: %v", err)
	}
}
