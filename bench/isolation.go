package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoal-go/shoal/pool"
)

// Invariants:
//   - Every group has exactly one submitter, its owner, which numbers the
//     group's tasks 1, 2, 3, ... in the order it submits them. Submission order
//     within a group is therefore the owner's program order, and a task that
//     starts with a sequence number not above the group's last started one
//     started out of order.
//   - An isoEvent is written by two goroutines: its submitter sets called and
//     accepted around Submit, and its task stores start (atomic) when it
//     begins. The run reads called and accepted after the submitters'
//     WaitGroup, and start after the scheduler's close (or atomically, when a
//     close gave up before every task ended).
//   - The schedule and every task function are built before the clock starts;
//     during the run the harness allocates nothing per task, so what
//     allocates is the scheduler under test.
//   - isoGroup.last only grows (CAS loop) and isoGroup.busy is true while a
//     task of the group runs: the checker needs no lock, even under a
//     scheduler that breaks order.

// The schedulers RunIsolation runs.
const (
	// IsolationShoal is a pool.Pool with its default options.
	IsolationShoal = "shoal"
	// IsolationShoal512 is a pool.Pool with WithWorkers(1, 512) and
	// otherwise its defaults.
	IsolationShoal512 = "shoal-512"
	// IsolationReference keeps one FIFO lane per group, drained by a
	// goroutine of its own that exists only while the lane holds work: the
	// ideal of "a slow group delays only itself", with no bound on
	// goroutines.
	IsolationReference = "reference"
)

// IsolationSchedulers returns the schedulers RunIsolation runs, in the order
// the isolation command runs them.
func IsolationSchedulers() []string {
	return []string{IsolationShoal, IsolationShoal512, IsolationReference}
}

// IsolationConfig describes one run of the isolation scenario: many fast
// groups, a few slow ones (tasks that wait on I/O), and optionally one hot
// group offered more than a serial group can run. DefaultIsolationConfig
// returns the standard scenario; change fields from there.
//
// Group numbers: the slow groups are 0 .. Slow-1, the fast groups Slow ..
// Groups-1, and the hot group, when Hot is set, is Groups.
type IsolationConfig struct {
	// Scheduler is one of IsolationSchedulers.
	Scheduler string
	// Groups is the number of groups, slow and fast; the hot group comes on
	// top.
	Groups int
	// Slow is how many of the groups run slow tasks.
	Slow int
	// SlowTask is a slow task's length (a time.Sleep: it models I/O).
	SlowTask time.Duration
	// SlowRate is each slow group's rate in tasks per second, evenly
	// spaced with a random phase.
	SlowRate float64
	// FastTask is a fast task's length (a time.Sleep).
	FastTask time.Duration
	// FastRate is the rate of all fast groups together, in tasks per
	// second: Poisson arrivals, each on a fast group drawn uniformly.
	FastRate float64
	// Submitters is the number of goroutines that submit the fast and slow
	// groups' tasks; each owns an equal share of the groups and submits
	// each task at its due time.
	Submitters int
	// Warmup is the start of the run whose tasks are run and checked but
	// left out of the wait figures.
	Warmup time.Duration
	// Duration is the part of the run, after Warmup, whose fast tasks make
	// the wait figures. Tasks are due from 0 to Warmup+Duration; the run
	// then waits until every accepted task has run.
	Duration time.Duration
	// Hot adds one group offered more than a serial group can run, from a
	// submitter of its own that submits until Warmup+Duration and then
	// gives up on the rest. When the group is full, that submitter waits
	// in Submit, and so falls behind: the others go on at their own pace.
	Hot bool
	// HotTask and HotRate are the hot group's task length and its rate in
	// tasks per second (evenly spaced); by default 1 ms at 4,000/s, four
	// times what one group can run.
	HotTask time.Duration
	HotRate float64
	// LaneSize bounds the queued tasks of one of the reference's lanes: a
	// Submit to a full lane waits, like a blocking Submit to a full pool
	// queue (0: unbounded). Only the hot group fills its lane.
	LaneSize int
	// Spinners is the number of goroutines that spin from the start of the
	// run until the last submission, so that the CPUs are full of work
	// other than the scheduler's, as on a server whose handlers are busy
	// (0: none). They also delay the submitters, for every scheduler alike.
	Spinners int
	// DrainTimeout bounds the wait, after the last submission, for the
	// accepted tasks to run; what is still queued then is lost.
	DrainTimeout time.Duration
	// Seed makes the schedule reproducible: the same seed, the same tasks
	// due at the same times on the same groups.
	Seed uint64
}

