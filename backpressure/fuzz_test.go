package backpressure

import (
	"math"
	"os"
	"strings"
	"testing"
	"time"
)

// FuzzMachine drives the state machine with arbitrary pressures, second
// signals and time steps, and checks each step against the rules a simple
// model states directly.
func FuzzMachine(f *testing.F) {
	f.Add([]byte{100, 1, 0, 200, 1, 0, 240, 10, 0, 10, 200, 0, 10, 200, 0, 250, 1, 1})
	f.Add([]byte{230, 0, 0, 212, 255, 0, 214, 255, 0, 180, 255, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		c := defaultConfig()
		c.budget = 1000
		th := c.thresholds
		var m machine
		m.init()
		var now time.Duration
		// The model: since when pressure has been below Recover.
		belowSince := time.Duration(-1)
		for i := 0; i+2 < len(data); i += 3 {
			p := float64(data[i]) / 250 // 0 .. 1.02
			now += time.Duration(data[i+1]) * 10 * time.Millisecond
			sec := data[i+2]&1 == 1
			if p < th.Recover {
				if belowSince < 0 {
					belowSince = now
				}
			} else {
				belowSince = -1
			}
			prevSince := m.since
			from, to, changed := m.step(&c, now, inputs{pressure: p, secondary: sec})
			if changed != (from != to) || to != m.state || to < Normal || to > Probe {
				t.Fatalf("step %d: from %v to %v changed %v state %v", i/3, from, to, changed, m.state)
			}
			heldBelow := belowSince >= 0 && now-belowSince >= c.hold
			switch {
			case p >= th.Reject && to != Reject:
				t.Fatalf("pressure %.3f ≥ Reject but state %v", p, to)
			case to == Normal && (p >= th.Throttle || sec):
				t.Fatalf("Normal at pressure %.3f, second signal %v", p, sec)
			case from == Throttle && to == Normal && p >= th.Resume:
				t.Fatalf("Throttle → Normal at %.3f, not below Resume", p)
			case to == Probe && from != Probe && (from != Reject || !heldBelow):
				t.Fatalf("%v → Probe without a hold below Recover", from)
			case from == Reject && (to == Normal || to == Throttle):
				t.Fatalf("Reject → %v without Probe", to)
			case from == Probe && (to == Normal || to == Throttle) && (!heldBelow || now-prevSince < c.hold):
				t.Fatalf("Probe → %v before a hold time in Probe below Recover", to)
			case from == Normal && to == Throttle && p < th.Throttle && !sec:
				t.Fatalf("Normal → Throttle at %.3f with no second signal", p)
			case from == Reject && to == Reject && heldBelow:
				t.Fatalf("still Reject after a hold below Recover")
			}
		}
	})
}

// FuzzThresholds checks that validation accepts exactly the ordered
// thresholds and never panics.
func FuzzThresholds(f *testing.F) {
	f.Add(0.80, 0.75, 0.92, 0.85)
	f.Add(0.5, 0.6, 0.9, 0.8)
	f.Add(math.NaN(), 0.1, 0.2, 0.1)
	f.Fuzz(func(t *testing.T, throttle, resume, reject, recover float64) {
		th := Thresholds{Throttle: throttle, Resume: resume, Reject: reject, Recover: recover}
		in := func(v float64) bool { return v > 0 && v <= 1 }
		want := in(throttle) && in(resume) && in(reject) && in(recover) &&
			resume <= throttle && throttle < reject && recover < reject
		if got := th.validate() == nil; got != want {
			t.Fatalf("validate(%+v) ok = %v, want %v", th, got, want)
		}
	})
}

// FuzzCgroupFiles feeds arbitrary /proc/self/cgroup, mountinfo and limit
// contents to the budget detection: it must never panic, and a limit it
// returns must be a positive number below the "unlimited" range.
func FuzzCgroupFiles(f *testing.F) {
	f.Add("4:memory:/app\n", "34 30 0:31 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n", "1000000\n")
	f.Add("0::/a/b\n", "40 30 0:37 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n", "max\n")
	f.Add("0::/../../x\n", "40 30 0:37 /a /sys/fs/cg\\040x rw - cgroup2 cgroup2 rw\n", "9223372036854771712")
	f.Fuzz(func(t *testing.T, cgroup, mountinfo, limit string) {
		read := func(name string) ([]byte, error) {
			switch {
			case name == "/proc/self/cgroup":
				return []byte(cgroup), nil
			case name == "/proc/self/mountinfo":
				return []byte(mountinfo), nil
			case strings.HasSuffix(name, "/memory.max") || strings.HasSuffix(name, "/memory.limit_in_bytes"):
				return []byte(limit), nil
			}
			return nil, os.ErrNotExist
		}
		if v, ok := cgroupLimitFrom(read); ok && (v <= 0 || v >= hugeLimit) {
			t.Fatalf("cgroupLimit = %d", v)
		}
	})
}
