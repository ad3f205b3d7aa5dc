// Package bench compares shoal with the worker pools and patterns that Go
// chat backends use instead: raw goroutines, goroutines with task objects
// recycled through sync.Pool, a plain channel worker pool, ants (Pool,
// PoolWithFunc, MultiPool) and pond v2.
//
// Every library is driven through the same [Runner] by the same harness
// ([Run]), so that the figures of one run are ratios measured on the same
// machine at the same moment. Peers that do not keep per-group order also
// appear wrapped: "+mutex" holds a mutex per group while a task runs (tasks
// of a group never overlap, but may start out of order), and "+lanes" puts a
// FIFO queue per group in front of the pool and drains it with one pool task
// at a time (order and no overlap: what a user must build to get shoal's
// guarantee from an unordered pool). "+lanes" keeps its lanes in a slice
// indexed by the group number, which only small integer groups allow;
// "+maplanes" finds them in mutex-guarded maps and drops a lane when it
// empties, as code whose groups are names or ids must. [Lib.Order] says
// which rows guarantee what.
//
// The command bench/cmd/shoalbench runs the comparison, one child process per
// row so that peak RSS belongs to one library, and writes docs/BENCHMARKS.md.
// The same workloads run as ordinary Go benchmarks in this package:
//
//	go test ./bench -run '^$' -bench 'Noop' -count 5 | tee new.txt
//	benchstat old.txt new.txt
//
// To compare two builds of the pool on one row, bench/scripts/pair.sh runs
// two shoalbench binaries in alternation and prints the median of the
// paired ratios: on a small shared machine, where runs move by 10–20 %,
// a change of a few percent shows only that way. bench/scripts/multicore.sh
// runs the comparison at GOMAXPROCS 2, 4, 8 and 16 (docs/MULTICORE.md).
package bench
