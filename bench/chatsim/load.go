package chatsim

import (
	"math"
	"math/rand/v2"
	"time"
)

// fault is the failure a message is set up to meet.
type fault uint8

const (
	faultNone  fault = iota
	faultError       // persisting fails, on every attempt
	faultPanic       // the fan-out panics
)

// message is one chat message: its room, its place in the room, the room's
// size at the time, the simulated persist time, the failure injected into it,
// and when it is due (offset from the start of the run).
type message struct {
	room    uint32
	members int32
	fault   fault
	seq     uint64
	persist time.Duration
	due     time.Duration
}

// generator produces the arrivals of one run, in time order: a Poisson
// process whose rate follows the compressed day (thinning: candidates at the
// peak rate, kept with probability rate(t)/peak), rooms drawn from a Zipf
// distribution, sequence numbers per room. It is used by one goroutine.
type generator struct {
	rng      *rand.Rand
	zipf     *rand.Zipf
	day      day
	mean     float64 // messages per second, averaged over the day
	peak     float64 // mean × day.peak: the thinning envelope
	duration float64 // seconds
	t        float64 // seconds since the start, of the last candidate
	count    uint64  // messages returned by next
	seqs     []uint64
	members  []int32
	cfg      *Config
}

func newGenerator(cfg *Config) *generator {
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x5eed))
	g := &generator{
		rng:      rng,
		zipf:     rand.NewZipf(rng, cfg.ZipfS, cfg.ZipfV, uint64(cfg.Rooms-1)),
		day:      newDay(),
		mean:     cfg.Rate,
		duration: cfg.Duration.Seconds(),
		seqs:     make([]uint64, cfg.Rooms),
		members:  make([]int32, cfg.Rooms),
		cfg:      cfg,
	}
	g.peak = g.mean * g.day.peak
	// Room sizes: log-uniform between MinMembers and MaxMembers, from their
	// own stream so that they do not depend on the arrivals.
	sizes := rand.New(rand.NewPCG(cfg.Seed, 0x512e))
	lo, hi := float64(cfg.MinMembers), float64(cfg.MaxMembers)
	for r := range g.members {
		g.members[r] = int32(lo * math.Pow(hi/lo, sizes.Float64()))
	}
	return g
}

// rateAt returns the arrival rate (messages per second) at offset t seconds.
func (g *generator) rateAt(t float64) float64 {
	return g.mean * g.day.factor(t/g.duration)
}

// next returns the next message, or false once the run's duration is over.
func (g *generator) next() (message, bool) {
	for {
		g.t += g.rng.ExpFloat64() / g.peak
		if g.t >= g.duration {
			return message{}, false
		}
		if g.rng.Float64()*g.peak <= g.rateAt(g.t) {
			break
		}
	}
	room := uint32(g.zipf.Uint64())
	g.seqs[room]++
	m := message{
		room:    room,
		members: g.members[room],
		seq:     g.seqs[room],
		due:     time.Duration(g.t * float64(time.Second)),
	}
	lo, hi := g.cfg.PersistMin, g.cfg.PersistMax
	m.persist = lo + time.Duration(g.rng.Int64N(int64(hi-lo)+1))
	switch u := g.rng.Float64(); {
	case u < g.cfg.PanicRate:
		m.fault = faultPanic
	case u < g.cfg.PanicRate+g.cfg.ErrorRate:
		m.fault = faultError
	}
	return m, true
}

// unsubmitted gives back the sequence number of a message that was never
// accepted, so that the room's next message takes it: sequence numbers count
// accepted messages only.
func (g *generator) unsubmitted(m message) {
	if g.seqs[m.room] == m.seq {
		g.seqs[m.room]--
	}
}

// fanout spends CPU in proportion to the room's size, as encoding and writing
// a message to each member's connection would, and returns a value that
// depends on every step so that the compiler keeps the loop.
func fanout(members int32, seed uint64, rounds int) uint64 {
	h := seed
	for i := int32(0); i < members; i++ {
		h ^= uint64(i)
		for range rounds {
			h *= 0x9e3779b97f4a7c15
			h ^= h >> 29
		}
	}
	return h
}
