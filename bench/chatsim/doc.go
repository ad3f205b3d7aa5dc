// Package chatsim simulates a chat backend's load and runs it through shoal
// or through a peer pool, checking what shoal promises.
//
// The load: Rooms rooms whose activity follows a Zipf distribution (a few
// very busy rooms, a long tail of quiet ones); Poisson arrivals whose rate
// follows a compressed day (a quiet night at about 0.15 × the mean, an
// evening peak at 3 × the mean); per message a simulated persist (0.2–2 ms of
// I/O) and a fan-out whose CPU grows with the room's size. A fraction of the
// messages fail their persist on every attempt, and a smaller one panics.
//
// The checks: every room's messages must start in sequence order and never
// overlap (the order checker counts both kinds of violation), and every
// accepted message must complete or reach the dead letters (Result.Lost is
// 0). The figures: throughput, end-to-end latency percentiles, generator lag,
// breaker transitions, peak RSS and workers over the day.
//
// The generator runs on the caller's goroutine, sleeps only when the next
// message is due a millisecond or more later, and then submits in one burst
// what became due: its cost is a few hundred nanoseconds per message, and
// Result.GeneratorLagP99 shows whether it kept up.
//
// The command bench/cmd/chatsim runs the default load and prints Format's
// report; -compare adds ants and pond, each with a mutex per room (which
// keeps a room's messages from overlapping, not in order).
package chatsim
