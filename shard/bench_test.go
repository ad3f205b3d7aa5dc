package shard

import (
	"fmt"
	"testing"
)

// benchKeys are 1024 distinct 16-byte keys, cycled through so that a lookup
// is not always the same branch pattern and table slot.
var benchKeys = func() []string {
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = fmt.Sprintf("group-%010d", i)
	}
	return keys
}()

var benchSink int

// BenchmarkRoute measures routing one 16-byte string key, hashing included,
// with Jump and Ring.Lookup (default table, n members), side by
// side for each n so that the two share the machine's conditions.
func BenchmarkRoute(b *testing.B) {
	for _, n := range []int{8, 64, 256, 1024} {
		ring, err := NewRing(nodeNames(n))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("n=%d/jump", n), func(b *testing.B) {
			i, s := 0, 0
			for b.Loop() {
				s += Jump(Hash(benchKeys[i&1023]), n)
				i++
			}
			benchSink = s
		})
		b.Run(fmt.Sprintf("n=%d/ring", n), func(b *testing.B) {
			i, s := 0, 0
			for b.Loop() {
				s += len(ring.Lookup(Hash(benchKeys[i&1023])))
				i++
			}
			benchSink = s
		})
	}
}

// BenchmarkHash measures Hash alone.
func BenchmarkHash(b *testing.B) {
	b.Run("string16", func(b *testing.B) {
		var s uint64
		i := 0
		for b.Loop() {
			s += Hash(benchKeys[i&1023])
			i++
		}
		benchSink = int(s)
	})
	b.Run("int64", func(b *testing.B) {
		var s uint64
		for i := range int64(b.N) {
			s += Hash(i)
		}
		benchSink = int(s)
	})
}

// BenchmarkNewRing measures building the default table.
func BenchmarkNewRing(b *testing.B) {
	for _, n := range []int{8, 64, 256} {
		names := nodeNames(n)
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			for b.Loop() {
				if _, err := NewRing(names); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
