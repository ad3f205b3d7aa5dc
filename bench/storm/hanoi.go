package storm

import (
	"errors"
	"fmt"
	"math/bits"
)

// ErrIllegalMove is matched (errors.Is) by every *IllegalMoveError.
var ErrIllegalMove = errors.New("storm: illegal move")

// MaxDisks is the largest tower Pegs models: 2^30 − 1 moves.
const MaxDisks = 30

// Move is one move of the optimal solution of the Towers of Hanoi: disk Disk
// (0 is the smallest) from peg From to peg To. Index is its place in the
// solution, from 1.
type Move struct {
	// Index is the move's place in the solution, from 1.
	Index uint32
	// Disk is the disk moved, 0 the smallest.
	Disk uint8
	// From and To are the pegs, 0 to 2.
	From, To uint8
}

// Moves returns the number of moves that solve a tower of n disks: 2^n − 1.
func Moves(n int) uint64 { return 1<<uint(n) - 1 }

// MoveAt returns move m (1 ≤ m ≤ 2^n − 1) of the optimal solution that
// carries a tower of n disks from peg 0 to peg 2. Any m can be computed
// without the others: the disk is the number of trailing zero bits of m, and
// the pegs follow from m's bits (the smallest disk cycles in one direction,
// the others move in the only legal way).
func MoveAt(n int, m uint64) Move {
	from := (m & (m - 1)) % 3
	to := ((m | (m - 1)) + 1) % 3
	if n%2 == 0 {
		// The formula carries an even tower to peg 1: swap pegs 1 and 2.
		from, to = swap12(from), swap12(to)
	}
	return Move{Index: uint32(m), Disk: uint8(bits.TrailingZeros64(m)), From: uint8(from), To: uint8(to)}
}

func swap12(p uint64) uint64 {
	switch p {
	case 1:
		return 2
	case 2:
		return 1
	}
	return p
}

// IllegalMoveError says why Pegs refused a move.
type IllegalMoveError struct {
	// Move is the refused move.
	Move Move
	// Reason says which rule it broke.
	Reason string
}

// Error implements error.
func (e *IllegalMoveError) Error() string {
	return fmt.Sprintf("storm: illegal move %d (disk %d, peg %d → %d): %s", e.Move.Index, e.Move.Disk, e.Move.From, e.Move.To, e.Reason)
}

// Is makes errors.Is(err, ErrIllegalMove) true.
func (e *IllegalMoveError) Is(target error) bool { return target == ErrIllegalMove }

// Pegs is the state of one tower: three pegs holding disks, the largest at
// the bottom. It refuses every move the rules forbid and leaves its state
// unchanged when it does. Pegs is not safe for concurrent use: the scheduler
// that applies a tower's moves must run them one at a time.
type Pegs struct {
	n     int
	pegs  [3][]uint8
	moves uint64
}

// NewPegs returns a tower of n disks (1 ≤ n ≤ MaxDisks) on peg 0.
func NewPegs(n int) (*Pegs, error) {
	if n < 1 || n > MaxDisks {
		return nil, fmt.Errorf("storm: %d disks, want 1 to %d", n, MaxDisks)
	}
	p := &Pegs{n: n}
	for d := n - 1; d >= 0; d-- {
		p.pegs[0] = append(p.pegs[0], uint8(d))
	}
	return p, nil
}

// Apply makes move m, or returns an *IllegalMoveError and changes nothing: a
// peg out of range, a move onto the same peg, an empty source peg, a top disk
// that is not m.Disk, or a larger disk onto a smaller one.
func (p *Pegs) Apply(m Move) error {
	bad := func(reason string) error { return &IllegalMoveError{Move: m, Reason: reason} }
	switch {
	case m.From > 2 || m.To > 2:
		return bad("no such peg")
	case m.From == m.To:
		return bad("source and target are the same peg")
	case len(p.pegs[m.From]) == 0:
		return bad("source peg is empty")
	}
	src := p.pegs[m.From]
	top := src[len(src)-1]
	if top != m.Disk {
		return bad(fmt.Sprintf("disk %d is on top of the source peg", top))
	}
	if dst := p.pegs[m.To]; len(dst) > 0 && dst[len(dst)-1] < top {
		return bad(fmt.Sprintf("disk %d would cover the smaller disk %d", top, dst[len(dst)-1]))
	}
	p.pegs[m.From] = src[:len(src)-1]
	p.pegs[m.To] = append(p.pegs[m.To], top)
	p.moves++
	return nil
}

// Moves returns the number of moves applied.
func (p *Pegs) Moves() uint64 { return p.moves }

// Solved reports whether every disk is on peg 2.
func (p *Pegs) Solved() bool { return len(p.pegs[2]) == p.n }
