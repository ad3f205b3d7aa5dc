// Package xcore measures how long moving a cache line between two CPUs takes
// on the machine the process runs on.
//
// Benchmarks of concurrent code are dominated by that figure, and on a
// virtual machine it is not a constant: the host may run the two virtual
// CPUs of a guest on two hyperthreads of one core (a line moves in tens of
// nanoseconds) or on two cores (hundreds), and move them between the two
// within seconds. Every row of a concurrent benchmark moves with it. The
// pool's and the bench's benchmarks report LineTransfer next to each
// result, so that rows measured under different placements are not compared.
package xcore
