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

// cgroupLimit returns the memory limit of the process's cgroup, found
// through /proc/self/cgroup and /proc/self/mountinfo under root: cgroup v1
// memory.limit_in_bytes when the memory controller is on a v1 hierarchy,
// else cgroup v2 memory.max. The tightest limit on the path from the
// process's cgroup up to the mount's root counts. "max" and huge values
// mean no limit; so does anything it cannot read or parse.
func cgroupLimit(root string) (int64, bool) {
	return cgroupLimitFrom(func(name string) ([]byte, error) {
		return os.ReadFile(filepath.Join(root, filepath.FromSlash(name)))
	})
}

// cgroupLimitFrom is cgroupLimit reading absolute, slash-separated names
// through read.
func cgroupLimitFrom(read func(name string) ([]byte, error)) (int64, bool) {
	data, err := read("/proc/self/cgroup")
	if err != nil {
		return 0, false
	}
	v1, v2 := parseCgroup(data)
	data, err = read("/proc/self/mountinfo")
	if err != nil {
		return 0, false
	}
	mounts := parseMountinfo(data)
	if v1 != "" {
		for _, m := range mounts {
			if m.fstype == "cgroup" && hasOpt(m.superOpts, "memory") {
				return walkLimit(read, m, v1, "memory.limit_in_bytes")
			}
		}
		return 0, false
	}
	if v2 != "" {
		for _, m := range mounts {
			if m.fstype == "cgroup2" {
				return walkLimit(read, m, v2, "memory.max")
			}
		}
	}
	return 0, false
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

// walkLimit reads file in the process's cgroup directory and in each parent
// up to the mount point, and returns the smallest limit found.
func walkLimit(read func(string) ([]byte, error), m mount, cgPath, file string) (int64, bool) {
	rel := cgPath
	if m.root != "/" {
		// Without a cgroup namespace the mount may show only a sub-tree.
		rel = strings.TrimPrefix(cgPath, m.root)
		if rel == cgPath {
			rel = "/"
		}
	}
	if !strings.HasPrefix(m.point, "/") {
		return 0, false
	}
	top := path.Clean(m.point)
	dir := path.Join(top, path.Clean("/"+rel)) // Clean("/"+rel) cannot climb above top
	best, found := int64(0), false
	for {
		if v, ok := readLimit(read, path.Join(dir, file)); ok && (!found || v < best) {
			best, found = v, true
		}
		if dir == top || len(dir) <= len(top) {
			break
		}
		dir = path.Dir(dir)
	}
	return best, found
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
