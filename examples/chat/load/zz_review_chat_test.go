package main

import (
	"testing"
	"time"
)

// TestReviewChatNearestRank: the report's percentiles are nearest-rank:
// the p99 of 1..100 ms is 99 ms (the maximum is Max), the p50 of two
// latencies the lower one.
func TestReviewChatNearestRank(t *testing.T) {
	var lats []latency
	for i := 1; i <= 100; i++ {
		d := time.Duration(i) * time.Millisecond
		lats = append(lats, latency{recv: int64(i), e2e: d, server: d})
	}
	var rep report
	rep.latencies(lats, 0)
	if rep.P99 != 99*time.Millisecond || rep.ServerP99 != 99*time.Millisecond || rep.P50 != 50*time.Millisecond || rep.Max != 100*time.Millisecond {
		t.Errorf("1..100 ms: p50 %v p99 %v server p99 %v max %v; want 50ms 99ms 99ms 100ms", rep.P50, rep.P99, rep.ServerP99, rep.Max)
	}
	var two report
	two.latencies([]latency{{e2e: 1, server: 1}, {e2e: 2, server: 2}}, 0)
	if two.P50 != 1 || two.ServerP50 != 1 {
		t.Errorf("{1, 2}: p50 %v, server p50 %v; want 1", two.P50, two.ServerP50)
	}
}
