package backpressure

import (
	"io"
	"math"
	"time"
)

// Thresholds are the pressure levels (effective use / budget) that move the
// breaker between states. They must satisfy
//
//	0 < Resume ≤ Throttle < Reject ≤ 1  and  0 < Recover < Reject
//
// Going up, a level is acted on at once; going down, the lower level and, for
// Reject, the hold time must be passed, so noise around a level cannot make
// the state flap.
type Thresholds struct {
	// Throttle: Normal → Throttle at or above it (default 0.80).
	Throttle float64
	// Resume: Throttle → Normal below it (default 0.75).
	Resume float64
	// Reject: any state → Reject at or above it (default 0.92).
	Reject float64
	// Recover: Reject → Probe after pressure stayed below it for the hold
	// time; Probe → Normal or Throttle after another hold time below it
	// (default 0.85).
	Recover float64
}

// DefaultThresholds returns the thresholds a new Breaker starts with.
func DefaultThresholds() Thresholds {
	return Thresholds{Throttle: 0.80, Resume: 0.75, Reject: 0.92, Recover: 0.85}
}

func (t Thresholds) validate() error {
	ok := func(v float64) bool { return v > 0 && v <= 1 && !math.IsNaN(v) }
	switch {
	case !ok(t.Throttle) || !ok(t.Resume) || !ok(t.Reject) || !ok(t.Recover):
		return invalid("thresholds %+v: each must be in (0, 1]", t)
	case t.Resume > t.Throttle:
		return invalid("thresholds %+v: Resume must not exceed Throttle", t)
	case t.Throttle >= t.Reject:
		return invalid("thresholds %+v: Throttle must be below Reject", t)
	case t.Recover >= t.Reject:
		return invalid("thresholds %+v: Recover must be below Reject", t)
	}
	return nil
}

// BudgetSource says where a breaker's budget came from.
type BudgetSource int32

// The budget sources, in the order NewBreaker tries them.
const (
	// BudgetNone: no budget was found; pressure stays zero, and only the
	// second signals (GC CPU share, goroutine ceiling) leave Normal.
	BudgetNone BudgetSource = iota
	// BudgetExplicit: WithBudget or SetBudget.
	BudgetExplicit
	// BudgetCgroup: the process's cgroup memory limit × WithCgroupRatio.
	BudgetCgroup
	// BudgetGOMEMLIMIT: the Go runtime's soft memory limit.
	BudgetGOMEMLIMIT
)

// String returns the source's name.
func (s BudgetSource) String() string {
	switch s {
	case BudgetNone:
		return "none"
	case BudgetExplicit:
		return "explicit"
	case BudgetCgroup:
		return "cgroup"
	case BudgetGOMEMLIMIT:
		return "GOMEMLIMIT"
	}
	return "BudgetSource(?)"
}

// Option configures a Breaker in NewBreaker.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// config is immutable once published; a hot update publishes a modified copy.
type config struct {
	budget       int64 // bytes; 0 = none
	budgetSource BudgetSource
	explicit     int64 // WithBudget or SetBudget, when hasExplicit
	hasExplicit  bool
	cgroupRatio  float64
	thresholds   Thresholds

	maxStaleness time.Duration
	interval     time.Duration
	unknownAfter time.Duration
	hold         time.Duration

	throttleRate  float64 // admissions per second at the throttle threshold
	throttleBurst int
	probeRate     float64

	bytesPerTask int64

	maxGoroutines int64
	gcBound       float64
	gcWindow      time.Duration
	gcInReject    time.Duration

	onStateChange func(from, to State)
	profileOpen   func() (io.WriteCloser, error)
	profileEvery  time.Duration

	source  Source
	root    string // file-system root for cgroup detection (tests)
	cgCheck time.Duration
	cg      memCgroup // the process's cgroup, when the budget came from it
}

