package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// cgroup is a memory-limited cgroup made for one child process.
type cgroup struct {
	dir string
	v2  bool
}

// newCgroup creates cgroup name with a memory limit of limit bytes and no
// swap: under the v1 memory controller if it is mounted and writable, else
// under cgroup v2 with the memory controller enabled at the root.
func newCgroup(name string, limit int64) (*cgroup, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("needs root")
	}
	lim := strconv.FormatInt(limit, 10)
	var errs []error
	if v1 := "/sys/fs/cgroup/memory"; exists(filepath.Join(v1, "memory.limit_in_bytes")) {
		c := &cgroup{dir: filepath.Join(v1, name)}
		err := c.make(map[string]string{"memory.limit_in_bytes": lim}, []string{"memory.memsw.limit_in_bytes"}, lim)
		if err == nil {
			return c, nil
		}
		errs = append(errs, fmt.Errorf("v1: %w", err))
	}
	for _, root := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"} {
		ctl, err := os.ReadFile(filepath.Join(root, "cgroup.subtree_control"))
		if err != nil {
			continue
		}
		if !strings.Contains(" "+string(ctl)+" ", " memory ") {
			errs = append(errs, fmt.Errorf("v2 at %s: memory controller not enabled for children", root))
			continue
		}
		c := &cgroup{dir: filepath.Join(root, name), v2: true}
		err = c.make(map[string]string{"memory.max": lim}, []string{"memory.swap.max"}, "0")
		if err == nil {
			return c, nil
		}
		errs = append(errs, fmt.Errorf("v2 at %s: %w", root, err))
	}
	if len(errs) == 0 {
		return nil, errors.New("no cgroup v1 memory controller or cgroup v2 hierarchy found")
	}
	return nil, errors.Join(errs...)
}

// make creates the directory and writes the required files; the optional
// ones (swap limits) are written with optValue where they exist.
func (c *cgroup) make(required map[string]string, optional []string, optValue string) error {
	if err := os.Mkdir(c.dir, 0o755); err != nil {
		return err
	}
	for f, v := range required {
		if err := os.WriteFile(filepath.Join(c.dir, f), []byte(v), 0); err != nil {
			_ = os.Remove(c.dir)
			return err
		}
	}
	for _, f := range optional {
		_ = os.WriteFile(filepath.Join(c.dir, f), []byte(optValue), 0)
	}
	return nil
}

// add moves process pid into the cgroup.
func (c *cgroup) add(pid int) error {
	return os.WriteFile(filepath.Join(c.dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0)
}

// stats returns the cgroup's peak memory usage and how many processes the
// kernel's OOM killer killed in it.
func (c *cgroup) stats() (peak int64, oomKills int) {
	peakFile, eventsFile := "memory.max_usage_in_bytes", "memory.oom_control"
	if c.v2 {
		peakFile, eventsFile = "memory.peak", "memory.events"
	}
	if b, err := os.ReadFile(filepath.Join(c.dir, peakFile)); err == nil {
		peak, _ = strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	}
	if f, err := os.Open(filepath.Join(c.dir, eventsFile)); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), " "); ok && k == "oom_kill" {
				oomKills, _ = strconv.Atoi(strings.TrimSpace(v))
			}
		}
	}
	return peak, oomKills
}

// remove deletes the cgroup. The kernel may take a moment to release a cgroup
// whose last process just exited, so it retries for up to two seconds.
func (c *cgroup) remove() error {
	var err error
	for range 100 {
		if err = os.Remove(c.dir); err == nil || errors.Is(err, os.ErrNotExist) {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return err
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
