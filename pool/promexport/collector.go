package promexport

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/shoal-go/shoal/backpressure"
	"github.com/shoal-go/shoal/pool"
)

// Source is what a Collector reads: any *pool.Pool[K] is one.
type Source interface {
	Snapshot() pool.Stats
}

// BreakerSource gives the breaker's figures: a *backpressure.Breaker is one.
type BreakerSource interface {
	Stats() backpressure.Stats
}

var (
	// ErrNilSource is returned by New without a Source.
	ErrNilSource = errors.New("promexport: nil source")
	// ErrInvalidOption is matched by errors from invalid options.
	ErrInvalidOption = errors.New("promexport: invalid option")
)

// Option configures a Collector.
type Option interface{ apply(*config) error }

type optionFunc func(*config) error

func (f optionFunc) apply(c *config) error { return f(c) }

type config struct {
	timings     *pool.Timings
	breaker     BreakerSource
	constLabels prometheus.Labels
}

// WithTimings exports t as the task_wait_seconds and task_run_seconds
// histograms instead of the timings in the pool's Snapshot. A pool's
// Snapshot already carries its timings (those of pool.WithTimings when the
// pool has it), so this is for a Source that does not, or for a Timings
// shared by several pools.
func WithTimings(t *pool.Timings) Option {
	return optionFunc(func(c *config) error {
		if t == nil {
			return fmt.Errorf("%w: WithTimings(nil)", ErrInvalidOption)
		}
		c.timings = t
		return nil
	})
}

// WithBreaker exports the memory-pressure figures and state of b instead of
// Stats.Breaker. A pool's Snapshot already carries its breaker's figures
// (pool.WithBreaker's or pool.WithMemoryBudget's), so this is for a Source
// that does not.
func WithBreaker(b BreakerSource) Option {
	return optionFunc(func(c *config) error {
		if isNil(b) {
			return fmt.Errorf("%w: WithBreaker(nil)", ErrInvalidOption)
		}
		c.breaker = b
		return nil
	})
}

// WithConstLabels adds labels to every metric (given more than once, those
// of each; a later value for the same name wins), e.g. {"pool": "fanout"} to
// tell several pools apart in one registry. Names must match
// [a-zA-Z_][a-zA-Z0-9_]*, must not start with "__", and must not be one of
// the collector's own labels (outcome, reason, state).
func WithConstLabels(l prometheus.Labels) Option {
	return optionFunc(func(c *config) error {
		if c.constLabels == nil {
			c.constLabels = prometheus.Labels{}
		}
		for k, v := range l {
			if !validLabelName(k) {
				return fmt.Errorf("%w: WithConstLabels: bad label name %q", ErrInvalidOption, k)
			}
			c.constLabels[k] = v
		}
		return nil
	})
}

// isNil reports whether v is nil or holds a nil pointer, whose Snapshot
// or Stats would panic at every scrape.
func isNil(v any) bool {
	if v == nil {
		return true
	}
	r := reflect.ValueOf(v)
	return r.Kind() == reflect.Pointer && r.IsNil()
}

func validLabelName(k string) bool {
	switch k {
	case "", "outcome", "reason", "state",
		"le", "quantile": // the buckets of the histograms; a summary's, reserved
		return false
	}
	if strings.HasPrefix(k, "__") {
		return false
	}
	for i, r := range k {
		ok := r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (i > 0 && r >= '0' && r <= '9')
		if !ok {
			return false
		}
	}
	return true
}

// Collector is a prometheus.Collector over a pool's statistics. It keeps no
// state between scrapes: every value comes from the pool's own counters, so
// two registries may share one pool.
type Collector struct {
	src     Source
	timings *pool.Timings
	breaker BreakerSource
	d       descs
}

var _ prometheus.Collector = (*Collector)(nil)

type descs struct {
	submitted, tasks, dead, rejected, failedAttempts, retries, panics, stalls, untaken *prometheus.Desc
	queue, queueMax, waiting, workers, target, minW, maxW                              *prometheus.Desc
	wait, run                                                                          *prometheus.Desc
	pressure, used, budget, state, transitions                                         *prometheus.Desc
	arrivals, completions, topGroup                                                    *prometheus.Desc
	batchSize                                                                          *prometheus.Desc
}

