package backpressure

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/shoal-go/shoal/internal/cgroup/cgrouptest"
)

// stormLimit is the cgroup memory limit of the survival test.
const stormLimit = 256 << 20

// TestSurvivalUnderCgroupLimit runs a storm of goroutines, each allocating
// and holding 64 KiB, in a child process inside a cgroup limited to 256 MiB:
// admitted through a Breaker it must exit 0 every time with no OOM kill and
// a peak below the limit; started unasked (the control) it must be
// OOM-killed. It needs root and a writable cgroup (v1 memory controller or
// v2 with memory.max); elsewhere it is skipped.
func TestSurvivalUnderCgroupLimit(t *testing.T) {
	parent, v2, err := cgrouptest.Parent("memory", "memory.limit_in_bytes", "memory.max")
	if err != nil {
		t.Skipf("no writable memory cgroup: %v", err)
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command to build the child: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "stormchild")
	build := exec.Command(gobin, "build", "-o", bin, "./internal/stormchild")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the child: %v\n%s", err, out)
	}

	runs := 10
	if testing.Short() {
		runs = 3
	}
	for i := range runs {
		res := runStorm(t, parent, v2, fmt.Sprintf("shoal-storm-%d-%d", os.Getpid(), i), bin, "breaker")
		t.Logf("run %d: exit %v, oom_kill %d, peak %d MiB; %s", i, res.exit, res.oomKills, res.peak>>20, bytes.TrimSpace(res.stdout))
		if res.exit != nil || res.oomKills != 0 || res.peak >= stormLimit {
			t.Fatalf("run %d through the breaker: exit %v, oom_kill %d, peak %d of %d bytes; stderr: %s",
				i, res.exit, res.oomKills, res.peak, stormLimit, res.stderr)
		}
		var rep struct {
			Admitted, Refused int64
			Entered           [numStates]uint64
		}
		if err := json.Unmarshal(res.stdout, &rep); err != nil {
			t.Fatalf("run %d: report %q: %v", i, res.stdout, err)
		}
		// The storm must have met the breaker, and the breaker must have let
		// a fair share of the limit be used (1000 × 64 KiB ≈ 62 MiB).
		if rep.Refused == 0 || rep.Entered[Reject]+rep.Entered[Throttle] == 0 || rep.Admitted < 1000 {
			t.Fatalf("run %d: admitted %d, refused %d, entered %v: want a storm that met the breaker", i, rep.Admitted, rep.Refused, rep.Entered)
		}
	}

	res := runStorm(t, parent, v2, fmt.Sprintf("shoal-storm-%d-raw", os.Getpid()), bin, "raw")
	t.Logf("control: exit %v, oom_kill %d, peak %d MiB", res.exit, res.oomKills, res.peak>>20)
	var ee *exec.ExitError
	killed := errors.As(res.exit, &ee) && ee.Sys().(syscall.WaitStatus).Signal() == syscall.SIGKILL
	if !killed || res.oomKills == 0 {
		t.Fatalf("control without the breaker: exit %v, oom_kill %d: want killed by the OOM killer (does the limit bite?)", res.exit, res.oomKills)
	}
}

type stormResult struct {
	exit           error
	oomKills, peak int64
	stdout, stderr []byte
}

// runStorm creates a cgroup, runs the child in it from its first
// instruction (a shell joins the cgroup, then execs the child) and removes
// the cgroup.
func runStorm(t *testing.T, parent string, v2 bool, name, bin, mode string) stormResult {
	t.Helper()
	dir := filepath.Join(parent, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Errorf("removing cgroup %s: %v", dir, err)
		}
	})
	limit := strconv.Itoa(stormLimit)
	if v2 {
		cgrouptest.Write(t, dir, "memory.max", limit)
		optionalWrite(dir, "memory.swap.max", "0")
	} else {
		cgrouptest.Write(t, dir, "memory.limit_in_bytes", limit)
		optionalWrite(dir, "memory.memsw.limit_in_bytes", limit) // swap may not hide the limit
		optionalWrite(dir, "memory.swappiness", "0")
	}

	var stdout, stderr bytes.Buffer
	cmd := exec.Command("/bin/sh", "-c", `echo $$ > "$0/cgroup.procs" && exec "$@"`, dir, bin, "-mode", mode)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Env = childEnv()
	res := stormResult{exit: cmd.Run()}
	res.stdout, res.stderr = stdout.Bytes(), stderr.Bytes()
	if v2 {
		res.oomKills = keyedValue(t, dir, "memory.events", "oom_kill")
		res.peak = -1 // unknown: memory.peak exists from Linux 5.19 on
		if _, err := os.Stat(filepath.Join(dir, "memory.peak")); err == nil {
			res.peak = readInt(t, dir, "memory.peak")
		}
	} else {
		res.oomKills = keyedValue(t, dir, "memory.oom_control", "oom_kill")
		res.peak = readInt(t, dir, "memory.max_usage_in_bytes")
	}
	if err := os.Remove(dir); err != nil {
		t.Fatalf("removing cgroup %s: %v", dir, err)
	}
	return res
}

// childEnv is the environment without settings that change the Go
// runtime's memory behaviour.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GOMEMLIMIT=") && !strings.HasPrefix(kv, "GOGC=") && !strings.HasPrefix(kv, "GODEBUG=") {
			env = append(env, kv)
		}
	}
	return env
}

func optionalWrite(dir, file, value string) {
	_ = os.WriteFile(filepath.Join(dir, file), []byte(value), 0o644)
}

func readInt(t *testing.T, dir, file string) int64 {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		t.Fatal(err)
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// keyedValue reads "key value" lines, as in memory.events.
func keyedValue(t *testing.T, dir, file, key string) int64 {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if k, v, ok := strings.Cut(line, " "); ok && k == key {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("%s has no %s", file, key)
	return 0
}
