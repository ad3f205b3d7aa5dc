package backpressure

// Invariants:
//   - cur always holds a non-nil *decision; a published decision is never
//     modified: every change (new sample, stale mark, close, hot update)
//     publishes a fresh copy by CompareAndSwap, and a copy made after Close
//     keeps closed set.
//   - Exactly one goroutine at a time holds refreshing (a try-lock taken by
//     CompareAndSwap(false, true)); only the holder reads the Source and
//     touches b.m and b.reading. Callers that fail to take it never wait:
//     they decide on the last published decision. The holder queues its
//     transition before releasing the role, so pending is in order.
//   - cfg always holds a non-nil, validated *config that is never modified.
//   - outside is written only by the loop goroutine (checkCgroup) and read
//     by the refresher; crossCheck is set before the loop starts.
//   - The stale timer is re-armed only under mu while !closed, and Close
//     stops it under mu, so it is never re-armed after Close.
//   - pending (guarded by mu) holds transitions not yet handed to
//     OnStateChange; only the loop goroutine calls OnStateChange, so calls
//     happen in transition order, outside every lock, never on Admit's path.
//   - The loop goroutine is started by NewBreaker and has exited when Close
//     returns.

import (
	"bytes"
	"math"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Breaker admits or refuses work according to memory pressure. All methods
// are safe for concurrent use. See the package documentation.
type Breaker struct {
	cur        atomic.Pointer[decision]
	cfg        atomic.Pointer[config]
	inflight   atomic.Pointer[func() int64]
	refreshing atomic.Bool

	// Owned by the holder of refreshing.
	m       machine
	src     Source
	reading Reading
	// cpuRead: a reading's CPU totals have been good once (read); until
	// then reading holds the zero pair, which no GC window may start from.
	cpuRead bool

	throttle *rate.Limiter // internally synchronized
	probe    *rate.Limiter // internally synchronized
	stale    *time.Timer   // marks the decision stale maxStaleness after an inline refresh

	entered [numStates]atomic.Uint64 // transitions into each state

	// crossCheck: the loop compares the cgroup's charge with Go's memory
	// and publishes the excess in outside, which refresh adds to use.
	crossCheck bool
	outside    atomic.Int64

	epoch time.Time

	mu          sync.Mutex
	pending     []transition
	closed      bool
	lastProfile time.Duration
	profileErr  error

	// notify has room for one wake-up: the loop drains every pending
	// transition on each wake, so a second signal would add nothing.
	notify chan struct{}
	done   chan struct{}
	exited chan struct{}
	// loopID is the id of the loop goroutine, which makes the
	// OnStateChange calls: a Close made from one of them must not wait
	// for the loop to exit (see Close).
	loopID atomic.Uint64
}

// decision is what Admit acts on: the outcome of the last sample.
type decision struct {
	// fast is state == Normal && !stale && !closed: Admit need only check
	// the in-flight count against limit.
	fast     bool
	state    State
	stale    bool
	closed   bool
	inflight func() int64
	// room is, in Normal, the in-flight count at which the reservation
	// reaches the throttle threshold; otherwise reject. limit ≤ room is the
	// count at which Admit samples again (see refreshBatch).
	limit, room int64
	// reject is the most tasks whose reservation stays within the reject
	// threshold.
	reject int64
	// rate is the token-bucket rate in Throttle; zero refuses everything,
	// in Probe too.
	rate float64

	used, measured, budget int64
	outside                int64
	source                 BudgetSource
	bytesPerTask           int64
	inFlight               int64
	goroutines             int64
	gcShare                float64
	at                     time.Duration // sample time, since epoch

	throttleErr, rejectErr *RejectError
}

type transition struct{ from, to State }

// NewBreaker returns a running Breaker. It reads a first sample, so State is
// meaningful at once. The budget comes from WithBudget, else the cgroup
// memory limit × WithCgroupRatio, else GOMEMLIMIT, else there is none
// (Stats().Source == BudgetNone): pressure stays zero and only the second
// signals (WithGCCPUBound, WithMaxGoroutines) move the breaker out of Normal.
// Close releases its background goroutine.
func NewBreaker(opts ...Option) (*Breaker, error) {
	c := defaultConfig()
	for _, o := range opts {
		if o == nil {
			return nil, invalid("nil Option")
		}
		o.apply(&c)
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	b := &Breaker{
		src:    c.source,
		epoch:  time.Now(),
		notify: make(chan struct{}, 1),
		done:   make(chan struct{}),
		exited: make(chan struct{}),
	}
	if b.src == nil {
		b.src = newRuntimeSource()
	}
	b.read()
	switch {
	case c.hasExplicit:
		if c.explicit <= b.reading.Used {
			return nil, invalid("budget %d bytes: not above current use %d bytes", c.explicit, b.reading.Used)
		}
		c.budget, c.budgetSource = c.explicit, BudgetExplicit
	default:
		if cg, ok := findCgroup(rootReader(c.root)); ok && cg.limit > 0 {
			c.budget, c.budgetSource, c.cg = int64(float64(cg.limit)*c.cgroupRatio), BudgetCgroup, cg
			b.crossCheck = c.source == nil && c.cgCheck > 0
		} else if gl := debug.SetMemoryLimit(-1); gl != math.MaxInt64 && gl > 0 {
			c.budget, c.budgetSource = gl, BudgetGOMEMLIMIT
		}
	}
	b.cfg.Store(&c) // publishes the first config, before b is shared
	b.throttle = rate.NewLimiter(rate.Limit(c.throttleRate), c.throttleBurst)
	b.probe = rate.NewLimiter(rate.Limit(c.probeRate), 1)
	b.m.init()
	b.cur.Store(&decision{stale: true}) // replaced below, before b is shared
	b.stale = time.AfterFunc(time.Hour, b.markStale)
	b.stale.Stop()
	b.refreshing.Store(true) // no one else can hold it yet
	b.refresh(false)
	go b.loop()
	return b, nil
}

// Admit reports whether one more unit of work may start: nil, or a
// *RejectError that errors.Is ErrMemoryPressure or ErrThrottled, or
// ErrClosed. It never blocks and allocates nothing, also when it refuses,
// except in the call that takes a sample, which publishes a new decision.
//
// In Normal it costs one atomic load and, when SetInFlightFunc was called,
// one call of that function. It samples memory inline (one caller does, the
// others go on with the last sample) when the sample is older than
// WithMaxStaleness, and when the in-flight count has grown by a quarter of
// the room left since the sample: growth in admitted work is caught
// however the scheduler treats timers.
func (b *Breaker) Admit() error {
	d := b.cur.Load() // acquires the decision published by the last refresh
	if d.fast && (d.inflight == nil || d.inflight() < d.limit) {
		return nil
	}
	return b.admitSlow(d)
}

// admitSlow handles everything but a fresh Normal sample with room. Off the
// fast path it can afford the clock (30–100 ns), so here staleness is
// measured rather than left to the timer, which a storm of runnable
// goroutines can starve.
func (b *Breaker) admitSlow(d *decision) error {
	if d.closed {
		return ErrClosed
	}
	c := b.cfg.Load() // acquires the config for the staleness limits
	var n int64
	if d.inflight != nil {
		n = d.inflight()
	}
	age := b.now() - d.at
	// Over the limit, a refresh helps only when the count moved since the
	// sample: otherwise it would find the same, and every Admit would pay
	// for a sample.
	if d.stale || age >= c.maxStaleness || (n >= d.limit && n != d.inFlight) {
		if b.refreshing.CompareAndSwap(false, true) { // take the refresher's role
			b.refresh(true)
			d = b.cur.Load() // acquires the decision just published
			if d.closed {
				return ErrClosed
			}
			if d.inflight != nil {
				n = d.inflight()
			}
			age = 0
		}
	}
	switch d.state {
	case Normal:
		if n < d.room && age <= c.unknownAfter {
			return nil
		}
		// Another caller holds the refresh, and the last sample is too
		// old to trust or the reservation has reached the throttle
		// threshold since: judge as Throttle would by the last sample,
		// through the bucket (at WithThrottleRate, set by the Normal
		// sample) and never past the reject threshold.
		if n >= d.reject {
			return d.rejectErr
		}
		if b.throttle.Allow() {
			return nil
		}
		return d.throttleErr
	case Throttle:
		if n >= d.room {
			return d.rejectErr
		}
		if d.rate > 0 && b.throttle.Allow() {
			return nil
		}
		return d.throttleErr
	case Probe:
		if d.rate == 0 {
			// The goroutine ceiling (or a GC taking all the CPU): nothing
			// is admitted, as in Throttle.
			return d.throttleErr
		}
		if n < d.room && b.probe.Allow() {
			return nil
		}
		return d.rejectErr
	default:
		return d.rejectErr
	}
}

// State returns the state of the last sample.
func (b *Breaker) State() State {
	return b.cur.Load().state // acquires the last decision
}

// Pressure returns effective use / budget at the last sample (zero when
// there is no budget). Effective use is measured use plus the reservation for
// in-flight work.
func (b *Breaker) Pressure() float64 {
	d := b.cur.Load() // acquires the last decision
	return ratio(d.used, d.budget)
}

// SetInFlightFunc registers the count of admitted work that has not finished
// (queued plus running tasks). The breaker reserves WithBytesPerTask bytes
// for each, so a burst admitted within one sample cannot overshoot:
//
//	effective use = measured use + f() × bytes per task
//
// and Admit samples again whenever f() has grown by a quarter of the room
// left. Admit calls f on every call, so f must be cheap (an atomic load) and
// safe for concurrent use. A nil f removes the reservation. The last call
// wins: a breaker serves one pool. Without f, a burst is seen only once the
// admitted work has allocated and the sample has been refreshed.
func (b *Breaker) SetInFlightFunc(f func() int64) error {
	if f == nil {
		b.inflight.Store(nil) // publishes the removal to the next refresh
	} else {
		b.inflight.Store(&f) // publishes f to the next refresh
	}
	return b.update(func(d *decision) {
		d.inflight = f
		d.limit = 0 // forces the next Admit to refresh with f counted
		d.stale = true
	})
}

// SetThresholds replaces the thresholds at run time. Invalid thresholds
// return an error matching ErrInvalidConfig and change nothing.
func (b *Breaker) SetThresholds(t Thresholds) error {
	if err := t.validate(); err != nil {
		return err
	}
	return b.setConfig(func(c *config) error {
		c.thresholds = t
		return nil
	})
}

// SetBudget replaces the budget at run time with an explicit one. A budget
// that is not positive or not above the current measured use returns an
// error matching ErrInvalidConfig and changes nothing.
func (b *Breaker) SetBudget(bytes int64) error {
	if bytes <= 0 {
		return invalid("budget %d: must be positive", bytes)
	}
	if used := b.cur.Load().measured; bytes <= used { // acquires the last sample's measured use
		return invalid("budget %d bytes: not above current use %d bytes", bytes, used)
	}
	return b.setConfig(func(c *config) error {
		c.explicit, c.hasExplicit, c.budget, c.budgetSource = bytes, true, bytes, BudgetExplicit
		return nil
	})
}

func (b *Breaker) setConfig(change func(*config) error) error {
	for {
		if b.cur.Load().closed { // acquires closed, published by Close
			return ErrClosed
		}
		old := b.cfg.Load() // acquires the config to copy
		c := *old
		if err := change(&c); err != nil {
			return err
		}
		if b.cfg.CompareAndSwap(old, &c) { // publishes the new immutable config
			break
		}
	}
	// Act on it now when no one else is refreshing; otherwise the next Admit
	// will, because the decision is marked stale.
	if b.refreshing.CompareAndSwap(false, true) { // take the refresher's role
		b.refresh(false)
		return nil
	}
	return b.update(func(d *decision) { d.stale = true })
}

// Close stops the background sampler and waits for it; pending OnStateChange
// calls are made first. Admit returns ErrClosed afterwards. A second Close
// returns ErrClosed. Close may be called from OnStateChange (to shut down on
// Reject, say): it then returns without waiting, and the sampler's goroutine
// ends as soon as that call returns.
func (b *Breaker) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return ErrClosed
	}
	b.closed = true
	b.stale.Stop() // under mu: no refresh re-arms it after this
	b.mu.Unlock()
	for {
		old := b.cur.Load() // acquires the decision to copy
		d := *old
		d.closed, d.fast = true, false
		if b.cur.CompareAndSwap(old, &d) { // publishes closed to every Admit
			break
		}
	}
	close(b.done)
	if goid() == b.loopID.Load() {
		// Called from OnStateChange, on the loop goroutine: it exits
		// when the callback returns, having seen done.
		return nil
	}
	<-b.exited
	return nil
}