// DefaultIsolationConfig returns the standard scenario for the shoal
// scheduler: 10,000 groups, 50 of them running 10 ms tasks at 50/s each, the
// others 200 µs tasks at 20,000/s in all from 32 submitters, 5 s measured
// after 500 ms of warm-up; the hot group runs 1 ms tasks at 4,000/s.
func DefaultIsolationConfig() IsolationConfig {
	return IsolationConfig{
		Scheduler:    IsolationShoal,
		Groups:       10_000,
		Slow:         50,
		SlowTask:     10 * time.Millisecond,
		SlowRate:     50,
		FastTask:     200 * time.Microsecond,
		FastRate:     20_000,
		Submitters:   32,
		Warmup:       500 * time.Millisecond,
		Duration:     5 * time.Second,
		HotTask:      time.Millisecond,
		HotRate:      4_000,
		LaneSize:     64,
		DrainTimeout: 2 * time.Minute,
		Seed:         1,
	}
}

// maxSpinners bounds IsolationConfig.Spinners.
const maxSpinners = 1024

// maxIsolationEvents bounds the schedule: each task costs about 80 bytes
// (its event and its function), built before the run.
const maxIsolationEvents = 1 << 23

// check returns an error wrapping ErrConfig when c cannot run.
func (c IsolationConfig) check() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: isolation: "+format, append([]any{ErrConfig}, args...)...)
	}
	switch {
	case !slices.Contains(IsolationSchedulers(), c.Scheduler):
		return bad("scheduler %q: want one of %v", c.Scheduler, IsolationSchedulers())
	case c.Groups < 1 || c.Groups >= math.MaxUint32:
		return bad("groups %d: want 1 to %d", c.Groups, math.MaxUint32-1)
	case c.Slow < 0 || c.Slow >= c.Groups:
		return bad("slow %d: want 0 <= slow < groups (%d)", c.Slow, c.Groups)
	case c.Submitters < 1:
		return bad("submitters %d: want at least 1", c.Submitters)
	case c.Duration <= 0 || c.Warmup < 0:
		return bad("duration %v, warm-up %v: want a duration above 0 and a warm-up of 0 or more", c.Duration, c.Warmup)
	case c.FastTask < 0 || c.SlowTask < 0 || c.HotTask < 0:
		return bad("task lengths %v, %v, %v: want 0 or more", c.FastTask, c.SlowTask, c.HotTask)
	case !(c.FastRate >= 0) || !(c.SlowRate >= 0) || !(c.HotRate >= 0) ||
		math.IsInf(c.FastRate, 0) || math.IsInf(c.SlowRate, 0) || math.IsInf(c.HotRate, 0):
		return bad("rates %v, %v, %v: want finite and 0 or more", c.FastRate, c.SlowRate, c.HotRate)
	case c.LaneSize < 0:
		return bad("lane size %d: want 0 (unbounded) or more", c.LaneSize)
	case c.Spinners < 0 || c.Spinners > maxSpinners:
		return bad("spinners %d: want 0 to %d", c.Spinners, maxSpinners)
	case c.DrainTimeout <= 0:
		return bad("drain timeout %v: want above 0", c.DrainTimeout)
	}
	hot := 0.0
	if c.Hot {
		hot = c.HotRate
	}
	perSecond := c.FastRate + float64(c.Slow)*c.SlowRate + hot
	if n := perSecond * (c.Warmup + c.Duration).Seconds(); n > maxIsolationEvents {
		return bad("%.0f tasks: want at most %d (fewer groups, lower rates or a shorter run)", n, maxIsolationEvents)
	}
	return nil
}

