//go:build linux

package pool

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoal-go/shoal/internal/cgroup/cgrouptest"
)

// quotaChildEnv marks the test binary run by TestCPUBoundUnderQuota.
const quotaChildEnv = "SHOAL_QUOTA_CHILD"

// TestCPUBoundUnderQuota runs CPU-bound tasks (200 µs each, 3,000 a
// second: 0.6 CPU) in a child process inside a cgroup whose CPU quota is
// half a CPU, with the pool's defaults on GOMAXPROCS processors. Judged
// against the processors, such a throttled process looks idle most of the
// time, and the pool grew to 675–1,024 workers that only queued for the
// quota; judged against the quota, and taking a monitor that ticks late
// for a contended processor, it stays near GOMAXPROCS. It needs root and
// a writable cgroup (the v1 cpu controller, or v2 with cpu delegated);
// elsewhere it is skipped.
func TestCPUBoundUnderQuota(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a child for about two seconds")
	}
	parent, v2, err := cgrouptest.Parent("cpu", "cpu.cfs_quota_us", "cpu.max")
	if err != nil {
		t.Skipf("no writable cpu cgroup: %v", err)
	}
	dir := filepath.Join(parent, fmt.Sprintf("shoal-quota-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Errorf("removing cgroup %s: %v", dir, err)
		}
	})
	if v2 {
		cgrouptest.Write(t, dir, "cpu.max", "50000 100000")
	} else {
		cgrouptest.Write(t, dir, "cpu.cfs_period_us", "100000")
		cgrouptest.Write(t, dir, "cpu.cfs_quota_us", "50000")
	}
	// A shell joins the cgroup, then runs the test binary's child test.
	cmd := exec.Command("/bin/sh", "-c", `echo $$ > "$0/cgroup.procs" && exec "$@"`,
		dir, os.Args[0], "-test.run=^TestQuotaChild$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), quotaChildEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	var capacity, peak, done int64
	found := false
	for line := range strings.SplitSeq(string(out), "\n") {
		if _, err := fmt.Sscanf(strings.TrimSpace(line), "quota-child: capacity %d peak %d done %d", &capacity, &peak, &done); err == nil {
			found = true
		}
	}
	if !found {
		t.Fatalf("no report from the child:\n%s", out)
	}
	t.Logf("capacity %d, peak workers %d, %d tasks done", capacity, peak, done)
	if capacity <= 0 || capacity > 500 {
		// 500, or less where a parent of the test's cgroup is tighter.
		t.Errorf("capacity %d, want 500 (the quota, in thousandths of a CPU)", capacity)
	}
	if peak > 32 {
		t.Errorf("peak %d workers for CPU-bound tasks under a quota of half a CPU, want at most 32", peak)
	}
	if done < 1000 {
		t.Errorf("%d tasks done, want at least 1,000", done)
	}
}

// TestQuotaChild is the child of TestCPUBoundUnderQuota; run alone it is
// skipped.
func TestQuotaChild(t *testing.T) {
	if os.Getenv(quotaChildEnv) == "" {
		t.Skip("the child of TestCPUBoundUnderQuota")
	}
	p, err := New[int]()
	if err != nil {
		t.Fatal(err)
	}
	var done atomic.Int64
	stopWatch := watchPeakWorkers(p)
	spin := func(d time.Duration) {
		for end := time.Now().Add(d); time.Now().Before(end); {
		}
	}
	// 3,000 tasks a second over 1,000 groups, each due at its time.
	const every = time.Second / 3000
	start := time.Now()
	for n := 0; time.Since(start) < 1500*time.Millisecond; n++ {
		if d := time.Until(start.Add(time.Duration(n) * every)); d > 0 {
			time.Sleep(d) // paces the load; nothing waits on it
		}
		if err := p.Submit(context.Background(), n%1000, func(context.Context) error {
			spin(200 * time.Microsecond)
			done.Add(1)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	peak := stopWatch()
	capacity := p.c.ctl.capacity
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("quota-child: capacity %d peak %d done %d\n", capacity, peak, done.Load())
}
