package cgroup

import (
	"os"
	"slices"
	"testing"
)

// files is a Reader over a map of file contents.
func files(m map[string]string) Reader {
	return func(name string) ([]byte, error) {
		if d, ok := m[name]; ok {
			return []byte(d), nil
		}
		return nil, os.ErrNotExist
	}
}

const (
	v1CPU   = "35 30 0:32 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct\n"
	v1Mem   = "34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
	v2Root  = "40 22 0:37 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"
	unified = "41 30 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
)

func TestCPULimit(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  int64 // 0: none
	}{
		{
			name: "v1 half a CPU",
			files: map[string]string{
				"/proc/self/cgroup":    "5:cpu,cpuacct:/kubepods/pod1\n4:memory:/kubepods/pod1\n0::/\n",
				"/proc/self/mountinfo": v1Mem + v1CPU + unified,
				"/sys/fs/cgroup/cpu,cpuacct/kubepods/pod1/cpu.cfs_quota_us":  "50000\n",
				"/sys/fs/cgroup/cpu,cpuacct/kubepods/pod1/cpu.cfs_period_us": "100000\n",
				"/sys/fs/cgroup/cpu,cpuacct/kubepods/cpu.cfs_quota_us":       "-1\n",
				"/sys/fs/cgroup/cpu,cpuacct/kubepods/cpu.cfs_period_us":      "100000\n",
				"/sys/fs/cgroup/unified/cpu.max":                             "1000 100000\n", // v1 owns cpu
			},
			want: 500,
		},
		{
			name: "v1 parent tighter",
			files: map[string]string{
				"/proc/self/cgroup":                                "5:cpu,cpuacct:/a/b\n",
				"/proc/self/mountinfo":                             v1CPU,
				"/sys/fs/cgroup/cpu,cpuacct/a/b/cpu.cfs_quota_us":  "400000\n",
				"/sys/fs/cgroup/cpu,cpuacct/a/b/cpu.cfs_period_us": "100000\n",
				"/sys/fs/cgroup/cpu,cpuacct/a/cpu.cfs_quota_us":    "150000\n",
				"/sys/fs/cgroup/cpu,cpuacct/a/cpu.cfs_period_us":   "100000\n",
			},
			want: 1500,
		},
		{
			name: "v1 unlimited",
			files: map[string]string{
				"/proc/self/cgroup":                          "2:cpu:/\n",
				"/proc/self/mountinfo":                       "35 30 0:32 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n",
				"/sys/fs/cgroup/cpu/cpu.cfs_quota_us":        "-1\n",
				"/sys/fs/cgroup/cpu/cpu.cfs_period_us":       "100000\n",
				"/sys/fs/cgroup/cpu/shoalq/cpu.cfs_quota_us": "50000\n", // another group's
			},
		},
		{
			name: "v2 leaf max, parent limited",
			files: map[string]string{
				"/proc/self/cgroup":                  "0::/app/web\n",
				"/proc/self/mountinfo":               v2Root,
				"/sys/fs/cgroup/app/web/cpu.max":     "max 100000\n",
				"/sys/fs/cgroup/app/cpu.max":         "250000 100000\n",
				"/sys/fs/cgroup/cpu.max":             "garbage\n",
				"/sys/fs/cgroup/app/web/memory.max":  "max\n",
				"/sys/fs/cgroup/other/cpu.max":       "1000 100000\n",
				"/sys/fs/cgroup/app/web/cpu.max.tmp": "1 1\n",
			},
			want: 2500,
		},
		{
			name: "v2 in a namespace: the mount is the group",
			files: map[string]string{
				"/proc/self/cgroup":      "0::/\n",
				"/proc/self/mountinfo":   v2Root,
				"/sys/fs/cgroup/cpu.max": "20000 10000\n",
			},
			want: 2000,
		},
		{
			name: "v1 without a namespace: the mount root is the group",
			files: map[string]string{
				"/proc/self/cgroup":                    "3:cpu:/docker/f00\n",
				"/proc/self/mountinfo":                 "35 30 0:32 /docker/f00 /sys/fs/cgroup/cpu ro - cgroup cgroup rw,cpu\n",
				"/sys/fs/cgroup/cpu/cpu.cfs_quota_us":  "300000\n",
				"/sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000\n",
			},
			want: 3000,
		},
		{
			name: "a quota under a thousandth of a CPU",
			files: map[string]string{
				"/proc/self/cgroup":      "0::/\n",
				"/proc/self/mountinfo":   v2Root,
				"/sys/fs/cgroup/cpu.max": "1 1000000\n",
			},
			want: 1,
		},
		{
			name: "garbage and zeros",
			files: map[string]string{
				"/proc/self/cgroup":            "0::/a/b/c\n",
				"/proc/self/mountinfo":         v2Root,
				"/sys/fs/cgroup/a/b/c/cpu.max": "0 100000\n",
				"/sys/fs/cgroup/a/b/cpu.max":   "50000 0\n",
				"/sys/fs/cgroup/a/cpu.max":     "-5 100000\n",
				"/sys/fs/cgroup/cpu.max":       "50000\n",
			},
		},
		{
			name:  "no mountinfo",
			files: map[string]string{"/proc/self/cgroup": "0::/\n"},
		},
		{
			name:  "no cgroups",
			files: map[string]string{},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := CPULimit(files(tc.files))
			if ok != (tc.want != 0) || got != tc.want {
				t.Fatalf("CPULimit = %d, %v; want %d", got, ok, tc.want)
			}
		})
	}
}

