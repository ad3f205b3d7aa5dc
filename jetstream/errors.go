package jetstream

import (
	"errors"
	"time"
)

// Errors returned by Start, CreateStream and the options. They are wrapped
// with the offending value; match them with errors.Is.
var (
	// ErrNoStream: no stream name was given, or no stream of that name
	// exists.
	ErrNoStream = errors.New("shoal/jetstream: no such stream")
	// ErrBadPartitions: the partition count is not within 1..4096, the stream
	// has no partitioning transform and WithPartitions was not given, or
	// WithPartitions disagrees with the stream's transform.
	ErrBadPartitions = errors.New("shoal/jetstream: bad partition count")
	// ErrNoMember: the member name is empty or is not a valid key (letters,
	// digits, '-', '_' and '=' only).
	ErrNoMember = errors.New("shoal/jetstream: bad member name")
	// ErrDuplicateMember: another live node already runs under this member
	// name, or took it over while this node could not renew it (a key
	// deleted under a running node is created again, not a duplicate).
	ErrDuplicateMember = errors.New("shoal/jetstream: duplicate member name")
	// ErrBadOption: an option's value is out of range (a zero or negative
	// duration, count or size, a nil pool, handler or dedup), or Start,
	// Stop or CreateStream was given a nil context (CreateStream: or a nil
	// JetStream).
	ErrBadOption = errors.New("shoal/jetstream: bad option")
	// ErrStopped: Stop was called on a consumer that has already stopped,
	// or that stopped otherwise (a failure, or Start's context ended)
	// before the leave Stop asked for was over; the error wraps the
	// consumer's Err, if any.
	ErrStopped = errors.New("shoal/jetstream: consumer stopped")
	// ErrPoolClosed: the pool given to Start (or StartBatcher) is closed
	// already, or the local pool refused a message because it is closed,
	// or was closed with messages of the consumer still queued in it (its
	// Close gave up on them); the consumer stops, and the messages it held
	// are redelivered to the next owner of their partitions.
	ErrPoolClosed = errors.New("shoal/jetstream: pool closed")
	// ErrStreamRecreated: the stream was deleted and created anew under its
	// name while the consumer ran (its sequences start over); the
	// consumer stops, since what it held and the partitions' floors are
	// the old stream's. A consumer started anew consumes the new stream
	// from its start; a Dedup's records, sequences of the old stream, must
	// be cleared first, or it drops the new stream's messages up to them.
	ErrStreamRecreated = errors.New("shoal/jetstream: stream deleted and created anew")
	// ErrStreamDeleted: the stream was found missing, by a holder whose
	// consumer went with it or by a claimant, and stayed missing for
	// WithStreamMissingLimit (a minute by default): deleted and not
	// created again, or a restore that took longer. The consumer stops
	// rather than hold its partitions' leases with nothing to consume,
	// each one stalled without a sign. A consumer started anew once the
	// stream exists again goes on from the leases' floors (a stream
	// restored from a backup keeps its creation time) or, if the stream
	// was created anew, stops with ErrStreamRecreated.
	ErrStreamDeleted = errors.New("shoal/jetstream: stream deleted")
	// ErrBucketDeleted: the members or the leases bucket (see
	// WithBucketPrefix) was deleted while the consumer ran: without it no
	// node can hold a partition, so every partition would stall while
	// the consumer ran on. The consumer stops; one started anew creates
	// the buckets again, and its claims find the partitions' consumers as
	// they were (the floors the leases held are gone: a consumer an
	// operator deleted meanwhile is created to deliver all).
	ErrBucketDeleted = errors.New("shoal/jetstream: coordination bucket deleted")
)

// DefaultStreamMissingLimit is how long, by default, a holder or a
// claimant keeps looking for its stream (a restore from a backup deletes
// it first) before it stops the consumer with ErrStreamDeleted; see
// WithStreamMissingLimit.
const DefaultStreamMissingLimit = time.Minute
