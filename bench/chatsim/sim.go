package chatsim

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoal-go/shoal/bench/internal/rss"
	"github.com/shoal-go/shoal/internal/proccpu"
	"github.com/shoal-go/shoal/pool"
)

// Invariants:
//   - One generator goroutine (Run's caller) creates every message and is the
//     only one to call submit; sequence numbers of a room therefore follow
//     the order in which submit returned nil.
//   - accepted is written by the generator only; done by handle, once per
//     message whose fan-out finished (its item's delivered flag set first);
//     dead by lost, once per message of a failed call whose delivered flag
//     is still false. An item is handed to one call at a time, and a failed
//     call's items reach lost after the call returned (a channel receive or
//     the same goroutine), so lost reads delivered safely. After the
//     scheduler's close returned, done + Σ dead == accepted is the "nothing
//     lost" check.
//   - The sampler goroutine owns the workers-by-hour series, the peak RSS and
//     the sampled breaker transitions until Run has waited for it to exit.

// errInjected is the persist failure injected into ErrorRate of the messages.
var errInjected = errors.New("chatsim: injected persist failure")

// Transition is one change of shoal's admission state.
type Transition struct {
	// At is the time since the start of the run.
	At time.Duration
	// From and To are the state names, e.g. "Normal" and "Throttle".
	From, To string
}

// Result is what one run measured.
type Result struct {
	// Variant is the scheduler that ran the load.
	Variant string
	// Generated counts the messages of the load; Accepted those the
	// scheduler took; Completed those whose work returned nil.
	Generated, Accepted, Completed uint64
	// DeadLetters counts the accepted messages that did not complete, by
	// reason ("Failed", "Panicked", ...).
	DeadLetters map[string]uint64
	// Bystanders counts the dead letters that carried no injected fault of
	// their own: messages that shared a write with a failing message, or
	// came after a panicking fan-out in the same call.
	Bystanders uint64
	// Batches describes the persist writes: one call per write, its size
	// the messages it carried (retries included). For shoal it is the
	// Batcher's own Stats.Batches; for the others the simulation counts.
	Batches pool.BatchStats
	// Pushbacks counts submissions refused for memory pressure and retried
	// after a pause.
	Pushbacks uint64
	// OutOfOrder counts messages that started after a later message of their
	// room (for a retry: every message of a call that is not the last
	// call's again, in its order); Overlaps counts calls that started while
	// another call of their room was running; Duplicates counts messages
	// whose fate was counted a second time (delivered or lettered again),
	// which Completed and DeadLetters leave out.
	OutOfOrder, Overlaps, Duplicates uint64
	// P50, P99, P999 and Max are the end-to-end latencies of completed
	// messages: from the moment the message was handed to the scheduler's
	// side (its due time, or the generator's wake-up if that was later)
	// until its fan-out finished, queueing, blocking in Submit and
	// persist included.
	P50, P99, P999, Max time.Duration
	// GeneratorLagP99 and GeneratorLagMax say how late the generator called
	// Submit after a message's due time: small figures show that the load,
	// not the generator, set the pace.
	GeneratorLagP99, GeneratorLagMax time.Duration
	// PersistMean is the measured mean of one simulated persist write
	// (timers may round the configured durations up).
	PersistMean time.Duration
	// Wall is the whole run, drain included; Drain is the part after the
	// last message was generated.
	Wall, Drain time.Duration
	// PeakRSS is the largest resident set size seen during the run, in bytes.
	PeakRSS int64
	// CPU is the processor time (user + system) the process used during
	// the run, where the system reports it (0 elsewhere): the cost of the
	// scheduler's workers spinning, parking and waking shows here.
	CPU time.Duration
	// PeakWorkers and WorkersByHour are the most goroutines running tasks,
	// overall and in each hour of the compressed day.
	PeakWorkers   int
	WorkersByHour [24]int
	// Transitions lists the breaker's state changes (shoal only).
	Transitions []Transition
	// MeanRate and PeakRate are the configured mean arrival rate and the
	// rate at the evening peak, in messages per second.
	MeanRate, PeakRate float64

	// ownBatches is Batches as the simulation counted it, for every
	// variant: the tests hold shoal's Batches against it.
	ownBatches pool.BatchStats
}

// Lost returns the number of accepted messages that neither completed nor
// reached the dead letters: 0 when nothing was lost.
func (r *Result) Lost() int64 {
	var dead uint64
	for _, n := range r.DeadLetters {
		dead += n
	}
	return int64(r.Accepted) - int64(r.Completed) - int64(dead)
}