// goid returns the id of the calling goroutine, read from the first line
// of its stack ("goroutine 42 [running]:"), or 0 if that cannot be read.
// Close compares it with the loop's, once: a cost of a microsecond or so.
func goid() uint64 {
	var buf [64]byte
	s := buf[:runtime.Stack(buf[:], false)]
	s, ok := bytes.CutPrefix(s, []byte("goroutine "))
	if !ok {
		return 0
	}
	i := bytes.IndexByte(s, ' ')
	if i < 0 {
		return 0
	}
	id, err := strconv.ParseUint(string(s[:i]), 10, 64)
	if err != nil {
		return 0
	}
	return id
}

// update publishes a modified copy of the current decision.
func (b *Breaker) update(change func(*decision)) error {
	for {
		old := b.cur.Load() // acquires the decision to copy
		if old.closed {
			return ErrClosed
		}
		d := *old
		change(&d)
		d.fast = d.state == Normal && !d.stale && !d.closed
		if b.cur.CompareAndSwap(old, &d) { // publishes the copy
			return nil
		}
	}
}

// markStale runs maxStaleness after an inline refresh: the next Admit
// refreshes the sample.
func (b *Breaker) markStale() {
	_ = b.update(func(d *decision) { d.stale = true })
}

func (b *Breaker) now() time.Duration { return time.Since(b.epoch) }

