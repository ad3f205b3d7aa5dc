package main

// Invariants:
//   - inflight counts goroutines admitted and not yet released: incremented
//     before the goroutine starts, decremented after it lets go of its
//     block; the breaker reads it as its reservation.
//   - held counts goroutines that have allocated and touched their block.
//   - Every held goroutine exits once release is closed; run waits for all.

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoal-go/shoal/backpressure"
)

func main() {
	mode := flag.String("mode", "breaker", "breaker or raw")
	tasks := flag.Int("tasks", 10000, "goroutines to try to start")
	size := flag.Int("size", 64<<10, "bytes each goroutine allocates and holds")
	spawners := flag.Int("spawners", 8, "goroutines starting the storm")
	d := flag.Duration("d", 10*time.Second, "the longest the storm lasts")
	settle := flag.Duration("settle", 300*time.Millisecond, "how long the storm goes on after the first refusal for memory pressure")
	verbose := flag.Bool("v", false, "print the breaker's figures every 20 ms to stderr")
	flag.Parse()
	trace = *verbose
	if err := run(*mode, *tasks, *size, *spawners, *d, *settle); err != nil {
		fmt.Fprintln(os.Stderr, "stormchild:", err)
		os.Exit(2)
	}
}

var trace bool

type report struct {
	Mode      string
	Admitted  int64
	Refused   int64
	Held      int64
	Budget    int64
	Source    string
	Entered   [4]uint64
	LastState string
	PeakUsed  int64 // highest effective use seen at a refusal
}

func run(mode string, tasks, size, spawners int, d, settle time.Duration) error {
	release := make(chan struct{})
	var held, inflight atomic.Int64
	var wg sync.WaitGroup
	hold := func() {
		defer wg.Done()
		buf := make([]byte, size)
		for i := 0; i < len(buf); i += 4096 {
			buf[i] = 1 // touch every page, so it is really charged
		}
		held.Add(1) // the block is allocated and charged
		<-release
		runtime.KeepAlive(buf)
		inflight.Add(-1) // the block is let go
	}
	rep := report{Mode: mode}

	switch mode {
	case "raw":
		for range tasks {
			wg.Add(1)
			go hold()
		}
		deadline := time.Now().Add(d)
		for held.Load() < int64(tasks) && time.Now().Before(deadline) { // reads progress
			runtime.Gosched()
		}
		rep.Admitted = int64(tasks)
	case "breaker":
		b, err := backpressure.NewBreaker()
		if err != nil {
			return err
		}
		defer b.Close()
		if st := b.Stats(); st.Source != backpressure.BudgetCgroup {
			return fmt.Errorf("budget source %v, want cgroup", st.Source)
		}
		if err := b.SetInFlightFunc(inflight.Load); err != nil {
			return err
		}
		var admitted, refused, peak atomic.Int64
		var stopAt atomic.Int64                    // UnixNano; the storm ends then
		stopAt.Store(time.Now().Add(d).UnixNano()) // the hard end of the storm
		var settling sync.Once
		var sp sync.WaitGroup
		if trace {
			done := make(chan struct{})
			defer close(done)
			go func() {
				t := time.NewTicker(20 * time.Millisecond)
				defer t.Stop()
				for {
					select {
					case <-done:
						return
					case <-t.C:
						st := b.Stats()
						fmt.Fprintf(os.Stderr, "%v used %d MiB measured %d MiB inflight %d held %d bpt %d age %v\n",
							st.State, st.Used>>20, st.Measured>>20, st.InFlight, held.Load(), st.BytesPerTask, st.SampleAge) // held: progress
					}
				}
			}()
		}
		for range spawners {
			sp.Go(func() {
				for time.Now().UnixNano() < stopAt.Load() && admitted.Load() < int64(tasks) { // reads the end and the count
					err := b.Admit()
					if err == nil {
						admitted.Add(1) // counts the admission
						inflight.Add(1) // reserves before the goroutine allocates
						wg.Add(1)
						go hold()
						continue
					}
					refused.Add(1) // counts the refusal
					if errors.Is(err, backpressure.ErrMemoryPressure) {
						settling.Do(func() { stopAt.Store(time.Now().Add(settle).UnixNano()) }) // ends the storm soon
					}
					if u := b.Stats().Used; u > peak.Load() { // reads the peak so far
						peak.Store(u) // racy max: a report figure only
					}
					runtime.Gosched()
				}
			})
		}
		sp.Wait()
		st := b.Stats()
		rep.Admitted, rep.Refused, rep.PeakUsed = admitted.Load(), refused.Load(), peak.Load() // spawners are done
		rep.Budget, rep.Source, rep.Entered, rep.LastState = st.Budget, st.Source.String(), st.Entered, st.State.String()
	default:
		return fmt.Errorf("unknown mode %q", mode)
	}
	rep.Held = held.Load() // before release
	close(release)
	wg.Wait()
	return json.NewEncoder(os.Stdout).Encode(rep)
}
