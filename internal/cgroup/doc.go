// Package cgroup finds the Linux control group the process runs in and
// reads the limits shoal needs from it: the memory limit, for the
// backpressure breaker's default budget, and the CPU quota, for the pool's
// judgement of whether the processors stand idle. It reads
// /proc/self/cgroup and /proc/self/mountinfo, then the limit files of the
// process's group and of each parent up to the hierarchy's mount point,
// keeping the tightest limit, as the kernel applies it.
//
// Everything is read through a Reader, so that tests give it a file tree
// of their own. Files that are missing or do not parse mean no limit:
// there is nothing to return an error for, and nothing here panics on
// what it reads. Where there are no cgroups (other systems, or a process
// outside any hierarchy), Find and CPULimit report none.
package cgroup
