package cgroup

import (
	"path"
	"strconv"
	"strings"
)

// CPULimit returns the process's CPU quota in thousandths of a CPU: the
// tightest of the quotas of its cpu group and of each parent, from cpu.max
// in the unified hierarchy ("quota period", or "max period" for none) or
// cpu.cfs_quota_us over cpu.cfs_period_us in a v1 one (a quota of -1 for
// none). It reports false where no group on the path has a quota. A quota
// of 1.5 CPUs is 1500; one under a thousandth of a CPU is 1.
func CPULimit(read Reader) (milli int64, ok bool) {
	g, found := Find(read, "cpu")
	if !found {
		return 0, false
	}
	for dir := range g.Up() {
		var q int64
		var has bool
		if g.V2 {
			q, has = readCPUMax(read, path.Join(dir, "cpu.max"))
		} else {
			q, has = readCFS(read, dir)
		}
		if has && (!ok || q < milli) {
			milli, ok = q, true
		}
	}
	return milli, ok
}

// readCPUMax reads a v2 cpu.max file.
func readCPUMax(read Reader, name string) (int64, bool) {
	data, err := read(name)
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(data))
	if len(f) != 2 || f[0] == "max" {
		return 0, false
	}
	return share(f[0], f[1])
}

// readCFS reads a v1 group's cpu.cfs_quota_us and cpu.cfs_period_us.
func readCFS(read Reader, dir string) (int64, bool) {
	q, err := read(path.Join(dir, "cpu.cfs_quota_us"))
	if err != nil {
		return 0, false
	}
	p, err := read(path.Join(dir, "cpu.cfs_period_us"))
	if err != nil {
		return 0, false
	}
	return share(strings.TrimSpace(string(q)), strings.TrimSpace(string(p)))
}

// share turns a quota and a period, in microseconds, into thousandths of a
// CPU; a quota that is not positive (-1: none) or does not parse means
// none.
func share(quota, period string) (int64, bool) {
	q, err := strconv.ParseInt(quota, 10, 64)
	if err != nil || q <= 0 {
		return 0, false
	}
	p, err := strconv.ParseInt(period, 10, 64)
	if err != nil || p <= 0 {
		return 0, false
	}
	// Quotas and periods are at most about 2^44 µs; the division keeps
	// the product in range for any that parse.
	if q > (1<<62)/1000 {
		return 1 << 40, true
	}
	return max(1, q*1000/p), true
}
