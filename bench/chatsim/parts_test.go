package chatsim

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestBucketsAreContiguous(t *testing.T) {
	for i := 0; i < numBuckets-1; i++ {
		u := bucketUpper(i)
		if got := bucketOf(u); got != i {
			t.Fatalf("bucketOf(upper(%d)=%d) = %d", i, u, got)
		}
		if got := bucketOf(u + 1); got != i+1 {
			t.Fatalf("bucketOf(upper(%d)+1=%d) = %d, want %d", i, u+1, got, i+1)
		}
	}
	if got := bucketOf(math.MaxUint64); got != numBuckets-1 {
		t.Fatalf("bucketOf(max) = %d, want %d", got, numBuckets-1)
	}
}

func TestQuantilesWithinPrecision(t *testing.T) {
	var h histogram
	r := rand.New(rand.NewPCG(1, 2))
	vals := make([]time.Duration, 100_000)
	for i := range vals {
		// Log-normal around a millisecond, the shape of a latency.
		vals[i] = time.Duration(math.Exp(r.NormFloat64()*1.5) * float64(time.Millisecond))
		h.record(vals[i])
	}
	slices.Sort(vals)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		exact := vals[int(math.Ceil(q*float64(len(vals))))-1]
		got := h.quantile(q)
		if got < exact || float64(got) > float64(exact)*(1+1.0/subCount)+1 {
			t.Errorf("q%v = %v, exact %v: outside [exact, exact×(1+1/%d)]", q, got, exact, subCount)
		}
	}
	if h.maximum() != vals[len(vals)-1] {
		t.Errorf("max = %v, want %v", h.maximum(), vals[len(vals)-1])
	}
	var empty histogram
	if empty.quantile(0.99) != 0 || empty.mean() != 0 {
		t.Error("an empty histogram reports a value")
	}
}

func TestDayHasMeanOneAndEveningPeakThree(t *testing.T) {
	d := newDay()
	const steps = 24 * 600
	sum, peak, low := 0.0, 0.0, math.Inf(1)
	peakAt := 0.0
	for i := range steps {
		f := d.factor(float64(i) / steps)
		sum += f
		if f > peak {
			peak, peakAt = f, float64(i)/steps
		}
		low = math.Min(low, f)
	}
	if mean := sum / steps; math.Abs(mean-1) > 0.005 {
		t.Errorf("mean factor %.4f, want 1", mean)
	}
	if peak < 2.8 || peak > 3.2 {
		t.Errorf("peak factor %.2f, want about 3", peak)
	}
	if h := peakAt * 24; h < 18 || h > 22 {
		t.Errorf("peak at %.1f h, want in the evening", h)
	}
	if low > 0.25 {
		t.Errorf("night factor %.2f, want a quiet night (< 0.25)", low)
	}
	if clock(20.5/24) != "20:30" {
		t.Errorf("clock(20:30) = %s", clock(20.5/24))
	}
}

func TestGeneratorFollowsTheLoad(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Rooms = 1000
	cfg.Rate = 20_000
	cfg.Duration = 10 * time.Second
	g := newGenerator(&cfg)
	perRoom := make([]uint64, cfg.Rooms)
	perHour := make([]float64, 24)
	var n, errs, panics int
	last := time.Duration(-1)
	for {
		m, ok := g.next()
		if !ok {
			break
		}
		n++
		if m.due < last {
			t.Fatalf("message %d due at %v before the previous one at %v", n, m.due, last)
		}
		last = m.due
		perRoom[m.room]++
		if m.seq != perRoom[m.room] {
			t.Fatalf("room %d: seq %d, want %d", m.room, m.seq, perRoom[m.room])
		}
		if m.persist < cfg.PersistMin || m.persist > cfg.PersistMax {
			t.Fatalf("persist %v outside [%v, %v]", m.persist, cfg.PersistMin, cfg.PersistMax)
		}
		if m.members < int32(cfg.MinMembers) || m.members > int32(cfg.MaxMembers) {
			t.Fatalf("members %d outside [%d, %d]", m.members, cfg.MinMembers, cfg.MaxMembers)
		}
		switch m.fault {
		case faultError:
			errs++
		case faultPanic:
			panics++
		}
		perHour[int(m.due*24/cfg.Duration)]++
	}
	want := cfg.Rate * cfg.Duration.Seconds()
	if math.Abs(float64(n)-want) > 0.02*want {
		t.Errorf("%d messages, want about %.0f", n, want)
	}
	// Zipf: room 0's share is (v)^-s / Σ (v+k)^-s.
	var norm float64
	for k := range cfg.Rooms {
		norm += math.Pow(cfg.ZipfV+float64(k), -cfg.ZipfS)
	}
	share := float64(perRoom[0]) / float64(n)
	wantShare := math.Pow(cfg.ZipfV, -cfg.ZipfS) / norm
	if math.Abs(share-wantShare) > 0.1*wantShare {
		t.Errorf("room 0 has %.4f of the messages, want about %.4f", share, wantShare)
	}
	if perRoom[0] < 10*perRoom[cfg.Rooms/2] {
		t.Errorf("room 0 (%d messages) is not much busier than room %d (%d)", perRoom[0], cfg.Rooms/2, perRoom[cfg.Rooms/2])
	}
	mean := float64(n) / 24
	if perHour[20] < 2.5*mean || perHour[3] > 0.3*mean {
		t.Errorf("hour 20 has %.0f, hour 3 has %.0f messages; mean per hour %.0f: want a peak about 3x and a quiet night", perHour[20], perHour[3], mean)
	}
	if errs < n/2000 || errs > n/500 || panics > n/2000 {
		t.Errorf("%d errors and %d panics in %d messages, want about 0.1 %% and 0.01 %%", errs, panics, n)
	}
}

