package jetstream

import (
	"fmt"
	"regexp"
	"time"
)

// Option configures Start.
type Option interface {
	apply(*config) error
}

type optionFunc func(*config) error

func (f optionFunc) apply(c *config) error { return f(c) }

// config holds every setting of a Consumer; defaults() is the one place that
// holds their default values.
type config struct {
	stream        string
	streamCreated int64 // the stream's creation time (UnixNano), as Start read it
	member        string
	partitions    int // 0: from the stream's transform
	subject       string
	subjectSet    bool
	bucketPrefix  string
	leaseTTL      time.Duration
	ackWait       time.Duration
	maxAckPending int
	fetchBatch    int
	fetchWait     time.Duration
	maxAttempts   int
	backoff       time.Duration
	maxBackoff    time.Duration
	maxDeliveries int
	dlqSubject    string // prefix; the room is appended as the last token
	dedup         Dedup
	drainTimeout  time.Duration
	refusalWait   time.Duration
	streamMissing time.Duration // WithStreamMissingLimit
}

func defaults() config {
	return config{
		subject:       "rooms",
		leaseTTL:      5 * time.Second,
		ackWait:       10 * time.Second,
		maxAckPending: 1024,
		fetchBatch:    256,
		fetchWait:     time.Second,
		maxAttempts:   3,
		backoff:       100 * time.Millisecond,
		maxBackoff:    5 * time.Second,
		maxDeliveries: 5,
		drainTimeout:  30 * time.Second,
		streamMissing: DefaultStreamMissingLimit,
		refusalWait:   200 * time.Millisecond,
	}
}

// name is what NATS accepts as a stream, bucket, consumer or key token.
var name = regexp.MustCompile(`^[A-Za-z0-9_=-]+$`)

// bucketRE is what NATS accepts as a key-value bucket name: no '='.
var bucketRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// subjectRE accepts a subject prefix of literal tokens.
var subjectRE = regexp.MustCompile(`^[A-Za-z0-9_=-]+(\.[A-Za-z0-9_=-]+)*$`)

// WithStream names the JetStream stream to consume (required). Its messages
// are partitioned: see CreateStream.
func WithStream(stream string) Option {
	return optionFunc(func(c *config) error {
		if !name.MatchString(stream) {
			return fmt.Errorf("%w: stream name %q", ErrNoStream, stream)
		}
		c.stream = stream
		return nil
	})
}

// WithMember names this node (required). Names are unique among the live
// nodes of a cluster: a second node started under a live node's name fails
// with ErrDuplicateMember. A node that restarts under its old name after a
// crash waits up to one lease TTL before it is admitted.
func WithMember(member string) Option {
	return optionFunc(func(c *config) error {
		if !name.MatchString(member) {
			return fmt.Errorf("%w: %q", ErrNoMember, member)
		}
		c.member = member
		return nil
	})
}

// WithPartitions states the number of partitions. A stream made by
// CreateStream records it in its subject transform, and Start reads it from
// there; WithPartitions then only checks it. A stream whose publishers write
// to partition subjects themselves (see PartitionSubject) has no transform,
// and needs WithPartitions.
func WithPartitions(n int) Option {
	return optionFunc(func(c *config) error {
		if n <= 0 || n > maxPartitions {
			return fmt.Errorf("%w: %d, want 1..%d", ErrBadPartitions, n, maxPartitions)
		}
		c.partitions = n
		return nil
	})
}

// WithSubject sets the subject prefix of publisher-side partitioning
// (default "rooms": messages on "rooms.<partition>.<room>"). For a stream
// made by CreateStream it is read from the stream and WithSubject is not
// needed. For a stream without a transform, Start refuses (ErrBadOption) a
// prefix under which the stream's subjects do not store every partition.
func WithSubject(prefix string) Option {
	return optionFunc(func(c *config) error {
		if !subjectRE.MatchString(prefix) {
			return fmt.Errorf("%w: subject prefix %q", ErrBadOption, prefix)
		}
		c.subject = prefix
		c.subjectSet = true
		return nil
	})
}

// WithBucketPrefix sets the prefix of the key-value buckets that hold
// membership and partition leases (default: the stream's name; buckets
// "<prefix>_shoal_members" and "<prefix>_shoal_leases"). A bucket name has
// letters, digits, '-' and '_' only: a stream whose name has '=' needs it.
func WithBucketPrefix(prefix string) Option {
	return optionFunc(func(c *config) error {
		if !bucketRE.MatchString(prefix) {
			return fmt.Errorf("%w: bucket prefix %q (letters, digits, '-' and '_' only)", ErrBadOption, prefix)
		}
		c.bucketPrefix = prefix
		return nil
	})
}

// maxWait bounds the lease TTL and the ack wait: the consumer adds to them
// and multiplies them (the membership bucket keeps keys 100 TTLs), and a
// longer lease would leave a dead node's partitions unserved for days.
const maxWait = 24 * time.Hour

// WithLeaseTTL sets how long a membership or a partition lease lasts without
// renewal (default 5 s). Leases are renewed every quarter of it. A node that
// dies loses its partitions after about one TTL (plus the ack wait when it
// left messages unacknowledged); every node of a cluster must use the same
// value. It must lie between 100 ms and 24 h.
func WithLeaseTTL(d time.Duration) Option {
	return optionFunc(func(c *config) error {
		if d < 100*time.Millisecond || d > maxWait {
			return fmt.Errorf("%w: lease TTL %v, want 100ms to 24h", ErrBadOption, d)
		}
		c.leaseTTL = d
		return nil
	})
}

