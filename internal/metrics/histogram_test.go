package metrics_test

import (
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/shoal-go/shoal/internal/metrics"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestBucketBoundsAreConsistent(t *testing.T) {
	if metrics.BucketUpperBound(0) != 1024 {
		t.Fatalf("first bucket ends at %v, want 1.024µs", metrics.BucketUpperBound(0))
	}
	if lo := metrics.BucketLowerBound(metrics.NumBuckets - 1); lo != 1<<36 {
		t.Fatalf("last bucket starts at %v, want 2^36 ns", lo)
	}
	for i := range metrics.NumBuckets {
		lo, hi := metrics.BucketLowerBound(i), metrics.BucketUpperBound(i)
		if hi <= lo {
			t.Fatalf("bucket %d: [%v, %v) is empty", i, lo, hi)
		}
		if got := metrics.BucketOf(lo); got != i {
			t.Fatalf("BucketOf(%v) = %d, want %d", lo, got, i)
		}
		if i < metrics.NumBuckets-1 {
			if got := metrics.BucketOf(hi - 1); got != i {
				t.Fatalf("BucketOf(%v) = %d, want %d", hi-1, got, i)
			}
			if i > 0 && float64(hi-lo)/float64(lo) > 0.25 {
				t.Fatalf("bucket %d: width %v over lower bound %v is above 25%%", i, hi-lo, lo)
			}
		}
	}
	if metrics.BucketOf(-time.Second) != 0 || metrics.BucketOf(math.MaxInt64) != metrics.NumBuckets-1 {
		t.Fatal("out-of-range durations not clamped to the end buckets")
	}
}

func TestHistogramQuantiles(t *testing.T) {
	var h metrics.Histogram
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Millisecond)
	}
	h.Record(-time.Second) // counts as zero
	s := h.Snapshot()
	if s.Count != 1001 || s.Max != time.Second || s.Sum != 500500*time.Millisecond {
		t.Fatalf("count %d max %v sum %v", s.Count, s.Max, s.Sum)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Millisecond}, {0.9, 900 * time.Millisecond}, {0.99, 990 * time.Millisecond}, {1, time.Second}} {
		got := s.Quantile(c.q)
		if ratio := float64(got) / float64(c.want); ratio < 0.8 || ratio > 1.25 {
			t.Errorf("Quantile(%v) = %v, want about %v", c.q, got, c.want)
		}
	}
	if got := s.Quantile(0); got >= metrics.BucketUpperBound(0) {
		t.Errorf("Quantile(0) = %v, want a value in the recorded zero's bucket", got)
	}
	sum := s.Summary()
	if sum.P50 > sum.P90 || sum.P90 > sum.P99 || sum.P99 > sum.Max {
		t.Errorf("summary not ordered: %+v", sum)
	}
	var empty metrics.HistogramSnapshot
	if empty.Quantile(0.5) != 0 || empty.Mean() != 0 {
		t.Error("empty snapshot reports a value")
	}
}

func TestHistogramMerge(t *testing.T) {
	var a, b, all metrics.Histogram
	for i := range 500 {
		d := time.Duration(i*i) * time.Microsecond
		all.Record(d)
		if i%2 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	m := a.Snapshot()
	bs := b.Snapshot()
	m.Merge(&bs)
	if m != all.Snapshot() {
		t.Fatal("merged halves differ from the whole")
	}
}

func TestHistogramConcurrentRecord(t *testing.T) {
	var h metrics.Histogram
	const goroutines = 4
	n := 20000
	if testing.Short() {
		n = 2000
	}
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range n {
				h.Record(time.Duration(i+g) * time.Microsecond)
			}
		})
	}
	// Snapshots taken meanwhile never go back.
	var last uint64
	for range 100 {
		s := h.Snapshot()
		if s.Count < last {
			t.Fatalf("count went back from %d to %d", last, s.Count)
		}
		last = s.Count
	}
	wg.Wait()
	s := h.Snapshot()
	if s.Count != goroutines*uint64(n) {
		t.Fatalf("count %d, want %d", s.Count, goroutines*n)
	}
	if want := time.Duration(n-1+goroutines-1) * time.Microsecond; s.Max != want {
		t.Fatalf("max %v, want %v", s.Max, want)
	}
}

func TestHistogramRecordDoesNotAllocate(t *testing.T) {
	var h metrics.Histogram
	if n := testing.AllocsPerRun(1000, func() { h.Record(1234 * time.Microsecond) }); n != 0 {
		t.Fatalf("Record allocates %v times", n)
	}
}

// FuzzHistogram checks count, sum, max and every quantile against a sorted
// model: the estimate must fall in the bucket of the true value.
func FuzzHistogram(f *testing.F) {
	f.Add([]byte{1, 2, 3, 200, 17, 0, 0, 255}, uint8(50))
	f.Add([]byte{255, 255, 255, 255, 255, 255, 255, 127}, uint8(99))
	f.Fuzz(func(t *testing.T, data []byte, qb uint8) {
		var h metrics.Histogram
		var model []time.Duration
		var sum time.Duration
		for i := 0; i+4 <= len(data); i += 4 {
			// Spread values over the whole range: a byte chooses the scale.
			v := uint64(data[i])<<16 | uint64(data[i+1])<<8 | uint64(data[i+2])
			d := time.Duration(v << (data[i+3] % 40))
			h.Record(d)
			model = append(model, d)
			if sum > math.MaxInt64-d {
				sum = math.MaxInt64 // the sum saturates
			} else {
				sum += d
			}
		}
		s := h.Snapshot()
		if s.Count != uint64(len(model)) || s.Sum != sum {
			t.Fatalf("count %d sum %v, model %d %v", s.Count, s.Sum, len(model), sum)
		}
		if len(model) == 0 {
			return
		}
		slices.Sort(model)
		if s.Max != model[len(model)-1] {
			t.Fatalf("max %v, model %v", s.Max, model[len(model)-1])
		}
		q := float64(qb%101) / 100
		rank := int(math.Ceil(q * float64(len(model))))
		rank = max(rank, 1)
		truth := model[rank-1]
		got := s.Quantile(q)
		b := metrics.BucketOf(truth)
		if got < metrics.BucketLowerBound(b) || (got >= metrics.BucketUpperBound(b) && got != s.Max) || got > s.Max {
			t.Fatalf("Quantile(%v) = %v, true %v in bucket [%v, %v)", q, got, truth,
				metrics.BucketLowerBound(b), metrics.BucketUpperBound(b))
		}
	})
}
