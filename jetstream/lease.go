package jetstream

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
)

// A lease is a key of the leases bucket, "partition.<p>", whose value says
// who holds the partition. Holding is renewed by compare-and-swap on the
// key's revision every quarter TTL; a claim is a compare-and-swap on the
// revision the claimant last saw. So at most one claim of a given revision
// succeeds, and a holder whose renewal fails on the revision has lost the
// partition to someone else.
//
// Expiry is judged by each node on its own clock, never by comparing clocks:
// a node considers a lease expired when its revision has not changed for one
// TTL since the node saw that revision. The holder, for its part, stops
// fetching, renewing progress and starting handlers once TTL - TTL/10 has
// passed since it *sent* its last successful renewal; that instant precedes
// any observer's sighting of the renewal, so the holder stops before any
// other node can judge the lease expired (clock rates are assumed equal to
// within the tenth).

// leaseState is the holder's word on a lease.
type leaseState string

const (
	leaseHeld leaseState = "held"
	leaseFree leaseState = "free"
)

// leaseValue is the JSON value of a lease key.
type leaseValue struct {
	Owner    string     `json:"owner,omitempty"`
	Instance string     `json:"instance,omitempty"`
	State    leaseState `json:"state"`
	// Dirty: the holder released the partition with messages that it
	// received but did not acknowledge (they are redelivered to the next
	// owner, which recovers them in stream order as after a crash). It is
	// for operators: every new owner checks the consumer's state itself.
	Dirty bool `json:"dirty,omitempty"`
	// Floor is a stream sequence at or below which every message of the
	// partition was acknowledged or terminated, as its holder last knew
	// it: a claimant that finds the partition's consumer gone (deleted
	// while nobody held the partition) creates it to deliver after Floor
	// instead of from the stream's start.
	Floor uint64 `json:"floor,omitempty"`
	// StreamCreated is the creation time (UnixNano) of the stream whose
	// sequences Floor counts. A stream deleted and created anew under
	// the same name numbers its messages from 1 again, while the leases
	// bucket keeps the old Floor: a claimant ignores the Floor of another
	// stream than the one it consumes (or one written without this field).
	StreamCreated int64 `json:"stream_created,omitempty"`
}

func (v leaseValue) encode() []byte {
	b, _ := json.Marshal(v) // a struct of strings and a bool always encodes
	return b
}

// leaseSeen is a node's view of one lease key.
type leaseSeen struct {
	rev     uint64
	at      time.Duration // c.now() when rev was first seen
	deleted bool          // the key holds a delete marker
	val     leaseValue
}

// memberSeen is a node's view of one member key.
type memberSeen struct {
	rev      uint64
	at       time.Duration
	deleted  bool
	instance string
}

// memberValue is the JSON value of a member key.
type memberValue struct {
	Instance string `json:"instance"`
}

func leaseKey(p int) string { return "partition." + strconv.Itoa(p) }

// partitionOfKey is leaseKey's inverse; ok is false for other keys.
func partitionOfKey(key string) (int, bool) {
	s, ok := strings.CutPrefix(key, "partition.")
	if !ok {
		return 0, false
	}
	p, err := strconv.Atoi(s)
	return p, err == nil && p >= 0
}

// isConflict reports whether err is a compare-and-swap failure.
func isConflict(err error) bool {
	return errors.Is(err, natsjs.ErrKeyRevisionMismatch) || errors.Is(err, natsjs.ErrKeyExists)
}
