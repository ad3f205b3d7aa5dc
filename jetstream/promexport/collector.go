package promexport

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shoal-go/shoal/jetstream"
)

// Source is what a Collector reads: a *jetstream.Consumer is one.
type Source interface {
	Stats() jetstream.Stats
}

var _ Source = (*jetstream.Consumer)(nil)

var (
	// ErrNilSource is returned by New without a Source (nil, or a nil
	// *jetstream.Consumer).
	ErrNilSource = errors.New("shoal/jetstream/promexport: nil source")
	// ErrInvalidOption is matched by errors from invalid options.
	ErrInvalidOption = errors.New("shoal/jetstream/promexport: invalid option")
)

// Option configures a Collector.
type Option interface{ apply(*config) error }

type optionFunc func(*config) error

func (f optionFunc) apply(c *config) error { return f(c) }

type config struct {
	constLabels prometheus.Labels
}

// WithConstLabels adds labels to every metric (given more than once, those
// of each; a later value for the same name wins), e.g. {"stream": "CHAT"} to
// tell the consumers of several streams apart in one registry. Names must
// match [a-zA-Z_][a-zA-Z0-9_]*, must not start with "__", and must not be
// one of the collector's own labels (partition, event).
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

func validLabelName(k string) bool {
	switch k {
	case "", "partition", "event":
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

// Collector is a prometheus.Collector over a Consumer's statistics. It keeps
// no state between scrapes: every value comes from the Consumer's own
// counters, so two registries may share one Consumer.
type Collector struct {
	src Source
	d   descs
}

var _ prometheus.Collector = (*Collector)(nil)

type descs struct {
	members, owned, lag, held                                        *prometheus.Desc
	handoffs, messages, retries, dead, refusals, ackErrors, resyncs  *prometheus.Desc
	dedupErrors, letterErrors, leaseErrors, recreated, requestErrors *prometheus.Desc
}

// New returns a Collector over src. It returns ErrNilSource without a
// source, and an error matching ErrInvalidOption for a bad option.
func New(src Source, opts ...Option) (*Collector, error) {
	if c, ok := src.(*jetstream.Consumer); src == nil || ok && c == nil {
		return nil, ErrNilSource // a nil *Consumer would panic at every scrape
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
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("shoal_jetstream_"+name, help, labels, cfg.constLabels)
	}
	return &Collector{src: src, d: descs{
		members:       d("members", "Live members of the cluster as this node sees them, itself included."),
		owned:         d("partitions_owned", "Partitions whose lease this node holds."),
		lag:           d("partition_lag", "Messages of a held partition not yet delivered, as of the last message received.", "partition"),
		held:          d("partition_held", "Messages of a held partition that this node holds unacknowledged: waiting for the pool, queued or running.", "partition"),
		handoffs:      d("handoffs_total", "Partition hand-offs seen from this node: leases acquired, released gracefully, or lost (taken, run out, or dropped at a kill).", "event"),
		messages:      d("messages_total", "Messages by event: delivered (received), redelivered (received again), handled (handler succeeded), acked, duplicate (dropped by the Dedup).", "event"),
		retries:       d("handler_retries_total", "Handler calls after a failed one."),
		dead:          d("dead_letters_total", "Messages published to the dead-letter subject and terminated."),
		refusals:      d("pool_refusals_total", "Refusals of the local pool that held pulling back."),
		ackErrors:     d("ack_errors_total", "Acknowledgements or terminations that could not be sent; those messages are redelivered."),
		resyncs:       d("resyncs_total", "Recoveries after a delivery went elsewhere (a gap in a partition consumer's delivery sequence), each a pause of one ack wait."),
		dedupErrors:   d("dedup_errors_total", "Dedup calls that failed: a LastApplied asked again while its room waits, or a Record whose message is left unacknowledged."),
		letterErrors:  d("dead_letter_errors_total", "Publications of dead letters that failed (no stream stores the subject, or none answered in time); each is tried again while its room waits."),
		leaseErrors:   d("lease_errors_total", "Writes of this node's member key and leases (renewals, claims) that failed other than by another node's write: timed out, unreachable, the bucket full or gone."),
		recreated:     d("consumers_recreated_total", "Partition consumers that the server no longer had (deleted by an operator) and that this node created anew after the partition's acknowledged floor."),
		requestErrors: d("request_errors_total", "Requests about a held partition's consumer or stream that failed and are tried again: pull requests, and lookups, creations and state reads that timed out or found no server to answer."),
	}}, nil
}

// Describe sends the descriptors of every metric the Collector may emit.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.d.members, c.d.owned, c.d.lag, c.d.held, c.d.handoffs, c.d.messages,
		c.d.retries, c.d.dead, c.d.refusals, c.d.ackErrors, c.d.resyncs,
		c.d.dedupErrors, c.d.letterErrors, c.d.leaseErrors, c.d.recreated, c.d.requestErrors,
	} {
		ch <- d
	}
}

// Collect takes one Stats snapshot and sends its metrics; the per-partition
// series are sent for the partitions held at the snapshot.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s := c.src.Stats()
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
	gauge(c.d.members, float64(len(s.Members)))
	gauge(c.d.owned, float64(len(s.Partitions)))
	for _, p := range s.Partitions {
		label := strconv.Itoa(p.Partition)
		gauge(c.d.lag, float64(p.Lag), label)
		gauge(c.d.held, float64(p.Held), label)
	}
	counter(c.d.handoffs, s.Acquired, "acquired")
	counter(c.d.handoffs, s.Released, "released")
	counter(c.d.handoffs, s.Lost, "lost")
	counter(c.d.messages, s.Delivered, "delivered")
	counter(c.d.messages, s.Redelivered, "redelivered")
	counter(c.d.messages, s.Handled, "handled")
	counter(c.d.messages, s.Acked, "acked")
	counter(c.d.messages, s.Duplicates, "duplicate")
	counter(c.d.retries, s.Retries)
	counter(c.d.dead, s.DeadLetters)
	counter(c.d.refusals, s.Refusals)
	counter(c.d.ackErrors, s.AckErrors)
	counter(c.d.resyncs, s.Resyncs)
	counter(c.d.dedupErrors, s.DedupErrors)
	counter(c.d.letterErrors, s.LetterErrors)
	counter(c.d.leaseErrors, s.LeaseErrors)
	counter(c.d.recreated, s.Recreated)
	counter(c.d.requestErrors, s.RequestErrors)
}
