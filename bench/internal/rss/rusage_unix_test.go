//go:build unix

package rss

import (
	"bytes"
	"os"
	"syscall"
	"testing"
)

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
