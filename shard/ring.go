package shard

import (
	"errors"
	"fmt"
	"math/bits"
	"slices"

	"github.com/cespare/xxhash/v2"
)

// Errors returned by NewRing, Ring.Add, Ring.Remove and WithTableSize. They
// are wrapped with the offending value; match them with errors.Is.
var (
	ErrNoMembers       = errors.New("shard: ring needs at least one member")
	ErrEmptyMember     = errors.New("shard: member name is empty")
	ErrDuplicateMember = errors.New("shard: duplicate member name")
	ErrUnknownMember   = errors.New("shard: no such member")
	ErrTooManyMembers  = errors.New("shard: more members than the ring allows")
	ErrBadTableSize    = errors.New("shard: bad ring table size")
)

const (
	// DefaultTableSize is the number of slots of a Ring's lookup table unless
	// WithTableSize says otherwise: the Mersenne prime 2^17-1, 256 KiB of
	// table. At 64 members, over every single removal or addition measured,
	// at most 0.4 % of the keys that could stay moved on removal, and an
	// addition moved at most 1.28 times the optimal 1/(n+1) of keys.
	DefaultTableSize = 1<<17 - 1

	// MaxTableSize is the largest table WithTableSize accepts.
	MaxTableSize = 1<<26 - 5 // prime

	// MaxMembers is the largest number of members a Ring holds; members are
	// stored as 16-bit indices in the table.
	MaxMembers = 1<<16 - 1
)

// RingOption configures NewRing.
type RingOption interface {
	apply(*ringConfig) error
}

type ringConfig struct {
	tableSize int
}

type ringOptionFunc func(*ringConfig) error

func (f ringOptionFunc) apply(c *ringConfig) error { return f(c) }

// WithTableSize sets the number of slots of the lookup table; it is rounded up
// to the next prime. Balance and the keys moved needlessly on a membership
// change both improve as the table grows relative to the number of members;
// the extra movement grows roughly as members/slots. Keep the table above
// 2000 times the largest membership the ring will have for well under 1 %
// extra movement (the default suits about 64 members), and above 100 times it
// at the very least. Every node that must agree on routing must use the same
// size. The smallest table has 2 slots; sizes below 1 or above MaxTableSize
// make NewRing return an error wrapping ErrBadTableSize.
func WithTableSize(slots int) RingOption {
	return ringOptionFunc(func(c *ringConfig) error {
		if slots < 1 || slots > MaxTableSize {
			return fmt.Errorf("%w: %d slots, want 1 to %d", ErrBadTableSize, slots, MaxTableSize)
		}
		c.tableSize = nextPrime(slots)
		return nil
	})
}

// Ring routes hashes to named members, such as the nodes of a cluster, with
// Maglev hashing (Eisenbud et al., "Maglev: A Fast and Reliable Software
// Network Load Balancer", NSDI 2016).
//
// Why Maglev: a lookup is one multiplication and one load from a table of M
// slots (DefaultTableSize), a few nanoseconds whatever the number of members,
// and each member owns M/n slots give or take one, so load is balanced up to
// the randomness of the keys themselves. Rendezvous hashing moves the
// theoretical minimum of keys on every change, but costs one hash per member
// on every lookup, O(n), which at hundreds of members is the slowest step of
// routing a task; a ring of virtual nodes is O(log n) and balances worse
// (max/mean ≈ 1.26 with 160 virtual nodes per member). Maglev's price is a little extra movement on
// membership changes: besides the keys that must move, a small fraction of the
// others move too, and that fraction shrinks as M grows relative to n (at 64
// members and the default M, under 0.4 % of the others on removal, and at
// most 1.28 times the optimal 1/(n+1) of keys on addition). It also costs a
// rebuild of the table on every change, O(M log M) time (a few milliseconds
// at the default M), which is fine for cluster membership but not for
// per-request churn.
//
// The table depends only on the set of member names and M, not on the order
// in which members were given or added: every node that knows the same
// members builds the same table.
//
// A Ring is immutable: Add and Remove return a new Ring and leave the old one
// untouched, so a Ring may be used from any number of goroutines, and a
// membership change can be published with an atomic.Pointer[Ring].
type Ring struct {
	members []string // sorted
	table   []uint16 // slot -> index into members
}

// NewRing builds a ring over members. It returns an error wrapping
// ErrNoMembers if there are none, ErrEmptyMember or ErrDuplicateMember for a
// bad name, ErrTooManyMembers if there are more members than MaxMembers or
// than table slots, and ErrBadTableSize for a bad WithTableSize. members is
// not retained.
func NewRing(members []string, opts ...RingOption) (*Ring, error) {
	cfg := ringConfig{tableSize: DefaultTableSize}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o.apply(&cfg); err != nil {
			return nil, err
		}
	}
	sorted := slices.Clone(members)
	slices.Sort(sorted)
	if err := checkMembers(sorted, cfg.tableSize); err != nil {
		return nil, err
	}
	return build(sorted, cfg.tableSize), nil
}

