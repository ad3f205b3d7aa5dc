package storm

import (
	"fmt"
	"runtime"
	"time"

	"github.com/shoal-go/shoal/bench/internal/rss"
)

// sample runs until stop is closed: every 5 ms it reads the resident set
// size, the pending moves and the goroutines, and every ProgressEvery it
// writes the progress line.
func (s *storm) sample(res *Result, state func() string, stop <-chan struct{}) {
	every := s.cfg.ProgressEvery
	if every == 0 {
		every = 2 * time.Second
		if s.cfg.Interactive {
			every = 200 * time.Millisecond
		}
	}
	rd := rss.NewReader()
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	var last time.Duration
	for {
		select {
		case <-stop:
			if s.cfg.Progress != nil && s.cfg.Interactive {
				fmt.Fprint(s.cfg.Progress, "\r\033[K")
			}
			return
		case <-t.C:
		}
		r := rd.Current()
		res.PeakRSS = max(res.PeakRSS, r)
		pending := s.pending.Load() // a gauge
		res.PeakPending = max(res.PeakPending, pending)
		res.PeakGoroutines = max(res.PeakGoroutines, runtime.NumGoroutine())
		elapsed := time.Since(s.start)
		if s.cfg.Progress == nil || elapsed-last < every {
			continue
		}
		last = elapsed
		// Counters, read one by one: approximate while moves run.
		line := fmt.Sprintf("%-5s %5.1fs  moves %d/%d  pending %d  illegal %d  rss %d MiB (budget %d MiB)",
			s.cfg.Variant, elapsed.Seconds(), s.applied.Load()+s.illegal.Load(), Moves(s.cfg.Disks)*uint64(s.cfg.Towers),
			pending, s.illegal.Load(), r>>20, s.cfg.Budget>>20)
		if st := state(); st != "" {
			line += "  breaker " + st
		}
		if s.cfg.Interactive {
			fmt.Fprintf(s.cfg.Progress, "\r\033[K%s", line)
		} else {
			fmt.Fprintln(s.cfg.Progress, line)
		}
	}
}
