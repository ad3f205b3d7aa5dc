package jetstream

import (
	"slices"
)

// Stats is a snapshot of a Consumer's state and counters. Counters count
// since Start and only grow.
type Stats struct {
	// Member is this node's name.
	Member string
	// Members are the live members as this node sees them, sorted. This
	// node is among them from Start on; until it has read the members
	// bucket (its first rebalance), it is the only one.
	Members []string
	// Partitions are the partitions this node holds, by partition number.
	Partitions []PartitionStats

	// Acquired counts leases claimed, Released leases handed over
	// gracefully (messages drained or returned, then the lease freed, or
	// left to run out when the write freeing it timed out), Lost leases
	// fenced (taken by another node, run out unrenewed, or dropped when
	// the consumer stopped without Stop).
	// Acquired + Released + Lost are the hand-offs seen from this node.
	Acquired, Released, Lost uint64

	// Delivered counts messages received, Redelivered those among them that
	// had been delivered before, Handled those whose handler succeeded,
	// Acked those acknowledged, Duplicates those acknowledged without
	// running as applied already: by the Dedup, or, after a deleted
	// consumer was created anew, as acknowledged to the old one.
	Delivered, Redelivered, Handled, Acked, Duplicates uint64
	// Retries counts handler calls after a failed one, DeadLetters messages
	// published to the dead-letter subject and terminated, Refusals the
	// pool's refusals that held pulling back, AckErrors failed
	// acknowledgements or terminations.
	Retries, DeadLetters, Refusals, AckErrors uint64
	// Resyncs counts lost deliveries detected (a gap in a partition
	// consumer's delivery sequence), each followed by a pause of one ack
	// wait so that the server redelivers in stream order.
	Resyncs uint64
	// DedupErrors counts Dedup calls that failed: a LastApplied that failed
	// is asked again, with backoff, while the room waits (the message must
	// not run before the Dedup has said it is new); a Record that failed
	// after a handler's success leaves the message unacknowledged, to be
	// redelivered (one after a dead letter changes nothing: the message is
	// terminated).
	DedupErrors uint64
	// LetterErrors counts publications of dead letters that failed: no
	// stream stores the dead-letter subject, or none answered in time.
	// Each is tried again, with backoff, while its room waits (a failed
	// message is never dropped): a count that grows is a room held back
	// until a stream takes its letters.
	LetterErrors uint64
	// LeaseErrors counts writes of this node's member key and of leases
	// (renewals and claims) that failed for another reason than another
	// node's write: timed out, the server unreachable, the bucket full
	// or gone. Each is tried again at the next renewal or claim; a count
	// that keeps growing is a node that cannot hold its partitions.
	LeaseErrors uint64
	// Recreated counts partition consumers that the server no longer had
	// (an operator deleted one) and that the node created anew, starting
	// after the partition's acknowledged floor (see docs/CLUSTER.md).
	Recreated uint64
	// RequestErrors counts requests about a held partition's consumer or
	// its stream that failed and are tried again: pull requests that
	// failed, and lookups, creations and state reads of the consumer or
	// the stream that failed for another reason than the server saying it
	// is gone (timed out, no server to answer); not those cut short
	// because the partition was fenced or the consumer stopped. The
	// partition's rooms wait meanwhile and nothing is lost; a count that
	// keeps growing is a node that cannot reach JetStream.
	RequestErrors uint64
}

// PartitionStats describes one held partition.
type PartitionStats struct {
	// Partition is the partition's number.
	Partition int
	// Epoch is the revision of this node's lease (Msg.Epoch).
	Epoch uint64
	// Held counts the partition's messages that this node holds
	// unacknowledged: queued in the pool, running, or waiting for the pool.
	Held int
	// Lag is the partition's messages not yet delivered, as of the last
	// message received (the stream's NumPending for the consumer).
	Lag uint64
	// Releasing is true while the partition is being handed over.
	Releasing bool
}

// Stats returns a snapshot of the consumer's state and counters. It costs a
// lock and an allocation per held partition; it does no network call.
func (c *Consumer) Stats() Stats {
	s := Stats{
		Member:        c.cfg.member,
		Acquired:      c.st.acquired.Load(),
		Released:      c.st.released.Load(),
		Lost:          c.st.lost.Load(),
		Delivered:     c.st.delivered.Load(),
		Redelivered:   c.st.redelivered.Load(),
		Handled:       c.st.handled.Load(),
		Acked:         c.st.acked.Load(),
		Duplicates:    c.st.duplicates.Load(),
		Retries:       c.st.retries.Load(),
		DeadLetters:   c.st.deadLetters.Load(),
		Refusals:      c.st.refusals.Load(),
		AckErrors:     c.st.ackErrors.Load(),
		Resyncs:       c.st.resyncs.Load(),
		DedupErrors:   c.st.dedupErrors.Load(),
		LetterErrors:  c.st.letterErrors.Load(),
		LeaseErrors:   c.st.leaseErrors.Load(),
		Recreated:     c.st.recreated.Load(),
		RequestErrors: c.st.requestErrors.Load(),
	}
	c.mu.Lock()
	s.Members = slices.Clone(c.live)
	held := make([]*partition, 0, len(c.parts))
	for _, pt := range c.parts {
		held = append(held, pt)
	}
	c.mu.Unlock()
	for _, pt := range held {
		pt.mu.Lock()
		n := len(pt.pending)
		pt.mu.Unlock()
		s.Partitions = append(s.Partitions, PartitionStats{
			Partition: pt.p,
			Epoch:     pt.epoch,
			Held:      n,
			Lag:       pt.lag.Load(),
			Releasing: pt.releasing(),
		})
	}
	slices.SortFunc(s.Partitions, func(a, b PartitionStats) int { return a.Partition - b.Partition })
	return s
}