// Throughput returns the completed messages per second of wall time.
func (r *Result) Throughput() float64 {
	if r.Wall <= 0 {
		return 0
	}
	return float64(r.Completed) / r.Wall.Seconds()
}

// sim is the state one run shares between the generator, the messages' work
// and the sampler.
type sim struct {
	cfg      Config
	start    time.Time
	order    *orderChecker
	latency  histogram
	lag      histogram
	persist  histogram
	accepted atomic.Uint64
	done     atomic.Uint64
	dups     atomic.Uint64
	sink     atomic.Uint64

	batches batchCounter

	deadMu     sync.Mutex
	dead       map[string]uint64
	bystanders uint64

	transMu     sync.Mutex
	transitions []Transition
}

// lost counts, as dead letters of reason, the messages of a failed call
// that were not delivered; it runs after the call returned or panicked.
func (s *sim) lost(reason string, items []*item) {
	s.deadMu.Lock()
	for _, it := range items {
		if it.delivered {
			continue
		}
		if it.lettered {
			s.dups.Add(1) // counts a message lettered twice
			continue
		}
		it.lettered = true
		s.dead[reason]++
		if it.fault == faultNone {
			s.bystanders++
		}
	}
	s.deadMu.Unlock()
}

func (s *sim) deadTotal() uint64 {
	s.deadMu.Lock()
	defer s.deadMu.Unlock()
	var n uint64
	for _, v := range s.dead {
		n += v
	}
	return n
}

func (s *sim) transition(from, to string) {
	s.transMu.Lock()
	s.transitions = append(s.transitions, Transition{At: time.Since(s.start), From: from, To: to})
	s.transMu.Unlock()
}

// item is one accepted message on its way through a scheduler, with what
// the calls that carry it learn about it.
type item struct {
	message
	// arrival is when the message was handed to the scheduler's side,
	// from the start of the run: the origin of its latency.
	arrival time.Duration
	// attempts counts the calls that carried it; written by the call
	// that holds it.
	attempts int
	// delivered is set once its fan-out finished; written by the call that
	// holds it, read by lost after that call. lettered is set when lost
	// counted it. A second delivery or letter is a duplicate.
	delivered, lettered bool
}

// handle is one persist write of items, messages of room in sequence
// order, followed by their fan-out, one message after the other.
//
// The write costs the persist time drawn for the call's first message (one
// draw per write, uniform in [PersistMin, PersistMax], as the per-message
// write it replaces) and fails, on every attempt, when any of its messages
// carries an injected persist failure: the store refuses the whole write,
// as a transaction or a multi-row insert does, and no message of it is
// delivered. After a successful write the messages fan out in order; an
// injected panic in one message's fan-out leaves it and the messages after
// it undelivered. A retry (the same items again) carries the same
// persist time and meets the same failure.
func (s *sim) handle(room uint32, items []*item) error {
	attempt := items[0].attempts
	for _, it := range items {
		it.attempts++
	}
	s.order.begin(room, items, attempt)
	defer s.order.end(room)
	s.batches.record(len(items))
	t0 := time.Now()
	time.Sleep(items[0].persist)
	s.persist.record(time.Since(t0))
	for _, it := range items {
		if it.fault == faultError {
			return errInjected
		}
	}
	for _, it := range items {
		if it.fault == faultPanic {
			panic("chatsim: injected panic in fan-out")
		}
		s.sink.Add(fanout(it.members, it.seq, s.cfg.FanoutRounds)) // keeps the fan-out's result alive
		if it.delivered {
			s.dups.Add(1) // counts a message delivered twice
			continue
		}
		s.latency.record(time.Since(s.start) - it.arrival)
		it.delivered = true
		s.done.Add(1) // counts a delivered message
	}
	return nil
}

// newScheduler builds cfg.Variant's scheduler.
func newScheduler(s *sim) (scheduler, error) {
	switch s.cfg.Variant {
	case Shoal:
		return newShoal(&s.cfg, s.handle, s.lost, s.transition)
	case Ants:
		return newAnts(&s.cfg, s.handle, s.lost)
	case Pond:
		return newPond(&s.cfg, s.handle, s.lost), nil
	default:
		return newRaw(s.handle, s.lost), nil
	}
}

