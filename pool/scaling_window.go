package pool

import "time"

// window is the mean rate of a counter over a sliding window, kept as a ring
// of interval-wide buckets. It is allocated once; add and rate never allocate.
//
// Bucket i (absolute) holds what was added at times in
// (start + i×interval, start + (i+1)×interval]: a sample counts what arrived
// since the previous one, so it belongs to the interval that ends with it.
// The ring holds buckets (head−len(counts), head]; sum is their total.
type window struct {
	counts   []uint64
	sum      uint64
	head     int64 // absolute index of the newest bucket
	start    time.Time
	interval time.Duration
}

func newWindow(interval time.Duration, buckets int) window {
	return window{counts: make([]uint64, buckets), interval: interval}
}

// reset empties the window and makes now the start of bucket 0.
func (w *window) reset(now time.Time) {
	clear(w.counts)
	w.sum, w.head, w.start = 0, 0, now
}

// add moves the window to now, dropping buckets that fell out of it, and
// counts n in the newest bucket. A time before the newest bucket (a clock that
// went back) counts in the newest bucket.
func (w *window) add(now time.Time, n uint64) {
	k := bucket(now.Sub(w.start), w.interval)
	if k > w.head {
		size := int64(len(w.counts))
		if k-w.head >= size {
			clear(w.counts)
			w.sum = 0
		} else {
			for i := w.head + 1; i <= k; i++ {
				j := i % size
				w.sum -= w.counts[j]
				w.counts[j] = 0
			}
		}
		w.head = k
	}
	w.counts[w.head%int64(len(w.counts))] += n
	w.sum += n
}

// bucket is the index of the interval (i×interval, (i+1)×interval] that holds
// d; 0 for d ≤ 0.
func bucket(d, interval time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d - 1) / interval)
}

// rate is the mean per second over the time the ring covers at now, which
// must be the time of the last add: from the start of the oldest bucket held
// (or of the window's start) to now. It is 0 before any time has passed.
func (w *window) rate(now time.Time) float64 {
	covered := now.Sub(w.start)
	if oldest := w.head - int64(len(w.counts)) + 1; oldest > 0 {
		covered -= time.Duration(oldest) * w.interval
	}
	if covered <= 0 {
		return 0
	}
	return float64(w.sum) / covered.Seconds()
}

// peak is the largest value seen over a sliding window of interval-wide
// buckets, in a ring allocated once. It holds buckets (head−len(maxes), head].
type peak struct {
	maxes    []float64
	head     int64 // absolute index of the newest bucket
	start    time.Time
	interval time.Duration
}

func newPeak(interval time.Duration, buckets int) peak {
	return peak{maxes: make([]float64, max(buckets, 1)), interval: interval}
}

func (w *peak) reset(now time.Time) {
	clear(w.maxes)
	w.head, w.start = 0, now
}

// add moves the window to now and records v.
func (w *peak) add(now time.Time, v float64) {
	k := bucket(now.Sub(w.start), w.interval)
	if k > w.head {
		size := int64(len(w.maxes))
		if k-w.head >= size {
			clear(w.maxes)
		} else {
			for i := w.head + 1; i <= k; i++ {
				w.maxes[i%size] = 0
			}
		}
		w.head = k
	}
	j := w.head % int64(len(w.maxes))
	w.maxes[j] = max(w.maxes[j], v)
}

// max is the largest value held; values are never negative.
func (w *peak) max() float64 {
	m := 0.0
	for _, v := range w.maxes {
		m = max(m, v)
	}
	return m
}
