package shard

import (
	"errors"
	"fmt"
	"math"
	"testing"
	"time"
)

func TestJumpRange(t *testing.T) {
	for _, n := range []int{1, 2, 3, 7, 64, 1000, 1 << 20} {
		for i := range uint64(2000) {
			if s := Jump(Mix64(i), n); s < 0 || s >= n {
				t.Fatalf("Jump(h, %d) = %d, out of range", n, s)
			}
		}
	}
}

func TestJumpOneShard(t *testing.T) {
	for i := range uint64(100) {
		if s := Jump(Mix64(i), 1); s != 0 {
			t.Fatalf("Jump(h, 1) = %d, want 0", s)
		}
	}
}

func TestJumpBadCount(t *testing.T) {
	for _, n := range []int{0, -1, math.MinInt} {
		if s := Jump(12345, n); s != 0 {
			t.Errorf("Jump(h, %d) = %d, want 0", n, s)
		}
		s, err := JumpChecked(12345, n)
		if !errors.Is(err, ErrBadShardCount) || s != 0 {
			t.Errorf("JumpChecked(h, %d) = %d, %v; want 0, ErrBadShardCount", n, s, err)
		}
	}
	if s, err := JumpChecked(12345, 10); err != nil || s != Jump(12345, 10) {
		t.Errorf("JumpChecked(h, 10) = %d, %v; want %d, nil", s, err, Jump(12345, 10))
	}
}

// TestJumpMonotone checks the defining property on random hashes: from n to
// n+1 shards a key either stays or moves to the new shard n.
func TestJumpMonotone(t *testing.T) {
	for i := range uint64(5000) {
		h := Mix64(i)
		prev := Jump(h, 1)
		for n := 2; n <= 300; n++ {
			s := Jump(h, n)
			if s != prev && s != n-1 {
				t.Fatalf("hash %#x: shard %d at n=%d became %d at n=%d", h, prev, n-1, s, n)
			}
			prev = s
		}
	}
}

// TestJumpReferenceValues pins Jump to the output of the reference C++ code
// of Lamping and Veach, for n = 1, 2, ...
func TestJumpReferenceValues(t *testing.T) {
	tests := []struct {
		key    uint64
		shards []int
	}{
		{0, []int{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
		{1, []int{0, 0, 0, 0, 0, 0, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 17, 17}},
		{0xdeadbeef, []int{0, 1, 2, 3, 3, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 16, 16, 16}},
		{0x0ddc0ffeebadf00d, []int{0, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 15, 15, 15, 15}},
	}
	for _, tt := range tests {
		for i, want := range tt.shards {
			if got := Jump(tt.key, i+1); got != want {
				t.Errorf("Jump(%#x, %d) = %d, want %d", tt.key, i+1, got, want)
			}
		}
	}
}

// TestJumpBalance checks the load of 1,000,000 keys over 256 shards.
//
// Even an ideal random assignment does not give max/mean <= 1.05 every time
// at this size: the mean load is 3906 keys, a shard's load has a standard
// deviation of 1.6 % of it, and the largest of 256 loads lands near +2.8
// standard deviations, max/mean ≈ 1.045 ± 0.006. These keys give 1.0501
// (4102 keys against a bound of 4101.6), which is that noise, not a flaw:
// std/mean (1.61 %) and the chi-square statistic (≈ 259 for 255 degrees of
// freedom) match an ideal assignment. The test therefore asserts
// max/mean <= 1.06 (+3.8 standard deviations), std/mean <= 2 %, and a
// chi-square within four standard deviations of its expectation.
func TestJumpBalance(t *testing.T) {
	const shards = 256
	counts := make([]int, shards)
	for _, h := range keyHashes(t) {
		counts[Jump(h, shards)]++
	}
	maxMean, stdMean := loadStats(counts)
	chi2 := stdMean * stdMean * numKeys // sum((c-mean)^2/mean)
	t.Logf("%d keys over %d shards: max/mean %.4f, std/mean %.4f, chi-square %.1f (dof %d)",
		numKeys, shards, maxMean, stdMean, chi2, shards-1)
	if maxMean > 1.06 {
		t.Errorf("max/mean = %.4f, want <= 1.06", maxMean)
	}
	if stdMean > 0.02 {
		t.Errorf("std/mean = %.4f, want <= 0.02", stdMean)
	}
	if dof := float64(shards - 1); math.Abs(chi2-dof) > 4*math.Sqrt(2*dof) {
		t.Errorf("chi-square = %.1f, want %.0f ± %.0f", chi2, dof, 4*math.Sqrt(2*dof))
	}
}

func TestJumpGrowth(t *testing.T) {
	const from, to = 64, 65
	moved := 0
	for _, h := range keyHashes(t) {
		a, b := Jump(h, from), Jump(h, to)
		if a == b {
			continue
		}
		if b != from {
			t.Fatalf("hash %#x moved from old shard %d to old shard %d", h, a, b)
		}
		moved++
	}
	frac, opt := float64(moved)/numKeys, 1.0/to
	t.Logf("growing %d->%d moved %.4f of keys, optimum %.4f (ratio %.3f)", from, to, frac, opt, frac/opt)
	if frac > 1.05*opt {
		t.Errorf("moved %.4f of keys, want <= 1.05 x %.4f", frac, opt)
	}
	if moved == 0 {
		t.Error("no key moved to the new shard")
	}
}

// FuzzJump checks Jump's range and its consistency from n to n+1 shards for
// arbitrary hashes and shard counts.
func FuzzJump(f *testing.F) {
	f.Add(uint64(0), 1)
	f.Add(uint64(0xdeadbeef), 64)
	f.Add(^uint64(0), 1<<20)
	f.Fuzz(func(t *testing.T, h uint64, n int) {
		if n < 1 || n > 1<<30 {
			if s := Jump(h, n); n < 1 && s != 0 {
				t.Fatalf("Jump(%#x, %d) = %d, want 0", h, n, s)
			}
			return
		}
		a, b := Jump(h, n), Jump(h, n+1)
		if a < 0 || a >= n {
			t.Fatalf("Jump(%#x, %d) = %d, out of range", h, n, a)
		}
		if b != a && b != n {
			t.Fatalf("Jump(%#x, %d) = %d but Jump(h, %d) = %d", h, n, a, n+1, b)
		}
	})
}

// TestJumpHugeCounts: counts above about 2^32 let the next jump pass 2^63,
// whose conversion to int64 wraps negative; Jump must still return a shard
// in [0, n), for the largest int and for hashes that reach the wrap at
// 2^50 (Mix64(84) is one). A hang fails after 10 s.
func TestJumpHugeCounts(t *testing.T) {
	type call struct {
		h uint64
		n int
	}
	var calls []call
	for _, n := range []int{math.MaxInt, math.MaxInt - 1, 1 << 62} {
		for _, h := range []uint64{0, 1, 42, Hash("room-1"), math.MaxUint64} {
			calls = append(calls, call{h, n})
		}
	}
	for i := range uint64(200_000) {
		calls = append(calls, call{Mix64(i), 1 << 50})
	}
	done := make(chan string, 1)
	go func() {
		for _, c := range calls {
			if r := Jump(c.h, c.n); r < 0 || r >= c.n {
				done <- fmt.Sprintf("Jump(%#x, %d) = %d, want in [0, n)", c.h, c.n, r)
				return
			}
		}
		done <- ""
	}()
	select {
	case msg := <-done:
		if msg != "" {
			t.Fatal(msg)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Jump did not return within 10 s: it loops for ever on some count")
	}
}
