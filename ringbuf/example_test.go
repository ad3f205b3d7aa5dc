package ringbuf_test

import (
	"fmt"

	"github.com/shoal-go/shoal/ringbuf"
)

func ExampleRing() {
	r, err := ringbuf.New[string](3) // rounded up to 4
	if err != nil {
		panic(err)
	}
	for _, msg := range []string{"hello", "from", "room", "42", "overflow"} {
		if !r.TryPush(msg) {
			fmt.Println("full, caller decides:", msg)
		}
	}
	first, _ := r.TryPop()
	fmt.Println(first, r.Len(), r.Cap())

	batch := make([]string, 8)
	n := r.PopBatch(batch)
	fmt.Println(batch[:n])

	_, ok := r.TryPop()
	fmt.Println("empty:", !ok)
	// Output:
	// full, caller decides: overflow
	// hello 3 4
	// [from room 42]
	// empty: true
}

func ExampleNew() {
	_, err := ringbuf.New[int](0)
	fmt.Println(err)
	// Output:
	// ringbuf: capacity must be between 1 and MaxCapacity: got 0
}

func ExampleRing_PushBatch() {
	r, err := ringbuf.New[int](4)
	if err != nil {
		panic(err)
	}
	items := []int{1, 2, 3, 4, 5, 6}
	n := r.PushBatch(items) // room for 4: the caller keeps the rest
	fmt.Println("pushed", n, "left", items[n:])

	dst := make([]int, 8)
	m := r.PopBatch(dst)
	fmt.Println(dst[:m])
	// Output:
	// pushed 4 left [5 6]
	// [1 2 3 4]
}
