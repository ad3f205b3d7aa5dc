package server

import (
	"bufio"
	"bytes"
	"math/bits"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/shoal-go/shoal/internal/proccpu"
	"github.com/shoal-go/shoal/pool"
)

// batchBuckets is the number of batch-size buckets: 1, 2–3, 4–7, …, 256–511, 512+.
const batchBuckets = 10

// counters are the server's own figures, all atomics.
type counters struct {
	conns         atomic.Int64
	accepted      atomic.Uint64
	delivered     atomic.Uint64
	replayed      atomic.Uint64
	slowConsumers atomic.Uint64
	dbErrors      atomic.Uint64
	notPersisted  atomic.Uint64
	deadLetters   atomic.Uint64
	batches       atomic.Uint64
	batchedMsgs   atomic.Uint64
	maxBatch      atomic.Int64
	batchSizes    [batchBuckets]atomic.Uint64
	errors        map[string]*atomic.Uint64 // keys fixed at creation
}

func newCounters() *counters {
	c := &counters{errors: make(map[string]*atomic.Uint64)}
	for _, code := range []string{CodeBadJSON, CodeBinary, CodeFrameTooLong, CodeUnknownType, CodeBadRoom,
		CodeTextTooLong, CodeEmptyText, CodeNotJoined, CodeAlreadyIn, CodeTooManyRooms, CodeRateLimited,
		CodeOverloaded, CodeShutdown, CodeNotPersisted, CodeStateTooOld, CodeInternal} {
		c.errors[code] = new(atomic.Uint64)
	}
	return c
}

func (c *counters) errorf(code string) {
	if n := c.errors[code]; n != nil {
		n.Add(1)
	}
}

// batch records one stored batch of n messages (n may be 0 for a batch of
// joins and leaves only, which is not counted).
func (c *counters) batch(n int) {
	if n == 0 {
		return
	}
	c.batches.Add(1)
	c.batchedMsgs.Add(uint64(n))
	c.batchSizes[min(bits.Len(uint(n))-1, batchBuckets-1)].Add(1)
	for {
		m := c.maxBatch.Load()
		if int64(n) <= m || c.maxBatch.CompareAndSwap(m, int64(n)) {
			return
		}
	}
}

// Stats is what the live page and /stats.json show.
type Stats struct {
	// Backend is the scheduler: shoal or pond.
	Backend string `json:"backend"`
	// Uptime is the time since New, in seconds.
	Uptime float64 `json:"uptime_s"`
	// Conns is the number of open WebSocket connections.
	Conns int64 `json:"conns"`
	// Rooms is the number of rooms that have members: a room whose last
	// member left is forgotten (its messages stay in the database), and
	// loaded again by its next use.
	Rooms int `json:"rooms"`
	// Accepted counts messages accepted for a room (sends that were
	// submitted); Delivered counts msg frames sent to members; Replayed
	// counts msg frames read back from the database for a join and sent
	// to the joiner. Both are counted as Errors is: when the connection's
	// writer takes the frames, before the client can read them, and never
	// for a connection that ended before that.
	Accepted, Delivered, Replayed uint64
	// SlowConsumers counts connections closed because their write queue
	// was full.
	SlowConsumers uint64
	// Errors counts error frames sent to clients, by code: counted when
	// the connection's writer takes them to write, before the client can
	// read them; not the answers to a connection that had ended, which
	// are never sent.
	Errors map[string]uint64
	// DBErrors counts failed transactions and failed reads of a join's
	// missed messages; NotPersisted counts accepted messages that could
	// not be stored, whether or not their sender could still be told
	// (Errors counts the not_persisted frames sent); DeadLetters counts
	// the scheduler's dead letters.
	DBErrors, NotPersisted, DeadLetters uint64
	// Batches counts stored batches, BatchedMsgs their messages, MaxBatch
	// the largest one. BatchSizes[i] counts batches of 2^i to 2^(i+1)-1
	// messages, the last bucket all from 512 up.
	Batches, BatchedMsgs uint64
	MaxBatch             int64
	BatchSizes           []uint64
	// Pool is the shoal pool's snapshot; with the pond backend only its
	// worker and queue figures are set.
	Pool pool.Stats
	// WaitP99 is the 99th percentile of the pool's queue wait (acceptance
	// to start of a task), in nanoseconds; 0 for pond.
	WaitP99 time.Duration
	// BreakerState is the breaker's state, "" without one.
	BreakerState string
	// RSS and PeakRSS are the process's resident memory now and at its
	// peak (Linux), CPUSeconds its user+system CPU time.
	RSS, PeakRSS int64
	CPUSeconds   float64
}

// ProcStats returns the process's resident set size now and at its peak,
// in bytes, and its CPU time (user + system) in seconds. On systems without
// /proc the sizes are 0.
func ProcStats() (rss, peak int64, cpu float64) {
	d, _ := proccpu.Read()
	cpu = d.Seconds()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, 0, cpu
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Bytes()
		var dst *int64
		switch {
		case bytes.HasPrefix(line, []byte("VmRSS:")):
			dst = &rss
		case bytes.HasPrefix(line, []byte("VmHWM:")):
			dst = &peak
		default:
			continue
		}
		f := bytes.Fields(line)
		if len(f) >= 2 {
			if kb, err := strconv.ParseInt(string(f[1]), 10, 64); err == nil {
				*dst = kb << 10
			}
		}
	}
	return rss, peak, cpu
}