// TestFindWalksUpToTheMount: the group of a controller's v1 hierarchy, or
// of the unified one, and its parents up to the mount point, never above.
func TestFindWalksUpToTheMount(t *testing.T) {
	read := files(map[string]string{
		"/proc/self/cgroup":    "5:cpu,cpuacct:/kubepods/pod1\n4:memory:/kubepods/pod1/c\n0::/u\n",
		"/proc/self/mountinfo": v1Mem + v1CPU + unified,
	})
	for _, tc := range []struct {
		controller string
		want       []string
		v2         bool
	}{
		{"cpu", []string{"/sys/fs/cgroup/cpu,cpuacct/kubepods/pod1", "/sys/fs/cgroup/cpu,cpuacct/kubepods", "/sys/fs/cgroup/cpu,cpuacct"}, false},
		{"memory", []string{"/sys/fs/cgroup/memory/kubepods/pod1/c", "/sys/fs/cgroup/memory/kubepods/pod1", "/sys/fs/cgroup/memory/kubepods", "/sys/fs/cgroup/memory"}, false},
		{"pids", []string{"/sys/fs/cgroup/unified/u", "/sys/fs/cgroup/unified"}, true},
	} {
		g, ok := Find(read, tc.controller)
		if !ok {
			t.Fatalf("%s: not found", tc.controller)
		}
		if got := slices.Collect(g.Up()); !slices.Equal(got, tc.want) || g.V2 != tc.v2 {
			t.Errorf("%s: Up = %q (v2 %v), want %q (v2 %v)", tc.controller, got, g.V2, tc.want, tc.v2)
		}
	}
	// A path that tries to climb above the mount stays inside it.
	g, ok := Find(files(map[string]string{
		"/proc/self/cgroup":    "0::/../../etc\n",
		"/proc/self/mountinfo": v2Root,
	}), "cpu")
	if !ok || g.Dir != "/sys/fs/cgroup/etc" {
		t.Fatalf("climbing path: %q, %v; want /sys/fs/cgroup/etc", g.Dir, ok)
	}
}

// TestFindBelowMountRoot: a mount that shows a sub-tree (its root is not
// "/") places the group below it by whole path components.
func TestFindBelowMountRoot(t *testing.T) {
	const mount = "34 30 0:31 /docker/f00 /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
	for _, tc := range []struct{ path, want string }{
		{"/docker/f00", "/sys/fs/cgroup/memory"},
		{"/docker/f00/", "/sys/fs/cgroup/memory"},
		{"/docker/f00/app", "/sys/fs/cgroup/memory/app"},
		{"/docker/f001/app", "/sys/fs/cgroup/memory"}, // another container's: not below the root
		{"/elsewhere", "/sys/fs/cgroup/memory"},
	} {
		g, ok := Find(files(map[string]string{
			"/proc/self/cgroup":    "4:memory:" + tc.path + "\n",
			"/proc/self/mountinfo": mount,
		}), "memory")
		if !ok || g.Dir != tc.want {
			t.Errorf("%s: %q, %v; want %q", tc.path, g.Dir, ok, tc.want)
		}
	}
}

// TestParseMountinfoUnescapes: mount points with spaces come escaped.
func TestParseMountinfoUnescapes(t *testing.T) {
	ms := ParseMountinfo([]byte("40 22 0:37 / /mnt/my\\040cgroup rw - cgroup2 cgroup2 rw\nshort line\n"))
	if len(ms) != 1 || ms[0].Point != "/mnt/my cgroup" || ms[0].FSType != "cgroup2" {
		t.Fatalf("ParseMountinfo = %+v", ms)
	}
}

// FuzzCPULimit: whatever the files say, CPULimit returns a positive quota
// or none, and never panics.
func FuzzCPULimit(f *testing.F) {
	f.Add("0::/a\n", v2Root, "50000 100000\n", "max 100000\n")
	f.Add("5:cpu,cpuacct:/a\n", v1CPU, "-1\n", "100000\n")
	f.Add("5:cpu:/a\n", "35 30 0:32 /a /x rw - cgroup cgroup cpu\n", "9223372036854775807\n", "1\n")
	f.Fuzz(func(t *testing.T, cg, mountinfo, a, b string) {
		read := files(map[string]string{
			"/proc/self/cgroup":                              "" + cg,
			"/proc/self/mountinfo":                           mountinfo,
			"/sys/fs/cgroup/a/cpu.max":                       a,
			"/sys/fs/cgroup/cpu.max":                         b,
			"/sys/fs/cgroup/cpu,cpuacct/a/cpu.cfs_quota_us":  a,
			"/sys/fs/cgroup/cpu,cpuacct/a/cpu.cfs_period_us": b,
			"/x/cpu.cfs_quota_us":                            a,
			"/x/cpu.cfs_period_us":                           b,
		})
		if v, ok := CPULimit(read); ok != (v > 0) {
			t.Fatalf("CPULimit = %d, %v", v, ok)
		}
	})
}