// WithAckWait sets the partition consumers' AckWait (default 10 s): how long
// the server waits for an acknowledgement before redelivering. Messages held
// by a node, queued or running, are kept alive with InProgress every third
// of it, so it bounds only how long a dead node's messages stay hidden. It
// must lie between 100 ms and 24 h.
func WithAckWait(d time.Duration) Option {
	return optionFunc(func(c *config) error {
		if d < 100*time.Millisecond || d > maxWait {
			return fmt.Errorf("%w: ack wait %v, want 100ms to 24h", ErrBadOption, d)
		}
		c.ackWait = d
		return nil
	})
}

// WithMaxAckPending bounds the messages of one partition that a node holds
// unacknowledged (default 1024); it is the partition consumer's
// MaxAckPending.
func WithMaxAckPending(n int) Option {
	return optionFunc(func(c *config) error {
		if n <= 0 {
			return fmt.Errorf("%w: max ack pending %d, want > 0", ErrBadOption, n)
		}
		c.maxAckPending = n
		return nil
	})
}

// WithFetch sets the largest batch of one pull request (default 256, at most
// 65536) and how long a pull request waits for messages (default 1 s). A pull request never
// outlives the node's lease on its partition. A partition being handed over
// finishes its current pull request first, so maxWait also bounds a graceful
// hand-off.
func WithFetch(batch int, maxWait time.Duration) Option {
	return optionFunc(func(c *config) error {
		if batch <= 0 || batch > maxFetchBatch || maxWait < 10*time.Millisecond {
			return fmt.Errorf("%w: fetch batch %d, wait %v; want 1..%d and >= 10ms", ErrBadOption, batch, maxWait, maxFetchBatch)
		}
		c.fetchBatch = batch
		c.fetchWait = maxWait
		return nil
	})
}

// WithRetry sets how often a failing handler is called for one delivery
// (attempts in all, default 3) and the wait before the second attempt
// (default 100 ms), doubled before each later one up to 5 s (a first wait
// above 5 s is kept for the later ones). Retries happen
// in place: the room's later messages wait, so order holds. An error wrapped
// with pool.Permanent, or a panic, is not retried.
func WithRetry(attempts int, backoff time.Duration) Option {
	return optionFunc(func(c *config) error {
		if attempts <= 0 || backoff < 0 {
			return fmt.Errorf("%w: retry %d attempts, backoff %v", ErrBadOption, attempts, backoff)
		}
		c.maxAttempts = attempts
		c.backoff = backoff
		return nil
	})
}

// WithMaxDeliveries sets how many times a message may be delivered (default
// 5) before it goes to the dead letters without running again. Redeliveries
// come from nodes that died or lost their lease while holding the message; a
// message that keeps killing its node ends here.
func WithMaxDeliveries(n int) Option {
	return optionFunc(func(c *config) error {
		if n <= 0 {
			return fmt.Errorf("%w: max deliveries %d, want > 0", ErrBadOption, n)
		}
		c.maxDeliveries = n
		return nil
	})
}

// WithDeadLetterSubject sets the subject prefix of dead letters (default
// "shoal.dlq.<stream>"); a dead letter of room R is published to
// "<prefix>.R". A stream must capture it: publishing is retried, holding the
// room back, until one does.
func WithDeadLetterSubject(prefix string) Option {
	return optionFunc(func(c *config) error {
		if !subjectRE.MatchString(prefix) {
			return fmt.Errorf("%w: dead-letter subject %q", ErrBadOption, prefix)
		}
		c.dlqSubject = prefix
		return nil
	})
}

// WithDedup drops messages that d says were already applied to their room
// (stream sequence at or below the room's last recorded one), and records
// each message handled successfully. See Dedup.
func WithDedup(d Dedup) Option {
	return optionFunc(func(c *config) error {
		if d == nil {
			return fmt.Errorf("%w: nil Dedup", ErrBadOption)
		}
		c.dedup = d
		return nil
	})
}

// WithDrainTimeout bounds how long a partition being handed over waits for
// its queued and running messages (default 30 s). After it, their contexts
// are cancelled, they are released unacknowledged, and the next owner waits
// one ack wait before it starts.
func WithDrainTimeout(d time.Duration) Option {
	return positive("drain timeout", d, func(c *config) { c.drainTimeout = d })
}

// WithStreamMissingLimit is how long a holder or a claimant that finds no
// stream keeps looking for it before it stops the consumer with
// ErrStreamDeleted (default DefaultStreamMissingLimit, a minute). A
// restore from a backup deletes the stream first, and one that takes
// longer than the limit stops the consumers; a longer limit lets it
// finish, and a stream deleted for good is noticed that much later, its
// partitions stalled meanwhile.
func WithStreamMissingLimit(d time.Duration) Option {
	return positive("stream missing limit", d, func(c *config) { c.streamMissing = d })
}

// positive is an option that refuses a duration d <= 0 and otherwise
// sets it; what names it in the error.
func positive(what string, d time.Duration, set func(*config)) Option {
	return optionFunc(func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("%w: %s %v, want > 0", ErrBadOption, what, d)
		}
		set(c)
		return nil
	})
}

// maxFetchBatch bounds a pull request's batch: the client makes a buffer of
// that many messages for each pull request.
const maxFetchBatch = 1 << 16

// maxPartitions bounds the partition count: each partition is a consumer and
// a lease renewed every quarter TTL.
const maxPartitions = 4096
