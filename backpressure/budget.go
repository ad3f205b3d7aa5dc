package backpressure

import (
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
)

// hugeLimit: limits at or above it mean "no limit" (cgroup v1 reports an
// unlimited group as 2^63 rounded down to a page).
const hugeLimit = 1 << 62

// cgroup is the process's memory cgroup.
type cgroup struct {
	read  func(name string) ([]byte, error)
	dir   string // its directory, a slash-separated absolute path
	v2    bool
	limit int64 // the tightest limit up to the mount's root; 0: none
}

// rootReader reads absolute, slash-separated names under root.
func rootReader(root string) func(string) ([]byte, error) {
	return func(name string) ([]byte, error) {
		return os.ReadFile(filepath.Join(root, filepath.FromSlash(name)))
	}
}

// findCgroup finds the process's memory cgroup through /proc/self/cgroup
// and /proc/self/mountinfo: the v1 memory controller's hierarchy when there
// is one, else the v2 unified hierarchy. Its limit is the tightest of
// memory.limit_in_bytes (v1) or memory.max (v2) on the path from the
// process's cgroup up to the mount's root; "max", huge values and anything
// that cannot be read or parsed mean no limit.
func findCgroup(read func(name string) ([]byte, error)) (cgroup, bool) {
	data, err := read("/proc/self/cgroup")
	if err != nil {
		return cgroup{}, false
	}
	v1, v2 := parseCgroup(data)
	data, err = read("/proc/self/mountinfo")
	if err != nil {
		return cgroup{}, false
	}
	mounts := parseMountinfo(data)
	for _, m := range mounts {
		switch {
		case v1 != "" && m.fstype == "cgroup" && hasOpt(m.superOpts, "memory"):
			return walkLimit(read, m, v1, false)
		case v1 == "" && v2 != "" && m.fstype == "cgroup2":
			return walkLimit(read, m, v2, true)
		}
	}
	return cgroup{}, false
}

// cgroupLimitFrom returns the process's cgroup memory limit, if it has one.
func cgroupLimitFrom(read func(name string) ([]byte, error)) (int64, bool) {
	cg, ok := findCgroup(read)
	return cg.limit, ok && cg.limit > 0
}

// usage returns what the cgroup is charged, less inactive file cache (which
// the kernel reclaims before it kills): v2 memory.current − inactive_file,
// v1 memory.usage_in_bytes − total_inactive_file.
func (cg cgroup) usage() (int64, bool) {
	file, key := "memory.usage_in_bytes", "total_inactive_file"
	if cg.v2 {
		file, key = "memory.current", "inactive_file"
	}
	data, err := cg.read(path.Join(cg.dir, file))
	if err != nil {
		return 0, false
	}
	used, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
	if err != nil || used < 0 {
		return 0, false
	}
	if data, err = cg.read(path.Join(cg.dir, "memory.stat")); err == nil {
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

// parseCgroup parses /proc/self/cgroup ("id:controllers:path" per line):
// v1 is the path of the v1 memory controller, v2 the path of the unified
// hierarchy ("0::path"); either may be empty.
func parseCgroup(data []byte) (v1, v2 string) {
	for line := range strings.SplitSeq(string(data), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 || !strings.HasPrefix(f[2], "/") {
			continue
		}
		switch {
		case f[0] == "0" && f[1] == "":
			v2 = f[2]
		case hasOpt(f[1], "memory"):
			v1 = f[2]
		}
	}
	return v1, v2
}

type mount struct {
	root, point, fstype, superOpts string
}

// parseMountinfo parses the fields it needs from /proc/self/mountinfo:
// "id parent major:minor root mountpoint opts [optional...] - fstype source superopts".
func parseMountinfo(data []byte) []mount {
	var ms []mount
	for line := range strings.SplitSeq(string(data), "\n") {
		pre, post, found := strings.Cut(line, " - ")
		if !found {
			continue
		}
		a, b := strings.Fields(pre), strings.Fields(post)
		if len(a) < 5 || len(b) < 3 {
			continue
		}
		ms = append(ms, mount{root: unescape(a[3]), point: unescape(a[4]), fstype: b[0], superOpts: b[2]})
	}
	return ms
}

// unescape undoes mountinfo's octal escapes (\040 for a space, ...).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var sb strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				sb.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		sb.WriteByte(s[i])
	}
	return sb.String()
}

func hasOpt(list, opt string) bool {
	for o := range strings.SplitSeq(list, ",") {
		if o == opt {
			return true
		}
	}
	return false
}

// walkLimit locates the process's cgroup directory under mount m and reads
// the limit file there and in each parent up to the mount point, keeping
// the smallest limit found.
func walkLimit(read func(string) ([]byte, error), m mount, cgPath string, v2 bool) (cgroup, bool) {
	rel := cgPath
	if m.root != "/" {
		// Without a cgroup namespace the mount may show only a sub-tree.
		rel = strings.TrimPrefix(cgPath, m.root)
		if rel == cgPath {
			rel = "/"
		}
	}
	if !strings.HasPrefix(m.point, "/") {
		return cgroup{}, false
	}
	file := "memory.limit_in_bytes"
	if v2 {
		file = "memory.max"
	}
	top := path.Clean(m.point)
	cg := cgroup{read: read, dir: path.Join(top, path.Clean("/"+rel)), v2: v2} // Clean("/"+rel) cannot climb above top
	for dir := cg.dir; ; dir = path.Dir(dir) {
		if v, ok := readLimit(read, path.Join(dir, file)); ok && (cg.limit == 0 || v < cg.limit) {
			cg.limit = v
		}
		if dir == top || len(dir) <= len(top) {
			break
		}
	}
	return cg, true
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
