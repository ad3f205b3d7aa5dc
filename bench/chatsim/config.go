package chatsim

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/shoal-go/shoal/pool"
)

// ErrInvalidConfig is matched (errors.Is) by every error Run returns for a
// Config it cannot run.
var ErrInvalidConfig = errors.New("chatsim: invalid configuration")

// The schedulers a simulation can run on.
const (
	// Shoal is shoal's pool.Batcher: one group per room, one write per
	// call with the room's queued messages, a memory budget, the adaptive
	// scaler, retries and the dead-letter channel.
	Shoal = "shoal"
	// Ants is github.com/panjf2000/ants/v2 with, per room, a pending slice
	// and a mutex held by the task that drains it: a task per message, one
	// write per drained batch.
	Ants = "ants"
	// Pond is github.com/alitto/pond/v2 with the same per-room pending
	// slice and mutex as Ants.
	Pond = "pond"
	// Raw starts one goroutine per message, which writes it alone, with no
	// lock: it keeps no order and exists to show that the order check can
	// fail.
	Raw = "raw"
)

// Variants lists the schedulers Run accepts, shoal first.
var Variants = []string{Shoal, Ants, Pond, Raw}

// Config describes one simulated load. DefaultConfig returns the load that
// `go run ./bench/cmd/chatsim` runs; change fields from there.
type Config struct {
	// Variant is the scheduler: Shoal, Ants, Pond or Raw.
	Variant string
	// Rooms is the number of chat rooms.
	Rooms int
	// Rate is the mean arrival rate over the day, in messages per second.
	// The evening peak is about 3 × Rate, the night about 0.15 × Rate.
	Rate float64
	// Duration is the wall-clock length of the compressed day; the run then
	// drains what is still queued.
	Duration time.Duration
	// Budget is shoal's memory budget in bytes.
	Budget int64
	// Seed makes the load reproducible: the same seed gives the same
	// messages in the same order.
	Seed uint64

	// ZipfS and ZipfV shape room activity: room k (from 0) gets a share of
	// the messages proportional to (ZipfV + k)^-ZipfS.
	ZipfS, ZipfV float64
	// MinMembers and MaxMembers bound the room sizes (log-uniform).
	MinMembers, MaxMembers int
	// FanoutRounds is the CPU spent per member: mixing rounds of a 64-bit
	// hash (about 1.3 ns each).
	FanoutRounds int
	// PersistMin and PersistMax bound the simulated persist I/O of one
	// write, whatever the number of messages it carries (uniform).
	PersistMin, PersistMax time.Duration
	// ErrorRate and PanicRate are the fractions of messages whose persist
	// fails (on every attempt, failing the whole write that carries them)
	// and whose fan-out panics.
	ErrorRate, PanicRate float64

	// MinWorkers and MaxWorkers bound every scheduler's goroutines: shoal's
	// scaler moves between them; ants and pond get MaxWorkers.
	MinWorkers, MaxWorkers int
	// Shards is the number of shoal shards (0: shoal's default).
	Shards int
	// MaxBatch bounds the messages of one persist write, for every
	// scheduler that batches (0: pool.DefaultMaxBatch).
	MaxBatch int

	// Progress, when not nil, receives a progress line every
	// ProgressEvery; Interactive rewrites one line in place (a terminal)
	// instead of printing one line each time.
	Progress      io.Writer
	Interactive   bool
	ProgressEvery time.Duration
}

// DefaultConfig returns the default load: 10,000 rooms, a mean of 5,000
// messages per second over a one-minute day, shoal with a 512 MiB budget.
func DefaultConfig() Config {
	return Config{
		Variant:      Shoal,
		Rooms:        10_000,
		Rate:         5_000,
		Duration:     time.Minute,
		Budget:       512 << 20,
		Seed:         1,
		ZipfS:        1.1,
		ZipfV:        20,
		MinMembers:   2,
		MaxMembers:   2_000,
		FanoutRounds: 16,
		PersistMin:   200 * time.Microsecond,
		PersistMax:   2 * time.Millisecond,
		ErrorRate:    0.001,
		PanicRate:    0.0001,
		MinWorkers:   2,
		MaxWorkers:   512,
	}
}

// maxBatch returns MaxBatch, or the Batcher's default for 0.
func (c *Config) maxBatch() int {
	if c.MaxBatch == 0 {
		return pool.DefaultMaxBatch
	}
	return c.MaxBatch
}

func (c *Config) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...)
	}
	known := false
	for _, v := range Variants {
		known = known || v == c.Variant
	}
	switch {
	case !known:
		return bad("unknown variant %q (want one of %v)", c.Variant, Variants)
	case c.Rooms < 1 || c.Rooms > 1<<31:
		return bad("rooms %d, want 1 to 2^31", c.Rooms)
	case !(c.Rate > 0):
		return bad("rate %v, want > 0", c.Rate)
	case c.Duration <= 0:
		return bad("duration %v, want > 0", c.Duration)
	case c.Budget <= 0:
		return bad("budget %d, want > 0", c.Budget)
	case !(c.ZipfS > 1) || !(c.ZipfV >= 1):
		return bad("zipf s=%v v=%v, want s > 1 and v >= 1", c.ZipfS, c.ZipfV)
	case c.MinMembers < 1 || c.MaxMembers < c.MinMembers:
		return bad("members %d..%d, want 1 <= min <= max", c.MinMembers, c.MaxMembers)
	case c.FanoutRounds < 0:
		return bad("fanout rounds %d, want >= 0", c.FanoutRounds)
	case c.PersistMin < 0 || c.PersistMax < c.PersistMin:
		return bad("persist %v..%v, want 0 <= min <= max", c.PersistMin, c.PersistMax)
	case c.ErrorRate < 0 || c.PanicRate < 0 || c.ErrorRate+c.PanicRate > 1:
		return bad("error rate %v, panic rate %v, want both >= 0 and a sum <= 1", c.ErrorRate, c.PanicRate)
	case c.MinWorkers < 1 || c.MaxWorkers < c.MinWorkers:
		return bad("workers %d..%d, want 1 <= min <= max", c.MinWorkers, c.MaxWorkers)
	case c.Shards < 0:
		return bad("shards %d, want >= 0", c.Shards)
	case c.MaxBatch < 0:
		return bad("max batch %d, want >= 0", c.MaxBatch)
	case c.ProgressEvery < 0:
		return bad("progress interval %v, want >= 0", c.ProgressEvery)
	}
	return nil
}