// IsolationResult holds the figures of one run. The waits are those of the
// fast groups' tasks due after the warm-up: from the task's due time to the
// moment it began, so a submitter held up by a full queue makes its later
// tasks wait too.
type IsolationResult struct {
	// Scheduler and Hot repeat the run's configuration.
	Scheduler string
	Hot       bool
	// Offered counts the scheduled tasks, Accepted those whose Submit
	// returned nil, Refused the rest: Submit errors, and the hot group's
	// tasks still unsubmitted at the end of Warmup+Duration.
	Offered, Accepted, Refused int
	// Ran counts the tasks that ran to their end; Lost the accepted tasks
	// that did not, each counted by itself (a task that ran though its
	// Submit failed does not make up for one that was lost: it is
	// RanRefused).
	Ran, Lost, RanRefused int
	// DeadLetters counts the letters shoal's dead-letter channel delivered
	// (tasks shut down by a drain that timed out); always 0 for the
	// reference.
	DeadLetters int
	// OutOfOrder counts tasks that began before a task of their group
	// submitted earlier; Overlaps counts tasks that began while another
	// task of their group ran.
	OutOfOrder, Overlaps int
	// HotRan counts the hot group's tasks that ran.
	HotRan int
	// Measured counts the fast tasks behind the wait figures;
	// FastRefused the fast tasks due after the warm-up whose Submit
	// failed, whose waits the figures therefore leave out.
	Measured, FastRefused int
	// P50, P99, P999 and Max are the fast groups' waits (nearest rank).
	P50, P99, P999, Max time.Duration
	// LateP99 is the 99th percentile of how late the submitters called
	// Submit for those tasks: the harness's own share of the waits, and the
	// time submitters spent blocked in earlier Submits.
	LateP99 time.Duration
	// QueueP99 is the 99th percentile of the time from the Submit call to
	// the task's start: the scheduler's share of the wait, the time blocked
	// in that Submit included, the harness's lag left out.
	QueueP99 time.Duration
	// Elapsed is the run's length, drain included.
	Elapsed time.Duration
}

// Sound reports whether the run kept the scheduler's promises: every
// accepted task ran (Lost is 0), no refused one did, none began out of its
// group's order, and none overlapped its group's previous task.
func (r IsolationResult) Sound() bool {
	return r.Lost == 0 && r.RanRefused == 0 && r.OutOfOrder == 0 && r.Overlaps == 0
}

// IsolationTarget returns the most fast-group p99 wait shoal's isolation
// goal allows a scheduler run beside reference: 1.5 × the reference's p99
// + 1 ms.
func IsolationTarget(reference IsolationResult) time.Duration {
	return reference.P99*3/2 + time.Millisecond
}

// RunIsolation runs the isolation scenario once on cfg.Scheduler, in real
// time (about Warmup + Duration, plus the drain), and returns its figures.
// The returned error wraps ErrConfig for a configuration it cannot run;
// with a result, it reports a drain that timed out or ctx ending early (the
// run then stops submitting, drains what it can and returns what it saw).
func RunIsolation(ctx context.Context, cfg IsolationConfig) (IsolationResult, error) {
	if err := cfg.check(); err != nil {
		return IsolationResult{}, err
	}
	s, err := newIsoScheduler(cfg)
	if err != nil {
		return IsolationResult{}, err
	}
	return runIsolation(ctx, cfg, s)
}

// isoScheduler is one scheduler under test. submit may be called from many
// goroutines; close once, after the last submit, and returns when every
// accepted task has ended or ctx is done.
type isoScheduler interface {
	submit(ctx context.Context, group uint64, t pool.Task) error
	close(ctx context.Context) (deadLetters int, err error)
}

