package backpressure

import (
	"os"
	"testing"
)

func TestCgroupLimit(t *testing.T) {
	const (
		v1Mount = "34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
		v2Mount = "40 22 0:37 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"
		unified = "40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
	)
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  int64 // 0: none
	}{
		{
			name: "v1 leaf",
			files: map[string]string{
				"/proc/self/cgroup":    "4:memory:/process_api/abc\n3:cpuset:/\n0::/\n",
				"/proc/self/mountinfo": v1Mount + unified,
				"/sys/fs/cgroup/memory/process_api/abc/memory.limit_in_bytes": "268435456\n",
				"/sys/fs/cgroup/memory/process_api/memory.limit_in_bytes":     "9223372036854771712\n",
				"/sys/fs/cgroup/memory/memory.limit_in_bytes":                 "9223372036854771712\n",
				"/sys/fs/cgroup/unified/memory.max":                           "1000\n", // v1 owns memory
			},
			want: 256 << 20,
		},
		{
			name: "v1 parent tighter",
			files: map[string]string{
				"/proc/self/cgroup":                               "7:memory,hugetlb:/a/b\n",
				"/proc/self/mountinfo":                            "34 30 0:31 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,hugetlb,memory\n",
				"/sys/fs/cgroup/memory/a/b/memory.limit_in_bytes": "900000000\n",
				"/sys/fs/cgroup/memory/a/memory.limit_in_bytes":   "500000000\n",
			},
			want: 500000000,
		},
		{
			name: "v1 unlimited",
			files: map[string]string{
				"/proc/self/cgroup":                           "4:memory:/\n",
				"/proc/self/mountinfo":                        v1Mount,
				"/sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n",
			},
		},
		{
			name: "v1 without a namespace: mount root is the cgroup",
			files: map[string]string{
				"/proc/self/cgroup":                           "4:memory:/docker/f00\n",
				"/proc/self/mountinfo":                        "34 30 0:31 /docker/f00 /sys/fs/cgroup/memory ro - cgroup cgroup rw,memory\n",
				"/sys/fs/cgroup/memory/memory.limit_in_bytes": "123456789\n",
			},
			want: 123456789,
		},
		{
			name: "v2 leaf max, parent limited",
			files: map[string]string{
				"/proc/self/cgroup":    "0::/system.slice/app.service\n",
				"/proc/self/mountinfo": v2Mount,
				"/sys/fs/cgroup/system.slice/app.service/memory.max": "max\n",
				"/sys/fs/cgroup/system.slice/memory.max":             "536870912\n",
			},
			want: 512 << 20,
		},
		{
			name: "v2 namespace root",
			files: map[string]string{
				"/proc/self/cgroup":         "0::/\n",
				"/proc/self/mountinfo":      v2Mount,
				"/sys/fs/cgroup/memory.max": "1073741824\n",
			},
			want: 1 << 30,
		},
		{
			name: "v2 max everywhere",
			files: map[string]string{
				"/proc/self/cgroup":           "0::/a\n",
				"/proc/self/mountinfo":        v2Mount,
				"/sys/fs/cgroup/a/memory.max": "max\n",
			},
		},
		{
			name: "escaped mount point",
			files: map[string]string{
				"/proc/self/cgroup":      "0::/a\n",
				"/proc/self/mountinfo":   "40 22 0:37 / /mnt/cg\\040x rw - cgroup2 none rw\n",
				"/mnt/cg x/a/memory.max": "4096\n",
			},
			want: 4096,
		},
		{
			name: "path cannot climb out of the mount",
			files: map[string]string{
				"/proc/self/cgroup":    "0::/../../etc\n",
				"/proc/self/mountinfo": v2Mount,
				"/etc/memory.max":      "4096\n",
			},
		},
		{
			name: "garbage limit",
			files: map[string]string{
				"/proc/self/cgroup":         "0::/\n",
				"/proc/self/mountinfo":      v2Mount,
				"/sys/fs/cgroup/memory.max": "lots\n",
			},
		},
		{
			name: "no memory controller mounted",
			files: map[string]string{
				"/proc/self/cgroup":    "4:memory:/a\n",
				"/proc/self/mountinfo": v2Mount,
			},
		},
		{name: "nothing readable", files: map[string]string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			read := func(name string) ([]byte, error) {
				if d, ok := tc.files[name]; ok {
					return []byte(d), nil
				}
				return nil, os.ErrNotExist
			}
			got, ok := cgroupLimitFrom(read)
			if ok != (tc.want != 0) || got != tc.want {
				t.Fatalf("cgroupLimit = %d, %v; want %d", got, ok, tc.want)
			}
		})
	}
}

func TestCgroupUsage(t *testing.T) {
	for _, tc := range []struct {
		name  string
		v2    bool
		files map[string]string
		want  int64
		ok    bool
	}{
		{
			name: "v1 less inactive file",
			files: map[string]string{
				"/cg/memory.usage_in_bytes": "1000000\n",
				"/cg/memory.stat":           "cache 5\ninactive_file 7\ntotal_inactive_file 300000\n",
			},
			want: 700000, ok: true,
		},
		{
			name: "v2 less inactive file",
			v2:   true,
			files: map[string]string{
				"/cg/memory.current": "1000000\n",
				"/cg/memory.stat":    "anon 600000\ninactive_file 250000\nactive_file 1\n",
			},
			want: 750000, ok: true,
		},
		{
			name:  "no memory.stat",
			v2:    true,
			files: map[string]string{"/cg/memory.current": "4096\n"},
			want:  4096, ok: true,
		},
		{
			name: "inactive above usage",
			files: map[string]string{
				"/cg/memory.usage_in_bytes": "10\n",
				"/cg/memory.stat":           "total_inactive_file 300\n",
			},
			want: 0, ok: true,
		},
		{name: "garbage", v2: true, files: map[string]string{"/cg/memory.current": "much\n"}},
		{name: "missing", files: map[string]string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cg := memCgroup{dir: "/cg", v2: tc.v2, read: func(name string) ([]byte, error) {
				if d, ok := tc.files[name]; ok {
					return []byte(d), nil
				}
				return nil, os.ErrNotExist
			}}
			got, ok := cg.usage()
			if got != tc.want || ok != tc.ok {
				t.Fatalf("usage = %d, %v; want %d, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}
