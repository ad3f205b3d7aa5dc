package pool

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var modelSeeds = flag.Int("model.seeds", 4, "seeds TestModel runs")
var modelSeed0 = flag.Uint64("model.seed", 1, "first seed of TestModel (0: random)")

type probeKey struct{}

// mTask kinds.
const (
	kOK = iota
	kFailThenOK
	kFailAlways
	kPermanent
	kPanic
	kGoexit
	kCanceled
	kGoexitPanic // runtime.Goexit, then a deferred panic
	numKinds
)

type mTask struct {
	id      int
	group   int // -1 for Go
	kind    int
	fails   int // kFailThenOK: attempts that fail first
	starts  atomic.Int32
	done    atomic.Int32 // returned nil
	lettrs  atomic.Int32
	letter  DeadLetter[int]
	hasDL   bool
	sleepUs int
	pre     int  // attempts that fail (retryably) before the kind's behaviour
	spawn   bool // submits a child task to group+nparent while it runs
}

type mGroup struct {
	mu       sync.Mutex
	accepted []int // task ids in accept order
	started  []int // task ids in start order (attempts included)
	running  atomic.Int32
}

type mModel struct {
	t        *testing.T
	tasks    sync.Map // id -> *mTask
	groups   []mGroup
	nextID   atomic.Int64
	errs     atomic.Int64
	failAtt  atomic.Int64 // attempts that returned an error
	refFull  atomic.Int64
	refClose atomic.Int64
	refCtx   atomic.Int64
	mu       sync.Mutex
	msgs     []string
	p        *Pool[int]
	nparent  int
}

// spawn submits a child task of mt's group to its child group (one parent
// group per child group, whose tasks never overlap, so the child group's
// submissions are sequential).
func (m *mModel) spawn(mt *mTask) {
	g := mt.group + m.nparent
	c := &mTask{id: int(m.nextID.Add(1)), group: g, kind: (mt.id * 7) % numKinds, fails: 1}
	var err error
	if mt.id%2 == 0 {
		err = m.p.TrySubmit(g, m.task(c))
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Microsecond)
		err = m.p.Submit(ctx, g, m.task(c))
		cancel()
	}
	m.record(c, err)
}

func (m *mModel) record(mt *mTask, err error) {
	m.tasks.Store(mt.id, mt)
	switch {
	case err == nil:
		if mt.group >= 0 {
			gg := &m.groups[mt.group]
			gg.mu.Lock()
			gg.accepted = append(gg.accepted, mt.id)
			gg.mu.Unlock()
		}
	case errors.Is(err, ErrClosed):
		mt.id = -mt.id
		m.refClose.Add(1)
	case errors.Is(err, ErrQueueFull):
		mt.id = -mt.id
		m.refFull.Add(1)
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		mt.id = -mt.id
		m.refCtx.Add(1)
	default:
		m.errorf("submit: unexpected error %v", err)
	}
}

func (m *mModel) errorf(f string, a ...any) {
	if m.errs.Add(1) > 20 {
		return
	}
	m.mu.Lock()
	m.msgs = append(m.msgs, fmt.Sprintf(f, a...))
	m.mu.Unlock()
}