func newIsoScheduler(cfg IsolationConfig) (isoScheduler, error) {
	switch cfg.Scheduler {
	case IsolationShoal:
		return newShoalIso()
	case IsolationShoal512:
		return newShoalIso(pool.WithWorkers(1, 512))
	default:
		return newReference(cfg.LaneSize), nil
	}
}

// Task kinds, an index into isoRun.work.
const (
	isoFast = iota
	isoSlow
	isoHot
)

// isoEvent is one scheduled task.
type isoEvent struct {
	due      int64        // ns after the run's epoch at which it is offered
	called   int64        // ns after the epoch when Submit was called; 0: never
	start    atomic.Int64 // ns after the epoch when the task began; 0: not yet
	ended    atomic.Int32 // runs of the task that reached their end
	group    uint32
	seq      uint32
	kind     uint8
	accepted bool
}

// isoGroup is one group's order state, padded to a cache line so that two
// groups running on two cores do not share one.
type isoGroup struct {
	last    atomic.Uint32
	running atomic.Int32 // tasks of the group that began and have not ended
	_       [64 - 4 - 4]byte
}

// isoRun is one run: the schedule, the checker and the clock.
type isoRun struct {
	cfg    IsolationConfig
	sched  isoScheduler
	epoch  time.Time
	work   [3]time.Duration
	groups []isoGroup
	// subs holds each submitter's events in due order; with Hot, the last
	// one is the hot group's submitter. tasks[i][j] runs subs[i][j].
	subs       [][]isoEvent
	tasks      [][]pool.Task
	ran        atomic.Int64
	hotRan     atomic.Int64
	outOfOrder atomic.Int64
	overlaps   atomic.Int64
}

// now returns the nanoseconds since the epoch, never 0.
func (r *isoRun) now() int64 { return int64(time.Since(r.epoch)) + 1 }

// isoDue is a planned task before its group's sequence is known.
type isoDue struct {
	due   int64
	group uint32
	kind  uint8
}

// planIsolation returns each submitter's events, in due order, numbered per
// group. With cfg.Hot the last slice is the hot group's.
func planIsolation(cfg IsolationConfig) [][]isoEvent {
	window := float64(cfg.Warmup + cfg.Duration)
	nFast := cfg.Groups - cfg.Slow
	plans := make([][]isoDue, cfg.Submitters, cfg.Submitters+1)
	owned := make([]uint32, 0, nFast/cfg.Submitters+1)
	for i := range plans {
		rng := rand.New(rand.NewPCG(cfg.Seed, uint64(i)))
		owned = owned[:0]
		for g := cfg.Slow + i; g < cfg.Groups; g += cfg.Submitters {
			owned = append(owned, uint32(g))
		}
		var plan []isoDue
		if len(owned) > 0 && cfg.FastRate > 0 {
			gap := 1e9 / (cfg.FastRate * float64(len(owned)) / float64(nFast)) // mean ns between arrivals
			plan = make([]isoDue, 0, int(window/gap*1.1)+16)
			for t := rng.ExpFloat64() * gap; t < window; t += rng.ExpFloat64() * gap {
				plan = append(plan, isoDue{due: int64(t), group: owned[rng.IntN(len(owned))], kind: isoFast})
			}
		}
		if cfg.SlowRate > 0 {
			period := 1e9 / cfg.SlowRate
			for g := i; g < cfg.Slow; g += cfg.Submitters {
				for t := rng.Float64() * period; t < window; t += period {
					plan = append(plan, isoDue{due: int64(t), group: uint32(g), kind: isoSlow})
				}
			}
		}
		slices.SortStableFunc(plan, func(a, b isoDue) int { return cmp.Compare(a.due, b.due) })
		plans[i] = plan
	}
	if cfg.Hot && cfg.HotRate > 0 {
		rng := rand.New(rand.NewPCG(cfg.Seed, uint64(cfg.Submitters)))
		period := 1e9 / cfg.HotRate
		var plan []isoDue
		for t := rng.Float64() * period; t < window; t += period {
			plan = append(plan, isoDue{due: int64(t), group: uint32(cfg.Groups), kind: isoHot})
		}
		plans = append(plans, plan)
	}
	seq := make([]uint32, cfg.Groups+1)
	subs := make([][]isoEvent, len(plans))
	for i, plan := range plans {
		evs := make([]isoEvent, len(plan))
		for j, p := range plan {
			seq[p.group]++
			ev := &evs[j]
			ev.due, ev.group, ev.kind, ev.seq = p.due, p.group, p.kind, seq[p.group]
		}
		subs[i] = evs
	}
	return subs
}

