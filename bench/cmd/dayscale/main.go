package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoal-go/shoal/pool"
)

type params struct {
	quiet   float64       // tasks per second at the quiet level
	factor  float64       // peak / quiet
	max     int           // workers of the static-at-max pool, and the bound of the others
	unit    time.Duration // one phase unit
	idle    time.Duration // idle timeout of the adaptive pools
	shards  int
	seed    uint64
	minTask time.Duration
	maxTask time.Duration
}

// phases of the day, in units: quiet, ramp up, peak, ramp down, quiet.
var phases = [...]struct {
	name  string
	units float64
}{{"quiet", 3}, {"ramp up", 3}, {"peak", 4}, {"ramp down", 2}, {"quiet", 2}}

func dayUnits() float64 {
	u := 0.0
	for _, p := range phases {
		u += p.units
	}
	return u
}

// rate is the arrival rate (tasks/s) at t units into the day, and whether t
// lies in the peak.
func (p params) rate(t float64) (float64, bool) {
	lo, hi := p.quiet, p.quiet*p.factor
	at := 0.0
	for i, ph := range phases {
		if t < at+ph.units {
			x := (t - at) / ph.units
			switch i {
			case 1:
				return lo + (hi-lo)*x, false
			case 2:
				return hi, true
			case 3:
				return hi - (hi-lo)*x, false
			}
			return lo, false
		}
		at += ph.units
	}
	return lo, false
}

// nominalNeed is the day's mean number of busy workers on paper: the mean
// rate times the mean task time. Sleeps overrun, so the measured need is
// higher.
func (p params) nominalNeed() float64 {
	const steps = 10000
	sum := 0.0
	for i := range steps {
		r, _ := p.rate(dayUnits() * (float64(i) + 0.5) / steps)
		sum += r
	}
	return sum / steps * ((p.minTask + p.maxTask) / 2).Seconds()
}

// drainLimit is how long a pool may take to finish its backlog after the
// day; what is left is shed at Close.
const drainLimit = time.Second

type config struct {
	name string
	opts []pool.Option
	lo   int
	hi   int
}

type result struct {
	config
	tasks         int64
	peakWaits     []time.Duration
	workerSeconds float64
	busySeconds   float64
	maxRunning    int
	shed          int // tasks still queued drainLimit after the day, shed at Close
	lastDecision  pool.ScalingDecision
	lag           time.Duration // how far the submitter fell behind the curve at most
}

// p returns the q-quantile of the sorted peak waits by nearest rank: the
// smallest wait that at least a fraction q of them do not exceed; 0 for none.
func (r result) p(q float64) time.Duration {
	n := len(r.peakWaits)
	if n == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(n))) - 1
	return r.peakWaits[min(max(i, 0), n-1)]
}

// policy is the scaling policy at the day's time scale: the default policy's
// periods shrunk so that they relate to a 14-unit day as the defaults
// relate to hours of traffic.
func (p params) policy() pool.ScalingPolicy {
	pol := pool.DefaultScalingPolicy()
	k := float64(p.unit) / float64(time.Second)
	scale := func(d time.Duration) time.Duration { return time.Duration(float64(d) * k) }
	pol.Interval = scale(20 * time.Millisecond)
	pol.Window = scale(3 * time.Second)
	pol.Cooldown = scale(40 * time.Millisecond)
	pol.ShrinkCooldown = scale(200 * time.Millisecond)
	return pol
}

func (p params) options(o ...pool.Option) []pool.Option {
	return append([]pool.Option{pool.WithShards(p.shards), pool.WithGroupQueueSize(1024)}, o...)
}

// configs are the pools after static at max, which measures the mean need.
func (p params) configs(mean int) []config {
	return []config{
		{"adaptive", p.options(pool.WithWorkers(1, p.max), pool.WithIdleTimeout(p.idle), pool.WithScaling(p.policy())), 1, p.max},
		{"on demand", p.options(pool.WithWorkers(1, p.max), pool.WithIdleTimeout(p.idle)), 1, p.max},
		{"static at mean", p.options(pool.WithWorkers(mean, mean)), mean, mean},
	}
}

