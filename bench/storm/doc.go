// Package storm is the goroutine-storm experiment: towers of Hanoi whose
// moves are submitted as fast as possible, one task per move, each pending
// move holding a buffer.
//
// Each tower is a group. Its moves are appended to a hash-chained log (each
// entry hashes the previous one with the move's buffer) and applied to a peg
// model that refuses illegal moves, so they must run one at a time and in
// order. Through shoal with a memory budget ([Shoal]) the breaker pushes back
// when memory nears the budget, the submitter waits and retries, and every
// tower ends solved. With a goroutine per move and a mutex per tower ([Raw]),
// the goroutines pile up behind the mutexes holding their buffers, memory
// grows far past the budget, and moves apply out of order.
//
// The command bench/cmd/storm runs both, each in a child process, and prints
// them side by side; with -cgroup it runs each child under a cgroup memory
// limit.
package storm
