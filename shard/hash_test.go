package shard

import (
	"testing"

	"github.com/cespare/xxhash/v2"
)

type (
	roomID string
	userID int64
	chanID uint32
)

func TestHashStringMatchesXXHash(t *testing.T) {
	for _, s := range []string{"", "a", "group-1", "a somewhat longer key of more than 32 bytes"} {
		want := xxhash.Sum64String(s)
		if got := Hash(s); got != want {
			t.Errorf("Hash(%q) = %#x, want xxhash %#x", s, got, want)
		}
		if got := Hash(roomID(s)); got != want {
			t.Errorf("Hash(roomID(%q)) = %#x, want xxhash %#x", s, got, want)
		}
	}
}

func TestHashIntegers(t *testing.T) {
	for _, v := range []uint64{0, 1, 7, 1 << 31, 1<<32 - 1} {
		want := Mix64(v)
		got := []uint64{
			Hash(int(v)), Hash(int64(v)), Hash(uint(v)), Hash(uint64(v)),
			Hash(uint32(v)), Hash(userID(v)), Hash(chanID(v)),
		}
		for i, g := range got {
			if g != want {
				t.Errorf("value %d, case %d: hash %#x, want %#x", v, i, g, want)
			}
		}
	}
	// Signed 32-bit values hash their 32-bit pattern.
	if got, want := Hash(int32(-1)), Mix64(0xffffffff); got != want {
		t.Errorf("Hash(int32(-1)) = %#x, want %#x", got, want)
	}
	if got, want := Hash(int64(-1)), Mix64(^uint64(0)); got != want {
		t.Errorf("Hash(int64(-1)) = %#x, want %#x", got, want)
	}
}

func TestMix64Avalanche(t *testing.T) {
	// Flipping one input bit should flip about half of the output bits.
	const samples = 2000
	var flips [64][64]int
	for i := range uint64(samples) {
		x := Mix64(i ^ 0x5555) // spread the inputs themselves
		base := Mix64(x)
		for b := range 64 {
			d := base ^ Mix64(x^(1<<b))
			for o := range 64 {
				flips[b][o] += int(d >> o & 1)
			}
		}
	}
	for b := range 64 {
		for o := range 64 {
			if p := float64(flips[b][o]) / samples; p < 0.4 || p > 0.6 {
				t.Fatalf("input bit %d flips output bit %d with p = %.3f", b, o, p)
			}
		}
	}
}

func TestHashAllocs(t *testing.T) {
	s := "0123456789abcdef"
	r := roomID(s)
	var sink uint64
	cases := map[string]func(){
		"string":       func() { sink += Hash(s) },
		"named string": func() { sink += Hash(r) },
		"int":          func() { sink += Hash(42) },
		"int32":        func() { sink += Hash(int32(-42)) },
		"uint64":       func() { sink += Hash(uint64(42)) },
		"named int64":  func() { sink += Hash(userID(42)) },
		"named uint32": func() { sink += Hash(chanID(42)) },
	}
	for name, f := range cases {
		if n := testing.AllocsPerRun(1000, f); n != 0 {
			t.Errorf("Hash(%s): %v allocations per call, want 0", name, n)
		}
	}
	_ = sink
}