// New returns a Collector over src. It returns ErrNilSource without a
// source (a nil interface, or a nil *pool.Pool or *pool.Batcher in one),
// and an error matching ErrInvalidOption for a bad option; an invalid label
// name is reported by prometheus.Register.
func New(src Source, opts ...Option) (*Collector, error) {
	if isNil(src) {
		return nil, ErrNilSource
	}
	var cfg config
	for _, o := range opts {
		if o == nil {
			return nil, fmt.Errorf("%w: nil Option", ErrInvalidOption)
		}
		if err := o.apply(&cfg); err != nil {
			return nil, err
		}
	}
	l := cfg.constLabels
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("shoal_"+name, help, labels, l)
	}
	c := &Collector{src: src, timings: cfg.timings, breaker: cfg.breaker}
	c.d = descs{
		submitted:      d("tasks_submitted_total", "Tasks accepted by Submit, TrySubmit or Go."),
		tasks:          d("tasks_total", "Tasks finished, by outcome: completed, or dead_letter.", "outcome"),
		dead:           d("dead_letters_total", "Tasks that became dead letters, by reason.", "reason"),
		rejected:       d("rejections_total", "Submissions refused, by reason.", "reason"),
		failedAttempts: d("task_attempts_failed_total", "Task attempts that returned an error, retried or not."),
		retries:        d("task_retries_total", "Attempts after a failed one (retries that ran)."),
		panics:         d("task_panics_total", "Tasks that panicked."),
		stalls:         d("dead_letter_stalls_total", "Times a worker waited for room in the dead-letter channel."),
		untaken:        d("dead_letters_untaken_total", "Dead letters nobody took (channel full past the wait, or the handler panicked); each was logged."),
		queue:          d("queue_depth", "Tasks accepted and not yet finished: waiting, parked for a retry, or running."),
		queueMax:       d("queue_depth_max_shard", "Tasks accepted and not yet finished in the deepest shard."),
		waiting:        d("shards_waiting", "Shards ready and waiting for a worker."),
		workers:        d("workers", "Worker goroutines by state: busy, idle, spinning.", "state"),
		target:         d("workers_target", "Workers the scaler keeps warm."),
		minW:           d("workers_min", "Lower bound of the worker count."),
		maxW:           d("workers_max", "Upper bound of the worker count."),
		wait:           d("task_wait_seconds", "Time from acceptance to the start of each attempt (counts scaled up from a sample unless every task is timed)."),
		run:            d("task_run_seconds", "Run time of each attempt (counts scaled up from a sample unless every task is timed)."),
		pressure:       d("memory_pressure_ratio", "Memory used over the breaker's budget."),
		used:           d("memory_used_bytes", "Memory the breaker counts as used, reservations included."),
		budget:         d("memory_budget_bytes", "The breaker's memory budget."),
		state:          d("breaker_state", "1 for the breaker's current state, 0 for the others.", "state"),
		transitions:    d("breaker_transitions_total", "Transitions of the breaker into each state.", "state"),
		arrivals:       d("task_arrivals_per_second", "Tasks accepted per second, moving average over 10 s."),
		completions:    d("task_completions_per_second", "Tasks finished (completed or dead-lettered) per second, moving average over 10 s."),
		topGroup:       d("top_group_queued", "Estimated tasks waiting in the group that has the most (pool.WithTopGroups)."),
		batchSize:      d("batch_size_messages", "Messages per call of a pool.Batcher's function, retries included."),
	}
	return c, nil
}

// Describe sends the descriptors of every metric the Collector may emit.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.d.submitted, c.d.tasks, c.d.dead, c.d.rejected, c.d.failedAttempts, c.d.retries,
		c.d.panics, c.d.stalls, c.d.untaken, c.d.queue, c.d.queueMax, c.d.waiting, c.d.workers,
		c.d.target, c.d.minW, c.d.maxW, c.d.wait, c.d.run, c.d.arrivals, c.d.completions,
		c.d.topGroup, c.d.pressure, c.d.used, c.d.budget, c.d.state, c.d.transitions,
		c.d.batchSize,
	} {
		ch <- d
	}
}

