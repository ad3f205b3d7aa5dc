// Command storm runs the goroutine-storm experiment: four towers of Hanoi of
// 17 disks (131,071 moves each), one task per move, each pending move holding a
// 16 KiB buffer, submitted as fast as possible. Each tower is a group whose
// moves must apply in order.
//
// It runs the storm twice, each in its own child process so that peak memory
// belongs to one variant: through shoal with a memory budget (the breaker
// pushes back, the submitter waits and retries, every tower is solved), and
// with a goroutine per move (memory grows far past the budget and moves apply
// out of order; the raw run stops itself at 4 × the budget to spare the
// machine). The two outcomes are printed side by side.
//
//	go run ./bench/cmd/storm
//	go run ./bench/cmd/storm -towers 4 -budget 128MiB
//	sudo go run ./bench/cmd/storm -cgroup      # each child under a cgroup memory limit
//
// With -cgroup (root, and a writable cgroup v1 memory controller or cgroup
// v2), each child runs in a fresh cgroup limited to -cgroup-limit (default
// 1.5 × budget): the raw storm is killed by the kernel, shoal finishes. The
// cgroups are removed afterwards.
//
// The exit status is 1 when the shoal variant did not report, reported an
// error, or did not apply every move once and legally with every tower
// solved; 2 for bad flags; 0 otherwise.
package main
