package storm

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoal-go/shoal/backpressure"
	"github.com/shoal-go/shoal/bench/internal/rss"
	"github.com/shoal-go/shoal/pool"
)

// Invariants:
//   - One submitter goroutine (Run's caller) creates every move, in move
//     order, round-robin over the towers; per tower the Submit calls that
//     returned nil are therefore in move order.
//   - A tower's log and pegs are touched only by its moves: under shoal, one
//     at a time by the group's order; with Raw, under the tower's mutex.
//   - pending counts moves created and not yet finished; it is incremented
//     by the submitter before a move can run and decremented by the move.
//   - The sampler goroutine owns the peaks in Result until Run waited for it.

// The two ways of running the storm.
const (
	// Shoal runs each tower as a group of a shoal pool with a memory budget.
	Shoal = "shoal"
	// Raw starts a goroutine per move; a mutex per tower keeps the log and
	// the pegs consistent, not the order.
	Raw = "raw"
)

// ErrInvalidConfig is matched (errors.Is) by every error Run returns for a
// Config it cannot run.
var ErrInvalidConfig = errors.New("storm: invalid configuration")

// ErrBudgetTooSmall is matched by the error Run returns when the breaker
// refuses moves for a long time while none is in flight: the budget leaves no
// room above the memory the process uses without any move.
var ErrBudgetTooSmall = errors.New("storm: budget too small")

// stuckAfter is how long the shoal storm retries while no move is in flight
// before it gives up with ErrBudgetTooSmall.
const stuckAfter = 10 * time.Second

// Config describes one storm. DefaultConfig returns the one that
// `go run ./bench/cmd/storm` runs.
type Config struct {
	// Variant is Shoal or Raw.
	Variant string
	// Disks is the size of each tower: 2^Disks − 1 moves.
	Disks int
	// Towers is the number of towers, solved at the same time.
	Towers int
	// Buffer is the size in bytes of the buffer each pending move holds.
	Buffer int
	// Rounds is the number of SHA-256 passes over its buffer that a move
	// costs when it is appended to its tower's log (about 13 µs each for
	// 16 KiB): the serial work per move, which must outlast the cost of
	// creating a move for the raw storm to pile up.
	Rounds int
	// Budget is shoal's memory budget in bytes.
	Budget int64
	// RawLimit stops the Raw storm once its resident memory passes this many
	// bytes, to protect the machine (0: 4 × Budget). The Result then says
	// Aborted.
	RawLimit int64
	// Progress, when not nil, receives a progress line every
	// ProgressEvery; Interactive rewrites one line in place.
	Progress      io.Writer
	Interactive   bool
	ProgressEvery time.Duration
}

// DefaultConfig returns 4 towers of 17 disks (524,284 moves), 16 KiB per
// pending move, 2 hash rounds per move, shoal with a 256 MiB budget.
func DefaultConfig() Config {
	return Config{
		Variant: Shoal,
		Disks:   17,
		Towers:  4,
		Buffer:  16 << 10,
		Rounds:  2,
		Budget:  256 << 20,
	}
}

func (c *Config) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...)
	}
	switch {
	case c.Variant != Shoal && c.Variant != Raw:
		return bad("unknown variant %q (want %q or %q)", c.Variant, Shoal, Raw)
	case c.Disks < 1 || c.Disks > MaxDisks:
		return bad("%d disks, want 1 to %d", c.Disks, MaxDisks)
	case c.Towers < 1 || c.Towers > 1<<16:
		return bad("%d towers, want 1 to 65536", c.Towers)
	case c.Buffer < 8:
		return bad("buffer %d bytes, want at least 8", c.Buffer)
	case c.Rounds < 1 || c.Rounds > 1000:
		return bad("%d hash rounds, want 1 to 1000", c.Rounds)
	case c.Budget <= 0:
		return bad("budget %d, want > 0", c.Budget)
	case c.RawLimit < 0:
		return bad("raw limit %d, want >= 0 (0: 4 × budget)", c.RawLimit)
	case c.ProgressEvery < 0:
		return bad("progress interval %v, want >= 0", c.ProgressEvery)
	}
	return nil
}

// Result is what one storm measured.
type Result struct {
	// Variant names the scheduler that ran the storm; Disks and Towers are
	// the size of each tower and how many were solved at once.
	Variant string
	Disks   int
	Towers  int
	// Moves is the number of moves of all towers; Submitted those handed to
	// the scheduler; Applied those the pegs accepted; Illegal those they
	// refused.
	Moves, Submitted, Applied, Illegal uint64
	// Solved counts the towers that ended with every disk on peg 2.
	Solved int
	// Pushbacks counts submissions refused for memory pressure and retried.
	Pushbacks uint64
	// Transitions counts the breaker's state changes; States lists them in
	// order ("Normal→Throttle", ...), at most the first 20.
	Transitions int
	States      []string
	// Aborted is set when the Raw storm passed RawLimit and stopped
	// submitting.
	Aborted bool
	// PeakRSS is the largest resident set size of the process, in bytes;
	// PeakPending the most moves created and not finished at once;
	// PeakGoroutines the most goroutines.
	PeakRSS        int64
	PeakPending    int64
	PeakGoroutines int
	// Budget is the configured budget, for the report.
	Budget int64
	// Wall is the time from the first move to the last one finished.
	Wall time.Duration
	// Error is set when the run failed (for a child process's report).
	Error string `json:",omitempty"`
}

