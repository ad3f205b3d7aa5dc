package ringbuf_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/shoal-go/shoal/ringbuf"
)

func TestNewRoundsUp(t *testing.T) {
	for _, tc := range []struct{ in, want int }{
		{1, 2}, {2, 2}, {3, 4}, {5, 8}, {1000, 1024}, {1024, 1024},
	} {
		r, err := ringbuf.New[int](tc.in)
		if err != nil {
			t.Fatalf("New(%d): %v", tc.in, err)
		}
		if r.Cap() != tc.want || r.Len() != 0 {
			t.Errorf("New(%d): Cap %d Len %d, want Cap %d Len 0", tc.in, r.Cap(), r.Len(), tc.want)
		}
	}
}

func TestNewBadCapacity(t *testing.T) {
	for _, c := range []int{0, -1, -1 << 40, ringbuf.MaxCapacity + 1, 1 << 62} {
		r, err := ringbuf.New[int](c)
		if !errors.Is(err, ringbuf.ErrCapacity) || r != nil {
			t.Errorf("New(%d) = %v, %v; want nil, ErrCapacity", c, r, err)
		}
	}
	// A capacity in range whose slots would not fit in memory.
	if _, err := ringbuf.New[[1 << 20]byte](ringbuf.MaxCapacity); !errors.Is(err, ringbuf.ErrCapacity) {
		t.Errorf("New[[1<<20]byte](MaxCapacity): err %v, want ErrCapacity", err)
	}
}

func TestFIFOFullEmpty(t *testing.T) {
	r, err := ringbuf.New[int](4)
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := r.TryPop(); ok {
		t.Fatalf("TryPop on empty ring = %d, true", v)
	}
	for lap := 0; lap < 3; lap++ {
		for i := 0; i < 4; i++ {
			if !r.TryPush(lap*10 + i) {
				t.Fatalf("lap %d: TryPush %d failed below capacity", lap, i)
			}
		}
		if r.TryPush(99) {
			t.Fatalf("lap %d: TryPush succeeded on a full ring", lap)
		}
		if r.Len() != 4 {
			t.Fatalf("lap %d: Len %d, want 4", lap, r.Len())
		}
		if v, ok := r.TryPop(); !ok || v != lap*10 {
			t.Fatalf("lap %d: TryPop = %d, %v; want %d, true", lap, v, ok, lap*10)
		}
		dst := make([]int, 8)
		if n := r.PopBatch(dst); n != 3 || dst[0] != lap*10+1 || dst[2] != lap*10+3 {
			t.Fatalf("lap %d: PopBatch = %d %v", lap, n, dst[:n])
		}
		if n := r.PopBatch(dst); n != 0 {
			t.Fatalf("lap %d: PopBatch on empty ring = %d", lap, n)
		}
	}
}

func TestPushBatch(t *testing.T) {
	r, err := ringbuf.New[int](8)
	if err != nil {
		t.Fatal(err)
	}
	dst := make([]int, 16)
	for lap := 0; lap < 3; lap++ {
		if n := r.PushBatch(nil); n != 0 {
			t.Fatalf("lap %d: PushBatch(nil) = %d", lap, n)
		}
		if n := r.PushBatch([]int{1, 2, 3}); n != 3 {
			t.Fatalf("lap %d: PushBatch of 3 into an empty ring = %d", lap, n)
		}
		r.TryPush(4)
		// Room for 4 of the 6: the rest is left to the caller.
		if n := r.PushBatch([]int{5, 6, 7, 8, 9, 10}); n != 4 {
			t.Fatalf("lap %d: PushBatch of 6 with room for 4 = %d", lap, n)
		}
		if n := r.PushBatch([]int{11}); n != 0 || r.TryPush(11) {
			t.Fatalf("lap %d: push into a full ring succeeded (PushBatch %d)", lap, n)
		}
		if v, ok := r.TryPop(); !ok || v != 1 {
			t.Fatalf("lap %d: TryPop = %d, %v; want 1, true", lap, v, ok)
		}
		n := r.PopBatch(dst)
		if want := []int{2, 3, 4, 5, 6, 7, 8}; !slices.Equal(dst[:n], want) {
			t.Fatalf("lap %d: PopBatch = %v, want %v", lap, dst[:n], want)
		}
		if r.Len() != 0 {
			t.Fatalf("lap %d: Len %d after draining", lap, r.Len())
		}
	}
}

func TestNoAllocs(t *testing.T) {
	r, err := ringbuf.New[int64](64)
	if err != nil {
		t.Fatal(err)
	}
	dst := make([]int64, 16)
	allocs := testing.AllocsPerRun(1000, func() {
		for i := int64(0); i < 20; i++ {
			if !r.TryPush(i) {
				t.Fatal("TryPush failed below capacity")
			}
		}
		if _, ok := r.TryPop(); !ok {
			t.Fatal("TryPop failed on a non-empty ring")
		}
		if n := r.PopBatch(dst); n != 16 {
			t.Fatalf("PopBatch = %d, want 16", n)
		}
		if _, ok := r.TryPop(); !ok {
			t.Fatal("TryPop failed on a non-empty ring")
		}
		_ = r.Len() + r.Cap()
		for range 2 {
			r.TryPop()
		}
		if n := r.PushBatch(dst); n != 16 {
			t.Fatalf("PushBatch = %d, want 16", n)
		}
		if n := r.PopBatch(dst); n != 16 {
			t.Fatalf("PopBatch = %d, want 16", n)
		}
	})
	if allocs != 0 {
		t.Errorf("TryPush/TryPop/PushBatch/PopBatch allocate %v times per run, want 0", allocs)
	}
}

// TestPoppedSlotsCleared checks that the ring keeps no reference to an item
// it has handed out, so that the garbage collector can free it.
func TestPoppedSlotsCleared(t *testing.T) {
	r, err := ringbuf.New[*int](8)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		r.TryPush(&i)
	}
	r.TryPop()
	r.PopBatch(make([]*int, 3))
	live := 0
	for _, p := range r.Slots() {
		if p != nil {
			live++
		}
	}
	if live != r.Len() || live != 2 {
		t.Errorf("%d slots hold a pointer, want the 2 not yet popped (Len %d)", live, r.Len())
	}
}

// TestPopped: Popped counts the items taken by TryPop and PopBatch, and
// not those pushed or refused.
func TestPopped(t *testing.T) {
	r, err := ringbuf.New[int](4)
	if err != nil {
		t.Fatal(err)
	}
	if n := r.Popped(); n != 0 {
		t.Fatalf("new ring: Popped %d, want 0", n)
	}
	for round := range 3 { // wraps the ring twice
		for i := range 4 {
			if !r.TryPush(i) {
				t.Fatalf("round %d: push %d refused", round, i)
			}
		}
		if r.TryPush(9) {
			t.Fatalf("round %d: a full ring took a fifth item", round)
		}
		if _, ok := r.TryPop(); !ok {
			t.Fatalf("round %d: pop from a full ring failed", round)
		}
		if n := r.PopBatch(make([]int, 8)); n != 3 {
			t.Fatalf("round %d: PopBatch took %d, want 3", round, n)
		}
		if _, ok := r.TryPop(); ok {
			t.Fatalf("round %d: pop from an empty ring succeeded", round)
		}
		if n, want := r.Popped(), uint64(4*(round+1)); n != want {
			t.Fatalf("round %d: Popped %d, want %d", round, n, want)
		}
	}
}
