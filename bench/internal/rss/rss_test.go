package rss

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"syscall"
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

func TestMinorFaultsCountTouchedPages(t *testing.T) {
	const pages = 4096 // 16 MiB of new memory
	buf, err := syscall.Mmap(-1, 0, pages*4096, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		t.Skipf("no anonymous mmap on this system: %v", err)
	}
	defer syscall.Munmap(buf)
	before, ok := MinorFaults()
	if !ok {
		t.Skip("no getrusage on this system")
	}
	for i := 0; i < len(buf); i += 4096 {
		buf[i] = 1
	}
	after, _ := MinorFaults()
	// One fault per page; where the kernel backs memory with 2 MiB pages,
	// one fault maps 512 of them.
	want := int64(pages)
	if b, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled"); err == nil && bytes.Contains(b, []byte("[always]")) {
		want = pages / 512
	}
	if got := after - before; got < want {
		t.Fatalf("touching %d new pages took %d faults, want at least %d", pages, got, want)
	}
}
