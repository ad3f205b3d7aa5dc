package metrics_test

import (
	"testing"

	"github.com/shoal-go/shoal/internal/metrics"
)

// FuzzTopK drives Inc, Dec and Top over 40 groups with exact (collision-free)
// counts and checks Top against a model map: every reported count is exact,
// the list is sorted and has no duplicates, and a group strictly heavier
// than all others is reported after one more Inc following a Top.
func FuzzTopK(f *testing.F) {
	f.Add([]byte{0, 1, 0, 1, 0, 1, 2, 0, 1, 1, 3, 5})
	f.Add([]byte{0, 3, 0, 3, 0, 3, 0, 4, 0, 4, 1, 3, 2, 0, 3, 0})
	f.Fuzz(func(t *testing.T, ops []byte) {
		var k metrics.TopK[int]
		k.SetSampleEvery(1)
		model := make(map[int]int64)
		var dst []metrics.TopGroup[int]
		check := func() {
			dst = k.Top(dst[:0])
			if len(dst) > metrics.TopKSlots {
				t.Fatalf("Top returned %d groups", len(dst))
			}
			seen := map[int]bool{}
			for i, g := range dst {
				if seen[g.Group] {
					t.Fatalf("group %d twice in %v", g.Group, dst)
				}
				seen[g.Group] = true
				if g.Queued != model[g.Group] || g.Queued <= 0 {
					t.Fatalf("group %d reported %d, model %d", g.Group, g.Queued, model[g.Group])
				}
				if i > 0 && dst[i-1].Queued < g.Queued {
					t.Fatalf("not sorted: %v", dst)
				}
			}
		}
		for i := 0; i+1 < len(ops); i += 2 {
			g := int(ops[i+1]) % 40
			switch ops[i] % 4 {
			case 0, 1: // Inc, twice as often as Dec
				k.Inc(hashOf(g+1), g)
				model[g]++
			case 2:
				if model[g] > 0 {
					k.Dec(hashOf(g + 1))
					model[g]--
				}
			case 3:
				check()
				// The strictly heaviest group gets in on its next Inc.
				heavy, hc, tie := -1, int64(0), false
				for mg, c := range model {
					switch {
					case c > hc:
						heavy, hc, tie = mg, c, false
					case c == hc:
						tie = true
					}
				}
				if heavy < 0 || tie || hc+1 < 2 {
					continue
				}
				k.Inc(hashOf(heavy+1), heavy)
				model[heavy]++
				check()
				if len(dst) == 0 || dst[0].Group != heavy {
					t.Fatalf("heaviest group %d (%d) not on top: %v", heavy, model[heavy], dst)
				}
			}
		}
		check()
	})
}