// read takes a reading from the Source into b.reading. The CPU totals are
// cumulative: a pair in which either is NaN, infinite or below the last
// good one (negative, to begin with) is ignored and the last good pair
// kept, so that one bad reading cannot make the GC's share NaN, or 1 or 0,
// for the window it ends or the one it starts. Until a first good pair
// (cpuRead), the GC window does not start: from the zero pair its first
// share would be the process's lifetime average. The caller holds
// refreshing (or b is not yet shared).
func (b *Breaker) read() {
	r := b.reading // fields the Source does not set keep their last values
	b.src.Read(&r)
	good := func(v, last float64) bool { return v >= last && v <= math.MaxFloat64 }
	if !good(r.GCCPUSeconds, b.reading.GCCPUSeconds) || !good(r.TotalCPUSeconds, b.reading.TotalCPUSeconds) {
		r.GCCPUSeconds, r.TotalCPUSeconds = b.reading.GCCPUSeconds, b.reading.TotalCPUSeconds
	} else {
		b.cpuRead = true
	}
	b.reading = r
}

// minRefreshBatch is the fewest admissions between count-driven samples,
// so that near a threshold Admit does not sample on every call.
const minRefreshBatch = 16

// refreshBatch returns the in-flight count at which Admit samples again:
// after a quarter of the room left (at least minRefreshBatch tasks, never
// past room). Each sample then sees the memory of the work admitted before
// it, however long timers are delayed.
func refreshBatch(n, room int64) int64 {
	if room <= n {
		return room
	}
	return min(n+max((room-n)/4, minRefreshBatch), room)
}

