package backpressure

import (
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/shoal-go/shoal/internal/cgroup"
)

// hugeLimit: limits at or above it mean "no limit" (cgroup v1 reports an
// unlimited group as 2^63 rounded down to a page).
const hugeLimit = 1 << 62

// memCgroup is the process's memory cgroup.
type memCgroup struct {
	read func(name string) ([]byte, error)
	// dir is the directory (a slash-separated absolute path) of the group
	// whose limit binds: the process's own, or the ancestor that holds
	// the tightest limit (the highest one, if several hold it). Its charge
	// is what the kernel compares with the limit, siblings' included, so
	// usage reads it there.
	dir   string
	v2    bool
	limit int64 // the tightest limit up to the mount's root; 0: none
	// levels are the groups on the path, from the process's up, that have
	// a limit. A looser limit binds first when other members of its group
	// hold most of it, so the cross-check reads each of them.
	levels []cgLevel
}

// cgLevel is one group on the path that has a memory limit.
type cgLevel struct {
	dir   string
	limit int64
}

// rootReader reads absolute, slash-separated names under root.
func rootReader(root string) func(string) ([]byte, error) {
	return func(name string) ([]byte, error) {
		return os.ReadFile(filepath.Join(root, filepath.FromSlash(name)))
	}
}

// findCgroup finds the process's memory cgroup (internal/cgroup.Find): the
// v1 memory controller's hierarchy when there is one, else the v2 unified
// hierarchy. Its limit is the tightest of memory.limit_in_bytes (v1) or
// memory.max (v2) on the path from the process's cgroup up to the mount's
// root; "max", huge values and anything that cannot be read or parsed mean
// no limit.
func findCgroup(read func(name string) ([]byte, error)) (memCgroup, bool) {
	g, ok := cgroup.Find(read, "memory")
	if !ok {
		return memCgroup{}, false
	}
	cg := memCgroup{read: read, dir: g.Dir, v2: g.V2}
	file := "memory.limit_in_bytes"
	if g.V2 {
		file = "memory.max"
	}
	// Up goes from the process's group to the root. On a tie the ancestor
	// wins: its charge includes the child's, so its limit is reached first.
	for dir := range g.Up() {
		v, ok := readLimit(read, path.Join(dir, file))
		if !ok {
			continue
		}
		cg.levels = append(cg.levels, cgLevel{dir, v})
		if cg.limit == 0 || v <= cg.limit {
			cg.limit, cg.dir = v, dir
		}
	}
	return cg, true
}

// cgroupLimitFrom returns the process's cgroup memory limit, if it has one.
func cgroupLimitFrom(read func(name string) ([]byte, error)) (int64, bool) {
	cg, ok := findCgroup(read)
	return cg.limit, ok && cg.limit > 0
}

// outside returns how much more than held (the memory the Go runtime holds)
// the process may be charged for, measured against the tightest limit: for
// each group on the path that has a limit, its charge less held, less how
// far its limit lies above the tightest one; the largest of these, and at
// least zero. For the group with the tightest limit that is simply its
// charge beyond Go's memory; for a looser ancestor it is what its other
// members hold beyond that looser limit's extra room, so that the breaker
// refuses before whichever limit would be reached first. It reports false
// when no group's charge can be read.
func (cg memCgroup) outside(held int64) (int64, bool) {
	var out int64
	var ok bool
	for _, l := range cg.levels {
		u, found := cg.usageAt(l.dir)
		if !found {
			continue
		}
		ok = true
		out = max(out, u-held-(l.limit-cg.limit))
	}
	return out, ok
}

// usage returns what the cgroup is charged, less inactive file cache (which
// the kernel reclaims before it kills): v2 memory.current − inactive_file,
// v1 memory.usage_in_bytes − total_inactive_file.
func (cg memCgroup) usage() (int64, bool) { return cg.usageAt(cg.dir) }

// usageAt is usage for the group at dir.
func (cg memCgroup) usageAt(dir string) (int64, bool) {
	file, key := "memory.usage_in_bytes", "total_inactive_file"
	if cg.v2 {
		file, key = "memory.current", "inactive_file"
	}
	data, err := cg.read(path.Join(dir, file))
	if err != nil {
		return 0, false
	}
	used, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
	if err != nil || used < 0 {
		return 0, false
	}
	if data, err = cg.read(path.Join(dir, "memory.stat")); err == nil {
		for line := range strings.SplitSeq(string(data), "\n") {
			if k, v, ok := strings.Cut(line, " "); ok && k == key {
				if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil && n > 0 {
					used = max(used-n, 0)
				}
				break
			}
		}
	}
	return used, true
}

// readLimit reads one limit file; "max", huge values and errors mean none.
func readLimit(read func(string) ([]byte, error), name string) (int64, bool) {
	data, err := read(name)
	if err != nil {
		return 0, false
	}
	s := strings.TrimSpace(string(data))
	if s == "max" {
		return 0, false
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v <= 0 || v >= hugeLimit {
		return 0, false
	}
	return v, true
}
