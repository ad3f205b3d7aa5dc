// Package cgrouptest helps tests that run a child process inside a cgroup
// of their own, with a memory limit or a CPU quota: it finds where such a
// test may create one and writes its files. Tests that cannot (not root,
// not Linux, no writable controller) skip with the error Parent returns.
package cgrouptest