// runIsolation runs cfg's scenario on s, which it closes.
func runIsolation(ctx context.Context, cfg IsolationConfig, s isoScheduler) (IsolationResult, error) {
	r := &isoRun{
		cfg:    cfg,
		sched:  s,
		work:   [3]time.Duration{isoFast: cfg.FastTask, isoSlow: cfg.SlowTask, isoHot: cfg.HotTask},
		groups: make([]isoGroup, cfg.Groups+1),
		subs:   planIsolation(cfg),
	}
	r.tasks = make([][]pool.Task, len(r.subs))
	for i, evs := range r.subs {
		r.tasks[i] = make([]pool.Task, len(evs))
		for j := range evs {
			r.tasks[i][j] = r.task(&evs[j])
		}
	}
	// The previous run's garbage is collected before the clock starts.
	runtime.GC()

	r.epoch = time.Now()
	var spin atomic.Bool
	var spinners sync.WaitGroup
	spin.Store(true)
	for range cfg.Spinners {
		spinners.Go(func() {
			for spin.Load() {
			}
		})
	}
	var wg sync.WaitGroup
	for i := range r.subs {
		stop := int64(0)
		if cfg.Hot && i == cfg.Submitters {
			stop = int64(cfg.Warmup + cfg.Duration)
		}
		wg.Go(func() { r.submitAll(ctx, r.subs[i], r.tasks[i], stop) })
	}
	wg.Wait()
	spin.Store(false)
	spinners.Wait()

	closeCtx, cancel := context.WithTimeout(ctx, cfg.DrainTimeout)
	defer cancel()
	dead, closeErr := s.close(closeCtx)
	res := r.result()
	res.DeadLetters = dead
	res.Elapsed = time.Since(r.epoch)
	switch {
	case ctx.Err() != nil:
		return res, fmt.Errorf("bench: isolation %s: %w", cfg.Scheduler, ctx.Err())
	case closeErr != nil:
		return res, fmt.Errorf("bench: isolation %s: drain: %w", cfg.Scheduler, closeErr)
	}
	return res, nil
}

// submitAll submits evs, each at its due time, until ctx ends; with stop >
// 0 it gives up on the tasks not yet submitted at stop. Every Submit gets
// ctx itself: a scheduler may tie a queued task to its Submit's context (a
// pool.Pool turns a task whose context ended into an Expired dead letter),
// so a submitter that must give up does so between Submits, not by a
// deadline on them.
func (r *isoRun) submitAll(ctx context.Context, evs []isoEvent, tasks []pool.Task, stop int64) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for j := range evs {
		ev := &evs[j]
		if d := ev.due - r.now(); d > 0 {
			timer.Reset(time.Duration(d))
			select {
			case <-timer.C:
			case <-ctx.Done():
				return
			}
		}
		t := r.now()
		if ctx.Err() != nil || (stop > 0 && t >= stop) {
			return
		}
		ev.called = t
		if r.sched.submit(ctx, uint64(ev.group), tasks[j]) == nil {
			ev.accepted = true
		}
	}
}

