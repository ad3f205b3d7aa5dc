package shard

import (
	"math"
	"strconv"
	"sync"
	"testing"
)

// numKeys is the number of keys "group-<n>" in the distribution tests. It is
// not reduced in -short mode: the bounds asserted are a few standard
// deviations from the expected values at this size, and fewer keys would
// make them fail by chance.
const numKeys = 1_000_000

var (
	keyHashesOnce sync.Once
	keyHashesVal  []uint64
)

// keyHashes returns Hash("group-<n>") for n in [0, numKeys), computed once
// and shared by every test; callers must not modify it.
func keyHashes(t testing.TB) []uint64 {
	t.Helper()
	keyHashesOnce.Do(func() {
		hs := make([]uint64, numKeys)
		buf := []byte("group-")
		for i := range hs {
			b := strconv.AppendInt(buf[:len("group-")], int64(i), 10)
			hs[i] = Hash(string(b))
		}
		keyHashesVal = hs
	})
	return keyHashesVal
}

// loadStats returns max/mean and std/mean of counts.
func loadStats(counts []int) (maxOverMean, stdOverMean float64) {
	total, hi := 0, 0
	for _, c := range counts {
		total += c
		hi = max(hi, c)
	}
	mean := float64(total) / float64(len(counts))
	var ss float64
	for _, c := range counts {
		d := float64(c) - mean
		ss += d * d
	}
	return float64(hi) / mean, math.Sqrt(ss/float64(len(counts))) / mean
}