func defaultConfig() config {
	return config{
		cgroupRatio:   0.9,
		thresholds:    DefaultThresholds(),
		maxStaleness:  2 * time.Millisecond,
		interval:      25 * time.Millisecond,
		unknownAfter:  50 * time.Millisecond,
		hold:          time.Second,
		throttleRate:  10000,
		throttleBurst: 100,
		bytesPerTask:  64 << 10,
		probeRate:     100,
		gcBound:       0.5,
		gcWindow:      time.Second,
		gcInReject:    time.Second,
		profileEvery:  time.Minute,
		root:          "/",
		cgCheck:       100 * time.Millisecond,
	}
}

func (c *config) validate() error {
	if err := c.thresholds.validate(); err != nil {
		return err
	}
	switch {
	case c.hasExplicit && c.explicit <= 0:
		return invalid("budget %d: must be positive", c.explicit)
	case !(c.cgroupRatio > 0 && c.cgroupRatio <= 1):
		return invalid("cgroup ratio %v: must be in (0, 1]", c.cgroupRatio)
	case c.maxStaleness <= 0:
		return invalid("max staleness %v: must be positive", c.maxStaleness)
	case c.interval <= 0:
		return invalid("sample interval %v: must be positive", c.interval)
	case c.hold < 0:
		return invalid("hold time %v: must not be negative", c.hold)
	case !(c.throttleRate > 0) || math.IsInf(c.throttleRate, 0) || c.throttleBurst < 1:
		return invalid("throttle rate %v burst %d: rate must be positive and finite, burst ≥ 1", c.throttleRate, c.throttleBurst)
	case !(c.probeRate > 0) || math.IsInf(c.probeRate, 0):
		return invalid("probe rate %v: must be positive and finite", c.probeRate)
	case c.bytesPerTask <= 0:
		return invalid("bytes per task %d: must be positive", c.bytesPerTask)
	case c.maxGoroutines < 0:
		return invalid("goroutine ceiling %d: must not be negative", c.maxGoroutines)
	case !(c.gcBound > 0 && c.gcBound <= 1):
		return invalid("GC CPU bound %v: must be in (0, 1]", c.gcBound)
	case c.gcWindow <= 0:
		return invalid("GC window %v: must be positive", c.gcWindow)
	case c.gcInReject < 0:
		return invalid("GC interval in Reject %v: must not be negative", c.gcInReject)
	case c.cgCheck < 0:
		return invalid("cgroup check interval %v: must not be negative", c.cgCheck)
	case c.profileEvery <= 0:
		return invalid("heap profile interval %v: must be positive", c.profileEvery)
	}
	return nil
}

// WithBudget sets the memory budget in bytes, instead of detecting it. It
// must be positive and above the current use.
func WithBudget(bytes int64) Option {
	return optionFunc(func(c *config) { c.explicit, c.hasExplicit = bytes, true })
}

// WithCgroupRatio sets the share of the cgroup memory limit used as the
// budget when the budget is detected from the cgroup (default 0.9: the rest
// covers page cache, kernel memory and C allocations that Go does not see).
func WithCgroupRatio(r float64) Option {
	return optionFunc(func(c *config) { c.cgroupRatio = r })
}

// WithCgroupCheck sets how often the background sampler compares the
// cgroup's charge (less inactive file cache) with the memory the Go runtime
// holds, when the budget comes from the cgroup and use from runtime/metrics
// (default every 100 ms; zero never). What the cgroup is charged beyond Go's
// memory (C allocations, memory-mapped files, page cache in use) is added to
// the measured use. Go's own free heap is not: it is in both figures. Each
// group on the path that has a limit is compared, an ancestor's excess less
// how far its limit lies above the tightest one, and the largest counts.
func WithCgroupCheck(every time.Duration) Option {
	return optionFunc(func(c *config) { c.cgCheck = every })
}

// WithThresholds sets the initial thresholds (default DefaultThresholds()).
func WithThresholds(t Thresholds) Option {
	return optionFunc(func(c *config) { c.thresholds = t })
}