// runDay runs the day through one pool.
func runDay(p params, c config) (result, error) {
	res := result{config: c}
	pl, err := pool.New[int](c.opts...)
	if err != nil {
		return res, err
	}
	rng := rand.New(rand.NewPCG(p.seed, 1))
	var (
		mu        sync.Mutex
		peakWaits = make([]time.Duration, 0, 1<<16)
		done      atomic.Int64
	)
	span := p.maxTask - p.minTask
	start := time.Now()
	day := time.Duration(dayUnits() * float64(p.unit))

	// Worker-seconds: sample Running every 5 ms.
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		last := time.Now()
		var lastAt time.Time
		for {
			select {
			case <-stopSampling:
				return
			case now := <-t.C:
				w := pl.Snapshot().Workers
				if d := pl.Snapshot().Scaling; verbose && d.At.After(lastAt) {
					lastAt = d.At
					fmt.Fprintf(os.Stderr, "%s %5.2fs decision %2d -> %2d %v (busy %d running %d)\n", c.name, d.At.Sub(start).Seconds(), d.Previous, d.Target, d.Reason, w.Busy, w.Running)
				}
				if verbose && now.Sub(start)%(250*time.Millisecond) < 5*time.Millisecond {
					fmt.Fprintf(os.Stderr, "%s %5.2fs running %2d busy %2d idle %2d target %2d\n", c.name, now.Sub(start).Seconds(), w.Running, w.Busy, w.Idle, w.Target)
				}
				res.workerSeconds += float64(w.Running) * now.Sub(last).Seconds()
				res.busySeconds += float64(w.Busy) * now.Sub(last).Seconds()
				res.maxRunning = max(res.maxRunning, w.Running)
				last = now
			}
		}
	}()

	// Arrivals: the cumulative count follows the integral of the rate; each
	// millisecond's tasks are submitted at once, in random order of group.
	var owed float64
	prev := start
	for {
		now := time.Now()
		el := now.Sub(start)
		if el >= day {
			break
		}
		r, peak := p.rate(float64(el) / float64(p.unit))
		owed += r * now.Sub(prev).Seconds()
		prev = now
		for ; owed >= 1; owed-- {
			d := p.minTask + time.Duration(rng.Int64N(int64(span)+1))
			sub := time.Now()
			inPeak := peak
			err := pl.Submit(context.Background(), rng.IntN(100000), func(context.Context) error {
				if inPeak {
					w := time.Since(sub)
					mu.Lock()
					peakWaits = append(peakWaits, w)
					mu.Unlock()
				}
				time.Sleep(d)
				done.Add(1)
				return nil
			})
			if err != nil {
				return res, err
			}
			res.tasks++
		}
		res.lag = max(res.lag, time.Since(now))
		time.Sleep(time.Millisecond)
	}
	res.lastDecision = pl.Snapshot().Scaling
	close(stopSampling)
	<-sampled
	ctx, cancel := context.WithTimeout(context.Background(), drainLimit)
	defer cancel()
	if err := pl.Close(ctx); err != nil {
		var ce *pool.CloseError[int]
		if !errors.As(err, &ce) {
			return res, err
		}
		res.shed = ce.Shutdown
	}
	if got := done.Load() + int64(res.shed); got != res.tasks {
		return res, fmt.Errorf("%s: %d done and %d shed of %d tasks", c.name, done.Load(), res.shed, res.tasks)
	}
	mu.Lock()
	slices.Sort(peakWaits)
	res.peakWaits = peakWaits
	mu.Unlock()
	return res, nil
}

// row sums up one configuration over the rounds.
type row struct {
	config
	p50, p99      time.Duration // medians over the rounds
	p99lo, p99hi  time.Duration // range over the rounds
	workerSeconds float64       // median per day
	maxRunning    int
	shed          int
	lag           time.Duration
	last          pool.ScalingDecision
}

func median[T int64 | float64 | time.Duration](xs []T) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func summarize(rounds []result) row {
	r := row{config: rounds[0].config}
	var p50, p99 []time.Duration
	var ws []float64
	for _, x := range rounds {
		p50 = append(p50, x.p(0.5))
		p99 = append(p99, x.p(0.99))
		ws = append(ws, x.workerSeconds)
		r.maxRunning = max(r.maxRunning, x.maxRunning)
		r.shed += x.shed
		r.lag = max(r.lag, x.lag)
		r.last = x.lastDecision
	}
	r.p50, r.p99, r.workerSeconds = median(p50), median(p99), median(ws)
	r.p99lo, r.p99hi = slices.Min(p99), slices.Max(p99)
	return r
}