// task returns the function that runs ev: it records the start and checks
// the group's order, sleeps for the kind's length, and counts the end.
func (r *isoRun) task(ev *isoEvent) pool.Task {
	return func(context.Context) error {
		r.begin(ev)
		time.Sleep(r.work[ev.kind])
		r.groups[ev.group].running.Add(-1) // the task no longer runs
		ev.ended.Add(1)                    // a counter
		if ev.kind == isoHot {
			r.hotRan.Add(1) // a counter
		}
		r.ran.Add(1) // a counter
		return nil
	}
}

// begin records that ev's task starts and checks it against its group: a
// task that begins while any other of its group runs is an overlap.
func (r *isoRun) begin(ev *isoEvent) {
	ev.start.Store(r.now()) // read after the scheduler's close
	g := &r.groups[ev.group]
	if g.running.Add(1) > 1 { // another task of the group runs
		r.overlaps.Add(1) // a counter
	}
	for {
		last := g.last.Load() // the highest sequence number begun so far
		if ev.seq <= last {
			r.outOfOrder.Add(1) // a counter
			return
		}
		if g.last.CompareAndSwap(last, ev.seq) { // publishes ev.seq as begun
			return
		}
	}
}

// result counts what the events and the checker saw.
func (r *isoRun) result() IsolationResult {
	res := IsolationResult{
		Scheduler:  r.cfg.Scheduler,
		Hot:        r.cfg.Hot,
		Ran:        int(r.ran.Load()),
		HotRan:     int(r.hotRan.Load()),
		OutOfOrder: int(r.outOfOrder.Load()),
		Overlaps:   int(r.overlaps.Load()),
	}
	warmup := int64(r.cfg.Warmup)
	n := 0
	for _, evs := range r.subs {
		n += len(evs)
	}
	waits := make([]int64, 0, n)
	late := make([]int64, 0, n)
	queued := make([]int64, 0, n)
	for _, evs := range r.subs {
		for j := range evs {
			ev := &evs[j]
			res.Offered++
			if !ev.accepted {
				if ev.ended.Load() > 0 {
					res.RanRefused++
				}
				if ev.kind == isoFast && ev.due >= warmup && ev.called > 0 {
					res.FastRefused++
				}
				continue
			}
			res.Accepted++
			if ev.ended.Load() == 0 {
				res.Lost++
			}
			if start := ev.start.Load(); ev.kind == isoFast && ev.due >= warmup && start > 0 {
				waits = append(waits, start-ev.due)
				late = append(late, ev.called-ev.due)
				queued = append(queued, start-ev.called)
			}
		}
	}
	res.Refused = res.Offered - res.Accepted
	res.Measured = len(waits)
	slices.Sort(waits)
	slices.Sort(late)
	slices.Sort(queued)
	res.P50 = time.Duration(nearestRank(waits, 0.50))
	res.P99 = time.Duration(nearestRank(waits, 0.99))
	res.P999 = time.Duration(nearestRank(waits, 0.999))
	res.Max = time.Duration(nearestRank(waits, 1))
	res.LateP99 = time.Duration(nearestRank(late, 0.99))
	res.QueueP99 = time.Duration(nearestRank(queued, 0.99))
	return res
}

// nearestRank returns the q quantile of sorted values (0 for none).
func nearestRank(sorted []int64, q float64) int64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// shoalIso drives a pool.Pool keyed by group and counts its dead letters.
type shoalIso struct {
	p      *pool.Pool[uint64]
	dead   int
	dlDone chan struct{}
}

func newShoalIso(opts ...pool.Option) (*shoalIso, error) {
	p, err := pool.New[uint64](opts...)
	if err != nil {
		return nil, fmt.Errorf("pool.New: %w", err)
	}
	s := &shoalIso{p: p, dlDone: make(chan struct{})}
	go func() {
		defer close(s.dlDone)
		for range p.DeadLetters() {
			s.dead++ // read by close after dlDone
		}
	}()
	return s, nil
}

func (s *shoalIso) submit(ctx context.Context, group uint64, t pool.Task) error {
	return s.p.Submit(ctx, group, t)
}

