package backpressure

import (
	"bufio"
	"os"
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
	v1, v2, ok := selfCgroups(filepath.Join(root, "proc/self/cgroup"))
	if !ok {
		return 0, false
	}
	mounts, ok := readMountinfo(filepath.Join(root, "proc/self/mountinfo"))
	if !ok {
		return 0, false
	}
	if v1 != "" {
		for _, m := range mounts {
			if m.fstype == "cgroup" && hasOpt(m.superOpts, "memory") {
				return walkLimit(root, m, v1, "memory.limit_in_bytes")
			}
		}
		return 0, false
	}
	if v2 != "" {
		for _, m := range mounts {
			if m.fstype == "cgroup2" {
				return walkLimit(root, m, v2, "memory.max")
			}
		}
	}
	return 0, false
}

// selfCgroups parses /proc/self/cgroup ("id:controllers:path" per line):
// v1 is the path of the v1 memory controller, v2 the path of the unified
// hierarchy ("0::path").
func selfCgroups(name string) (v1, v2 string, ok bool) {
	data, err := os.ReadFile(name)
	if err != nil {
		return "", "", false
	}
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
	return v1, v2, v1 != "" || v2 != ""
}

type mount struct {
	root, point, fstype, superOpts string
}

// readMountinfo parses the fields it needs from /proc/self/mountinfo:
// "id parent major:minor root mountpoint opts [optional...] - fstype source superopts".
func readMountinfo(name string) ([]mount, bool) {
	f, err := os.Open(name)
	if err != nil {
		return nil, false
	}
	defer f.Close()
	var ms []mount
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		pre, post, found := strings.Cut(sc.Text(), " - ")
		if !found {
			continue
		}
		a, b := strings.Fields(pre), strings.Fields(post)
		if len(a) < 5 || len(b) < 3 {
			continue
		}
		ms = append(ms, mount{root: unescape(a[3]), point: unescape(a[4]), fstype: b[0], superOpts: b[2]})
	}
	return ms, sc.Err() == nil
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
func walkLimit(root string, m mount, cgPath, file string) (int64, bool) {
	rel := cgPath
	if m.root != "/" {
		// Without a cgroup namespace the mount may show only a sub-tree.
		rel = strings.TrimPrefix(cgPath, m.root)
		if rel == cgPath {
			rel = "/"
		}
	}
	top := filepath.Join(root, m.point)
	dir := filepath.Join(top, filepath.Clean("/"+rel))
	if !strings.HasPrefix(dir, top) {
		return 0, false
	}
	best, found := int64(0), false
	for {
		if v, ok := readLimit(filepath.Join(dir, file)); ok && (!found || v < best) {
			best, found = v, true
		}
		if dir == top {
			break
		}
		dir = filepath.Dir(dir)
		if len(dir) < len(top) {
			break
		}
	}
	return best, found
}

// readLimit reads one limit file; "max", huge values and errors mean none.
func readLimit(name string) (int64, bool) {
	data, err := os.ReadFile(name)
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
