package cli

import (
	"fmt"
	"os"
	"testing"
)

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{
		"16KiB": 16 << 10, "256MiB": 256 << 20, "512MiB": 512 << 20, "1GiB": 1 << 30,
		"1.5 GB": 3 << 29, "64kb": 64 << 10, "4096": 4096, "0": 0,
	} {
		if got, err := ParseBytes(in); err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "-1MiB", "-5MiB", "ten", "lots"} {
		if _, err := ParseBytes(in); err == nil {
			t.Errorf("ParseBytes(%q) accepted", in)
		}
	}
}

func ExampleParseBytes() {
	n, err := ParseBytes("512MiB")
	fmt.Println(n, err)
	// Output: 536870912 <nil>
}

func ExampleColumns() {
	Columns(os.Stdout, [][]string{
		{"rooms", "shoal", "ants+mutex"},
		{"out of order", "0", "492"},
	})
	// Output:
	// rooms          shoal   ants+mutex
	// out of order       0          492
}