func (m *mModel) task(mt *mTask) Task {
	return func(ctx context.Context) error {
		if p, ok := ctx.Value(probeKey{}).(*int); ok {
			*p = mt.id
			return nil
		}
		n := int(mt.starts.Add(1))
		if mt.group >= 0 {
			g := &m.groups[mt.group]
			if g.running.Add(1) != 1 {
				m.errorf("group %d: task %d overlaps another", mt.group, mt.id)
			}
			g.mu.Lock()
			g.started = append(g.started, mt.id)
			g.mu.Unlock()
			defer g.running.Add(-1)
		}
		if mt.spawn && n == 1 {
			m.spawn(mt)
		}
		if mt.sleepUs > 0 {
			time.Sleep(time.Duration(mt.sleepUs) * time.Microsecond)
		}
		if n <= mt.pre {
			m.failAtt.Add(1)
			return fmt.Errorf("task %d pre-attempt %d", mt.id, n)
		}
		switch mt.kind {
		case kOK:
		case kFailThenOK:
			if n <= mt.pre+mt.fails {
				m.failAtt.Add(1)
				return fmt.Errorf("task %d attempt %d", mt.id, n)
			}
		case kFailAlways:
			m.failAtt.Add(1)
			return fmt.Errorf("task %d attempt %d", mt.id, n)
		case kPermanent:
			m.failAtt.Add(1)
			return Permanent(fmt.Errorf("task %d permanent", mt.id))
		case kPanic:
			panic(fmt.Sprintf("task %d", mt.id))
		case kGoexit:
			runtime.Goexit()
		case kGoexitPanic:
			defer panic(fmt.Sprintf("task %d after Goexit", mt.id))
			runtime.Goexit()
		case kCanceled:
			m.failAtt.Add(1)
			return fmt.Errorf("task %d: %w", mt.id, context.Canceled)
		}
		mt.done.Add(1)
		return nil
	}
}

func idOf(t Task) int {
	id := -1
	_ = t(context.WithValue(context.Background(), probeKey{}, &id))
	return id
}

// TestModel drives random sequences of Submit (blocking, with a
// deadline, with a done or later-canceled ctx), TrySubmit, Go, Tune,
// tasks that submit to a child group, and Close (with or without a
// deadline, sometimes beside a second Close and a Tune) over a few hundred
// groups with tiny queue bounds and retry delays, whose tasks succeed, fail
// retryably, fail for good, panic, return context.Canceled, call
// runtime.Goexit, or call it and then panic in a deferred function. It
// checks a model: every accepted task completes once or is one letter
// (with the attempts it ran), refused ones never run, per group the
// starts follow the acceptance order and never overlap, and the Stats
// counters agree. -model.seeds and -model.seed (0: random) pick the runs.
func TestModel(t *testing.T) {
	seed0 := *modelSeed0
	if seed0 == 0 {
		seed0 = rand.Uint64()
	}
	for i := range uint64(*modelSeeds) {
		seed := seed0 + i
		t.Run(fmt.Sprint(seed), func(t *testing.T) { runModel(t, seed) })
	}
}

