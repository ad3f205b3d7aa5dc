package storm_test

import (
	"context"
	"fmt"

	"github.com/shoal-go/shoal/bench/storm"
)

// A storm small enough for a unit test: three towers of six disks, light
// moves, under shoal with its default budget.
func ExampleConfig() {
	cfg := storm.DefaultConfig()
	cfg.Variant = storm.Shoal
	cfg.Disks, cfg.Towers = 6, 3
	cfg.Buffer, cfg.Rounds = 1024, 1
	res, err := storm.Run(context.Background(), cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.Solved, "of", res.Towers, "towers,", res.Moves, "moves")
	// Output: 3 of 3 towers, 189 moves
}

// Moves are numbered from 1; each names the disk and the pegs. A scheduler
// that keeps a tower's moves in order replays exactly this sequence.
func ExampleMove() {
	var largest storm.Move
	for m := uint64(1); m <= storm.Moves(4); m++ {
		if mv := storm.MoveAt(4, m); mv.Disk == 3 {
			largest = mv
		}
	}
	fmt.Printf("%+v\n", largest)
	// Output: {Index:8 Disk:3 From:0 To:2}
}

// A Result says whether every move arrived in order: any move applied out of
// order is refused by the pegs and counted as Illegal.
func ExampleResult() {
	cfg := storm.DefaultConfig()
	cfg.Disks, cfg.Towers = 5, 2
	cfg.Buffer, cfg.Rounds = 512, 1
	res, err := storm.Run(context.Background(), cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.Variant, res.Submitted == res.Moves, res.Applied, res.Illegal, res.Aborted)
	// Output: shoal true 62 0 false
}