// tower is one tower's state: its pegs and the head of its hash chain.
type tower struct {
	mu   sync.Mutex // Raw only
	pegs *Pegs
	head [sha256.Size]byte
}

// apply appends move m with its buffer to the tower's log (rounds passes of
// a hash chain: head = SHA-256(head ‖ buffer)) and applies it to the pegs. It
// reports whether the pegs accepted it.
func (t *tower) apply(m Move, buf []byte, rounds int) bool {
	for range rounds {
		h := sha256.New()
		h.Write(t.head[:])
		h.Write(buf)
		h.Sum(t.head[:0])
	}
	return t.pegs.Apply(m) == nil
}

// storm is the state one run shares between the submitter, the moves and
// the sampler.
type storm struct {
	cfg       Config
	towers    []*tower
	pending   atomic.Int64
	applied   atomic.Uint64
	illegal   atomic.Uint64
	submitted atomic.Uint64
	start     time.Time

	transMu sync.Mutex
	states  []string
	nTrans  int
}

// Run runs one storm and returns what it measured. Cancelling ctx stops the
// submitter; the moves already handed over still finish.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.RawLimit == 0 {
		cfg.RawLimit = 4 * cfg.Budget
	}
	s := &storm{cfg: cfg, towers: make([]*tower, cfg.Towers)}
	for i := range s.towers {
		p, err := NewPegs(cfg.Disks)
		if err != nil {
			return nil, err
		}
		s.towers[i] = &tower{pegs: p}
	}
	res := &Result{Variant: cfg.Variant, Disks: cfg.Disks, Towers: cfg.Towers,
		Moves: Moves(cfg.Disks) * uint64(cfg.Towers), Budget: cfg.Budget}

	runtime.GC()
	hwm := rss.ResetPeak()
	stop := make(chan struct{})
	sampled := make(chan struct{})
	s.start = time.Now()
	var state func() string
	var err error
	if cfg.Variant == Shoal {
		var b *backpressure.Breaker
		b, err = backpressure.NewBreaker(
			backpressure.WithBudget(cfg.Budget),
			// The buffer is allocated before Submit, so measurement sees it:
			// reserve only what a move allocates once admitted (its closure
			// and the pool's bookkeeping), not a default 64 KiB.
			backpressure.WithBytesPerTask(256),
			// A move takes about 13 µs: the default throttle of 10,000
			// admissions per second would starve two cores.
			backpressure.WithThrottleRate(100_000, 1_000),
			// The storm's garbage is its own finished moves: collect it
			// soon after the breaker shuts, and reopen soon after, at a
			// probe rate near the pace of the moves.
			backpressure.WithGCInReject(50*time.Millisecond),
			backpressure.WithHold(200*time.Millisecond),
			backpressure.WithProbeRate(20_000),
			backpressure.WithOnStateChange(s.transition),
		)
		if err != nil {
			return nil, fmt.Errorf("storm: breaker: %w", err)
		}
		state = func() string {
			st := b.Stats()
			return fmt.Sprintf("%v (pressure %.2f, in flight %d)", st.State, st.Pressure, st.InFlight)
		}
		go func() { defer close(sampled); s.sample(res, state, stop) }()
		err = s.runShoal(ctx, b, res)
		err = errors.Join(err, b.Close())
	} else {
		state = func() string { return "" }
		go func() { defer close(sampled); s.sample(res, state, stop) }()
		s.runRaw(ctx, res)
	}
	res.Wall = time.Since(s.start)
	close(stop)
	<-sampled
	if hwm {
		if p, ok := rss.NewReader().HighWater(); ok && p > res.PeakRSS {
			res.PeakRSS = p
		}
	}
	res.Submitted = s.submitted.Load() // final: every move has finished
	res.Applied = s.applied.Load()     // final
	res.Illegal = s.illegal.Load()     // final
	for _, t := range s.towers {
		if t.pegs.Solved() {
			res.Solved++
		}
	}
	s.transMu.Lock()
	res.Transitions, res.States = s.nTrans, s.states
	s.transMu.Unlock()
	return res, err
}

