//go:build unix

package pool

import (
	"context"
	"fmt"
	"runtime/debug"
	"syscall"
	"testing"
	"time"
)

// BenchmarkBacklogFaults queues tasks behind a blocked worker, 20 a group
// over 10,000 groups, on heap memory returned to the operating system
// just before, as a burst does whose producers outrun the workers. It
// reports the page faults the submissions took per 1,000 tasks
// (faults/ktask): the queues' chunks, 36 bytes a task, cost about one
// fault per 4 KiB page they fill when each new chunk is first written,
// twice that when it is first read (the zero page, then a copy-on-write
// fault). ns/submit is the submissions' time per task.
//
// The groups=200000 case queues one task in each of 200,000 groups, so
// that the faults are those of the groups' queues and of the shards'
// tables as they grow.
func BenchmarkBacklogFaults(b *testing.B) {
	for _, subs := range []int{1, 8} {
		b.Run(fmt.Sprintf("submitters=%d", subs), func(b *testing.B) { benchBacklogFaults(b, subs, 10_000, 20) })
	}
	b.Run("groups=200000", func(b *testing.B) { benchBacklogFaults(b, 1, 200_000, 1) })
}

func benchBacklogFaults(b *testing.B, subs, groups, perGroup int) {
	var faults, tasks int64
	var took time.Duration
	for range b.N {
		p, err := New[int](WithWorkers(1, 1))
		if err != nil {
			b.Fatal(err)
		}
		gate := make(chan struct{})
		// The one worker blocks in group -1's task until the gate opens.
		started := make(chan struct{})
		if err := p.Submit(context.Background(), -1, func(context.Context) error {
			close(started)
			<-gate
			return nil
		}); err != nil {
			b.Fatal(err)
		}
		<-started
		task := Task(func(context.Context) error { return nil })
		debug.FreeOSMemory()
		before, t0 := minorFaults(b), time.Now()
		spread(groups*perGroup, subs, func(i int) {
			if err := p.Submit(context.Background(), i%groups, task); err != nil {
				b.Error(err)
			}
		})
		took += time.Since(t0)
		faults += minorFaults(b) - before
		tasks += int64(groups * perGroup)
		close(gate)
		if err := p.Close(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(faults)*1000/float64(tasks), "faults/ktask")
	b.ReportMetric(float64(took.Nanoseconds())/float64(tasks), "ns/submit")
}

// minorFaults returns the process's minor page faults so far.
func minorFaults(b *testing.B) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return int64(ru.Minflt)
}
