package metrics_test

import (
	"testing"
	"time"

	"github.com/shoal-go/shoal/internal/metrics"
)

func BenchmarkHistogramRecord(b *testing.B) {
	var h metrics.Histogram
	b.Run("serial", func(b *testing.B) {
		d := time.Microsecond
		for b.Loop() {
			d += 37
			h.Record(d)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			d := time.Microsecond
			for pb.Next() {
				d += 37
				h.Record(d)
			}
		})
	})
}

func BenchmarkHistogramSnapshot(b *testing.B) {
	var h metrics.Histogram
	for i := range 10000 {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	for b.Loop() {
		s := h.Snapshot()
		_ = s.Summary()
	}
}

func BenchmarkRateAdd(b *testing.B) {
	var r metrics.Rate
	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			r.Add(1)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				r.Add(1)
			}
		})
	})
}

// BenchmarkTopKIncDec is one queued task's cost: Inc on submit, Dec on
// completion, over 10,000 groups, at the default sampling and at 1 in 1.
func BenchmarkTopKIncDec(b *testing.B) {
	b.Run("serial/sample=1/8", func(b *testing.B) {
		var k metrics.TopK[int]
		i := 0
		for b.Loop() {
			i++
			h := uint64(i&8191)*0x9E3779B97F4A7C15 | 1
			if k.Inc(h, i) {
				k.Dec(h)
			}
		}
	})
	b.Run("serial/IncSeq/sample=1/8", func(b *testing.B) {
		var k metrics.TopK[int]
		i := 0
		for b.Loop() {
			i++
			h := uint64(i&8191)*0x9E3779B97F4A7C15 | 1
			if k.IncSeq(h, i, uint64(i)) {
				k.Dec(h)
			}
		}
	})
	for _, every := range []int{metrics.DefaultSampleEvery, 1} {
		name := "sample=1/8"
		if every == 1 {
			name = "sample=1/1"
		}
		b.Run(name, func(b *testing.B) {
			var k metrics.TopK[int]
			k.SetSampleEvery(every)
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					i++
					g := i % 10000
					h := uint64(g)*0x9E3779B97F4A7C15 | 1
					if k.Inc(h, g) {
						k.Dec(h)
					}
				}
			})
		})
	}
}