func checkMembers(sorted []string, tableSize int) error {
	if len(sorted) == 0 {
		return ErrNoMembers
	}
	if len(sorted) > MaxMembers || len(sorted) > tableSize {
		return fmt.Errorf("%w: %d members, table of %d slots, at most %d members",
			ErrTooManyMembers, len(sorted), tableSize, min(MaxMembers, tableSize))
	}
	for i, m := range sorted {
		if m == "" {
			return ErrEmptyMember
		}
		if i > 0 && sorted[i-1] == m {
			return fmt.Errorf("%w: %q", ErrDuplicateMember, m)
		}
	}
	return nil
}

// build fills the Maglev table: members take turns, in name order, claiming
// the next free slot of their own permutation of the slots, until every slot
// is taken. A member's permutation is offset, offset+skip, offset+2*skip, ...
// modulo M; with M prime and 0 < skip < M it visits every slot.
func build(sorted []string, m int) *Ring {
	n := len(sorted)
	const free = 1<<16 - 1 // never a member index: n <= MaxMembers
	table := make([]uint16, m)
	for i := range table {
		table[i] = free
	}
	pos := make([]uint64, n)  // next slot each member tries
	skip := make([]uint64, n) // its step
	for i, name := range sorted {
		h := xxhash.Sum64String(name)
		pos[i] = Mix64(h) % uint64(m)
		skip[i] = Mix64(h^0x6a09e667f3bcc909)%uint64(m-1) + 1 // m >= 2
	}
	um := uint64(m)
	for filled := 0; ; {
		for i := range n {
			c := pos[i]
			for table[c] != free {
				c += skip[i]
				if c >= um {
					c -= um
				}
			}
			table[c] = uint16(i)
			c += skip[i]
			if c >= um {
				c -= um
			}
			pos[i] = c
			if filled++; filled == m {
				return &Ring{members: sorted, table: table}
			}
		}
	}
}

// Lookup returns the member that owns hash h, such as the output of Hash. It
// does not allocate. The hash is mapped onto the table by its high bits
// (multiply-shift), so h must be well mixed. A zero Ring returns "".
func (r *Ring) Lookup(h uint64) string {
	if r == nil || len(r.table) == 0 {
		return ""
	}
	slot, _ := bits.Mul64(h, uint64(len(r.table)))
	return r.members[r.table[slot]]
}

// Members returns the member names in sorted order. The slice is a copy.
func (r *Ring) Members() []string {
	if r == nil {
		return nil
	}
	return slices.Clone(r.members)
}

// TableSize returns the number of slots of the ring's lookup table.
func (r *Ring) TableSize() int {
	if r == nil {
		return 0
	}
	return len(r.table)
}

// Add returns a new ring with member added and the same table size; r is
// unchanged. An empty name, a name already present or one member too many is
// an error (ErrEmptyMember, ErrDuplicateMember, ErrTooManyMembers). On a nil
// or zero Ring, Add is NewRing([]string{member}).
func (r *Ring) Add(member string) (*Ring, error) {
	if r == nil || len(r.table) == 0 {
		return NewRing([]string{member})
	}
	i, found := slices.BinarySearch(r.members, member)
	if found {
		return nil, fmt.Errorf("%w: %q", ErrDuplicateMember, member)
	}
	sorted := slices.Insert(slices.Clone(r.members), i, member)
	if err := checkMembers(sorted, len(r.table)); err != nil {
		return nil, err
	}
	return build(sorted, len(r.table)), nil
}

// Remove returns a new ring without member and with the same table size; r
// is unchanged. An unknown name is an error wrapping ErrUnknownMember;
// removing the last member is an error wrapping ErrNoMembers.
func (r *Ring) Remove(member string) (*Ring, error) {
	if r == nil {
		return nil, fmt.Errorf("%w: %q", ErrUnknownMember, member)
	}
	i, found := slices.BinarySearch(r.members, member)
	if !found {
		return nil, fmt.Errorf("%w: %q", ErrUnknownMember, member)
	}
	if len(r.members) == 1 {
		return nil, fmt.Errorf("%w: cannot remove %q, the last member", ErrNoMembers, member)
	}
	sorted := slices.Delete(slices.Clone(r.members), i, i+1)
	return build(sorted, len(r.table)), nil
}

// nextPrime returns the smallest prime >= n, for n >= 1.
func nextPrime(n int) int {
	if n <= 2 {
		return 2
	}
	if n%2 == 0 {
		n++
	}
	for ; !isPrime(n); n += 2 {
	}
	return n
}

func isPrime(n int) bool {
	if n < 2 {
		return false
	}
	for d := 2; d*d <= n; d++ {
		if n%d == 0 {
			return false
		}
	}
	return true
}