// WithMaxStaleness sets the age above which a sample is refreshed inline by
// one admitting caller (default 2 ms).
func WithMaxStaleness(d time.Duration) Option {
	return optionFunc(func(c *config) { c.maxStaleness = d })
}

// WithSampleInterval sets the period of the background sampler that lets the
// breaker recover while nothing is admitted (default 25 ms).
func WithSampleInterval(d time.Duration) Option {
	return optionFunc(func(c *config) { c.interval = d })
}

// WithHold sets how long pressure must stay below the recover threshold
// before Reject gives way to Probe, and Probe to Normal or Throttle
// (default 1 s).
func WithHold(d time.Duration) Option {
	return optionFunc(func(c *config) { c.hold = d })
}

// WithThrottleRate sets the token bucket of the Throttle state: perSecond
// admissions at the throttle threshold, falling linearly to zero at the
// reject threshold, with the given burst (default 10000/s, burst 100).
func WithThrottleRate(perSecond float64, burst int) Option {
	return optionFunc(func(c *config) { c.throttleRate, c.throttleBurst = perSecond, burst })
}

// WithProbeRate sets the trickle admitted in Probe (default 100/s, burst 1).
func WithProbeRate(perSecond float64) Option {
	return optionFunc(func(c *config) { c.probeRate = perSecond })
}

// WithBytesPerTask sets the memory reserved for each admitted task that has
// not finished (see SetInFlightFunc); default 64 KiB. Set it to what one
// task allocates at its peak, or more.
//
// The reservation is for memory that admitted work has not allocated yet,
// which no measurement can see; so it is configured, not learned. An
// estimate learned from use growth per admitted task falls exactly during
// the bursts it must cover (tasks allocate after admission): in a storm of
// tasks that each held 72 KiB (64 KiB and a stack), such an estimate sank
// to 29 KiB.
func WithBytesPerTask(n int64) Option {
	return optionFunc(func(c *config) { c.bytesPerTask = n })
}

// WithMaxGoroutines sets a goroutine ceiling: at or above it nothing is
// admitted (Throttle with a zero rate). Zero, the default, disables it.
func WithMaxGoroutines(n int64) Option {
	return optionFunc(func(c *config) { c.maxGoroutines = n })
}

// WithGCCPUBound lifts the state to at least Throttle while the garbage
// collector's share of CPU over the window exceeds bound (default 0.5 over
// 1 s): the GC death spiral. The runtime updates GC CPU time only when a GC
// stops the world, so a window with no GC counts as a share of zero.
func WithGCCPUBound(bound float64, window time.Duration) Option {
	return optionFunc(func(c *config) { c.gcBound, c.gcWindow = bound, window })
}

// WithGCInReject sets how often the background sampler forces a garbage
// collection while the breaker refuses every task for memory: in Reject, and
// in Throttle or Probe while the in-flight reservation leaves no room below
// the reject threshold (default every 1 s; zero never). Without it, garbage
// can hold the breaker shut: a refusing process allocates little, so the
// collector may not run on its own.
func WithGCInReject(every time.Duration) Option {
	return optionFunc(func(c *config) { c.gcInReject = every })
}

// WithOnStateChange sets a function called once per transition, outside any
// lock and off the admission path (from the breaker's own goroutine), in the
// order the transitions happened.
func WithOnStateChange(f func(from, to State)) Option {
	return optionFunc(func(c *config) { c.onStateChange = f })
}

// WithHeapProfile writes a heap profile (pprof format) to a destination
// opened by open each time the breaker enters Reject, at most once per
// interval (default 1 min when every ≤ 0).
func WithHeapProfile(open func() (io.WriteCloser, error), every time.Duration) Option {
	return optionFunc(func(c *config) {
		c.profileOpen = open
		if every > 0 {
			c.profileEvery = every
		}
	})
}

// WithSource replaces the runtime/metrics reading of memory use, goroutines
// and GC CPU time, e.g. by a fake in tests or a cgroup-based reading.
func WithSource(s Source) Option {
	return optionFunc(func(c *config) { c.source = s })
}
