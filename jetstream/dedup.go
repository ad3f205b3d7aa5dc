package jetstream

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"

	natsjs "github.com/nats-io/nats.go/jetstream"
)

// Dedup remembers, per room, the stream sequence of the last message applied.
// A Consumer given one (WithDedup) acknowledges without handling every
// message whose sequence is at or below its room's record, and records each
// message after its handler succeeded and before it is acknowledged.
//
// Within a room, sequences only grow, and the consumer handles a room's
// messages in sequence order; a message that comes again (its node died, or
// its acknowledgement was lost) therefore has a sequence at or below the
// record, unless the handler's effect was saved but the record was not. For
// exactly-once effects the record must live where the handler's effects do,
// and be written in the same transaction: implement Dedup over that store.
//
// A stream deleted and created anew under its name numbers its messages
// from 1 again: the old stream's records must be removed before a Consumer
// consumes the new one, or it acknowledges without handling each room's
// messages up to its old record.
// MemoryDedup suits one process; KVDedup survives nodes.
//
// A Consumer calls a Dedup for one room at a time, but for different rooms
// concurrently.
type Dedup interface {
	// LastApplied returns the last sequence recorded for room, 0 if none.
	LastApplied(ctx context.Context, room string) (uint64, error)
	// Record records that the message of room with sequence seq was applied.
	// seq may be below the room's record (a node whose handler ran past its
	// lease records after the new owner recorded later messages): the
	// record must then stay as it is.
	Record(ctx context.Context, room string, seq uint64) error
}

var (
	_ Dedup = (*MemoryDedup)(nil)
	_ Dedup = (*KVDedup)(nil)
)

// MemoryDedup is a Dedup in memory: one map entry per room, kept for the
// life of the value. It drops the duplicates that one process sees (a
// redelivery after a lost acknowledgement or an expired ack wait); shared by
// several consumers in one process, as in tests, it stands for an
// application's store. The zero value is ready to use.
type MemoryDedup struct {
	mu   sync.Mutex
	last map[string]uint64
}

// LastApplied implements Dedup.
func (d *MemoryDedup) LastApplied(_ context.Context, room string) (uint64, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.last[room], nil
}

// Record implements Dedup. A sequence below the room's record leaves it
// unchanged.
func (d *MemoryDedup) Record(_ context.Context, room string, seq uint64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.last == nil {
		d.last = make(map[string]uint64)
	}
	if seq > d.last[room] {
		d.last[room] = seq
	}
	return nil
}

// KVDedup is a Dedup in a JetStream key-value bucket: one key per room,
// holding the sequence as 8 big-endian bytes. Every node of a cluster that
// uses the same bucket sees the others' records, so a message redelivered to
// a new owner after its old owner applied it is dropped, unless the old owner
// died between applying it and recording it. Each handled message costs one
// bucket read and one bucket write (a replicated round trip on an R3
// bucket).
type KVDedup struct {
	kv natsjs.KeyValue
}

// NewKVDedup returns a KVDedup over kv. A room whose name is a valid key
// (letters, digits and "-/_=." with no '.' at either end or twice in a
// row, not starting with '=') is its own key; any other name (a subject
// token may hold ':', '@' or any other character a key may not) is stored
// under '=' and its name in unpadded URL-safe base64.
func NewKVDedup(kv natsjs.KeyValue) (*KVDedup, error) {
	if kv == nil {
		return nil, fmt.Errorf("%w: nil KeyValue", ErrBadOption)
	}
	return &KVDedup{kv: kv}, nil
}

// LastApplied implements Dedup.
func (d *KVDedup) LastApplied(ctx context.Context, room string) (uint64, error) {
	e, err := d.kv.Get(ctx, dedupKey(room))
	if errors.Is(err, natsjs.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if len(e.Value()) != 8 {
		return 0, fmt.Errorf("shoal/jetstream: dedup record of room %q has %d bytes, want 8", room, len(e.Value()))
	}
	return binary.BigEndian.Uint64(e.Value()), nil
}

// Record implements Dedup. A sequence below the room's record leaves it
// unchanged (an old owner whose handler ran past its lease may record after
// the new owner recorded later messages): the write is a compare-and-swap
// on the revision read, retried when another node wrote meanwhile.
func (d *KVDedup) Record(ctx context.Context, room string, seq uint64) error {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], seq)
	key := dedupKey(room)
	for {
		e, err := d.kv.Get(ctx, key)
		switch {
		case errors.Is(err, natsjs.ErrKeyNotFound):
			_, err = d.kv.Create(ctx, key, b[:])
		case err != nil:
			return err
		case len(e.Value()) == 8 && binary.BigEndian.Uint64(e.Value()) >= seq:
			return nil
		default:
			_, err = d.kv.Update(ctx, key, b[:], e.Revision())
		}
		if !isConflict(err) {
			return err
		}
	}
}

// validKey matches the names a key-value bucket takes as keys.
var validKey = regexp.MustCompile(`^[-/_=.a-zA-Z0-9]+$`)

// encodedPrefix starts the key of a room whose name is not a valid key
// (see NewKVDedup).
const encodedPrefix = "="

// dedupKey returns the key of room's record in a KVDedup's bucket.
func dedupKey(room string) string {
	if validKey.MatchString(room) && !strings.HasPrefix(room, encodedPrefix) &&
		room[0] != '.' && room[len(room)-1] != '.' && !strings.Contains(room, "..") {
		return room
	}
	return encodedPrefix + base64.RawURLEncoding.EncodeToString([]byte(room))
}