// refresh reads a sample, steps the state machine and publishes a decision.
// The caller holds refreshing; refresh releases it. inline says an admitting
// caller is refreshing (the next sample is then due maxStaleness later);
// otherwise the decision is published stale, so that the first Admit after a
// quiet period samples afresh.
func (b *Breaker) refresh(inline bool) {
	handedOn := false
	defer func() {
		if !handedOn {
			// The Source or the in-flight function panicked: the role
			// goes back, so that the next caller or the loop samples
			// again, and the panic goes on to the caller.
			b.refreshing.Store(false)
		}
	}()
	c := b.cfg.Load() // acquires the config this sample is judged by
	now := b.now()
	b.read()
	r := b.reading
	var outside int64
	if b.crossCheck && c.budgetSource == BudgetCgroup {
		outside = b.outside.Load() // acquires the loop's last cgroup comparison
		r.Used += outside
	}
	var n int64
	f := b.inflight.Load() // acquires the in-flight function set by SetInFlightFunc
	if f != nil {
		n = max((*f)(), 0)
	}
	in := b.m.observe(c, now, r, n, b.cpuRead)
	from, to, changed := b.m.step(c, now, in)

	d := &decision{
		state:        to,
		stale:        !inline,
		measured:     r.Used,
		outside:      outside,
		used:         in.effective,
		budget:       c.budget,
		source:       c.budgetSource,
		bytesPerTask: in.bytesPerTask,
		inFlight:     n,
		goroutines:   b.reading.Goroutines,
		gcShare:      b.m.gcShare,
		at:           now,
		rate:         in.rate,
		limit:        math.MaxInt64,
		room:         math.MaxInt64,
		reject:       math.MaxInt64,
	}
	if f != nil {
		d.inflight = *f
		if c.budget > 0 {
			// The most tasks whose reservation stays within the reject
			// level: Admit never carries it past.
			d.reject = clampInt64((c.thresholds.Reject*float64(c.budget) - float64(r.Used)) / float64(in.bytesPerTask))
			d.room = d.reject
			if to == Normal {
				// The count at which the reservation reaches the throttle
				// level: a sample there moves the breaker to Throttle,
				// whose bucket takes over. (A count that stopped one task
				// short would leave it Normal, refusing everything.)
				d.room = roomReaching(c.thresholds.Throttle, c.budget, r.Used, in.bytesPerTask)
			}
			d.limit = refreshBatch(n, d.room)
		}
	}
	d.fast = to == Normal && !d.stale
	retry := c.interval
	if in.rate > 0 {
		retry = max(time.Duration(clampInt64(float64(time.Second)/in.rate)), c.maxStaleness)
	}
	d.throttleErr = &RejectError{Err: ErrThrottled, State: to, Used: in.effective, Budget: c.budget, RetryAfter: retry}
	// Never zero, even with WithHold(0): nothing can change before the
	// next sample, and a hint of zero only makes a client spin.
	// Probe's trickle, no faster than Throttle's rate while a second signal
	// shrinks it (a rate of zero refuses in admitSlow).
	probeRate := c.probeRate
	if in.secondary && in.rate > 0 {
		probeRate = min(probeRate, in.rate)
	}
	hold := max(c.hold, c.maxStaleness)
	switch to {
	case Reject:
		if b.m.belowSince >= 0 {
			// Below Recover already: Probe opens when the hold is served.
			hold = max(c.hold-(now-b.m.belowSince), c.maxStaleness)
		}
	case Probe:
		hold = max(time.Duration(clampInt64(float64(time.Second)/probeRate)), c.maxStaleness)
	case Throttle, Normal:
		hold = retry
	}
	d.rejectErr = &RejectError{Err: ErrMemoryPressure, State: to, Used: in.effective, Budget: c.budget, RetryAfter: hold}
	// Normal sets the bucket too (to WithThrottleRate, its rate below the
	// throttle threshold): an unknown sample in Normal admits through it,
	// and must not be held to the rate of a past Throttle near Reject.
	if (to == Throttle || to == Normal) && in.rate > 0 && b.throttle.Limit() != rate.Limit(in.rate) {
		b.throttle.SetLimit(rate.Limit(in.rate))
	}
	if to == Probe && b.probe.Limit() != rate.Limit(probeRate) {
		b.probe.SetLimit(rate.Limit(probeRate))
	}
	// Publish under mu, so that Close (which sets closed under mu before it
	// publishes the closed decision and lets the loop make the last
	// OnStateChange calls) either comes after the transition is queued, and
	// the loop delivers it, or before, and this sample is dropped: a
	// transition published after Close would have no call to match.
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		handedOn = true
		b.refreshing.Store(false) // hands the role on; the closed decision stands
		return
	}
	for { // publish
		old := b.cur.Load() // acquires the decision to replace
		// A hot update made since this sample began (SetThresholds,
		// SetBudget, SetInFlightFunc) could not take the role and marked
		// the old decision stale, which this one replaces: it is stale
		// too, so that the next Admit judges by the update. Checked
		// before every attempt: an update whose mark this CAS would
		// overwrite was published before it.
		if b.cfg.Load() != c || b.inflight.Load() != f {
			d.stale, d.fast = true, false
		}
		if b.cur.CompareAndSwap(old, d) { // publishes the sample and the new state
			break
		}
	}
	// Queue the transition before handing the role on, so that transitions
	// are queued in the order they happened.
	if changed {
		b.entered[to].Add(1) // counts the transition for Stats
		b.pending = append(b.pending, transition{from, to})
	}
	if inline {
		b.stale.Reset(c.maxStaleness)
	}
	b.mu.Unlock()
	handedOn = true
	b.refreshing.Store(false) // hands the refresher's role to the next taker

	if changed {
		select {
		case b.notify <- struct{}{}:
		default:
		}
	}
}

