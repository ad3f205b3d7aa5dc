package ringbuf_test

import (
	"testing"

	"github.com/shoal-go/shoal/ringbuf"
)

// FuzzRing drives a ring with a sequence of operations decoded from ops and
// checks every result against a plain slice used as a FIFO.
//
// Each byte of ops is one operation: its low two bits pick TryPush (0),
// PushBatch (1), TryPop (2) or PopBatch (3); the other six bits are the
// batch length. The
// ring starts at position start, so the fuzzer also crosses wrap-around.
func FuzzRing(f *testing.F) {
	f.Add(uint8(3), uint64(0), []byte{0, 0, 0, 0, 0, 2, 3 | 4<<2, 1, 2})
	f.Add(uint8(1), ^uint64(0)-2, []byte{0, 1, 0, 2, 0, 3 | 1<<2, 0, 0, 0, 3 | 63<<2})
	f.Add(uint8(8), ^uint64(0)-4, []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 3 | 3<<2, 0, 0, 0, 2, 2, 3 | 9<<2})
	f.Add(uint8(5), ^uint64(0)-6, []byte{1 | 5<<2, 1 | 9<<2, 3 | 2<<2, 1 | 4<<2, 1, 2, 3 | 63<<2, 1 | 63<<2, 0, 3 | 7<<2})
	f.Fuzz(func(t *testing.T, capacity uint8, start uint64, ops []byte) {
		r, err := ringbuf.NewAt[uint64](int(capacity%64)+1, start)
		if err != nil {
			t.Fatal(err)
		}
		var model []uint64
		var next uint64
		dst := make([]uint64, 64)
		for i, op := range ops {
			switch op & 3 {
			case 0:
				ok := r.TryPush(next)
				if want := len(model) < r.Cap(); ok != want {
					t.Fatalf("op %d: TryPush with %d of %d = %v", i, len(model), r.Cap(), ok)
				}
				if ok {
					model = append(model, next)
				}
				next++
			case 1:
				src := dst[:op>>2]
				for j := range src {
					src[j] = next + uint64(j)
				}
				want := min(len(src), r.Cap()-len(model))
				n := r.PushBatch(src)
				if n != want {
					t.Fatalf("op %d: PushBatch(len %d) with %d of %d = %d", i, len(src), len(model), r.Cap(), n)
				}
				model = append(model, src[:n]...)
				next += uint64(len(src))
			case 2:
				v, ok := r.TryPop()
				if ok != (len(model) > 0) {
					t.Fatalf("op %d: TryPop with %d items: ok = %v", i, len(model), ok)
				}
				if ok {
					if v != model[0] {
						t.Fatalf("op %d: TryPop = %d, want %d", i, v, model[0])
					}
					model = model[1:]
				}
			case 3:
				want := min(int(op>>2), len(model))
				n := r.PopBatch(dst[:op>>2])
				if n != want {
					t.Fatalf("op %d: PopBatch(len %d) with %d items = %d", i, op>>2, len(model), n)
				}
				for j := 0; j < n; j++ {
					if dst[j] != model[j] {
						t.Fatalf("op %d: PopBatch item %d = %d, want %d", i, j, dst[j], model[j])
					}
				}
				model = model[n:]
			}
			if r.Len() != len(model) {
				t.Fatalf("op %d: Len %d, want %d", i, r.Len(), len(model))
			}
		}
	})
}
