package shard

import (
	"errors"
	"testing"
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
	for _, n := range []int{0, -1, -1 << 62} {
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
