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

// TestBadFirstCPUReadingStartsNoWindow: when the Source's CPU totals are
// bad at the breaker's first reading (NaN here), no good pair is kept yet,
// and the first GC window must start at the first good reading: started at
// the zero pair, it averaged the GC's share over the whole life of the
// process (60 % here, an early burst long past) and reported a GC spiral,
// Throttle, while the window itself saw 10 %.
func TestBadFirstCPUReadingStartsNoWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &fakeSource{r: Reading{Used: 100, GCCPUSeconds: math.NaN(), TotalCPUSeconds: math.NaN()}}
		b, err := NewBreaker(WithSource(src), WithBudget(budget))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Close() })
		time.Sleep(10 * time.Millisecond)
		gc, total := 60.0, 100.0 // the process's lifetime so far: 60 % in GC
		for k := range 25 {
			gc, total = gc+0.02, total+0.2
			src.update(func(r *Reading) { r.GCCPUSeconds, r.TotalCPUSeconds = gc, total })
			time.Sleep(100 * time.Millisecond)
			synctest.Wait()
			if s := b.Stats().GCCPUShare; s > 0.1+1e-6 {
				t.Fatalf("at %v: GCCPUShare = %v, want at most 0.1", time.Duration(k+1)*100*time.Millisecond+10*time.Millisecond, s)
			}
			wantState(t, b, Normal)
		}
		if s := b.Stats().GCCPUShare; !(math.Abs(s-0.1) < 1e-6) {
			t.Fatalf("GCCPUShare = %v, want 0.1", s)
		}
	})
}