// loop is the background sampler: it refreshes every interval so the
// breaker recovers while nothing is admitted, forces a GC now and then while
// in Reject, and makes the OnStateChange calls and heap profiles.
func (b *Breaker) loop() {
	defer close(b.exited)
	b.loopID.Store(goid())
	var lastGC, lastCheck time.Duration
	var goHeld []metrics.Sample
	if b.crossCheck {
		goHeld = []metrics.Sample{{Name: metricTotal}, {Name: metricReleased}}
	}
	t := time.NewTicker(b.cfg.Load().interval) // acquires the sampling interval (not hot-updatable)
	defer t.Stop()
	for {
		select {
		case <-b.done:
			b.deliver()
			return
		case <-b.notify:
			b.deliver()
		case <-t.C:
			// Force a GC before taking the refresher's role, never while
			// holding it: a GC under load can take long.
			c := b.cfg.Load() // acquires the forced-GC interval
			if b.refusesForMemory() && c.gcInReject > 0 && b.now()-lastGC >= c.gcInReject {
				lastGC = b.now()
				runtime.GC()
			}
			if b.crossCheck && c.cgCheck > 0 && b.now()-lastCheck >= c.cgCheck {
				lastCheck = b.now()
				b.checkCgroup(c, goHeld)
			}
			if b.refreshing.CompareAndSwap(false, true) { // take the refresher's role
				b.refresh(false)
			}
		}
	}
}