func runModel(t *testing.T, seed uint64) {
	watchdog := time.AfterFunc(60*time.Second, func() {
		buf := make([]byte, 1<<26)
		n := runtime.Stack(buf, true)
		_, _ = os.Stderr.Write(buf[:n])
		panic(fmt.Sprintf("model seed %d hangs", seed))
	})
	defer watchdog.Stop()
	r := rand.New(rand.NewPCG(seed, 1))
	ngroups := 50 + r.IntN(300)
	maxAttempts := 1 + r.IntN(4)
	opts := []Option{
		WithShards(1 + r.IntN(32)),
		WithGroupQueueSize(1 + r.IntN(4)),
		WithMaxQueued(1 + r.IntN(64)),
		WithRetry(RetryPolicy{MaxAttempts: maxAttempts, Base: time.Duration(1+r.IntN(50)) * time.Microsecond, Max: 200 * time.Microsecond}),
		WithIdleTimeout(time.Duration(1+r.IntN(5)) * time.Millisecond),
	}
	minW := r.IntN(3)
	opts = append(opts, WithWorkers(minW, max(1, minW)+r.IntN(8)))
	if r.IntN(3) == 0 {
		opts = append(opts, WithBatchSize(1+r.IntN(8)))
	}
	if r.IntN(3) == 0 {
		sp := DefaultScalingPolicy()
		sp.Interval, sp.Window, sp.Cooldown, sp.ShrinkCooldown = 200*time.Microsecond, 20*time.Millisecond, 0, time.Millisecond
		opts = append(opts, WithScaling(sp))
	}
	nonblocking := r.IntN(4) == 0
	if nonblocking {
		opts = append(opts, WithNonblocking())
	}
	useHandler := r.IntN(3) == 0
	m := &mModel{t: t, groups: make([]mGroup, 2*ngroups), nparent: ngroups}
	var letters []DeadLetter[int]
	var lettersMu sync.Mutex
	if useHandler {
		opts = append(opts, WithDeadLetterHandler(func(dl DeadLetter[int]) {
			lettersMu.Lock()
			letters = append(letters, dl)
			lettersMu.Unlock()
		}))
	} else {
		opts = append(opts, WithDeadLetterBuffer(r.IntN(8)))
	}
	p, err := New[int](opts...)
	if err != nil {
		t.Fatal(err)
	}
	m.p = p
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		for dl := range p.DeadLetters() {
			lettersMu.Lock()
			letters = append(letters, dl)
			lettersMu.Unlock()
		}
	}()

	snapDone := make(chan struct{})
	snapStop := make(chan struct{})
	go func() {
		defer close(snapDone)
		for {
			select {
			case <-snapStop:
				return
			default:
			}
			st := p.Snapshot()
			if st.Queued < 0 || st.Workers.Running < 0 || st.Workers.Running > 1<<20 {
				m.errorf("snapshot: %+v", st.Workers)
			}
			time.Sleep(100 * time.Microsecond)
		}
	}()
	nsub := 1 + r.IntN(6)
	ops := 200 + r.IntN(800)
	var wg sync.WaitGroup
	var anon sync.Map // id -> *mTask of Go tasks accepted

	closeStart := make(chan struct{})
	var closeOnce sync.Once
	for s := range nsub {
		sr := rand.New(rand.NewPCG(seed, uint64(s)+100))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range ops {
				// Groups are owned by one submitter (g % nsub == s), so
				// accept order per group is this goroutine's order.
				g := sr.IntN(ngroups)
				g -= g % nsub
				g += s
				if g >= ngroups {
					g = s
				}
				if g >= ngroups {
					return
				}
				mt := &mTask{id: int(m.nextID.Add(1)), group: g, kind: sr.IntN(numKinds)}
				if mt.kind == kFailThenOK {
					mt.fails = 1 + sr.IntN(3)
				}
				mt.spawn = sr.IntN(4) == 0
				if sr.IntN(5) == 0 {
					mt.pre = 1 + sr.IntN(2)
				}
				if sr.IntN(10) == 0 {
					mt.sleepUs = sr.IntN(300)
				}
				op := sr.IntN(20)
				var err error
				var ctx context.Context = context.Background()
				var cancel context.CancelFunc = func() {}
				switch {
				case op < 8:
				case op < 11:
					ctx, cancel = context.WithTimeout(ctx, time.Duration(sr.IntN(500))*time.Microsecond)
				case op < 12:
					ctx, cancel = context.WithCancel(ctx)
					cancel()
				case op < 14:
					ctx, cancel = context.WithCancel(ctx)
					go func(c context.CancelFunc, d int) {
						time.Sleep(time.Duration(d) * time.Microsecond)
						c()
					}(cancel, sr.IntN(200))
				}
				switch {
				case op == 19:
					mt.group, mt.spawn = -1, false
					if mt.kind == kFailThenOK || mt.kind == kFailAlways {
						mt.kind = kOK
					}
					err = p.Go(ctx, m.task(mt))
				case op >= 16:
					err = p.TrySubmit(g, m.task(mt))
				default:
					if op == 15 && sr.IntN(50) == 0 {
						_ = p.Tune(sr.IntN(3), 3+sr.IntN(6))
					}
					err = p.Submit(ctx, g, m.task(mt))
				}
				if mt.group < 0 && err == nil {
					anon.Store(mt.id, mt)
				}
				m.record(mt, err)
				if err != nil && mt.group >= 0 {
					// keep for "refused never runs"
				}
				cancel()
				if sr.IntN(ops) == 0 {
					closeOnce.Do(func() { close(closeStart) })
				}
			}
		}()
	}
	// Close: after the submitters, or midway.
	midway := r.IntN(2) == 0
	if !midway {
		wg.Wait()
	} else {
		select {
		case <-closeStart:
		case <-func() chan struct{} { c := make(chan struct{}); go func() { wg.Wait(); close(c) }(); return c }():
		}
	}
	var cctx context.Context = context.Background()
	var ccancel context.CancelFunc = func() {}
	if r.IntN(2) == 0 {
		cctx, ccancel = context.WithTimeout(cctx, time.Duration(r.IntN(2000))*time.Microsecond)
	}
	var cerr2 error
	var wg2 sync.WaitGroup
	concurrentClose := r.IntN(3) == 0
	if concurrentClose {
		wg2.Add(1)
		go func() {
			defer wg2.Done()
			if err := p.Tune(r.IntN(2), 1+r.IntN(4)); err != nil && !errors.Is(err, ErrClosed) {
				m.errorf("Tune during Close: %v", err)
			}
			cerr2 = p.Close(context.Background())
		}()
	}
	cerr := p.Close(cctx)
	ccancel()
	wg.Wait()
	wg2.Wait()
	<-readerDone
	close(snapStop)
	<-snapDone
	if cerr2 != nil {
		m.errorf("second Close: %v", cerr2)
	}
	var undelivered []DeadLetter[int]
	shutdownN := -1
	if cerr != nil {
		var ce *CloseError[int]
		switch {
		case errors.As(cerr, &ce):
			undelivered = ce.Undelivered
			shutdownN = ce.Shutdown
		case concurrentClose && errors.Is(cerr, context.DeadlineExceeded):
			// The other Close came first: this one waited for it, and
			// gave up at its own deadline (documented).
		default:
			t.Fatalf("Close: %v", cerr)
		}
	}
	all := append(letters, undelivered...)
	var nShutdown int
	byReason := map[Reason]int{}
	for _, dl := range all {
		id := idOf(dl.Task)
		v, ok := m.tasks.Load(id)
		if !ok {
			m.errorf("letter of unknown task %d (%v)", id, dl.Reason)
			continue
		}
		mt := v.(*mTask)
		if mt.lettrs.Add(1) != 1 {
			m.errorf("task %d lettered twice", id)
		}
		mt.letter, mt.hasDL = dl, true
		byReason[dl.Reason]++
		if dl.Reason == ReasonShutdown {
			nShutdown++
		}
		if dl.Group != max(mt.group, 0) {
			m.errorf("task %d letter group %d want %d", id, dl.Group, mt.group)
		}
		switch {
		case dl.Reason == ReasonShutdown && dl.Attempts == 0 && !errors.Is(dl.Err, ErrClosed):
			m.errorf("task %d: Shutdown letter, 0 attempts, err %v", id, dl.Err)
		case dl.Reason == ReasonExpired && dl.Attempts == 0 && !errors.Is(dl.Err, context.DeadlineExceeded):
			m.errorf("task %d: Expired letter, 0 attempts, err %v", id, dl.Err)
		case dl.Attempts > 0 && dl.Reason != ReasonPanicked && dl.Err == nil:
			m.errorf("task %d: %v letter without err", id, dl.Reason)
		case dl.FailedAt.Before(dl.EnqueuedAt.Add(-2 * time.Millisecond)):
			m.errorf("task %d: FailedAt %v before EnqueuedAt %v", id, dl.FailedAt, dl.EnqueuedAt)
		}
		if dl.Attempts != int(mt.starts.Load()) {
			m.errorf("task %d (kind %d) letter %v attempts %d, started %d times (err %v)", id, mt.kind, dl.Reason, dl.Attempts, mt.starts.Load(), dl.Err)
		}
	}
	if shutdownN >= 0 && shutdownN != nShutdown {
		m.errorf("CloseError.Shutdown %d, Shutdown letters %d", shutdownN, nShutdown)
	}
	var accepted, completed, reruns int
	m.tasks.Range(func(k, v any) bool {
		mt := v.(*mTask)
		if mt.id < 0 {
			if mt.starts.Load() != 0 {
				m.errorf("refused task %d ran", -mt.id)
			}
			if mt.hasDL {
				m.errorf("refused task %d lettered", -mt.id)
			}
			return true
		}
		accepted++
		if n := int(mt.starts.Load()); n > 1 {
			reruns += n - 1
		}
		d := mt.done.Load()
		if d > 1 {
			m.errorf("task %d completed %d times", mt.id, d)
		}
		if d == 1 {
			completed++
		}
		if (d == 1) == mt.hasDL {
			m.errorf("task %d (kind %d, starts %d): completed %d, lettered %v (%v)", mt.id, mt.kind, mt.starts.Load(), d, mt.hasDL, mt.letter.Reason)
		}
		if mt.hasDL {
			want := map[int]Reason{kFailThenOK: ReasonFailed, kFailAlways: ReasonFailed, kPermanent: ReasonFailed, kPanic: ReasonPanicked, kGoexit: ReasonPanicked, kGoexitPanic: ReasonPanicked, kCanceled: ReasonCanceled}[mt.kind]
			got := mt.letter.Reason
			if mt.pre > 0 && got == ReasonFailed {
				want = got
			}
			if got != ReasonShutdown && got != ReasonExpired && (got != want || mt.kind == kOK && mt.pre == 0) {
				m.errorf("task %d kind %d: letter %v (%v)", mt.id, mt.kind, got, mt.letter.Err)
			}
		}
		return true
	})
	// Order per group.
	for gi := range m.groups {
		g := &m.groups[gi]
		pos := 0
		for _, id := range g.started {
			for pos < len(g.accepted) && g.accepted[pos] != id {
				pos++
			}
			if pos == len(g.accepted) {
				m.errorf("group %d: start order %v not accept order %v", gi, g.started, g.accepted)
				break
			}
		}
	}
	st := p.Snapshot()
	check := func(name string, got, want uint64) {
		if got != want {
			m.errorf("Stats.%s = %d, want %d", name, got, want)
		}
	}
	check("Submitted", st.Submitted, uint64(accepted))
	check("Completed", st.Completed, uint64(completed))
	check("DeadLetters", st.DeadLetters.Total(), uint64(len(all)))
	check("Shutdown", st.DeadLetters.Shutdown, uint64(byReason[ReasonShutdown]))
	check("Failed", st.DeadLetters.Failed, uint64(byReason[ReasonFailed]))
	check("Panicked letters", st.DeadLetters.Panicked, uint64(byReason[ReasonPanicked]))
	check("Panicked", st.Panicked, uint64(byReason[ReasonPanicked]))
	check("Expired", st.DeadLetters.Expired, uint64(byReason[ReasonExpired]))
	check("Canceled", st.DeadLetters.Canceled, uint64(byReason[ReasonCanceled]))
	check("FailedAttempts", st.FailedAttempts, uint64(m.failAtt.Load()))
	check("Rejected.QueueFull", st.Rejected.QueueFull, uint64(m.refFull.Load()))
	check("Rejected.Closed", st.Rejected.Closed, uint64(m.refClose.Load()))
	check("Retried", st.Retried, uint64(reruns))
	check("DeadLettersUntaken", st.DeadLettersUntaken, 0)
	if st.Queued != 0 {
		m.errorf("Stats.Queued = %d after Close", st.Queued)
	}
	if uint64(accepted) != st.Completed+st.DeadLetters.Total() {
		m.errorf("accepted %d != completed %d + letters %d", accepted, st.Completed, st.DeadLetters.Total())
	}
	t.Logf("acc %d comp %d letters %v rej full %d closed %d ctx %d retried %d closeErr %v", accepted, completed, byReason, m.refFull.Load(), m.refClose.Load(), m.refCtx.Load(), st.Retried, cerr)
	if m.errs.Load() > 0 {
		t.Errorf("seed %d (groups %d, attempts %d, nonblocking %v, handler %v, closeErr %v): %d faults:\n%v", seed, ngroups, maxAttempts, nonblocking, useHandler, cerr, m.errs.Load(), m.msgs)
	}
}
