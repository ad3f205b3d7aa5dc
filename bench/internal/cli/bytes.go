package cli

import (
	"fmt"
	"strconv"
	"strings"
)

// ParseBytes reads a byte size: "268435456", "256MiB", "1.5 GiB", "16KiB".
// KB, MB and GB are read as the binary units. Negative or unreadable sizes
// are an error; zero is accepted, for flags where it means "default".
func ParseBytes(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KIB", 1 << 10}, {"MIB", 1 << 20}, {"GIB", 1 << 30}, {"KB", 1 << 10}, {"MB", 1 << 20}, {"GB", 1 << 30}, {"B", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseFloat(t, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("bad byte size %q (want e.g. 256MiB)", s)
	}
	return int64(n * float64(mult)), nil
}