// refusesForMemory reports whether the last decision refuses every Admit
// with ErrMemoryPressure: in Reject, and in Throttle or Probe when the
// in-flight count has used up the room below the reject threshold (used
// within one task's reservation of it, say). Garbage must not hold either
// shut: a refusing process allocates little, so the collector may not run.
func (b *Breaker) refusesForMemory() bool {
	d := b.cur.Load() // acquires the last decision
	switch d.state {
	case Reject:
		return true
	case Throttle, Probe:
		var n int64
		if d.inflight != nil {
			n = d.inflight()
		}
		return n >= d.room
	}
	return false
}

// checkCgroup publishes how much more the cgroup is charged (less inactive
// file cache) than the Go runtime holds (total − released: Go's free heap is
// in both), against the limit that binds first (memCgroup.outside). A failed
// read publishes zero.
func (b *Breaker) checkCgroup(c *config, goHeld []metrics.Sample) {
	metrics.Read(goHeld)
	if goHeld[0].Value.Kind() != metrics.KindUint64 || goHeld[1].Value.Kind() != metrics.KindUint64 {
		b.outside.Store(0) // publishes a failed read as zero
		return
	}
	held := int64(goHeld[0].Value.Uint64()) - int64(goHeld[1].Value.Uint64())
	outside, _ := c.cg.outside(held)
	b.outside.Store(outside) // publishes the excess to the next refresh
}

