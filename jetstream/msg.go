package jetstream

import (
	"context"
	"time"

	"github.com/nats-io/nats.go"
)

// Handler handles one message. It runs in the local pool, after the earlier
// messages of the same room and never at the same time as another message
// of that room on this node. A nil error acknowledges the message; an error
// is retried in place (WithRetry) unless it is wrapped with pool.Permanent;
// after the last attempt, or on a panic, the message goes to the dead
// letters.
//
// ctx is cancelled when this node loses the message's partition (its lease
// expired or was taken, or the consumer was killed): the handler should then
// stop, since the message will be redelivered to the partition's next owner.
// Delivery is at least once: a message may be handled again if its node
// died or lost its lease before acknowledging it. Msg.Seq and Msg.Epoch let a
// handler detect both (see Dedup).
type Handler func(ctx context.Context, m *Msg) error

// Msg is a message as a Handler sees it. It must not be retained after the
// handler returns.
type Msg struct {
	// Room is the message's room: the last token of its subject.
	Room string
	// Subject is the subject the message is stored on,
	// "<prefix>.<partition>.<room>".
	Subject string
	// Data is the payload.
	Data []byte
	// Header holds the message's headers, nil if it has none.
	Header nats.Header
	// Seq is the message's stream sequence: within a room, later messages
	// have larger sequences.
	Seq uint64
	// Deliveries counts the deliveries of this message, this one included; a
	// value above 1 means an earlier delivery was not acknowledged.
	Deliveries uint64
	// Partition is the message's partition.
	Partition int
	// Epoch is the revision of this node's lease on the partition, a fencing
	// token: it grows with every change of owner, so a store that keeps the
	// highest epoch it has seen per partition can refuse writes from a node
	// that lost its lease but has not noticed yet.
	Epoch uint64
	// Published is when the stream stored the message.
	Published time.Time
}
