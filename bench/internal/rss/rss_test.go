package rss

import (
	"errors"
	"fmt"
	"testing"
)

func TestParseVmHWM(t *testing.T) {
	status := []byte("Name:\tshoalbench\nVmPeak:\t  812345 kB\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\n")
	got, err := ParseVmHWM(status)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(20480 * 1024); got != want {
		t.Fatalf("ParseVmHWM = %d, want %d", got, want)
	}
	for _, bad := range []string{"", "VmRSS: 1 kB\n", "VmHWM: x kB\n", "VmHWM: 12 MB\n", "VmHWM: -3 kB\n"} {
		if _, err := ParseVmHWM([]byte(bad)); !errors.Is(err, ErrUnavailable) {
			t.Errorf("ParseVmHWM(%q) error = %v, want ErrUnavailable", bad, err)
		}
	}
}

func TestPeakGrowsWithTouchedMemory(t *testing.T) {
	before, err := Peak()
	if err != nil {
		t.Skipf("no peak RSS on this system: %v", err)
	}
	const size = 64 << 20
	buf := make([]byte, size)
	for i := 0; i < len(buf); i += 4096 {
		buf[i] = 1
	}
	after, err := Peak()
	if err != nil {
		t.Fatal(err)
	}
	if after < before || after < size {
		t.Fatalf("peak after touching %d bytes = %d (before %d)", size, after, before)
	}
	_ = buf[len(buf)-1]
}

func ExamplePeak() {
	peak, err := Peak()
	if err != nil {
		return // not Linux, no getrusage
	}
	fmt.Printf("peak RSS %.1f MiB\n", float64(peak)/(1<<20))
}
