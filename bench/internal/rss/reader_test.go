package rss

import (
	"fmt"
	"runtime"
	"testing"
)

func TestReaderCurrentAndHighWater(t *testing.T) {
	r := NewReader()
	cur := r.Current()
	if cur <= 0 {
		t.Fatalf("Current() = %d, want > 0", cur)
	}
	if hw, ok := r.HighWater(); ok && hw < cur/2 {
		t.Fatalf("HighWater() = %d, below half of Current() %d", hw, cur)
	}
}

func ExampleReader() {
	r := NewReader()
	_ = ResetPeak() // the next HighWater is this run's own
	buf := make([]byte, 8<<20)
	for i := range buf {
		buf[i] = 1
	}
	hw, ok := r.HighWater()
	runtime.KeepAlive(buf)
	fmt.Println("peak covers the buffer:", !ok || hw >= int64(len(buf)))
	// Output: peak covers the buffer: true
}
