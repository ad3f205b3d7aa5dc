package main

import (
	"testing"

	"github.com/shoal-go/shoal/bench/storm"
)

// TestSoundVerdict: a shoal storm whose towers all ended solved
// is still a failure when a move was illegal (run twice, or lettered), the
// child reported an error, or not every move was applied.
func TestSoundVerdict(t *testing.T) {
	good := storm.Result{Variant: storm.Shoal, Towers: 4, Solved: 4, Moves: 100, Submitted: 100, Applied: 100}
	if !(outcome{variant: storm.Shoal, res: &good}).sound() {
		t.Fatal("a clean run is not sound")
	}
	dup, failed, short := good, good, good
	dup.Illegal = 1
	failed.Error = "storm: close: boom"
	short.Applied = 99
	for name, r := range map[string]storm.Result{"a move run twice": dup, "a child error": failed, "a move not applied": short} {
		if (outcome{variant: storm.Shoal, res: &r}).sound() {
			t.Errorf("%s, every tower solved: sound", name)
		}
	}
	if (outcome{variant: storm.Shoal}).sound() {
		t.Error("no report: sound")
	}
}
