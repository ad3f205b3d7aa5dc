package shard

import (
	"errors"
	"fmt"
)

// ErrBadShardCount is returned by JumpChecked when the number of
// shards is not positive.
var ErrBadShardCount = errors.New("shard: shard count must be positive")

// Jump maps a 64-bit hash to a shard in [0, n) with the jump consistent hash
// of Lamping and Veach ("A Fast, Minimal Memory, Consistent Hash Algorithm",
// 2014). When n grows to n+1, exactly the keys that Jump(h, n+1) sends to the
// new shard n move, about 1/(n+1) of them, and no key moves between two old
// shards. It needs no memory and runs in O(ln n) steps (about 7 at n = 1024).
//
// h should be well mixed, such as the output of Hash: Jump uses h as the seed
// of its own generator, so nearby hashes are fine, but equal hashes always
// meet.
//
// n <= 0 is not a valid shard count; Jump then returns 0 rather than
// panicking. Use JumpChecked to get an error instead.
func Jump(h uint64, n int) int {
	if n <= 0 {
		return 0
	}
	b, j := int64(-1), int64(0)
	for j < int64(n) {
		b = j
		h = h*2862933555777941757 + 1
		// The next jump, compared as a float: past 2^63 (a count above
		// about 2^32 allows it) the conversion to int64 would wrap
		// negative and the loop never end.
		f := float64(b+1) * (float64(int64(1)<<31) / float64((h>>33)+1))
		if f >= float64(n) {
			break
		}
		j = int64(f)
	}
	return int(b)
}

// JumpChecked is Jump with an error, wrapping ErrBadShardCount, for n <= 0.
func JumpChecked(h uint64, n int) (int, error) {
	if n <= 0 {
		return 0, fmt.Errorf("%w: got %d", ErrBadShardCount, n)
	}
	return Jump(h, n), nil
}
