// Command dayscale asks whether adaptive worker scaling pays: it runs a
// compressed day of I/O-like tasks through shoal four times, one pool
// configuration after the other, and reports the queue wait at the peak and
// the worker-seconds each configuration spent.
//
// The day: quiet, a ramp up, a peak at five times the quiet rate, a ramp
// down, quiet again. Tasks sleep 1–5 ms (uniform), over 100,000 groups.
// Arrivals follow the rate curve exactly in their cumulative count, at
// random instants within each millisecond.
//
// Configurations:
//
//	adaptive         WithWorkers(1, max) and WithScaling
//	on demand        WithWorkers(1, max), no scaler: workers start when shards
//	                 wait and exit after the idle timeout
//	static at max    WithWorkers(max, max)
//	static at mean   WithWorkers(m, m), m = the day's mean need: the mean of
//	                 Stats.Workers.Busy over the static-at-max day, rounded up
//
// The day lasts 14 phase units (default 0.7 s). At this time scale, the
// adaptive pools use a compressed policy and idle timeout, printed with the
// figures.
//
// Worker-seconds integrate Stats.Workers.Running, sampled every 5 ms. Queue
// wait is the time from Submit to the task's start, for tasks submitted
// during the peak. Each pool gets 3 s after the day to drain; a pool that
// cannot (static at mean) sheds the rest as Shutdown dead letters, and its
// p99 counts only the tasks that started: a lower bound, marked ">=".
//
// Run it under the benchmark lock:
//
//	flock /tmp/shoal-bench.lock go run ./bench/cmd/dayscale
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
	shed          int // tasks still queued 3 s after the day, shed at Close
	lastDecision  pool.ScalingDecision
	lag           time.Duration // how far the submitter fell behind the curve at most
}

func (r result) p(q float64) time.Duration {
	if len(r.peakWaits) == 0 {
		return 0
	}
	return r.peakWaits[min(len(r.peakWaits)-1, int(q*float64(len(r.peakWaits))))]
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
	return append([]pool.Option{pool.WithShards(p.shards), pool.WithQueueSize(1024)}, o...)
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
				if d := pl.Scaling(); verbose && d.At.After(lastAt) {
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
	res.lastDecision = pl.Scaling()
	close(stopSampling)
	<-sampled
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
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

func report(w io.Writer, p params, rs []result) {
	day := dayUnits() * p.unit.Seconds()
	fmt.Fprintf(w, "day: %v (quiet %.0f/s, peak %.0f/s), tasks sleep %v–%v, %d shards; mean need %.1f workers (%.1f on paper)\n",
		time.Duration(dayUnits()*float64(p.unit)), p.quiet, p.quiet*p.factor, p.minTask, p.maxTask, p.shards,
		rs[0].busySeconds/day, p.nominalNeed())
	pol := p.policy()
	fmt.Fprintf(w, "adaptive: interval %v, window %v, cooldown %v, shrink cooldown %v; idle timeout %v\n\n",
		pol.Interval, pol.Window, pol.Cooldown, pol.ShrinkCooldown, p.idle)
	fmt.Fprintf(w, "%-15s %8s %8s %12s %12s %12s %10s %8s\n", "pool", "workers", "max run", "peak p50", "peak p99", "worker-s", "p99/max", "ws/max")
	var ref result
	for _, r := range rs {
		if r.name == "static at max" {
			ref = r
		}
	}
	for _, r := range rs {
		ge := ""
		if r.shed > 0 {
			ge = ">="
		}
		fmt.Fprintf(w, "%-15s %8s %8d %12s %12s %12.1f %10.2f %8.2f\n",
			r.name, fmt.Sprintf("%d..%d", r.lo, r.hi), r.maxRunning,
			ge+r.p(0.5).Round(time.Microsecond).String(), ge+r.p(0.99).Round(time.Microsecond).String(),
			r.workerSeconds, float64(r.p(0.99))/float64(ref.p(0.99)), r.workerSeconds/ref.workerSeconds)
	}
	fmt.Fprintln(w)
	for _, r := range rs {
		if r.shed > 0 {
			fmt.Fprintf(w, "note: %s: %d of %d tasks still queued 3 s after the day, shed at Close\n", r.name, r.shed, r.tasks)
		}
	}
	for _, r := range rs {
		if r.lag > 50*time.Millisecond {
			fmt.Fprintf(w, "note: %s: the submitter fell %v behind the curve\n", r.name, r.lag.Round(time.Millisecond))
		}
	}
	var ad, mean result
	for _, r := range rs {
		switch r.name {
		case "adaptive":
			ad = r
		case "static at mean":
			mean = r
		}
	}
	check := func(ok bool) string {
		if ok {
			return "met"
		}
		return "MISSED"
	}
	fmt.Fprintf(w, "adaptive p99 / static-at-max p99 = %.2f (target <= 1.1: %s)\n",
		float64(ad.p(0.99))/float64(ref.p(0.99)), check(ad.p(0.99) <= ref.p(0.99)*11/10))
	fmt.Fprintf(w, "adaptive worker-s / static-at-max = %.2f (target <= 0.5: %s)\n",
		ad.workerSeconds/ref.workerSeconds, check(ad.workerSeconds <= ref.workerSeconds/2))
	fmt.Fprintf(w, "static-at-mean p99 / adaptive p99 = %.1f (target >= 3: %s)\n",
		float64(mean.p(0.99))/float64(ad.p(0.99)), check(mean.p(0.99) >= 3*ad.p(0.99)))
	fmt.Fprintf(w, "adaptive: last scaling decision %d workers (%v)\n", ad.lastDecision.Target, ad.lastDecision.Reason)
}

var verbose bool

func main() {
	var p params
	flag.BoolVar(&verbose, "v", false, "print the workers every 250 ms on stderr")
	flag.Float64Var(&p.quiet, "quiet", 2000, "quiet arrival rate, tasks per second")
	flag.Float64Var(&p.factor, "peak", 5, "peak rate as a multiple of the quiet rate")
	flag.IntVar(&p.max, "max", 64, "workers of the static-at-max pool; bound of the adaptive ones")
	flag.DurationVar(&p.unit, "unit", 700*time.Millisecond, "one phase unit; the day lasts 14")
	flag.DurationVar(&p.idle, "idle", 250*time.Millisecond, "idle timeout of the adaptive pools")
	flag.IntVar(&p.shards, "shards", 1024, "shards")
	flag.Uint64Var(&p.seed, "seed", 1, "random seed")
	flag.Parse()
	p.minTask, p.maxTask = time.Millisecond, 5*time.Millisecond
	if err := run(os.Stdout, p); err != nil {
		fmt.Fprintln(os.Stderr, "dayscale:", err)
		os.Exit(1)
	}
}

func run(w io.Writer, p params) error {
	if p.quiet <= 0 || p.factor < 1 || p.max < 1 || p.unit <= 0 || p.idle <= 0 || p.shards < 1 {
		return fmt.Errorf("bad parameters: %+v", p)
	}
	ref, err := runDay(p, config{"static at max", p.options(pool.WithWorkers(p.max, p.max)), p.max, p.max})
	if err != nil {
		return err
	}
	rs := []result{ref}
	mean := int(math.Ceil(ref.busySeconds / (dayUnits() * p.unit.Seconds())))
	for _, c := range p.configs(max(1, mean)) {
		r, err := runDay(p, c)
		if err != nil {
			return err
		}
		rs = append(rs, r)
	}
	report(w, p, rs)
	return nil
}
