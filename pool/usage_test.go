package pool

import (
	"context"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestUsageRead: the share of the processors comes from readings at
// least utilWindow apart, never from fewer, and none is reported after a
// reset, a failed reading or without a reader.
func TestUsageRead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var cpu time.Duration
		ok := true
		read := func() (time.Duration, bool) { return cpu, ok }
		var u usage
		// One processor's worth on 2 processors: 500 per mille.
		tick := func() int32 {
			time.Sleep(time.Millisecond)
			cpu += time.Millisecond
			return u.read(read, 2000)
		}
		if got := u.read(read, 2000); got != -1 {
			t.Fatalf("first reading: %d, want -1", got)
		}
		for i := 1; i < int(utilWindow/time.Millisecond); i++ {
			if got := tick(); got != -1 {
				t.Fatalf("readings %v apart: %d, want -1 (less than utilWindow)", time.Duration(i)*time.Millisecond, got)
			}
		}
		for i := range 3 * usageReadings {
			if got := tick(); got != 500 {
				t.Fatalf("reading %d past the window: %d, want 500", i, got)
			}
		}
		// The ring spans its last usageReadings-1 ticks: a burst of
		// 2 processors' worth moves the share within that span.
		for range usageReadings {
			time.Sleep(time.Millisecond)
			cpu += 2 * time.Millisecond
			u.read(read, 2000)
		}
		if got := u.read(read, 2000); got != 1000 {
			t.Fatalf("after a window of both processors busy: %d, want 1000", got)
		}
		// More than the processors (threads in system calls): capped.
		time.Sleep(time.Millisecond)
		cpu += time.Second
		if got := u.read(read, 2000); got != 1000 {
			t.Fatalf("more CPU than the processors: %d, want 1000 (capped)", got)
		}
		u.reset()
		if got := tick(); got != -1 {
			t.Fatalf("after reset: %d, want -1", got)
		}
		ok = false
		if got := tick(); got != -1 {
			t.Fatalf("failed reading: %d, want -1", got)
		}
		if got := u.read(nil, 2000); got != -1 {
			t.Fatalf("no reader: %d, want -1", got)
		}
	})
}

// TestUsageLateReading: a reading lateTick or more after the one before
// (the monitor, or the whole process, waited for a processor: a spent CPU
// quota, a host that took the CPU) makes the share unknown while it is
// within the span averaged, though the process used little CPU in the
// gap; once the span has moved past it, the share comes back.
func TestUsageLateReading(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var cpu time.Duration
		read := func() (time.Duration, bool) { return cpu, true }
		var u usage
		tick := func(gap time.Duration) int32 {
			time.Sleep(gap)
			cpu += time.Millisecond
			return u.read(read, 2000)
		}
		for range 2 * usageReadings {
			tick(time.Millisecond)
		}
		if got := tick(time.Millisecond); got != 500 {
			t.Fatalf("on time: %d, want 500", got)
		}
		// A gap just under lateTick is no sign of contention.
		if got := tick(lateTick - time.Millisecond); got == -1 {
			t.Fatalf("a reading %v after the last: -1, want a share", lateTick-time.Millisecond)
		}
		for range usageReadings {
			tick(time.Millisecond)
		}
		if got := tick(lateTick); got != -1 {
			t.Fatalf("a reading lateTick after the last: %d, want -1", got)
		}
		for i := range usageReadings - 1 {
			if got := tick(time.Millisecond); got != -1 {
				t.Fatalf("reading %d after the late one: %d, want -1 (still in the span)", i, got)
			}
		}
		if got := tick(time.Millisecond); got != 500 {
			t.Fatalf("the late reading out of the span: %d, want 500", got)
		}
		// A reset forgets it.
		tick(lateTick)
		u.reset()
		for range usageReadings {
			tick(time.Millisecond)
		}
		if got := tick(time.Millisecond); got != 500 {
			t.Fatalf("after a reset: %d, want 500", got)
		}
	})
}

// TestSampleCPUTrustsIdleProcessors: when the processors were mostly idle
// over the last window, goroutines counted as waiting for a processor at
// the monitor's tick are a burst (timers that fired with the tick), not
// a queue, and do not stop the growth; when the processors were busy, or
// the share is unknown, they do. The same reading says whether submitters
// that fall behind yield (crowded: more wait than there are processors,
// and fewer slow workers are in a batch than there are processors).
func TestSampleCPUTrustsIdleProcessors(t *testing.T) {
	for _, tc := range []struct {
		name                           string
		procs, busy, running, runnable int
		slow                           int // of busy: slow workers in a batch
		self, capacity                 int64
		util                           int32
		want                           int32
		full, crowded                  bool
	}{
		// 10 workers sleeping 1 ms on 1 processor, all readied with
		// the monitor's tick: the burst reads as a full processor, but
		// not as crowded: those waiting may all be the slow workers.
		{name: "burst, share unknown", procs: 1, busy: 10, slow: 10, running: 1, runnable: 10, self: 1, util: -1, want: 0, full: true},
		{name: "burst, processor idle", procs: 1, busy: 10, slow: 10, running: 1, runnable: 10, self: 1, util: 20, want: 20},
		{name: "burst, processor busy", procs: 1, busy: 10, slow: 10, running: 1, runnable: 10, self: 1, util: 900, want: 0, full: true},
		// One more waits than the pool has slow workers: a submitter,
		// at least, queues for the processor, but behind the workers
		// that I/O readied: yielding would only put it further back.
		{name: "burst and a submitter", procs: 1, busy: 10, slow: 10, running: 1, runnable: 11, self: 1, util: 900, want: 0, full: true},
		// 389 workers awake, 124 of them slow in a batch, 368 waiting
		// for 2 processors (a sample of chatsim at the seed's scale):
		// the crowd is the workers that the I/O readied, and those
		// the rate-paced submitter would queue behind.
		{name: "crowd of I/O workers", procs: 2, busy: 389, slow: 124, running: 2, runnable: 368, self: 1, util: 990, want: 0, full: true},
		// One slow worker (a room stuck in a long task) among quick
		// ones, and submitters that queue: still crowded.
		{name: "submitters beside one slow worker", procs: 2, busy: 3, slow: 1, running: 2, runnable: 7, self: 1, util: 990, want: 0, crowded: true},
		// As many slow workers in a batch as processors: not crowded.
		{name: "submitters beside slow workers", procs: 2, busy: 4, slow: 2, running: 2, runnable: 7, self: 1, util: 990, want: 0},
		// 500 workers whose tasks wait on I/O, 40 of them readied and
		// waiting for 2 busy processors: the pool may grow (most of
		// its workers block), and a submitter that yielded would
		// queue behind them.
		{name: "workers readied by I/O", procs: 2, busy: 500, slow: 500, running: 2, runnable: 40, self: 1, util: 990, want: 918},
		// Half of 2 processors on average: one of the 10 workers
		// computes, 9 block.
		{name: "2 processors, one busy", procs: 2, busy: 10, running: 1, runnable: 10, self: 1, util: 450, want: 18},
		// One worker on one processor, its task asleep: the monitor
		// on the processor is not demand (it was stuck at one worker
		// for good when it counted itself).
		{name: "lone worker, monitor counted", procs: 1, busy: 1, running: 1, runnable: 0, self: 0, util: -1, want: 0},
		{name: "lone worker", procs: 1, busy: 1, running: 1, runnable: 0, self: 1, util: -1, want: 2},
		// A worker that computes: on the processor while the monitor
		// waits for it.
		{name: "lone worker computing", procs: 1, busy: 1, running: 1, runnable: 1, self: 1, util: 990, want: 0},
		// Ten CPU-bound workers on 2 processors under a quota of half
		// a CPU: throttled, the process used 0.49 CPU, 245 per mille
		// of the processors but 980 of the quota. Judged against the
		// processors, the waiting goroutines read as a burst and the
		// pool grows by 20; against the quota they are a queue. The
		// waiting are the slow workers themselves: not crowded.
		{name: "quota, judged by the processors", procs: 2, busy: 10, running: 2, runnable: 8, self: 1, util: 245, want: 20},
		{name: "quota of half a CPU", procs: 2, capacity: 500, busy: 10, slow: 10, running: 2, runnable: 8, self: 1, util: 980, want: 2},
		// Eight submitters and two quick workers on 2 processors: more wait
		// for a processor than there are, so a submitter that falls
		// behind yields; not enough for full.
		{name: "submitters queue for processors", procs: 2, busy: 2, running: 2, runnable: 7, self: 1, util: 990, want: 0, crowded: true},
		{name: "one waits on 2 processors", procs: 2, busy: 2, running: 2, runnable: 2, self: 1, util: 990, want: 0},
	} {
		c := newTestControl(t, 4)
		c.procs = int32(tc.procs)
		c.capacity = 1000 * int64(tc.procs)
		if tc.capacity != 0 {
			c.capacity = tc.capacity
		}
		c.readCPU = func([]metrics.Sample) (uint64, uint64, bool) {
			return uint64(tc.running), uint64(tc.runnable), true
		}
		c.running.Store(int32(tc.busy))
		c.busy.Store(int32(tc.slow))
		c.util.Store(tc.util)
		c.sampleCPU(c.sample, tc.self)
		if got := c.growRoom.Load(); got != tc.want {
			t.Errorf("%s: room %d, want %d", tc.name, got, tc.want)
		}
		if got := c.cpuFull.Load(); got != tc.full {
			t.Errorf("%s: cpuFull %v, want %v", tc.name, got, tc.full)
		}
		if got := c.crowded.Load(); got != tc.crowded {
			t.Errorf("%s: crowded %v, want %v", tc.name, got, tc.crowded)
		}
	}
}

// TestGrowsThroughTimerBursts: a pool whose tasks sleep grows past
// GOMAXPROCS though every sample at the monitor's tick finds goroutines
// waiting for a processor, as long as the process's CPU time shows the
// processors idle. Without the CPU time (the rule before) it stays at
// GOMAXPROCS workers and takes one millisecond per GOMAXPROCS tasks.
func TestGrowsThroughTimerBursts(t *testing.T) {
	procs := runtime.GOMAXPROCS(0)
	groups := 200 * procs
	for _, tc := range []struct {
		name    string
		usage   func() (time.Duration, bool)
		atMost  time.Duration
		atLeast time.Duration
	}{
		// About utilWindow before the first share, then a doubling a
		// tick up to the groups.
		{name: "processors idle", usage: func() (time.Duration, bool) { return 0, true }, atMost: utilWindow + 30*time.Millisecond},
		{name: "share unknown", usage: nil, atLeast: 150 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				// Every waiting goroutine counted at the tick: the
				// burst of workers readied with it.
				burst := func([]metrics.Sample) (uint64, uint64, bool) { return 1, uint64(groups), true }
				p, err := New[int](WithWorkers(1, 2*groups), withCPUReader(burst), withUsageReader(tc.usage))
				if err != nil {
					t.Fatal(err)
				}
				var wg sync.WaitGroup
				wg.Add(groups)
				task := Task(func(context.Context) error {
					time.Sleep(time.Millisecond)
					wg.Done()
					return nil
				})
				start := time.Now()
				for g := range groups {
					if err := p.Submit(context.Background(), g, task); err != nil {
						t.Fatal(err)
					}
				}
				wg.Wait()
				took := time.Since(start)
				if tc.atMost != 0 && took > tc.atMost {
					t.Errorf("%d tasks of 1 ms over %d groups took %v, want at most %v (workers %+v)", groups, groups, took, tc.atMost, p.Snapshot().Workers)
				}
				if took < tc.atLeast {
					t.Errorf("%d tasks of 1 ms over %d groups took %v without the CPU time, want at least %v: the test no longer shows the trap", groups, groups, took, tc.atLeast)
				}
				if err := p.Close(context.Background()); err != nil {
					t.Fatal(err)
				}
			})
		})
	}
}

// TestCapacityFollowsCPUQuota: the CPU the monitor judges the process's
// use against is GOMAXPROCS processors, or the cgroup's CPU quota where
// that is less.
func TestCapacityFollowsCPUQuota(t *testing.T) {
	procs := int64(runtime.GOMAXPROCS(0))
	for _, tc := range []struct {
		name  string
		milli int64
		ok    bool
		want  int64
	}{
		{"no quota", 0, false, 1000 * procs},
		{"half a CPU", 500, true, 500},
		{"more than the processors", 1000*procs + 500, true, 1000 * procs},
	} {
		p, err := New[int](withCPULimit(tc.milli, tc.ok))
		if err != nil {
			t.Fatal(err)
		}
		if got := p.c.ctl.capacity; got != tc.want {
			t.Errorf("%s: capacity %d, want %d", tc.name, got, tc.want)
		}
		if err := p.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}
