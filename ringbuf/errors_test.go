package ringbuf_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/shoal-go/shoal/ringbuf"
)

// TestCapacityErrorSaysWhy: a capacity within [1, MaxCapacity] whose slots
// would not fit in memory is refused with ErrCapacity, but the message must
// not tell the caller that the capacity is out of range: it is the memory.
func TestCapacityErrorSaysWhy(t *testing.T) {
	_, err := ringbuf.New[[1 << 20]byte](ringbuf.MaxCapacity)
	if !errors.Is(err, ringbuf.ErrCapacity) {
		t.Fatalf("err %v, want ErrCapacity", err)
	}
	if !strings.Contains(err.Error(), "bytes") {
		t.Errorf("New[[1<<20]byte](MaxCapacity): %q: says nothing of the memory the slots would take", err)
	}
	_, err = ringbuf.New[int](-3)
	if !errors.Is(err, ringbuf.ErrCapacity) || !strings.Contains(err.Error(), "-3") {
		t.Errorf("New(-3): %v, want ErrCapacity naming -3", err)
	}
}