// Collect takes one snapshot of the pool (and of the Timings and breaker
// given as options, if any) and sends its metrics. The breaker's metrics
// are sent only when there is a breaker, top_group_queued only when the
// pool tracks top groups and one has tasks waiting, batch_size_messages
// only when the source is a Batcher that has made calls.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s := c.src.Snapshot()
	send := func(d *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string) {
		m, err := prometheus.NewConstMetric(d, t, v, labels...)
		if err != nil {
			m = prometheus.NewInvalidMetric(d, err) // the registry reports it; never a panic
		}
		ch <- m
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		send(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		send(d, prometheus.GaugeValue, v, labels...)
	}
	counter(c.d.submitted, s.Submitted)
	counter(c.d.tasks, s.Completed, "completed")
	counter(c.d.tasks, s.DeadLetters.Total(), "dead_letter")
	for _, r := range []struct {
		name string
		v    uint64
	}{
		{"failed", s.DeadLetters.Failed}, {"panicked", s.DeadLetters.Panicked},
		{"canceled", s.DeadLetters.Canceled}, {"expired", s.DeadLetters.Expired},
		{"shutdown", s.DeadLetters.Shutdown},
	} {
		counter(c.d.dead, r.v, r.name)
	}
	for _, r := range []struct {
		name string
		v    uint64
	}{
		{"queue_full", s.Rejected.QueueFull}, {"closed", s.Rejected.Closed},
		{"memory_pressure", s.Rejected.MemoryPressure}, {"throttled", s.Rejected.Throttled},
	} {
		counter(c.d.rejected, r.v, r.name)
	}
	counter(c.d.failedAttempts, s.FailedAttempts)
	counter(c.d.retries, s.Retried)
	counter(c.d.panics, s.Panicked)
	counter(c.d.stalls, s.DeadLetterStalls)
	counter(c.d.untaken, s.DeadLettersUntaken)

	deepest := 0
	for _, q := range s.ShardQueued {
		deepest = max(deepest, q)
	}
	gauge(c.d.queue, float64(s.Queued))
	gauge(c.d.queueMax, float64(deepest))
	gauge(c.d.waiting, float64(s.WaitingShards))
	gauge(c.d.workers, float64(s.Workers.Busy), "busy")
	gauge(c.d.workers, float64(s.Workers.Idle), "idle")
	gauge(c.d.workers, float64(s.Workers.Spinning), "spinning")
	gauge(c.d.target, float64(s.Workers.Target))
	gauge(c.d.minW, float64(s.Workers.Min))
	gauge(c.d.maxW, float64(s.Workers.Max))

	gauge(c.d.arrivals, s.ArrivalRate)
	gauge(c.d.completions, s.CompletionRate)
	if len(s.TopGroups) > 0 {
		gauge(c.d.topGroup, float64(s.TopGroups[0].Queued))
	}

	t, scale := s.Timings, uint64(max(s.TimingSampleEvery, 1))
	if c.timings != nil {
		t, scale = c.timings.Snapshot(), 1
	}
	ch <- constHistogram(c.d.wait, t.Wait, scale)
	ch <- constHistogram(c.d.run, t.Run, scale)
	if s.Batches.Calls > 0 {
		ch <- batchHistogram(c.d.batchSize, s.Batches)
	}

	b := s.Breaker
	if c.breaker != nil {
		bs := c.breaker.Stats()
		b = &bs
	}
	if b != nil {
		gauge(c.d.pressure, b.Pressure)
		gauge(c.d.used, float64(b.Used))
		gauge(c.d.budget, float64(b.Budget))
		for st := backpressure.Normal; st <= backpressure.Probe; st++ {
			v := 0.0
			if b.State == st {
				v = 1
			}
			name := stateName(st)
			gauge(c.d.state, v, name)
			if int(st) < len(b.Entered) {
				counter(c.d.transitions, b.Entered[st], name)
			}
		}
	}
}

func stateName(s backpressure.State) string {
	switch s {
	case backpressure.Normal:
		return "normal"
	case backpressure.Throttle:
		return "throttle"
	case backpressure.Reject:
		return "reject"
	case backpressure.Probe:
		return "probe"
	}
	return s.String()
}

// constHistogram converts h to Prometheus buckets at the powers of two from
// 1.024 µs to 68.7 s: every such bound is a bucket edge of h, so the
// cumulative counts are exact (up to durations equal to a bound, which h
// counts above it and Prometheus at it). Counts and sum are multiplied by
// scale, the tasks each recorded one stands for, so that rates over the
// histogram's count estimate attempts; quantiles do not change.
func constHistogram(d *prometheus.Desc, h pool.Histogram, scale uint64) prometheus.Metric {
	buckets := make(map[float64]uint64, 27)
	var cum uint64
	for upper, n := range h.Buckets() {
		cum += n
		if upper == math.MaxInt64 {
			break
		}
		if isPow2(uint64(upper)) {
			buckets[upper.Seconds()] = cum * scale
		}
	}
	m, err := prometheus.NewConstHistogram(d, h.Count()*scale, h.Sum().Seconds()*float64(scale), buckets)
	if err != nil {
		return prometheus.NewInvalidMetric(d, err)
	}
	return m
}

// batchHistogram turns a Batcher's call sizes into a histogram whose
// buckets are the powers of two of BatchStats.Sizes (the last one open).
func batchHistogram(d *prometheus.Desc, b pool.BatchStats) prometheus.Metric {
	buckets := make(map[float64]uint64, len(b.Sizes))
	var cum uint64
	for i, n := range b.Sizes[:len(b.Sizes)-1] {
		cum += n
		buckets[float64(uint64(1)<<i)] = cum
	}
	// The count is the buckets' total, not Calls: a Snapshot taken while
	// a worker publishes its counts may read Calls before the call's size,
	// and a bucket above the count is an invalid histogram.
	count := cum + b.Sizes[len(b.Sizes)-1]
	m, err := prometheus.NewConstHistogram(d, count, float64(b.Messages), buckets)
	if err != nil {
		return prometheus.NewInvalidMetric(d, err)
	}
	return m
}

func isPow2(x uint64) bool { return x != 0 && x&(x-1) == 0 }
