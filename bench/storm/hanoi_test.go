package storm

import (
	"errors"
	"testing"
)

func TestMovesSolveEveryTower(t *testing.T) {
	for n := 1; n <= 12; n++ {
		p, err := NewPegs(n)
		if err != nil {
			t.Fatal(err)
		}
		for m := uint64(1); m <= Moves(n); m++ {
			if err := p.Apply(MoveAt(n, m)); err != nil {
				t.Fatalf("n=%d: %v", n, err)
			}
		}
		if !p.Solved() || p.Moves() != Moves(n) {
			t.Fatalf("n=%d: solved %v after %d moves", n, p.Solved(), p.Moves())
		}
	}
}

func TestPegsRejectIllegalMoves(t *testing.T) {
	p, _ := NewPegs(3)
	for _, tc := range []struct {
		name string
		m    Move
	}{
		{"no such peg", Move{Index: 1, Disk: 0, From: 0, To: 3}},
		{"same peg", Move{Index: 1, Disk: 0, From: 0, To: 0}},
		{"empty source", Move{Index: 1, Disk: 0, From: 1, To: 2}},
		{"not the top disk", Move{Index: 1, Disk: 1, From: 0, To: 2}},
	} {
		if err := p.Apply(tc.m); !errors.Is(err, ErrIllegalMove) {
			t.Errorf("%s: Apply = %v, want ErrIllegalMove", tc.name, err)
		}
	}
	// Move 2 before move 1: disk 1 onto... disk 0 is on top, so it is refused.
	if err := p.Apply(MoveAt(3, 2)); !errors.Is(err, ErrIllegalMove) {
		t.Errorf("move 2 first: Apply = %v, want ErrIllegalMove", err)
	}
	// Larger onto smaller: disk 0 to peg 1, then disk 1 onto it.
	if err := p.Apply(Move{Index: 1, Disk: 0, From: 0, To: 1}); err != nil {
		t.Fatal(err)
	}
	var ill *IllegalMoveError
	if err := p.Apply(Move{Index: 2, Disk: 1, From: 0, To: 1}); !errors.As(err, &ill) || ill.Move.Disk != 1 {
		t.Errorf("larger onto smaller: Apply = %v, want *IllegalMoveError", err)
	}
	if p.Moves() != 1 || len(p.pegs[0]) != 2 || len(p.pegs[1]) != 1 {
		t.Errorf("a refused move changed the pegs: %v after %d moves", p.pegs, p.Moves())
	}
	if _, err := NewPegs(0); err == nil {
		t.Error("NewPegs(0) accepted")
	}
	if _, err := NewPegs(MaxDisks + 1); err == nil {
		t.Error("NewPegs(MaxDisks+1) accepted")
	}
}
