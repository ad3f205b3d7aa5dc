package cgroup

import "testing"

// TestFindPrefersTheMountThatShowsTheGroup: the hierarchy is mounted twice,
// first a bind mount of another group's sub-tree, then the whole tree. The
// process's group is visible only in the second: Find must place it there,
// not at the top of the first mount, which is a group it is not in.
func TestFindPrefersTheMountThatShowsTheGroup(t *testing.T) {
	for _, tc := range []struct {
		name, cgroup, mountinfo, want string
		v2                            bool
	}{
		{
			name:   "v2",
			cgroup: "0::/kubepods/pod1/app\n",
			mountinfo: "50 22 0:37 /system.slice/other /mnt/other rw - cgroup2 cgroup2 rw\n" +
				"40 22 0:37 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
			want: "/sys/fs/cgroup/kubepods/pod1/app", v2: true,
		},
		{
			name:   "v1",
			cgroup: "4:memory:/docker/f00\n",
			mountinfo: "51 30 0:31 /docker/bar /mnt/bar rw - cgroup cgroup rw,memory\n" +
				"34 30 0:31 /docker/f00 /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n",
			want: "/sys/fs/cgroup/memory",
		},
	} {
		g, ok := Find(files(map[string]string{
			"/proc/self/cgroup":    tc.cgroup,
			"/proc/self/mountinfo": tc.mountinfo,
		}), "memory")
		if !ok || g.Dir != tc.want || g.V2 != tc.v2 {
			t.Errorf("%s: Find = %+v, %v; want Dir %q", tc.name, g, ok, tc.want)
		}
	}
}
