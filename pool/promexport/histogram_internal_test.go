package promexport

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/shoal-go/shoal/pool"
)

// TestBatchHistogramCountsItsBuckets: a Snapshot may read a Batcher's
// Calls before a worker publishes the size of its last call; the
// histogram's count is then its buckets' total, so that no bucket holds
// more than the count.
func TestBatchHistogramCountsItsBuckets(t *testing.T) {
	d := prometheus.NewDesc("batch_size_messages", "test", nil, nil)
	var b pool.BatchStats
	b.Calls, b.Messages = 10, 40
	b.Sizes[0], b.Sizes[2], b.Sizes[len(b.Sizes)-1] = 6, 4, 1 // 11 calls in the buckets
	var m dto.Metric
	if err := batchHistogram(d, b).Write(&m); err != nil {
		t.Fatal(err)
	}
	h := m.GetHistogram()
	if h.GetSampleCount() != 11 {
		t.Fatalf("count %d, want the buckets' 11", h.GetSampleCount())
	}
	for _, bk := range h.GetBucket() {
		if bk.GetCumulativeCount() > h.GetSampleCount() {
			t.Fatalf("bucket le=%v holds %d > count %d", bk.GetUpperBound(), bk.GetCumulativeCount(), h.GetSampleCount())
		}
	}
}