func (s *storm) transition(from, to backpressure.State) {
	s.transMu.Lock()
	defer s.transMu.Unlock()
	s.nTrans++
	if len(s.states) < 20 {
		s.states = append(s.states, fmt.Sprintf("%v→%v@%.2fs", from, to, time.Since(s.start).Seconds()))
	}
}

// newBuffer allocates the buffer of move m and stamps it, so that no two
// buffers hash alike.
func (s *storm) newBuffer(tower int, m uint64) []byte {
	buf := make([]byte, s.cfg.Buffer)
	binary.LittleEndian.PutUint64(buf, m<<16|uint64(tower))
	return buf
}

// runShoal submits every move through a pool, one group per tower, and
// backs off while the breaker refuses.
func (s *storm) runShoal(ctx context.Context, b *backpressure.Breaker, res *Result) error {
	p, err := pool.New[int](
		pool.WithBreaker(b),
		// Queues deep enough that the budget, not the queue, bounds the
		// storm: 4096 moves of 16 KiB are 64 MiB per tower.
		pool.WithGroupQueueSize(4096),
		pool.WithShards(64),
	)
	if err != nil {
		return fmt.Errorf("storm: pool: %w", err)
	}
	letters := make(chan struct{})
	go func() {
		defer close(letters)
		for range p.DeadLetters() {
			// A move returns no error and does not panic; a letter would
			// be a failure of the pool, counted as an illegal move.
			s.illegal.Add(1) // a counter
		}
	}()
	n := Moves(s.cfg.Disks)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var subErr error
submit:
	for m := uint64(1); m <= n; m++ {
		mv := MoveAt(s.cfg.Disks, m)
		for ti, t := range s.towers {
			buf := s.newBuffer(ti, m)
			s.pending.Add(1) // the move exists and holds its buffer
			task := func(context.Context) error {
				if t.apply(mv, buf, s.cfg.Rounds) {
					s.applied.Add(1) // a counter
				} else {
					s.illegal.Add(1) // a counter
				}
				s.pending.Add(-1) // the buffer is garbage from here
				return nil
			}
			backoff := time.Millisecond
			var refusedSince time.Time // start of a run of refusals with no move in the pool
			for {
				err := p.Submit(ctx, ti, task)
				if err == nil {
					s.submitted.Add(1) // a counter
					break
				}
				if !errors.Is(err, pool.ErrMemoryPressure) && !errors.Is(err, pool.ErrThrottled) {
					s.pending.Add(-1) // never accepted
					if ctx.Err() == nil {
						subErr = fmt.Errorf("storm: submit: %w", err)
					}
					break submit
				}
				res.Pushbacks++
				// Only this move exists: nothing the pool holds can free
				// memory. If the breaker stays shut, the budget leaves no
				// room above what the process needs without any move.
				if s.pending.Load() > 1 { // moves created and not finished
					refusedSince = time.Time{}
				} else if refusedSince.IsZero() {
					refusedSince = time.Now()
				} else if time.Since(refusedSince) > stuckAfter {
					s.pending.Add(-1) // never accepted
					subErr = fmt.Errorf("%w: refused for %v with no move in flight: %w", ErrBudgetTooSmall, stuckAfter, err)
					break submit
				}
				timer.Reset(backoff)
				select {
				case <-ctx.Done():
					s.pending.Add(-1) // never accepted
					break submit
				case <-timer.C:
				}
				backoff = min(2*backoff, 20*time.Millisecond)
			}
		}
	}
	closeErr := p.Close(context.Background())
	<-letters
	return errors.Join(subErr, closeErr)
}

// runRaw starts a goroutine per move. It stops submitting when the resident
// memory passes RawLimit or ctx is done, and waits for the goroutines it
// started.
func (s *storm) runRaw(ctx context.Context, res *Result) {
	var wg sync.WaitGroup
	n := Moves(s.cfg.Disks)
	// The submitter reads the resident size itself (about 20 µs a read,
	// every 256 rounds): the sampler may be starved of CPU by the storm.
	rd := rss.NewReader()
submit:
	for m := uint64(1); m <= n; m++ {
		mv := MoveAt(s.cfg.Disks, m)
		if m%256 == 0 {
			if rd.Current() > s.cfg.RawLimit {
				res.Aborted = true
				break submit
			}
			if ctx.Err() != nil {
				break submit
			}
		}
		for ti, t := range s.towers {
			buf := s.newBuffer(ti, m)
			s.pending.Add(1)   // the move exists and holds its buffer
			s.submitted.Add(1) // a counter
			wg.Add(1)
			go func() {
				defer wg.Done()
				t.mu.Lock()
				ok := t.apply(mv, buf, s.cfg.Rounds)
				t.mu.Unlock()
				if ok {
					s.applied.Add(1) // a counter
				} else {
					s.illegal.Add(1) // a counter
				}
				s.pending.Add(-1) // the buffer is garbage from here
			}()
		}
	}
	wg.Wait()
}
