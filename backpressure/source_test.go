package backpressure

import (
	"math"
	"testing"
	"testing/synctest"
	"time"
)

// TestBadCPUReadingIsIgnored: a Source whose CPU totals turn NaN, infinite,
// negative or go backwards for a while (across a GC window's end) must not
// make the GC's share NaN, 1 or 0 for a window: the breaker keeps the last
// good pair, so the share stays what the good readings give (10 %) and the
// state stays Normal.
func TestBadCPUReadingIsIgnored(t *testing.T) {
	for _, tc := range []struct {
		name string
		bad  func(r *Reading)
	}{
		{"gc NaN", func(r *Reading) { r.GCCPUSeconds = math.NaN() }},
		{"gc +Inf", func(r *Reading) { r.GCCPUSeconds = math.Inf(1) }},
		{"gc -Inf", func(r *Reading) { r.GCCPUSeconds = math.Inf(-1) }},
		{"gc negative", func(r *Reading) { r.GCCPUSeconds = -1 }},
		{"gc backwards", func(r *Reading) { r.GCCPUSeconds = 0 }},
		{"total NaN", func(r *Reading) { r.TotalCPUSeconds = math.NaN() }},
		{"total +Inf", func(r *Reading) { r.TotalCPUSeconds = math.Inf(1) }},
		{"total negative", func(r *Reading) { r.TotalCPUSeconds = -1 }},
		{"total backwards", func(r *Reading) { r.TotalCPUSeconds = 0 }},
		{"both NaN", func(r *Reading) { r.GCCPUSeconds, r.TotalCPUSeconds = math.NaN(), math.NaN() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b, src := newFake(t, 100)
				// Readings change at 10 ms past each 100 ms, never at the
				// same instant as the sampler's 25 ms ticks; GC windows
				// end at 1 s, 2 s, 3 s.
				time.Sleep(10 * time.Millisecond)
				var gc, total float64
				for k := range 35 {
					gc, total = gc+0.02, total+0.2
					src.update(func(r *Reading) {
						r.GCCPUSeconds, r.TotalCPUSeconds = gc, total
						if k == 18 || k == 19 { // 1.81 s to 2.01 s
							tc.bad(r)
						}
					})
					time.Sleep(100 * time.Millisecond)
					synctest.Wait()
					if k < 9 { // the first window ends at 1 s
						continue
					}
					if s := b.Stats().GCCPUShare; !(math.Abs(s-0.1) < 1e-6) {
						t.Fatalf("at %v: GCCPUShare = %v, want 0.1", time.Duration(k+1)*100*time.Millisecond+10*time.Millisecond, s)
					}
					wantState(t, b, Normal)
				}
			})
		})
	}
}
