package rss

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
)

// ErrUnavailable is returned where neither /proc nor getrusage reports a peak.
var ErrUnavailable = errors.New("rss: peak resident set size unavailable")

// Peak returns this process's peak resident set size in bytes: VmHWM from
// /proc/self/status where Linux provides it, else getrusage's ru_maxrss.
func Peak() (int64, error) {
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		if n, err := ParseVmHWM(b); err == nil {
			return n, nil
		}
	}
	maxrss, err := maxRSS()
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if maxrss <= 0 {
		return 0, ErrUnavailable
	}
	return FromMaxrss(maxrss), nil
}

// FromMaxrss converts getrusage's ru_maxrss to bytes: Linux and the BSDs
// report it in KiB, macOS and iOS in bytes.
func FromMaxrss(v int64) int64 {
	if runtime.GOOS == "darwin" || runtime.GOOS == "ios" {
		return v
	}
	return v * 1024
}

// ParseVmHWM finds the "VmHWM:  1234 kB" line of a /proc/<pid>/status file
// and returns it in bytes.
func ParseVmHWM(status []byte) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		line := sc.Bytes()
		rest, ok := bytes.CutPrefix(line, []byte("VmHWM:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) != 2 || string(f[1]) != "kB" {
			return 0, fmt.Errorf("%w: malformed line %q", ErrUnavailable, line)
		}
		kib, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil || kib < 0 {
			return 0, fmt.Errorf("%w: malformed line %q", ErrUnavailable, line)
		}
		return kib * 1024, nil
	}
	return 0, fmt.Errorf("%w: no VmHWM line", ErrUnavailable)
}