func report(w io.Writer, p params, rounds int, need float64, rows []row) {
	fmt.Fprintf(w, "day: %v (quiet %.0f/s, peak %.0f/s), tasks sleep %v–%v, %d shards; mean need %.1f workers (%.1f on paper); %d rounds, medians\n",
		time.Duration(dayUnits()*float64(p.unit)), p.quiet, p.quiet*p.factor, p.minTask, p.maxTask, p.shards,
		need, p.nominalNeed(), rounds)
	pol := p.policy()
	fmt.Fprintf(w, "adaptive: interval %v, window %v, cooldown %v, shrink cooldown %v, grow busy cap %v; idle timeout %v\n\n",
		pol.Interval, pol.Window, pol.Cooldown, pol.ShrinkCooldown, pol.GrowBusyCap, p.idle)
	fmt.Fprintf(w, "%-15s %8s %8s %10s %10s %21s %9s %8s %7s\n",
		"pool", "workers", "max run", "peak p50", "peak p99", "p99 range", "worker-s", "p99/max", "ws/max")
	find := func(name string) row {
		for _, r := range rows {
			if r.name == name {
				return r
			}
		}
		return row{}
	}
	ref, ad, mean := find("static at max"), find("adaptive"), find("static at mean")
	us := func(d time.Duration) string { return d.Round(time.Microsecond).String() }
	for _, r := range rows {
		ge := ""
		if r.shed > 0 {
			ge = ">="
		}
		fmt.Fprintf(w, "%-15s %8s %8d %10s %10s %21s %9.1f %8.2f %7.2f\n",
			r.name, fmt.Sprintf("%d..%d", r.lo, r.hi), r.maxRunning, ge+us(r.p50), ge+us(r.p99),
			us(r.p99lo)+"–"+us(r.p99hi), r.workerSeconds,
			float64(r.p99)/float64(ref.p99), r.workerSeconds/ref.workerSeconds)
	}
	fmt.Fprintln(w)
	for _, r := range rows {
		if r.shed > 0 {
			fmt.Fprintf(w, "note: %s: %d tasks still queued %v after their day, shed at Close; its waits count the tasks that started\n", r.name, r.shed, drainLimit)
		}
		if r.lag > 50*time.Millisecond {
			fmt.Fprintf(w, "note: %s: the submitter fell %v behind the curve\n", r.name, r.lag.Round(time.Millisecond))
		}
	}
	check := func(ok bool) string {
		if ok {
			return "met"
		}
		return "MISSED"
	}
	// An adaptive pool that shed tasks has a p99 that is only a lower
	// bound: it meets neither target in which its p99 must be small.
	fmt.Fprintf(w, "adaptive p99 / static-at-max p99 = %.2f (target <= 1.1: %s)\n",
		float64(ad.p99)/float64(ref.p99), check(ad.shed == 0 && ad.p99 <= ref.p99*11/10))
	fmt.Fprintf(w, "adaptive worker-s / static-at-max = %.2f (target <= 0.5: %s)\n",
		ad.workerSeconds/ref.workerSeconds, check(ad.workerSeconds <= ref.workerSeconds/2))
	fmt.Fprintf(w, "static-at-mean p99 / adaptive p99 = %.1f (target >= 3: %s)\n",
		float64(mean.p99)/float64(ad.p99), check(ad.shed == 0 && mean.p99 >= 3*ad.p99))
	fmt.Fprintf(w, "adaptive: last scaling decision %d workers (%v)\n", ad.last.Target, ad.last.Reason)
}

var verbose bool

func main() {
	var p params
	flag.BoolVar(&verbose, "v", false, "print the workers every 250 ms on stderr")
	flag.Float64Var(&p.quiet, "quiet", 2000, "quiet arrival rate, tasks per second")
	flag.Float64Var(&p.factor, "peak", 5, "peak rate as a multiple of the quiet rate")
	flag.IntVar(&p.max, "max", 64, "workers of the static-at-max pool; bound of the adaptive ones")
	flag.DurationVar(&p.unit, "unit", 250*time.Millisecond, "one phase unit; the day lasts 14")
	flag.DurationVar(&p.idle, "idle", 100*time.Millisecond, "idle timeout of the adaptive pools")
	flag.IntVar(&p.shards, "shards", 1024, "shards")
	flag.Uint64Var(&p.seed, "seed", 1, "random seed")
	rounds := flag.Int("rounds", 3, "days per configuration, interleaved; the figures are medians")
	flag.Parse()
	p.minTask, p.maxTask = time.Millisecond, 5*time.Millisecond
	if err := run(os.Stdout, p, *rounds); err != nil {
		fmt.Fprintln(os.Stderr, "dayscale:", err)
		os.Exit(1)
	}
}

func run(w io.Writer, p params, rounds int) error {
	if p.quiet <= 0 || p.factor < 1 || p.max < 1 || p.unit <= 0 || p.idle <= 0 || p.shards < 1 || rounds < 1 {
		return fmt.Errorf("bad parameters: %+v, %d rounds", p, rounds)
	}
	start := time.Now()
	atMax := config{"static at max", p.options(pool.WithWorkers(p.max, p.max)), p.max, p.max}
	// The first day at max measures the mean need that sizes static at mean.
	first, err := runDay(p, atMax)
	if err != nil {
		return err
	}
	need := first.busySeconds / (dayUnits() * p.unit.Seconds())
	configs := append([]config{atMax}, p.configs(max(1, int(math.Ceil(need))))...)
	byConfig := make([][]result, len(configs))
	byConfig[0] = append(byConfig[0], first)
	// Rounds interleave the configurations, so that a noisy moment of the
	// machine lands on one day of one of them, not on all days of one.
	for round := range rounds {
		for i, c := range configs {
			if round == 0 && i == 0 {
				continue
			}
			q := p
			q.seed = p.seed + uint64(round)
			r, err := runDay(q, c)
			if err != nil {
				return err
			}
			byConfig[i] = append(byConfig[i], r)
		}
	}
	rows := make([]row, len(configs))
	for i := range configs {
		rows[i] = summarize(byConfig[i])
	}
	report(w, p, rounds, need, rows)
	fmt.Fprintf(w, "took %v\n", time.Since(start).Round(100*time.Millisecond))
	return nil
}
