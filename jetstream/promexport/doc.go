// Package promexport exports the statistics of a shoal/jetstream Consumer
// (one node's share of a partitioned stream) to Prometheus, in the
// conventions of the pool's own exporter, github.com/shoal-go/shoal/pool/promexport:
// one Stats snapshot per scrape, constant metrics, no state kept between
// scrapes.
//
// It is a module of its own, github.com/shoal-go/shoal/jetstream/promexport,
// so that the Prometheus client stays out of both the core module and the
// jetstream module.
//
//	c, _ := shoaljs.Start(ctx, js, p, handle, shoaljs.WithStream("CHAT"), shoaljs.WithMember(host))
//	pc, _ := promexport.New(c, promexport.WithConstLabels(prometheus.Labels{"stream": "CHAT"}))
//	prometheus.MustRegister(pc) // beside the pool's collector
//
// (shoaljs is github.com/shoal-go/shoal/jetstream under another name, as
// nats.go's package is also called jetstream.)
//
// The metrics, all prefixed shoal_jetstream_:
//
//	members                        gauge    live members of the cluster, as this node sees them
//	partitions_owned               gauge    partitions whose lease this node holds
//	partition_lag{partition}       gauge    messages of a held partition not yet delivered
//	partition_held{partition}      gauge    messages of a held partition held unacknowledged
//	handoffs_total{event}          counter  leases acquired, released (gracefully) or lost
//	messages_total{event}          counter  delivered, redelivered, handled, acked, duplicate
//	handler_retries_total          counter  handler calls after a failed one
//	dead_letters_total             counter  messages published to the dead-letter subject and terminated
//	pool_refusals_total            counter  pool refusals that held pulling back
//	ack_errors_total               counter  acknowledgements or terminations that could not be sent
//	resyncs_total                  counter  recoveries after a delivery went elsewhere
//	dedup_errors_total             counter  Dedup calls that failed (asked again, or the message left unacknowledged)
//	dead_letter_errors_total       counter  dead-letter publications that failed (tried again while the room waits)
//	lease_errors_total             counter  member-key and lease writes that failed (timed out, unreachable, bucket full or gone)
//	consumers_recreated_total      counter  partition consumers found deleted and created anew
//	request_errors_total           counter  requests about a partition's consumer or stream that failed (tried again)
//
// partition is a label because a stream's partitions are few and fixed (64
// is the documented choice, at most 4096); rooms are not, for the reason
// the pool's exporter gives for groups. Lag is the stream's count of
// messages after the last one the node received from the partition, as of
// that message: a partition that receives nothing keeps its last figure.
// A series per partition exists only while this node holds it, so
// sum(shoal_jetstream_partition_lag) over the cluster's nodes is the
// cluster's backlog, and count by (partition) (shoal_jetstream_partition_lag)
// above 1 means two nodes report one partition (the old owner has not
// noticed its loss yet; it sends nothing for it meanwhile).
//
// A scrape costs one Consumer.Stats: a lock and an allocation per held
// partition, no network call.
package promexport
