package chatsim

import (
	"fmt"
	"time"

	"github.com/shoal-go/shoal/bench/internal/rss"
)

// sample runs on its own goroutine until stop is closed: every 20 ms it
// reads the scheduler's workers, every 100 ms the RSS, and every
// ProgressEvery it writes the progress line.
func (s *sim) sample(sched scheduler, gen *generator, res *Result, stop <-chan struct{}) {
	const tick = 20 * time.Millisecond
	every := s.cfg.ProgressEvery
	if every == 0 {
		every = 5 * time.Second
		if s.cfg.Interactive {
			every = 250 * time.Millisecond
		}
	}
	rd := rss.NewReader()
	t := time.NewTicker(tick)
	defer t.Stop()
	var (
		n          int
		lastPrint  time.Duration
		lastDone   uint64
		currentRSS int64
	)
	for {
		select {
		case <-stop:
			if s.cfg.Progress != nil && s.cfg.Interactive {
				fmt.Fprint(s.cfg.Progress, "\r\033[K")
			}
			return
		case <-t.C:
		}
		n++
		elapsed := time.Since(s.start)
		frac := float64(elapsed) / float64(s.cfg.Duration)
		hour := min(int(frac*24), 23)
		w := sched.workers()
		res.WorkersByHour[hour] = max(res.WorkersByHour[hour], w)
		res.PeakWorkers = max(res.PeakWorkers, w)
		if n%5 == 1 {
			currentRSS = rd.Current()
			res.PeakRSS = max(res.PeakRSS, currentRSS)
		}
		if s.cfg.Progress == nil || elapsed-lastPrint < every {
			continue
		}
		done := s.done.Load() // a counter
		rate := float64(done-lastDone) / (elapsed - lastPrint).Seconds()
		lastDone, lastPrint = done, elapsed
		queued := int64(s.accepted.Load()) - int64(done) - int64(s.deadTotal()) // counters; approximate while running
		line := fmt.Sprintf("%-5s %5.1fs/%v  day %s  offered %6.0f/s  done %s (%6.0f/s)  queued %d  p99 %v  workers %d",
			s.cfg.Variant, elapsed.Seconds(), s.cfg.Duration, clock(min(frac, 0.9999)),
			gen.rateAt(min(frac, 0.9999)*gen.duration), group(done), rate, queued,
			s.latency.quantile(0.99).Round(10*time.Microsecond), w)
		if b := sched.breaker(); b != "" {
			line += "  breaker " + b
		}
		line += fmt.Sprintf("  rss %s", mib(currentRSS))
		if s.cfg.Interactive {
			fmt.Fprintf(s.cfg.Progress, "\r\033[K%s", line)
		} else {
			fmt.Fprintln(s.cfg.Progress, line)
		}
	}
}

// group formats n with thousands separators: 1234567 → 1,234,567.
func group(n uint64) string {
	s := fmt.Sprint(n)
	out := make([]byte, 0, len(s)+len(s)/3)
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}

// mib formats a byte count in MiB.
func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }
