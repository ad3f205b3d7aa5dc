package pool

import (
	"context"
	"errors"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/shoal-go/shoal/shard"
)

// TestBlockedGroupDoesNotBlockOthers: a task that never returns until
// released holds back only its own group's later tasks; 1,000 other groups,
// many of them in its shard, complete meanwhile, with the pool's defaults.
func TestBlockedGroupDoesNotBlockOthers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := mustNew[int](t, WithShards(8))
		release := make(chan struct{})
		var laterRan atomic.Bool
		if err := p.Submit(context.Background(), 0, func(context.Context) error { <-release; return nil }); err != nil {
			t.Fatal(err)
		}
		if err := p.Submit(context.Background(), 0, func(context.Context) error { laterRan.Store(true); return nil }); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		var done sync.WaitGroup
		sameShard := 0
		for g := 1; g <= 1000; g++ {
			if p.ShardOf(g) == p.ShardOf(0) {
				sameShard++
			}
			done.Add(1)
			if err := p.Submit(context.Background(), g, func(context.Context) error {
				time.Sleep(time.Millisecond) // I/O-like
				done.Done()
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}
		done.Wait() // the other groups finish while group 0 is blocked
		if laterRan.Load() {
			t.Fatal("group 0's second task ran before its first returned")
		}
		if sameShard == 0 {
			t.Fatal("no other group shares the blocked group's shard; the test proves less than it claims")
		}
		close(release)
		closePool(t, p)
		if !laterRan.Load() {
			t.Fatal("group 0's second task never ran")
		}
	})
}

// TestIsolationNeedsAFreeWorker: isolation holds while fewer groups block at
// once than max workers. With max 4 and four groups blocked, a fifth
// group's task waits (well past the stall rule's 10 ms, which starts
// workers only within max) and Stats shows why: every worker busy, a shard
// waiting. It starts as soon as one blocked group's task returns.
func TestIsolationNeedsAFreeWorker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const maxW = 4
		p := mustNew[int](t, WithWorkers(1, maxW), withCPUReader(blockedCPU))
		var gates [maxW]chan struct{}
		for g := range gates {
			gates[g] = make(chan struct{})
			gate := gates[g]
			if err := p.Submit(context.Background(), g, func(context.Context) error { <-gate; return nil }); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(50 * monitorTick)
		if s := p.Snapshot(); s.Workers.Running != maxW || s.Workers.Busy != maxW {
			t.Fatalf("with %d groups blocked: %d workers running, %d busy; want %d and %d",
				maxW, s.Workers.Running, s.Workers.Busy, maxW, maxW)
		}
		var started atomic.Bool
		if err := p.Submit(context.Background(), maxW, func(context.Context) error { started.Store(true); return nil }); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * monitorTick)
		if started.Load() {
			t.Fatal("a fifth group's task started while max workers were all blocked")
		}
		// Queued counts the four running tasks too (Stats.Queued).
		s := p.Snapshot()
		if s.Workers.Running != maxW || s.WaitingShards != 1 || s.Queued != maxW+1 {
			t.Fatalf("every worker blocked: %d running (max %d), %d shards waiting, %d queued; want %d, 1, %d",
				s.Workers.Running, maxW, s.WaitingShards, s.Queued, maxW, maxW+1)
		}
		close(gates[0])
		time.Sleep(2 * monitorTick)
		if !started.Load() {
			t.Fatal("the fifth group's task did not start once a worker came free")
		}
		for _, g := range gates[1:] {
			close(g)
		}
		closePool(t, p)
	})
}

// TestGroupFullBlocksOnlyItsSubmitters: when one group's queue is full, its
// blocking submitters wait and its nonblocking ones are refused, while
// another group of the same shard is accepted and runs.
func TestGroupFullBlocksOnlyItsSubmitters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// The CPU sample reads every busy worker as blocked, as it is
		// (see TestBatcherIsolation).
		p := mustNew[int](t, WithShards(1), WithGroupQueueSize(2), withCPUReader(blockedCPU))
		gate := make(chan struct{})
		blockTask := func(context.Context) error { <-gate; return nil }
		// One running, two waiting: group 0 is full.
		for range 3 {
			if err := p.Submit(context.Background(), 0, blockTask); err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
		}
		if err := p.TrySubmit(0, blockTask); !errors.Is(err, ErrQueueFull) {
			t.Fatalf("TrySubmit to the full group: %v, want ErrQueueFull", err)
		}
		blocked := make(chan error, 1)
		go func() { blocked <- p.Submit(context.Background(), 0, blockTask) }()
		synctest.Wait()
		select {
		case err := <-blocked:
			t.Fatalf("Submit to the full group returned %v, want it to wait", err)
		default:
		}
		// Another group of the same shard goes on: accepted and run while
		// group 0's submitter waits. (The only worker is blocked in group
		// 0's task; the monitor starts another within a tick.)
		var ran atomic.Int64
		for range 100 {
			if err := p.TrySubmit(1, func(context.Context) error { ran.Add(1); return nil }); err != nil {
				t.Fatalf("TrySubmit to another group: %v", err)
			}
			time.Sleep(2 * monitorTick)
		}
		if ran.Load() != 100 {
			t.Fatalf("other group ran %d of 100 tasks while group 0 was full", ran.Load())
		}
		select {
		case err := <-blocked:
			t.Fatalf("Submit to the full group returned %v before room was made", err)
		default:
		}
		close(gate)
		if err := <-blocked; err != nil {
			t.Fatalf("blocked Submit after room was made: %v", err)
		}
		closePool(t, p)
		if s := p.Snapshot(); s.Completed != 104 || s.Rejected.QueueFull != 1 {
			t.Fatalf("completed %d, rejected %+v; want 104 and one QueueFull", s.Completed, s.Rejected)
		}
	})
}

// TestPoolWideBound: WithMaxQueued holds the whole pool; a submitter
// waiting for pool-wide room gets in once tasks finish.
func TestPoolWideBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := mustNew[int](t, WithShards(4), WithMaxQueued(8), WithWorkers(1, 1))
		gate := make(chan struct{})
		for g := range 8 {
			if err := p.Submit(context.Background(), g, func(context.Context) error { <-gate; return nil }); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.TrySubmit(100, func(context.Context) error { return nil }); !errors.Is(err, ErrQueueFull) {
			t.Fatalf("TrySubmit past the pool-wide bound: %v, want ErrQueueFull", err)
		}
		blocked := make(chan error, 1)
		go func() { blocked <- p.Submit(context.Background(), 101, func(context.Context) error { return nil }) }()
		synctest.Wait()
		select {
		case err := <-blocked:
			t.Fatalf("Submit past the bound returned %v, want it to wait", err)
		default:
		}
		close(gate)
		if err := <-blocked; err != nil {
			t.Fatalf("Submit after room was made: %v", err)
		}
		closePool(t, p)
		if s := p.Snapshot(); s.Completed != 9 {
			t.Fatalf("completed %d, want 9", s.Completed)
		}
	})
}

// TestGroupFairness: one worker, a heavy group with a deep queue and a
// light group (of the same shard, and of another): the light group's task
// starts after at most one turn of the heavy group.
func TestGroupFairness(t *testing.T) {
	for _, shards := range []int{1, 64} {
		synctest.Test(t, func(t *testing.T) {
			const batch = 8
			p := mustNew[int](t, WithWorkers(1, 1), WithShards(shards), WithBatchSize(batch))
			gate := make(chan struct{})
			var heavyRan atomic.Int64
			before := int64(-1)
			if err := p.Submit(context.Background(), 0, func(context.Context) error { <-gate; return nil }); err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
			for range 50 * batch {
				if err := p.Submit(context.Background(), 0, func(context.Context) error { heavyRan.Add(1); return nil }); err != nil {
					t.Fatal(err)
				}
			}
			if err := p.Submit(context.Background(), 1, func(context.Context) error { before = heavyRan.Load(); return nil }); err != nil {
				t.Fatal(err)
			}
			close(gate)
			closePool(t, p)
			// The gate task's turn may go on with up to batch-1 heavy
			// tasks; then the light group is next.
			if before < 0 || before > batch {
				t.Fatalf("shards=%d: %d heavy tasks ran before the light group's task, want <= %d", shards, before, batch)
			}
		})
	}
}

// TestGroupTurnTimeBound: a turn ends after maxTurn of run time even when
// the batch is not used up, so slow tasks of a heavy group let a light
// group in after about maxTurn.
func TestGroupTurnTimeBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := mustNew[int](t, WithWorkers(1, 1), WithShards(1), WithBatchSize(64))
		var heavyRan atomic.Int64
		before := int64(-1)
		gate := make(chan struct{})
		if err := p.Submit(context.Background(), 0, func(context.Context) error { <-gate; return nil }); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		for range 64 {
			if err := p.Submit(context.Background(), 0, func(context.Context) error {
				time.Sleep(time.Millisecond)
				heavyRan.Add(1)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.Submit(context.Background(), 1, func(context.Context) error { before = heavyRan.Load(); return nil }); err != nil {
			t.Fatal(err)
		}
		close(gate)
		closePool(t, p)
		// The turn's end is read from the monitor's millisecond clock: a
		// few 1 ms tasks, not 64.
		if before < 0 || before > int64(maxTurn/time.Millisecond)+2 {
			t.Fatalf("%d one-millisecond heavy tasks ran before the light group's task, want about %v worth", before, maxTurn)
		}
	})
}

// TestQueuesReturnedAfterDrain: after 10,000 groups drain and the pool goes
// idle, no shard keeps a queue or a free chunk, and tables that grew are
// replaced.
func TestQueuesReturnedAfterDrain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := mustNew[int](t, WithShards(16))
		gate := make(chan struct{})
		for g := range 10_000 {
			n := 1
			if g < 100 {
				n += chunkLen // a chunk's worth more
			}
			for range n {
				if err := p.Submit(context.Background(), g, func(context.Context) error { <-gate; return nil }); err != nil {
					t.Fatal(err)
				}
			}
		}
		peak, chunked := 0, 0
		for i := range p.c.shards {
			s := &p.c.shards[i]
			groups := tableOf(t, s)
			peak = max(peak, len(groups))
			for _, g := range groups {
				if g.hc != nil {
					chunked++
				}
			}
		}
		if peak < remapAfter || chunked < 100 {
			t.Fatalf("largest shard table %d, %d queues with chunks; want >= %d and >= 100 for the test to mean something", peak, chunked, remapAfter)
		}
		close(gate)
		synctest.Wait()
		time.Sleep(10 * monitorTick) // idle ticks: the monitor trims and sleeps
		synctest.Wait()
		for i := range p.c.shards {
			s := &p.c.shards[i]
			s.mu.Lock()
			n, idle, live, pk, free, kept := len(tableOf(t, s)), s.nidle, s.live, s.peak, s.nfree, s.slots != nil
			s.mu.Unlock()
			// Every shard held more than remapAfter groups, so its
			// table goes too.
			if n != 0 || idle != 0 || live != 0 || pk != 0 || free != 0 || kept {
				t.Fatalf("shard %d after drain: %d groups in its table, %d idle, %d live, peak %d, %d free chunks, table kept %v; want all 0 and none kept", i, n, idle, live, pk, free, kept)
			}
		}
		closePool(t, p)
	})
}

// TestIdleQueueReuse: a group that comes back finds its queue (nothing is
// allocated), a new group reuses the oldest idle queue once the idle list
// is half full, and the idle list never holds more than idleCap queues: a
// full ring evicts its oldest queue from the table.
func TestIdleQueueReuse(t *testing.T) {
	p := mustNew[int](t, WithShards(1), WithWorkers(1, 1))
	defer closePool(t, p)
	s := &p.c.shards[0]
	s.mu.Lock()
	defer s.mu.Unlock()
	var queues []*gqueue[int, Task]
	for g := range idleCap {
		q := s.alloc(0)
		addGroup(s, g, q)
		queues = append(queues, q)
	}
	for _, q := range queues {
		s.release(q)
	}
	if s.nidle != idleCap || s.live != 0 {
		t.Fatalf("after release: %d idle, %d live; want %d, 0", s.nidle, s.live, idleCap)
	}
	if q := s.lookup(shard.Hash(5), 5); q != queues[5] || q.idle || s.nidle != idleCap-1 || s.live != 1 {
		t.Fatalf("lookup of an idle group: %p (idle %v), %d idle, %d live", q, q.idle, s.nidle, s.live)
	}
	// The ring is full: releasing group 5 again evicts the oldest queue.
	s.release(queues[5])
	if s.nidle != idleCap-1 || queues[0].idle {
		t.Fatalf("after a release into a full ring: %d idle, oldest still idle %v", s.nidle, queues[0].idle)
	}
	if _, ok := tableOf(t, s)[0]; ok {
		t.Fatal("the evicted queue is still in the table")
	}
	q := s.alloc(0) // the oldest idle queue now, taken out of the table
	if q != queues[1] {
		t.Fatalf("alloc did not reuse the oldest idle queue")
	}
	if _, ok := tableOf(t, s)[1]; ok {
		t.Fatal("a reused queue is still in the table under its old group")
	}
	s.release(q)
	for g := 100; g < 100+4*idleCap; g++ {
		q := s.alloc(0)
		addGroup(s, g, q)
		s.release(q)
		if s.nidle > idleCap {
			t.Fatalf("idle list holds %d, more than %d", s.nidle, idleCap)
		}
	}
	if n := len(tableOf(t, s)); n > idleCap {
		t.Fatalf("table holds %d idle groups, more than %d", n, idleCap)
	}
}

// TestWorkersPastProcsOnlyWithRoom: past GOMAXPROCS workers, growIfCPU
// starts a worker only within the room the monitor's last sample left;
// below it, always.
func TestWorkersPastProcsOnlyWithRoom(t *testing.T) {
	var c control
	if err := c.init(4, 0, 100, time.Second, func() int64 { return 0 }); err != nil {
		t.Fatal(err)
	}
	started := 0
	c.start = func() { started++ }
	c.running.Store(c.procs - 1)
	if !c.growIfCPU() {
		t.Fatal("below GOMAXPROCS workers, growIfCPU refused")
	}
	if c.growIfCPU() {
		t.Fatal("at GOMAXPROCS workers with no room, growIfCPU started one")
	}
	c.growRoom.Store(2)
	for i, want := range []bool{true, true, false} {
		if got := c.growIfCPU(); got != want {
			t.Fatalf("with room for 2, call %d of growIfCPU: started %v, want %v", i+1, got, want)
		}
	}
	if started != 3 || c.growRoom.Load() != 0 {
		t.Fatalf("started %d, room left %d; want 3, 0", started, c.growRoom.Load())
	}
}

// TestSampleCPURoom: the room the sample leaves, from given readings.
func TestSampleCPURoom(t *testing.T) {
	for _, tc := range []struct {
		busy, running, runnable int
		want                    int32
	}{
		{busy: 50, running: 1, runnable: 0, want: 98}, // 49 blocked, doubled
		{busy: 50, running: 2, runnable: 20, want: 56},
		{busy: 4, running: 2, runnable: 2, want: 0}, // every busy worker wants a CPU
		{busy: 1, running: 1, runnable: 0, want: 1}, // an idle processor (of 2 or more)
		{busy: 8, running: 2, runnable: 9, want: 0}, // saturated
		// More goroutines wait for a processor than half the busy
		// workers: the processors are full, though 18 workers block.
		{busy: 50, running: 2, runnable: 30, want: 0},
		// Fewer than 4 per processor wait: a small pool still grows.
		{busy: 10, running: 1, runnable: 6, want: 6},
	} {
		var c control
		if err := c.init(4, 0, 100, time.Second, func() int64 { return 0 }); err != nil {
			t.Fatal(err)
		}
		c.procs = 2
		c.readCPU = func([]metrics.Sample) (uint64, uint64, bool) {
			return uint64(tc.running), uint64(tc.runnable), true
		}
		c.running.Store(int32(tc.busy))
		c.sampleCPU(c.sample, 0)
		if got := c.growRoom.Load(); got != tc.want {
			t.Errorf("busy %d, running %d, runnable %d: room %d, want %d", tc.busy, tc.running, tc.runnable, got, tc.want)
		}
	}
	var c control
	if err := c.init(4, 0, 100, time.Second, func() int64 { return 0 }); err != nil {
		t.Fatal(err)
	}
	c.readCPU = func([]metrics.Sample) (uint64, uint64, bool) { return 0, 0, false }
	c.running.Store(50)
	c.sampleCPU(c.sample, 0)
	if got := c.growRoom.Load(); got != 0 {
		t.Errorf("without the metrics: room %d, want 0", got)
	}
}

// TestSampleCPU: the sample from the runtime's own metrics gives room for
// blocked workers, and none for workers that all want a processor.
func TestSampleCPU(t *testing.T) {
	var c control
	if err := c.init(4, 0, 100, time.Second, func() int64 { return 0 }); err != nil {
		t.Fatal(err)
	}
	// 50 busy workers, none of them goroutines of this process that run:
	// they must be blocked.
	c.running.Store(50)
	c.sampleCPU(newCPUSample(), 0)
	if r := c.growRoom.Load(); r < 40 {
		t.Fatalf("room %d with 50 busy workers and an idle process, want about 50", r)
	}
	// As many goroutines spinning as workers busy, more than GOMAXPROCS:
	// all want a processor, so there is no room.
	n := 2*runtime.GOMAXPROCS(0) + 2
	c.running.Store(int32(n))
	var stop atomic.Bool
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			// Spins on purpose: these goroutines are the demand for
			// processors that the sample must see.
			for !stop.Load() {
			}
		})
	}
	room := int32(-1)
	for range 100 {
		c.sampleCPU(newCPUSample(), 0)
		if room = c.growRoom.Load(); room == 0 {
			break
		}
		runtime.Gosched()
	}
	stop.Store(true)
	wg.Wait()
	if room != 0 {
		t.Fatalf("room %d with every busy worker wanting a processor, want 0", room)
	}
}

// submitCounted submits n tasks to group 0 of p, each of which adds one
// to ran when it ends; task i first calls before[i], if there is one.
func submitCounted(t *testing.T, p *Pool[int], n int, ran *atomic.Int64, before map[int]func()) {
	t.Helper()
	for i := range n {
		f := before[i]
		task := func(context.Context) error {
			if f != nil {
				f()
			}
			ran.Add(1)
			return nil
		}
		if err := p.Submit(context.Background(), 0, task); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSlowWorkerCopiesNoMore: a worker whose tasks block (judged slow:
// fewer than slowDrains batches in its last interval) keeps copying
// firstCopy tasks at a time after a copy that ran whole, since its turns
// fit in the coarse clock only while the clock lags.
func TestSlowWorkerCopiesNoMore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := mustNew[int](t, WithWorkers(1, 1), WithShards(1), WithBatchSize(64))
		s := &p.c.shards[0]
		ctx := context.Background()
		// Two batches of one 3 ms task, ticks apart: the second ends a
		// whole interval with one batch, and the worker is slow.
		for range 2 {
			if err := p.Submit(ctx, 1, func(context.Context) error { time.Sleep(3 * monitorTick); return nil }); err != nil {
				t.Fatal(err)
			}
			time.Sleep(5 * monitorTick)
			synctest.Wait()
		}
		hold, first, fifth := make(chan struct{}), make(chan struct{}), make(chan struct{})
		if err := p.Submit(ctx, 2, func(context.Context) error { <-hold; return nil }); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		var ran atomic.Int64
		submitCounted(t, p, 40, &ran, map[int]func(){0: func() { <-first }, firstCopy: func() { <-fifth }})
		close(hold)
		synctest.Wait()
		close(first)
		synctest.Wait()
		s.mu.Lock()
		k := s.find(shard.Hash(0), 0).taken
		s.mu.Unlock()
		if n := ran.Load(); n != firstCopy {
			t.Fatalf("%d tasks ran before the fifth's gate, want %d", n, firstCopy)
		}
		if k != firstCopy {
			t.Fatalf("after a copy that ran whole, a slow worker copied %d tasks, want %d", k, firstCopy)
		}
		close(fifth)
		closePool(t, p)
		if n := ran.Load(); n != 40 {
			t.Fatalf("%d of 40 tasks ran", n)
		}
	})
}

// TestCopyFollowsWhatTurnsRun: a new worker copies firstCopy tasks of a
// deep group at once (a worker whose first task blocks has copied no
// more), twice as many after it ran all it copied within one turn, and
// firstCopy again after a turn that ended on the clock with copies left.
func TestCopyFollowsWhatTurnsRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := mustNew[int](t, WithWorkers(1, 1), WithShards(1), WithBatchSize(64))
		s := &p.c.shards[0]
		taken := func() uint32 {
			s.mu.Lock()
			defer s.mu.Unlock()
			return s.find(shard.Hash(0), 0).taken
		}
		// The worker waits in another group's task while group 0 fills,
		// so that its first copy of group 0 finds all 40 tasks queued.
		gates := []chan struct{}{make(chan struct{}), make(chan struct{}), make(chan struct{}), make(chan struct{})}
		if err := p.Submit(context.Background(), 1, func(context.Context) error { <-gates[2]; return nil }); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		var ran atomic.Int64
		submitCounted(t, p, 40, &ran, map[int]func(){
			0:             func() { <-gates[0] },
			firstCopy:     func() { <-gates[1] },
			firstCopy + 1: func() { time.Sleep(maxTurn + time.Millisecond) }, // outlasts the turn
			firstCopy + 2: func() { <-gates[3] },
		})
		close(gates[2])
		synctest.Wait()
		if k := taken(); k != firstCopy {
			t.Fatalf("a new worker copied %d of 40 tasks, want %d", k, firstCopy)
		}
		close(gates[0])
		synctest.Wait()
		if n := ran.Load(); n != firstCopy {
			t.Fatalf("%d tasks ran before the second gate, want %d", n, firstCopy)
		}
		if k := taken(); k != 2*firstCopy {
			t.Fatalf("after a copy that ran whole, the worker copied %d tasks, want %d", k, 2*firstCopy)
		}
		close(gates[1])
		time.Sleep(10 * maxTurn)
		synctest.Wait()
		if n := ran.Load(); n != firstCopy+2 {
			t.Fatalf("%d tasks ran before the fourth gate, want %d", n, firstCopy+2)
		}
		if k := taken(); k != firstCopy {
			t.Fatalf("after a turn that ran 2 of %d copies, the worker copied %d tasks, want %d", 2*firstCopy, k, firstCopy)
		}
		close(gates[3])
		closePool(t, p)
		if n := ran.Load(); n != 40 {
			t.Fatalf("%d of 40 tasks ran", n)
		}
	})
}

// TestStalledRoomGetsWorker: with every worker blocked in a task and the
// CPUs full of other goroutines (no growth room), a room that waits gets a
// worker once no worker has taken work for stallAfter, not never.
func TestStalledRoomGetsWorker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := mustNew[int](t, WithWorkers(1, 64), withCPUReader(saturatedCPU))
		procs := runtime.GOMAXPROCS(0)
		gate := make(chan struct{})
		for g := range procs {
			if err := p.Submit(context.Background(), g, func(context.Context) error { <-gate; return nil }); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if w := p.Snapshot().Workers; w.Running != procs || w.Busy != procs {
			t.Fatalf("workers %+v, want %d running, all busy", w, procs)
		}
		start := time.Now()
		var waited atomic.Int64
		waited.Store(-1)
		if err := p.Submit(context.Background(), procs, func(context.Context) error {
			waited.Store(int64(time.Since(start)))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * stallAfter)
		synctest.Wait()
		d := time.Duration(waited.Load())
		if d < 0 || d < stallAfter || d > stallAfter+3*monitorTick {
			t.Fatalf("the waiting room's task started after %v, want between %v and %v", d, stallAfter, stallAfter+3*monitorTick)
		}
		if w := p.Snapshot().Workers; w.Running != procs+1 {
			t.Fatalf("workers %+v, want %d running: one started for the stalled room", w, procs+1)
		}
		close(gate)
		closePool(t, p)
	})
}

// TestNoRescueWhileWorkersTakeWork: with the CPUs full (no growth room)
// and workers that keep taking shards, the pool stays at GOMAXPROCS
// workers: the stall rule starts none while work flows.
func TestNoRescueWhileWorkersTakeWork(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := mustNew[int](t, WithWorkers(1, 64), withCPUReader(saturatedCPU))
		procs := runtime.GOMAXPROCS(0)
		var ran atomic.Int64
		const groups, tasks = 50, 400
		for i := range tasks {
			if err := p.Submit(context.Background(), i%groups, func(context.Context) error {
				time.Sleep(time.Millisecond)
				ran.Add(1)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}
		peak := 0
		for ran.Load() < tasks {
			time.Sleep(monitorTick)
			peak = max(peak, p.Snapshot().Workers.Running)
		}
		if peak > procs {
			t.Fatalf("peak %d workers with the CPUs full and work flowing, want at most %d", peak, procs)
		}
		closePool(t, p)
	})
}

// TestWorkerPastProcsStartsSlow: a worker started past GOMAXPROCS (the
// others block) counts as slow from its first task, so a room that
// arrives while that task blocks gets another worker at once, not at the
// monitor's next tick.
func TestWorkerPastProcsStartsSlow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		procs := runtime.GOMAXPROCS(0)
		// The processors read as full until the workers are judged, so
		// that the pool keeps GOMAXPROCS workers; then as idle, with
		// every busy worker blocked: room to grow.
		var blocked atomic.Bool
		read := func(s []metrics.Sample) (uint64, uint64, bool) {
			if blocked.Load() {
				return blockedCPU(s)
			}
			return saturatedCPU(s)
		}
		p := mustNew[int](t, WithWorkers(procs, 64), withCPUReader(read))
		release := make(chan struct{})
		defer func() {
			close(release)
			closePool(t, p)
		}()
		submit := func(g int, fn Task) {
			t.Helper()
			if err := p.Submit(context.Background(), g, fn); err != nil {
				t.Fatal(err)
			}
		}
		// Tasks that block for a millisecond, one batch at a time: the
		// workers' pace judges them slow.
		for range 4 {
			for g := range procs {
				submit(g, func(context.Context) error { time.Sleep(time.Millisecond); return nil })
			}
			time.Sleep(3 * monitorTick)
		}
		for g := range procs {
			submit(g, func(context.Context) error { <-release; return nil })
			synctest.Wait() // a woken worker is free until its batch begins
		}
		blocked.Store(true)
		time.Sleep(monitorTick) // a sample sees them blocked: growth room
		synctest.Wait()
		if w := p.Snapshot().Workers; w.Running != procs || w.Busy != procs {
			t.Fatalf("workers %+v, want %d running, all busy", w, procs)
		}
		if n := p.c.ctl.busy.Load(); n != int32(procs) {
			t.Fatalf("%d slow workers in a batch, want %d", n, procs)
		}
		// A room arrives: a worker starts past GOMAXPROCS and blocks in its
		// first task.
		var started [2]atomic.Bool
		submit(procs, func(context.Context) error { started[0].Store(true); <-release; return nil })
		synctest.Wait()
		// Another room arrives before any tick: the new worker is not
		// counted on, so this one gets a worker at once too.
		submit(procs+1, func(context.Context) error { started[1].Store(true); <-release; return nil })
		synctest.Wait()
		if !started[0].Load() || !started[1].Load() {
			t.Fatalf("started %v, %v before the monitor's next tick; want both", started[0].Load(), started[1].Load())
		}
		if w := p.Snapshot().Workers; w.Running != procs+2 {
			t.Fatalf("workers %+v, want %d running", w, procs+2)
		}
	})
}

// TestNoResampleWhileCPUFull: growIfCPU takes a sample of its own every
// 32nd refusal, except while the last sample found the processors full.
func TestNoResampleWhileCPUFull(t *testing.T) {
	c := newTestControl(t, 4)
	reads := 0
	c.readCPU = func([]metrics.Sample) (uint64, uint64, bool) {
		reads++
		return 0, 0, true // every busy worker blocked: room
	}
	started := 0
	c.start = func() { started++ }
	c.running.Store(8) // 8 busy workers
	c.cpuFull.Store(true)
	for range 64 {
		if c.growIfCPU() {
			t.Fatal("growIfCPU started a worker while the processors were full")
		}
	}
	if reads != 0 {
		t.Fatalf("%d samples taken while the processors were full, want 0", reads)
	}
	c.cpuFull.Store(false)
	grew := false
	for range 64 {
		grew = grew || c.growIfCPU()
	}
	if reads == 0 || !grew {
		t.Fatalf("%d samples and grew %v once the processors had room, want a sample and a start", reads, grew)
	}
	if c.cpuFull.Load() {
		t.Fatal("a sample with no goroutine waiting for a processor left cpuFull set")
	}
	if started == 0 {
		t.Fatal("no worker started")
	}
}

// TestWakeLeavesRampToMonitor: with every worker blocked and room to grow,
// a producer starts a worker past GOMAXPROCS for a room that finds no free
// worker while at most GOMAXPROCS shards wait; while more wait, the pool is
// ramping up, and it leaves the starts to the monitor's tick.
func TestWakeLeavesRampToMonitor(t *testing.T) {
	c := newTestControl(t, 16)
	started := 0
	c.start = func() { started++ }
	c.running.Store(4)
	c.busy.Store(4) // every worker slow and in a batch
	c.growRoom.Store(100)
	c.push(0)
	c.wake()
	if started != 1 {
		t.Fatalf("one shard waiting, every worker blocked: %d started, want 1", started)
	}
	c.busy.Store(5)
	c.push(1)
	c.push(2)
	c.wake()
	if started != 1 {
		t.Fatalf("3 shards waiting on 2 processors: the producer started %d workers, want none (the monitor's)", started-1)
	}
	if _, ok := c.runq.TryPop(); !ok {
		t.Fatal("empty run queue")
	}
	c.wake()
	if started != 2 {
		t.Fatalf("2 shards waiting on 2 processors: %d started in all, want 2", started)
	}
}

// newTestControl returns a control of nshards shards and 2 processors,
// with no worker started: the test sets start and the counts.
func newTestControl(t *testing.T, nshards int) *control {
	t.Helper()
	c := new(control)
	if err := c.init(nshards, 0, 100, time.Second, func() int64 { return 0 }); err != nil {
		t.Fatal(err)
	}
	c.procs, c.capacity = 2, 2000
	return c
}
