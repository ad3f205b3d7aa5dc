package storm_test

import (
	"context"
	"fmt"

	"github.com/shoal-go/shoal/bench/storm"
)

func ExamplePegs() {
	p, _ := storm.NewPegs(3)
	for m := uint64(1); m <= storm.Moves(3); m++ {
		if err := p.Apply(storm.MoveAt(3, m)); err != nil {
			fmt.Println(err)
		}
	}
	fmt.Println("solved:", p.Solved(), "in", p.Moves(), "moves")
	// Moving disk 1 off the solved tower is refused: disk 0 is on top.
	fmt.Println(p.Apply(storm.Move{Index: 8, Disk: 1, From: 2, To: 0}))
	// Output:
	// solved: true in 7 moves
	// storm: illegal move 8 (disk 1, peg 2 → 0): disk 0 is on top of the source peg
}

func ExampleMoveAt() {
	for m := uint64(1); m <= storm.Moves(2); m++ {
		mv := storm.MoveAt(2, m)
		fmt.Printf("move %d: disk %d from peg %d to peg %d\n", mv.Index, mv.Disk, mv.From, mv.To)
	}
	// Output:
	// move 1: disk 0 from peg 0 to peg 1
	// move 2: disk 1 from peg 0 to peg 2
	// move 3: disk 0 from peg 1 to peg 2
}

func ExampleRun() {
	cfg := storm.DefaultConfig()
	cfg.Disks, cfg.Towers = 8, 2
	res, err := storm.Run(context.Background(), cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s: %d of %d towers solved, %d illegal moves\n", res.Variant, res.Solved, res.Towers, res.Illegal)
	// Output:
	// shoal: 2 of 2 towers solved, 0 illegal moves
}

func ExampleIllegalMoveError() {
	p, _ := storm.NewPegs(2)
	err := p.Apply(storm.MoveAt(2, 2)) // move 2 before move 1
	fmt.Println(err)
	// Output:
	// storm: illegal move 2 (disk 1, peg 0 → 2): disk 0 is on top of the source peg
}
