// Command shoalbench compares shoal with raw goroutines, sync.Pool-recycled
// goroutines, a channel worker pool, ants and pond, and prints a table.
//
// Usage:
//
//	go run ./bench/cmd/shoalbench [flags]
//
// Every row (one library, one workload, one number of producers) runs in its
// own child process, this command re-executed, so that peak RSS belongs to
// one library; with -inprocess all rows run in this process, and the
// BENCHMARKS.md that -write-docs writes says so. Flags:
//
//	-quick          smaller task counts: the whole comparison in under a minute on 2 cores
//	-json           one JSON object per row on stdout instead of a table
//	-libs a,b       rows to run (default: all; see -list)
//	-workload a,b   workloads to run: noop, cpu, sleep, burst (default: all)
//	-producers 1,8  submitting goroutines (default: each workload's own list)
//	-tasks N        tasks per row (default: each workload's size)
//	-count N        runs per row, the one with the median ns/task reported (default 1);
//	                the rows of one workload and producer count take turns, a run
//	                of each per round, so that the machine's drift falls on all alike
//	-inprocess      run rows in this process (faster; no peak RSS, which would cover every row so far)
//	-write-docs     also write docs/BENCHMARKS.md and its charts under docs/img
//	-docs DIR       where -write-docs writes (default "docs")
//	-list           print the rows and workloads and exit
package main