// deliver makes the pending OnStateChange calls and the heap profile.
func (b *Breaker) deliver() {
	b.mu.Lock()
	p := b.pending
	b.pending = nil
	b.mu.Unlock()
	c := b.cfg.Load() // acquires the callbacks
	for _, tr := range p {
		if tr.to == Reject && c.profileOpen != nil {
			b.writeProfile(c)
		}
		if c.onStateChange != nil {
			c.onStateChange(tr.from, tr.to)
		}
	}
}

func (b *Breaker) writeProfile(c *config) {
	now := b.now()
	b.mu.Lock()
	due := b.lastProfile == 0 || now-b.lastProfile >= c.profileEvery
	if due {
		b.lastProfile = now
	}
	b.mu.Unlock()
	if !due {
		return
	}
	w, err := c.profileOpen()
	if err == nil {
		err = pprof.Lookup("heap").WriteTo(w, 0)
		if cerr := w.Close(); err == nil {
			err = cerr
		}
	}
	b.mu.Lock()
	b.profileErr = err
	b.mu.Unlock()
}

// Stats is a point-in-time view of a Breaker.
type Stats struct {
	// State is the breaker's state.
	State State
	// Pressure is Used / Budget.
	Pressure float64
	// Used is the effective use: Measured + InFlight × BytesPerTask.
	// Measured includes Outside.
	Used, Measured, Budget int64
	// Outside is what the cgroup is charged beyond the Go runtime's memory,
	// at the last WithCgroupCheck (for a limited ancestor, less how far its
	// limit lies above the tightest one; the largest over the path).
	Outside                int64
	Source                 BudgetSource
	InFlight, BytesPerTask int64
	Goroutines             int64
	// GCCPUShare is the GC's share of CPU over the last full window.
	GCCPUShare float64
	// SampleAge is the age of the last sample.
	SampleAge time.Duration
	// Entered counts transitions into each state, indexed by State.
	Entered [4]uint64
	// ProfileErr is the error of the last heap profile, if any.
	ProfileErr error
}

// Stats returns the figures of the last sample and the transition counts.
func (b *Breaker) Stats() Stats {
	d := b.cur.Load() // acquires the last decision
	s := Stats{
		State: d.state, Pressure: ratio(d.used, d.budget), Used: d.used, Measured: d.measured, Outside: d.outside,
		Budget: d.budget, Source: d.source, InFlight: d.inFlight, BytesPerTask: d.bytesPerTask,
		Goroutines: d.goroutines, GCCPUShare: d.gcShare, SampleAge: b.now() - d.at,
	}
	for i := range s.Entered {
		s.Entered[i] = b.entered[i].Load() // reads the transition count
	}
	b.mu.Lock()
	s.ProfileErr = b.profileErr
	b.mu.Unlock()
	return s
}

// clampInt64 converts f to an int64 within [0, MaxInt64]: a float at or past
// 2^63 (a tiny rate's period, a huge budget's room) would wrap negative.
func clampInt64(f float64) int64 {
	switch {
	case !(f > 0): // NaN included
		return 0
	case f >= math.MaxInt64:
		return math.MaxInt64
	}
	return int64(f)
}