// call builds the items of a call from sequence numbers.
func call(seqs ...uint64) []*item {
	items := make([]*item, len(seqs))
	for i, q := range seqs {
		items[i] = &item{message: message{seq: q}}
	}
	return items
}

func TestOrderCheckerFindsWhatItShould(t *testing.T) {
	c := newOrderChecker(2)
	step := func(room uint32, attempt int, seqs ...uint64) bool {
		ok := c.begin(room, call(seqs...), attempt)
		c.end(room)
		return ok
	}
	if !step(0, 0, 1) || !step(0, 0, 2, 3, 4) || !step(0, 1, 2, 3, 4) || !step(1, 0, 1) || !step(0, 0, 5) {
		t.Fatal("an in-order run (with a batch and its retry) was reported as a violation")
	}
	if o, v := c.violations(); o != 0 || v != 0 {
		t.Fatalf("violations %d, %d after an in-order run", o, v)
	}
	if step(0, 0, 7) != true || step(0, 0, 6) != false {
		t.Fatal("6 after 7 was not reported")
	}
	if step(0, 1, 5) {
		t.Fatal("a retry of a call that is not the last one begun was not reported")
	}
	if step(0, 0, 8, 10, 9) {
		t.Fatal("9 after 10 in one batch was not reported")
	}
	if step(0, 1, 9, 10) {
		t.Fatal("a retry with other messages than the last call was not reported")
	}
	if !c.begin(1, call(2), 0) || c.begin(1, call(3), 0) {
		t.Fatal("an overlap was not reported")
	}
	c.end(1) // the overlapping call ends first: the first still runs
	if c.begin(1, call(4), 0) {
		t.Fatal("a call beginning while the first still runs was not reported")
	}
	c.end(1)
	c.end(1)
	// 6 (1), retry of 5 (1), 9 (1), retry of 9, 10 (2).
	if o, v := c.violations(); o != 5 || v != 2 {
		t.Fatalf("violations = %d out of order, %d overlaps; want 5 and 2", o, v)
	}
	// A retry that hands the last call's messages over in another order.
	c2 := newOrderChecker(1)
	c2.begin(0, call(1, 2, 3, 4), 0)
	c2.end(0)
	if c2.begin(0, call(1, 3, 2, 4), 1) {
		t.Fatal("a retry [1 3 2 4] of [1 2 3 4] was not reported")
	}
	c2.end(0)
}

func TestSizeBucketsMatchTheBatcher(t *testing.T) {
	var b batchCounter
	for _, n := range []int{1, 2, 3, 4, 5, 256, 257, 1 << 20} {
		b.record(n)
	}
	s := b.stats()
	want := map[int]uint64{0: 1, 1: 1, 2: 2, 3: 1, 8: 1, 9: 1, sizeBuckets - 1: 1}
	for i, n := range s.Sizes {
		if n != want[i] {
			t.Errorf("bucket %d (up to %d) holds %d writes, want %d", i, 1<<i, n, want[i])
		}
	}
	if s.Calls != 8 || s.Messages != 1+2+3+4+5+256+257+1<<20 {
		t.Errorf("calls %d, messages %d", s.Calls, s.Messages)
	}
	// The median of 8 writes is the 4th smallest (4), in the bucket up to 4.
	if s.Quantile(0.5) != 4 || s.Quantile(1) != 1<<(sizeBuckets-1) {
		t.Errorf("p50 %d, max %d: the buckets do not read as pool.BatchStats's", s.Quantile(0.5), s.Quantile(1))
	}
}

func TestConfigRejectsBadInput(t *testing.T) {
	for name, mut := range map[string]func(*Config){
		"variant":  func(c *Config) { c.Variant = "nope" },
		"rooms":    func(c *Config) { c.Rooms = 0 },
		"rate":     func(c *Config) { c.Rate = math.NaN() },
		"duration": func(c *Config) { c.Duration = -time.Second },
		"budget":   func(c *Config) { c.Budget = 0 },
		"zipf":     func(c *Config) { c.ZipfS = 1 },
		"members":  func(c *Config) { c.MinMembers, c.MaxMembers = 10, 5 },
		"persist":  func(c *Config) { c.PersistMin = 3 * time.Millisecond },
		"faults":   func(c *Config) { c.ErrorRate = 0.9; c.PanicRate = 0.2 },
		"workers":  func(c *Config) { c.MinWorkers, c.MaxWorkers = 8, 4 },
		"batch":    func(c *Config) { c.MaxBatch = -1 },
	} {
		cfg := DefaultConfig()
		mut(&cfg)
		if _, err := Run(t.Context(), cfg); err == nil || !errorsIs(err, ErrInvalidConfig) {
			t.Errorf("%s: Run = %v, want ErrInvalidConfig", name, err)
		}
	}
}

// BenchmarkGenerator measures the generator's own cost per message (drawing
// the arrival, the room and the faults), to show that it is far below the
// time between messages at the default peak (about 67 µs).
func BenchmarkGenerator(b *testing.B) {
	cfg := DefaultConfig()
	cfg.Duration = 1000 * time.Hour
	g := newGenerator(&cfg)
	for b.Loop() {
		if _, ok := g.next(); !ok {
			b.Fatal("load ended")
		}
	}
}

// BenchmarkFanout measures the fan-out's CPU for a room of 100 members.
func BenchmarkFanout(b *testing.B) {
	var sink uint64
	for b.Loop() {
		sink += fanout(100, sink, DefaultConfig().FanoutRounds)
	}
	_ = sink
}
