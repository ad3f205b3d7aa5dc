package cgroup

import (
	"iter"
	"path"
	"strconv"
	"strings"
)

// Reader reads a file by its absolute, slash-separated name, as os.ReadFile
// does.
type Reader func(name string) ([]byte, error)

// Mount is what Find needs of one line of /proc/self/mountinfo.
type Mount struct {
	// Root is the directory of the hierarchy that the mount shows, Point
	// where it is mounted, FSType "cgroup" (v1) or "cgroup2", and SuperOpts
	// the file system's options (for a v1 hierarchy, its controllers).
	Root, Point, FSType, SuperOpts string
}

// Group is the process's directory in one hierarchy: the v1 hierarchy of
// a controller, or the unified v2 one.
type Group struct {
	// Dir is the group's directory, Top the hierarchy's mount point (Dir
	// or one of its parents); both slash-separated and absolute.
	Dir, Top string
	// V2 says the group is in the unified hierarchy.
	V2 bool
}

// Find returns the process's group for controller ("memory", "cpu"): in
// the v1 hierarchy that holds the controller when the process has one,
// else in the unified v2 hierarchy. Where the hierarchy is mounted more
// than once, it uses the first mount that shows the group (whose root is
// the group's path or above it), else the first mount. It reports false
// where /proc/self/cgroup or /proc/self/mountinfo cannot be read or name no
// such hierarchy.
func Find(read Reader, controller string) (Group, bool) {
	data, err := read("/proc/self/cgroup")
	if err != nil {
		return Group{}, false
	}
	v1, v2 := ParseCgroup(data, controller)
	data, err = read("/proc/self/mountinfo")
	if err != nil {
		return Group{}, false
	}
	// The hierarchy may be mounted more than once, each mount showing a
	// sub-tree: the first mount that shows the group wins, else the first
	// mount of the hierarchy.
	var first *Mount
	var cgPath string
	for _, m := range ParseMountinfo(data) {
		switch {
		case v1 != "" && m.FSType == "cgroup" && HasOpt(m.SuperOpts, controller):
			cgPath = v1
		case v1 == "" && v2 != "" && m.FSType == "cgroup2":
			cgPath = v2
		default:
			continue
		}
		if _, ok := below(m.Root, cgPath); ok {
			return locate(m, cgPath, v1 == "")
		}
		if first == nil {
			first = &m
		}
	}
	if first != nil {
		return locate(*first, cgPath, v1 == "")
	}
	return Group{}, false
}

// below returns cgPath relative to a mount's root ("/" for the root
// itself), whole components matched (a root /docker/f00 is not above
// /docker/f001), and whether cgPath is at or below root.
func below(root, cgPath string) (string, bool) {
	root = strings.TrimSuffix(root, "/")
	if root == "" {
		return cgPath, true
	}
	switch after, ok := strings.CutPrefix(cgPath, root); {
	case ok && after == "":
		return "/", true
	case ok && strings.HasPrefix(after, "/"):
		return after, true
	}
	return "", false
}

// locate places the group at path cgPath of its hierarchy under mount m.
func locate(m Mount, cgPath string, v2 bool) (Group, bool) {
	// Without a cgroup namespace the mount may show only a sub-tree: the
	// path is then below the mount's root. A path outside the root is the
	// mount's top.
	rel, ok := below(m.Root, cgPath)
	if !ok {
		rel = "/"
	}
	if !strings.HasPrefix(m.Point, "/") {
		return Group{}, false
	}
	top := path.Clean(m.Point)
	// Clean("/"+rel) cannot climb above top.
	return Group{Dir: path.Join(top, path.Clean("/"+rel)), Top: top, V2: v2}, true
}

// Up yields the group's directory and each parent up to the mount point.
func (g Group) Up() iter.Seq[string] {
	return func(yield func(string) bool) {
		for dir := g.Dir; ; dir = path.Dir(dir) {
			if !yield(dir) || dir == g.Top || len(dir) <= len(g.Top) {
				return
			}
		}
	}
}

// ParseCgroup parses /proc/self/cgroup ("id:controllers:path" per line):
// v1 is the path of the v1 hierarchy that holds controller, v2 the path in
// the unified hierarchy ("0::path"); either may be empty.
func ParseCgroup(data []byte, controller string) (v1, v2 string) {
	for line := range strings.SplitSeq(string(data), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 || !strings.HasPrefix(f[2], "/") {
			continue
		}
		switch {
		case f[0] == "0" && f[1] == "":
			v2 = f[2]
		case HasOpt(f[1], controller):
			v1 = f[2]
		}
	}
	return v1, v2
}

// ParseMountinfo parses the fields Find needs from /proc/self/mountinfo:
// "id parent major:minor root mountpoint opts [optional...] - fstype
// source superopts". Lines of another shape are left out.
func ParseMountinfo(data []byte) []Mount {
	var ms []Mount
	for line := range strings.SplitSeq(string(data), "\n") {
		pre, post, found := strings.Cut(line, " - ")
		if !found {
			continue
		}
		a, b := strings.Fields(pre), strings.Fields(post)
		if len(a) < 5 || len(b) < 3 {
			continue
		}
		ms = append(ms, Mount{Root: unescape(a[3]), Point: unescape(a[4]), FSType: b[0], SuperOpts: b[2]})
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

// HasOpt says whether the comma-separated list holds opt.
func HasOpt(list, opt string) bool {
	for o := range strings.SplitSeq(list, ",") {
		if o == opt {
			return true
		}
	}
	return false
}
