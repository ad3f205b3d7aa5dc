// Command chatsim runs a simulated chat backend through shoal: 10,000 rooms
// whose activity follows a Zipf distribution, Poisson arrivals over a
// compressed day with an evening peak, one persist write per batch of a
// room's queued messages (a pool.Batcher) and a fan-out per message,
// injected failures, and a check of every room's message order. It ends with
// a report: throughput, end-to-end latency percentiles, order violations,
// dead letters, writes and batch sizes, breaker transitions, peak RSS and
// workers over time.
//
//	go run ./bench/cmd/chatsim                  # shoal, about a minute
//	go run ./bench/cmd/chatsim -compare         # the same load through ants and pond too, each batching by hand
//	go run ./bench/cmd/chatsim -rate 2000 -duration 20s -budget 256MiB
//
// A progress line goes to stderr (rewritten in place on a terminal, one line
// every few seconds otherwise); the report goes to stdout. The exit status is
// 1 when shoal lost a message or broke a room's order.
package main