// Run runs one simulated day on cfg.Variant's scheduler and returns what it
// measured. Cancelling ctx ends the day early; what was accepted is still
// drained and counted. Run returns an error matching ErrInvalidConfig for a
// bad Config, and the scheduler's error if it cannot start or stop.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &sim{cfg: cfg, order: newOrderChecker(cfg.Rooms), dead: make(map[string]uint64)}
	sched, err := newScheduler(s)
	if err != nil {
		return nil, err
	}
	gen := newGenerator(&s.cfg)
	res := &Result{Variant: cfg.Variant, MeanRate: cfg.Rate, PeakRate: cfg.Rate * gen.day.peak}

	runtime.GC()
	hwm := rss.ResetPeak()
	cpu0, _ := proccpu.Read()
	s.start = time.Now()
	stopSampler := make(chan struct{})
	samplerDone := make(chan struct{})
	go func() {
		defer close(samplerDone)
		s.sample(sched, gen, res, stopSampler)
	}()

	genErr := s.generate(ctx, gen, sched, res)
	res.Generated = gen.count
	genEnd := time.Now()

	closeCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
	closeErr := sched.close(closeCtx)
	cancel()
	res.Wall = time.Since(s.start)
	res.Drain = time.Since(genEnd)
	cpu1, _ := proccpu.Read()
	res.CPU = cpu1 - cpu0
	close(stopSampler)
	<-samplerDone

	if hwm {
		if p, ok := rss.NewReader().HighWater(); ok && p > res.PeakRSS {
			res.PeakRSS = p
		}
	}
	res.Accepted = s.accepted.Load() // final: the generator has returned
	res.Completed = s.done.Load()    // final: close waited for every task
	res.DeadLetters = s.dead
	res.Bystanders = s.bystanders
	res.ownBatches = s.batches.stats()
	res.Batches = res.ownBatches
	if b, ok := sched.batchStats(); ok {
		res.Batches = b
	}
	res.OutOfOrder, res.Overlaps = s.order.violations()
	res.Duplicates = s.dups.Load()
	res.P50, res.P99, res.P999 = s.latency.quantile(0.5), s.latency.quantile(0.99), s.latency.quantile(0.999)
	res.Max = s.latency.maximum()
	res.GeneratorLagP99, res.GeneratorLagMax = s.lag.quantile(0.99), s.lag.maximum()
	res.PersistMean = s.persist.mean()
	s.transMu.Lock()
	res.Transitions = append(res.Transitions, s.transitions...)
	s.transMu.Unlock()
	sort.SliceStable(res.Transitions, func(i, j int) bool { return res.Transitions[i].At < res.Transitions[j].At })
	if genErr != nil {
		return res, genErr
	}
	if closeErr != nil {
		return res, fmt.Errorf("chatsim: closing %s: %w", cfg.Variant, closeErr)
	}
	return res, nil
}

// generate submits the day's messages at their due times. It sleeps only
// when the next message is due at least a millisecond later, and then
// submits every message that became due meanwhile in one burst, so that its
// own cost per message is a few hundred nanoseconds and never sets the pace.
func (s *sim) generate(ctx context.Context, gen *generator, sched scheduler, res *Result) error {
	var wake time.Duration
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		m, ok := gen.next()
		if !ok {
			return nil
		}
		gen.count++
		if gen.count%256 == 0 && ctx.Err() != nil {
			gen.unsubmitted(m)
			return nil
		}
		if now := time.Since(s.start); m.due > now {
			if wait := m.due - now; wait >= time.Millisecond {
				timer.Reset(wait)
				select {
				case <-ctx.Done():
					gen.unsubmitted(m)
					return nil
				case <-timer.C:
				}
				wake = time.Since(s.start)
			}
		}
		// The latency's origin: the hand-off, or the due time where the
		// generator is late (its lag is measured apart), or its last wake
		// where it slept past the due time. A message handed over before
		// its due time (one due within the millisecond) counts from then.
		now := time.Since(s.start)
		arrival := max(min(m.due, now), wake)
		s.lag.record(time.Since(s.start) - m.due)
		it := &item{message: m, arrival: arrival}
		backoff := time.Millisecond
		for {
			err := sched.submit(ctx, m.room, it)
			if err == nil {
				s.accepted.Add(1) // counts an accepted message
				break
			}
			if !sched.pushback(err) {
				gen.unsubmitted(m)
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("chatsim: submit to %s: %w", s.cfg.Variant, err)
			}
			res.Pushbacks++
			timer.Reset(backoff)
			select {
			case <-ctx.Done():
				gen.unsubmitted(m)
				return nil
			case <-timer.C:
			}
			backoff = min(2*backoff, 50*time.Millisecond)
		}
	}
}