// close closes the pool, which drains it (or shuts down what is queued when
// ctx ends), and waits for the dead-letter channel to close.
func (s *shoalIso) close(ctx context.Context) (int, error) {
	err := s.p.Close(ctx)
	<-s.dlDone
	return s.dead, err
}

// errRefClosed is the reference's answer to a Submit after close.
var errRefClosed = errors.New("bench: reference scheduler closed")

// reference keeps a FIFO lane per group that has queued work, each drained
// by a goroutine of its own: what "a slow group delays only itself" looks
// like with no bound on goroutines. Lanes are recycled through a free list,
// so in steady state a submit allocates only the drain goroutine of a lane
// that was idle.
type reference struct {
	mu     sync.Mutex
	lanes  map[uint64]*refLane // the groups with queued or running work
	free   []*refLane
	limit  int // most queued tasks per lane; 0: unbounded
	closed bool
	wg     sync.WaitGroup // one per drain goroutine
}

// refLane is a growable ring of one group's queued tasks, guarded by
// reference.mu.
type refLane struct {
	buf     []pool.Task
	head, n int
	// space, when not nil, is closed by the drainer when a task leaves the
	// lane: submitters waiting for room wait on it.
	space chan struct{}
}

func newReference(limit int) *reference {
	return &reference{lanes: make(map[uint64]*refLane), limit: limit}
}

func (r *reference) submit(ctx context.Context, group uint64, t pool.Task) error {
	r.mu.Lock()
	for {
		if r.closed {
			r.mu.Unlock()
			return errRefClosed
		}
		l := r.lanes[group]
		if l == nil {
			l = r.newLane()
			l.push(t)
			r.lanes[group] = l
			r.wg.Add(1)
			r.mu.Unlock()
			go r.drain(group, l)
			return nil
		}
		if r.limit == 0 || l.n < r.limit {
			l.push(t)
			r.mu.Unlock()
			return nil
		}
		if l.space == nil {
			l.space = make(chan struct{})
		}
		space := l.space
		r.mu.Unlock()
		select {
		case <-space:
		case <-ctx.Done():
			return ctx.Err()
		}
		r.mu.Lock()
	}
}

// drain runs l's tasks in order until it is empty, then retires it. Only
// this goroutine takes tasks from l while l is the lane of group.
func (r *reference) drain(group uint64, l *refLane) {
	defer r.wg.Done()
	ctx := context.Background()
	for {
		r.mu.Lock()
		if l.n == 0 {
			delete(r.lanes, group)
			r.free = append(r.free, l)
			r.mu.Unlock()
			return
		}
		t := l.pop()
		if l.space != nil {
			close(l.space) // wakes the submitters waiting for room
			l.space = nil
		}
		r.mu.Unlock()
		_ = t(ctx)
	}
}

// newLane returns an empty lane from the free list or a new one; r.mu held.
func (r *reference) newLane() *refLane {
	if n := len(r.free); n > 0 {
		l := r.free[n-1]
		r.free[n-1] = nil
		r.free = r.free[:n-1]
		return l
	}
	return &refLane{buf: make([]pool.Task, 4)}
}

// close refuses new submits and waits for every lane to drain. The
// reference's tasks always end, so it drains everything: ctx is not needed.
func (r *reference) close(context.Context) (int, error) {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.wg.Wait()
	return 0, nil
}

func (l *refLane) push(t pool.Task) {
	if l.n == len(l.buf) {
		buf := make([]pool.Task, 2*len(l.buf))
		for i := range l.n {
			buf[i] = l.buf[(l.head+i)%len(l.buf)]
		}
		l.buf, l.head = buf, 0
	}
	l.buf[(l.head+l.n)%len(l.buf)] = t
	l.n++
}

func (l *refLane) pop() pool.Task {
	t := l.buf[l.head]
	l.buf[l.head] = nil
	l.head = (l.head + 1) % len(l.buf)
	l.n--
	return t
}
