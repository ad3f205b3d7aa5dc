package main

import (
	"strings"
	"testing"

	"github.com/shoal-go/shoal/bench/storm"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestChildArgsRoundTrip(t *testing.T) {
	o, err := parse([]string{"-disks", "9", "-towers", "3", "-rounds", "4", "-budget", "64MiB", "-buffer", "4KiB"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := parse(childArgs(o, storm.Raw))
	if err != nil {
		t.Fatal(err)
	}
	if c.child != storm.Raw || c.cfg.Disks != 9 || c.cfg.Towers != 3 || c.cfg.Rounds != 4 || c.cfg.Budget != 64<<20 || c.cfg.Buffer != 4<<10 {
		t.Errorf("child sees %+v, want the parent's settings", c.cfg)
	}
}

func TestSideBySideShowsAKilledChild(t *testing.T) {
	o, _ := parse(nil)
	o.cgroup = true
	var b strings.Builder
	printSideBySide(&b, o, []outcome{
		{variant: storm.Shoal, res: &storm.Result{Variant: storm.Shoal, Towers: 4, Solved: 4, Budget: o.cfg.Budget}, cgroup: "/x", cgPeak: 200 << 20},
		{variant: storm.Raw, killed: "signal: killed", cgOOM: 1, cgroup: "/y", cgPeak: 512 << 20},
	})
	out := b.String()
	for _, want := range []string{"4 of 4", "killed by the kernel's OOM killer", "512 MiB / 1"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}
