// Command isolation runs the isolation scenario (a slow room delays only
// itself) on shoal and on a reference scheduler, one after the other in one
// process, and prints their fast groups' waits side by side.
//
// The scenario: 10,000 groups; 50 of them run 10 ms tasks (sleeps: I/O) at
// 50/s each; the others get 200 µs tasks at 20,000/s in all, spread
// uniformly at random, from 32 submitters that submit each task at its due
// time. The hot variant adds one group offered 1 ms tasks at 4,000/s, four
// times what one group can run, from a submitter of its own. The figure is
// the wait of the fast groups' tasks, from due time to start, measured for
// 5 s after 500 ms of warm-up; the run then drains what is queued.
//
// The schedulers: "shoal" is a pool.Pool with its default options,
// "shoal-512" the same with WithWorkers(1, 512), and "reference" one FIFO
// lane per busy group drained by a goroutine of its own (the ideal: a slow
// group delays only itself). Each row of shoal gets the ratio of its p99 to
// the target 1.5 × the reference's p99 + 1 ms, and PASS when it is at most
// 1 and the row measured waits and refused no fast task due after the
// warm-up (the waits leave refused tasks out); the target holds for
// "shoal", the pool with its defaults.
//
//	go run ./bench/cmd/isolation                       # both variants, all three schedulers
//	go run ./bench/cmd/isolation -variant hot -schedulers shoal,reference
//	go run ./bench/cmd/isolation -duration 20s -groups 100000
//	go run ./bench/cmd/isolation -spinners 8   # the CPUs full of other work
//
// With -spinners n, n goroutines spin while the tasks are submitted, as on
// a server whose handlers keep the CPUs busy: every scheduler, and the
// submitters, then get a share of the processors.
//
// Two more columns split the p99 wait: "late p99", how late the submitters
// called Submit (the harness's lag on a busy machine, and time blocked in
// earlier Submits), and "queue p99", from the Submit call to the start (the
// scheduler's own share). On a small, shared machine a run now and then
// catches a stall of a few milliseconds in which the submitters do not run:
// whichever row it hits, the reference's included, shows a p99 near its late
// p99 while its queue p99 stays in microseconds. Such a FAIL says nothing of
// the scheduler; run the command again. A FAIL whose queue p99 is high is
// the scheduler's.
//
// A line per run goes to stderr; the table goes to stdout. The exit status
// is 1 when a run failed or a scheduler lost a task or broke a group's
// order, 2 for bad flags, and 0 otherwise, whatever the verdicts.
package main
