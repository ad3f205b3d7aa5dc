// Package jetstream spreads the rooms of a chat backend over the nodes of a
// cluster through NATS JetStream, and runs each room's messages in order in
// each node's local pool.Pool.
//
// It is a module of its own, github.com/shoal-go/shoal/jetstream, so that
// the NATS client stays out of the core module.
//
// # Layout
//
// Publishers write a message of room R to "<prefix>.R" (CreateStream's
// default prefix is "rooms"). The stream made by CreateStream stores it on
// "<prefix>.<p>.R" through a subject transform, p = partition(n, R): the
// server hashes the room to one of n partitions, so every message of a room
// is in one partition, in publication order. Publishers that prefer to
// partition on their side use PartitionSubject and a stream without a
// transform.
//
// # Ownership
//
// The nodes that run Start for a stream are its members: each renews a key
// of the members bucket every quarter of the lease TTL. Every node computes
// the same assignment of partitions to the live members with a shard.Ring
// (Maglev; see Assign), so a join or a leave moves about 1/n of the
// partitions. A node consumes a partition only while it holds the
// partition's lease, a key of the leases bucket renewed by compare-and-swap
// on its revision; a claim is a compare-and-swap on the revision the
// claimant saw, so two nodes never both hold a lease. Expiry is judged on
// each node's own clock from when it saw the lease's revision change, and a
// holder stops pulling a tenth of the TTL before any other node can judge
// its lease expired. The lease's revision at the claim is the partition's
// epoch (Msg.Epoch), a fencing token for stores that must refuse a node that
// lost its lease without noticing.
//
// # Consuming
//
// Each owned partition is read by a durable pull consumer (one per
// partition, shared by its successive owners). Each message is submitted to
// the local pool with its room as the group, so a room's messages run one at
// a time in stream order while different rooms run in parallel. A message is
// acknowledged only after its handler succeeded; while it is held (queued in
// the pool or running) it is kept alive with InProgress. A failing handler
// is retried in place (the room waits); after the last attempt, on a panic,
// or for an error wrapped with pool.Permanent, the message is published to
// the dead-letter subject with its reason, attempts and error as headers,
// then terminated. When the pool refuses a message (memory pressure,
// throttling, a full group queue of a non-blocking pool), the node holds it
// and stops pulling until the pool takes it: nothing is dropped, and the
// consumer's MaxAckPending bounds what a node holds.
//
// # Hand-offs
//
// A node that leaves (Stop) or that the ring no longer gives a partition
// finishes its current pull request, lets the messages it holds run and
// acknowledges them, and releases the lease; the next owner starts at once.
// A node that dies stops renewing: its partitions move once their leases
// expire (one TTL), and the new owner first waits one ack wait, then pulls
// until the server counts no unacknowledged message outside its hands, and
// handles what it pulled sorted by stream sequence, before any new message.
// A gap in the consumer's delivery sequence (a delivery lost with a
// connection, or served to an old owner's late pull request) is handled the
// same way. Past its lease's end a node does nothing more for the partition
// (no pull, handler start, dead letter, acknowledgement or InProgress)
// unless a renewal stored late moves the end. So a room's messages are handled in stream
// order across hand-offs; docs/CLUSTER.md gives the argument and its
// assumptions.
//
// A partition's consumer that the server no longer has (an operator deleted
// it) is created anew by its holder, delivering from the partition's
// acknowledged floor, not from the stream's start; Stats.Recreated counts
// it (docs/CLUSTER.md). The lease records the floor, so a claimant that
// finds the consumer gone creates it from there too. A stream deleted and
// created anew under its name starts its sequences over: a node started
// since ignores the old floor, and a node started before stops with
// ErrStreamRecreated once it finds its consumer gone or claims a partition. A
// Dedup's records are the old stream's sequences: clear them before
// consuming the new stream, or its messages up to them are acknowledged
// without running. A stream deleted and not created again (missing for
// WithStreamMissingLimit, a minute by default, when a holder or a claimant
// looks for it) stops the consumer with ErrStreamDeleted. A stream
// restored from a backup keeps its creation time and numbers new messages
// from the backup's end: a holder forgets the messages it held beyond that
// end (their settle sends nothing). A members or leases bucket deleted
// while the consumer runs stops it with ErrBucketDeleted; started anew,
// it creates the buckets again.
//
// Delivery is at least once: a message is handled again when its node died
// or lost its lease between handling it and acknowledging it. Msg.Seq and
// Msg.Deliveries let a handler detect that; WithDedup drops such messages
// for a Dedup that remembers each room's last applied sequence.
//
// # A Batcher instead of a Pool
//
// StartBatcher feeds a pool.Batcher made with BatchFunc: a room's queued
// messages reach a BatchHandler in one call, in stream order, and each is
// acknowledged after the call succeeded.
//
// # Statistics
//
// Consumer.Stats gives partitions owned, lag and held messages per
// partition, hand-offs, redeliveries, dead letters and more; the module
// github.com/shoal-go/shoal/jetstream/promexport exports them to Prometheus.
//
// # Costs
//
// One pull request per partition per batch (default 256 messages), one
// acknowledgement per message, one closure and one bookkeeping entry per
// message, and one key-value write per held partition and per node every
// quarter TTL. docs/CLUSTER.md gives measured throughput against a plain
// consume-and-acknowledge loop.
package jetstream
