package rss

import (
	"bufio"
	"bytes"
	"os"
	"runtime/metrics"
	"strconv"
)

// Reader reads the process's resident set size, reusing its buffers, so a
// sampler can call it often without allocating much. On Linux it reads
// /proc/self/status; elsewhere it falls back to the Go runtime's view of the
// memory it has mapped, which leaves out memory that is not Go's.
type Reader struct {
	buf     []byte
	samples []metrics.Sample
}

// NewReader returns a Reader.
func NewReader() *Reader {
	return &Reader{
		buf:     make([]byte, 4096),
		samples: []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}},
	}
}

// Current returns the resident set size in bytes.
func (r *Reader) Current() int64 {
	if v, ok := r.status("VmRSS:"); ok {
		return v
	}
	metrics.Read(r.samples)
	return int64(r.samples[0].Value.Uint64() - r.samples[1].Value.Uint64())
}

// HighWater returns the peak resident set size (VmHWM) in bytes, and false
// where the system does not report it.
func (r *Reader) HighWater() (int64, bool) { return r.status("VmHWM:") }

// ResetPeak asks Linux to restart the VmHWM count from the current size, so
// that a run's peak is its own. It reports whether that worked.
func ResetPeak() bool {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}

func (r *Reader) status(key string) (int64, bool) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(r.buf, len(r.buf))
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.HasPrefix(line, []byte(key)) {
			continue
		}
		fields := bytes.Fields(line[len(key):])
		if len(fields) < 1 {
			return 0, false
		}
		kb, err := strconv.ParseInt(string(fields[0]), 10, 64)
		if err != nil {
			return 0, false
		}
		return kb << 10, true
	}
	return 0, false
}
