package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/shoal-go/shoal/examples/chat/server"
)

// Invariants:
//   - A loadClient's fields under mu are written by its reader goroutine
//     (frames) and its driver goroutine (sends, reconnects); mu guards them.
//   - A room's sequence numbers seen by one client must go 1 by 1 from the
//     joined frame's seq: anything else is counted as lost, out of order or
//     duplicate.

// config is what one run does.
type config struct {
	URL          string        // ws://host:port/ws
	StatsURL     string        // http://host:port/stats.json, "" for none
	Conns        int           // clients
	Rooms        int           // rooms to draw from
	RoomsPerConn int           // rooms each client joins
	MaxMembers   int           // members per room at most
	Zipf         float64       // exponent of the room draw (> 1)
	Rate         float64       // messages per second, all clients together
	Duration     time.Duration // sending time
	Drain        time.Duration // longest wait for the last deliveries
	Kill         float64       // clients dropped and reconnected per second
	TextBytes    int           // text length of a message
	Seed         uint64
}

// report is what a run measured.
type report struct {
	Sent, Acked, Errors    uint64
	ErrorCodes             map[string]uint64
	Delivered              uint64 // live msg frames received
	DeliveredInWindow      uint64 // of those, during the sending window
	Replayed               uint64 // msg frames received as catch-up after a reconnect
	Lost, OutOfOrder, Dups uint64
	Unacked                uint64 // sends with neither ack nor error at the end, excluding drops
	InFlightAtDrop         uint64 // sends whose connection ended (a kill, or the server) before their answer
	InFlightStored         uint64 // of those, the ones the sender received as a message after all
	Dropped                uint64 // connections the server ended (the client reconnected)
	Disconnected           uint64 // clients without a connection at the end
	SenderReordered        uint64 // a sender's own messages numbered out of its order
	Foreign                uint64 // joined, msg and ack frames of a room no client joined
	Reconnects, Truncated  uint64
	P50, P99, P999, Max    time.Duration
	ServerP50, ServerP99   time.Duration   // from the server's acceptance to receipt
	WorstPerSecond         []time.Duration // the worst e2e latency received in each second

	// confirmed counts, per message, how often the client learnt that it
	// was stored (each should be once).
	confirmed                 map[roomSeq]int
	Window                    time.Duration
	ClientPeakRSS, ClientCPU  float64 // MiB, s
	Server                    *server.Stats
	ServerCPU                 float64 // s during the run
	SentRate, DeliveredRate   float64
	MeanBatch                 float64
	Conns, RoomsUsed, Members int
}

// loadClient is one WebSocket client.
type loadClient struct {
	idx   int
	rooms []string
	cfg   *config
	run   *runState

	mu       sync.Mutex
	ws       *websocket.Conn
	id       string
	last     map[string]uint64  // last seq seen per room
	joined   map[string]bool    // joined frame seen on the current connection
	replayTo map[string]uint64  // seqs up to this came as catch-up after a reconnect
	done     chan struct{}      // closed when the current connection's reader ends
	pending  map[uint64]roomSeq // client_seqs sent and not yet answered; where it was seen as a msg, if it was
	inFlight map[sendKey]bool   // sends cut by a drop whose msg was not seen yet
	ownLast  map[string]uint64  // last own client_seq delivered per room
	// senderLast is the last client_seq delivered per room and sender: a
	// sender's message delivered again under a new sequence number
	// repeats it. missing holds, per room, the sequence numbers skipped
	// by a gap (up to maxMissing of each): one that arrives late was
	// reordered, not lost.
	senderLast map[roomFrom]uint64
	missing    map[string]map[uint64]struct{}
	nextSeq    uint64
	latencies  []latency
}

// roomFrom names a sender in a room.
type roomFrom struct{ room, from string }

// maxMissing bounds the sequence numbers of one gap that a client keeps to
// tell a late message from a lost one; a longer gap counts whole as lost.
const maxMissing = 4096

// roomSeq is a message's place: its room and sequence number.
type roomSeq struct {
	room string
	seq  uint64
}

// sendKey names a send across connections: the connection id the server
// gave the sender, and the client_seq.
type sendKey struct {
	from string
	seq  uint64
}

// latency is one live delivery's timing: the whole way from the sender's
// clock to the receiver's, and the part after the server accepted it.
type latency struct {
	recv        int64 // Unix ns
	e2e, server time.Duration
}

// runState is what clients share.
type runState struct {
	cfg                                    *config
	start, end                             atomic.Int64 // window, Unix ns
	sent, acked, errs                      atomic.Uint64
	delivered, inWindow, replayed          atomic.Uint64
	lost, ooo, dups, reconnects, truncated atomic.Uint64
	inFlight, inFlightStored, dropped      atomic.Uint64
	senderReordered, foreign               atomic.Uint64
	mu                                     sync.Mutex
	codes                                  map[string]uint64
	confirmed                              map[roomSeq]int // messages known stored (acked, or seen after a drop): how often
	// maxSeq is the highest seq anyone saw or was acked, per room. The map
	// is filled before the clients start and only read after, so readers
	// raise a room's value without a lock.
	maxSeq map[string]*atomic.Uint64
}

// stored records that the message at room, seq is known to be stored.
func (rs *runState) stored(room string, seq uint64) {
	rs.mu.Lock()
	rs.confirmed[roomSeq{room, seq}]++
	rs.mu.Unlock()
}

// seen raises room's highest known sequence number to seq.
func (rs *runState) seen(room string, seq uint64) {
	m := rs.maxSeq[room]
	for {
		old := m.Load()
		if seq <= old || m.CompareAndSwap(old, seq) {
			return
		}
	}
}

// pickRooms draws each client's rooms: Zipf over cfg.Rooms, no room twice
// in one client, at most MaxMembers per room.
func pickRooms(cfg *config) ([][]string, int) {
	r := rand.New(rand.NewPCG(cfg.Seed, 1))
	z := newZipf(r, cfg.Zipf, cfg.Rooms)
	members := make(map[int]int)
	out := make([][]string, cfg.Conns)
	total := 0
	for i := range out {
		mine := map[int]bool{}
		for tries := 0; len(mine) < cfg.RoomsPerConn && tries < 1000*cfg.RoomsPerConn; tries++ {
			k := z.next()
			if mine[k] || members[k] >= cfg.MaxMembers {
				continue
			}
			mine[k] = true
			members[k]++
			total++
			out[i] = append(out[i], "room-"+strconv.Itoa(k))
		}
	}
	return out, len(members)
}

// zipf draws ranks 0..n-1 with P(k) ∝ 1/(k+1)^s by inverting the CDF.
type zipf struct {
	r   *rand.Rand
	cdf []float64
}

func newZipf(r *rand.Rand, s float64, n int) *zipf {
	z := &zipf{r: r, cdf: make([]float64, n)}
	sum := 0.0
	for k := range n {
		sum += 1 / math.Pow(float64(k+1), s)
		z.cdf[k] = sum
	}
	for k := range z.cdf {
		z.cdf[k] /= sum
	}
	return z
}

func (z *zipf) next() int {
	k, _ := slices.BinarySearch(z.cdf, z.r.Float64())
	return min(k, len(z.cdf)-1)
}

// frame is the part of a server frame the client reads.
type frame struct {
	Type      string `json:"type"`
	Room      string `json:"room"`
	Seq       uint64 `json:"seq"`
	From      string `json:"from"`
	ClientSeq uint64 `json:"client_seq"`
	Text      string `json:"text"`
	Code      string `json:"code"`
	Truncated uint64 `json:"truncated"`
	At        int64  `json:"at"`
	Retry     bool   `json:"retry"`
}

// connect dials, joins every room (asking for what was missed after a
// reconnect) and starts the reader. It returns when every room is joined;
// c.done is then the new reader's.
func (c *loadClient) connect(ctx context.Context, reconnect bool) error {
	ws, _, err := websocket.Dial(ctx, c.cfg.URL, nil)
	if err != nil {
		return err
	}
	ws.SetReadLimit(-1)
	joinedAll := make(chan struct{})
	done := make(chan struct{})
	c.mu.Lock()
	c.ws, c.done = ws, done
	c.joined = make(map[string]bool)
	c.mu.Unlock()
	go c.read(ws, joinedAll, done)
	for _, room := range c.rooms {
		f := map[string]any{"type": "join", "room": room}
		if reconnect {
			c.mu.Lock()
			f["since"] = c.last[room]
			c.mu.Unlock()
		}
		b, _ := json.Marshal(f)
		if err := write(ws, b); err != nil {
			ws.CloseNow()
			<-done
			c.leftAll()
			return err
		}
	}
	select {
	case <-joinedAll:
		return nil
	case <-done:
		c.leftAll()
		return errors.New("connection ended while joining")
	case <-ctx.Done():
		ws.CloseNow()
		<-done
		c.leftAll()
		return ctx.Err()
	}
}

// leftAll records that the client is in no room: its connection ended
// before it joined them all. A client left so at the end of a run is
// counted as disconnected.
func (c *loadClient) leftAll() {
	c.mu.Lock()
	clear(c.joined)
	c.mu.Unlock()
}

// write sends one frame. Its context is not the run's: coder/websocket
// closes a connection whose write context ends mid-write, and the end of the
// sending window must not cut connections that still receive.
func write(ws *websocket.Conn, b []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return ws.Write(ctx, websocket.MessageText, b)
}

// read handles frames until the connection ends.
func (c *loadClient) read(ws *websocket.Conn, joinedAll, done chan struct{}) {
	defer close(done)
	rs := c.run
	for {
		_, data, err := ws.Read(context.Background())
		if err != nil {
			return
		}
		now := time.Now()
		for line := range bytes.SplitSeq(data, []byte{'\n'}) {
			var f frame
			if json.Unmarshal(line, &f) != nil {
				rs.errorCode("client_bad_frame")
				continue
			}
			if f.Type == "joined" || f.Type == "msg" || f.Type == "ack" {
				if _, ok := rs.maxSeq[f.Room]; !ok {
					rs.foreign.Add(1) // a room no client joined
					continue
				}
			}
			c.mu.Lock()
			switch f.Type {
			case "hello":
				c.id = f.From
			case "joined":
				// The room's last sequence at the join: a stored message
				// that reaches no member is missed from here.
				rs.seen(f.Room, f.Seq)
				if !c.joined[f.Room] {
					c.joined[f.Room] = true
					if _, ok := c.last[f.Room]; !ok {
						c.last[f.Room] = f.Seq // first join: live from here
					}
					c.replayTo[f.Room] = f.Seq
					rs.truncated.Add(f.Truncated)
					rs.lost.Add(f.Truncated)
					if f.Truncated > 0 {
						c.last[f.Room] += f.Truncated
					}
					if len(c.joined) == len(c.rooms) {
						close(joinedAll)
					}
				}
			case "msg":
				c.msg(&f, now)
			case "ack":
				if _, ok := c.pending[f.ClientSeq]; ok {
					delete(c.pending, f.ClientSeq)
					rs.acked.Add(1)
					rs.stored(f.Room, f.Seq)
				}
				rs.seen(f.Room, f.Seq)
			case "error":
				rs.errs.Add(1)
				rs.errorCode(f.Code)
				delete(c.pending, f.ClientSeq)
				if f.Room != "" && f.ClientSeq == 0 && f.Retry && !c.joined[f.Room] && slices.Contains(c.rooms, f.Room) {
					// A retryable answer to a join: join again, as the
					// server says one may (the writer may write too:
					// coder/websocket's Write is safe for concurrent use),
					// asking, as the refused join did, for what was missed
					// since the last message seen.
					j := map[string]any{"type": "join", "room": f.Room}
					if last, ok := c.last[f.Room]; ok {
						j["since"] = last
					}
					b, _ := json.Marshal(j)
					go write(ws, b)
				}
			}
			c.mu.Unlock()
		}
	}
}

// msg checks one msg frame's place in its room; c.mu is held.
func (c *loadClient) msg(f *frame, now time.Time) {
	rs := c.run
	last := c.last[f.Room]
	switch {
	case f.Seq == last+1:
	case f.Seq <= last:
		if _, ok := c.missing[f.Room][f.Seq]; ok {
			// Late, not lost: counted lost when the gap was seen.
			delete(c.missing[f.Room], f.Seq)
			rs.lost.Add(^uint64(0))
			rs.ooo.Add(1)
		} else {
			rs.dups.Add(1)
		}
		return
	default:
		rs.lost.Add(f.Seq - last - 1)
		if f.Seq-last-1 <= maxMissing {
			m := c.missing[f.Room]
			if m == nil {
				m = make(map[uint64]struct{})
				c.missing[f.Room] = m
			}
			for s := last + 1; s < f.Seq; s++ {
				m[s] = struct{}{}
			}
		}
	}
	c.last[f.Room] = f.Seq
	rs.seen(f.Room, f.Seq)
	if f.ClientSeq != 0 {
		k := roomFrom{f.Room, f.From}
		if f.ClientSeq == c.senderLast[k] {
			// The same send delivered again under a new number.
			rs.dups.Add(1)
		}
		c.senderLast[k] = max(c.senderLast[k], f.ClientSeq)
	}
	if f.From == c.id {
		if f.ClientSeq < c.ownLast[f.Room] {
			rs.senderReordered.Add(1)
		}
		c.ownLast[f.Room] = f.ClientSeq
		if _, ok := c.pending[f.ClientSeq]; ok {
			c.pending[f.ClientSeq] = roomSeq{f.Room, f.Seq}
		}
	} else if k := (sendKey{f.From, f.ClientSeq}); c.inFlight[k] {
		delete(c.inFlight, k)
		rs.inFlightStored.Add(1)
		rs.stored(f.Room, f.Seq)
	}
	if f.Seq <= c.replayTo[f.Room] {
		rs.replayed.Add(1)
		return
	}
	rs.delivered.Add(1)
	sp := strings.IndexByte(f.Text, ' ')
	sentNs, err := strconv.ParseInt(f.Text[:max(sp, 0)], 10, 64)
	if err != nil {
		return
	}
	if end := rs.end.Load(); end == 0 || now.UnixNano() <= end {
		rs.inWindow.Add(1)
		c.latencies = append(c.latencies, latency{recv: now.UnixNano(), e2e: now.Sub(time.Unix(0, sentNs)), server: now.Sub(time.Unix(0, f.At))})
	}
}

func (rs *runState) maxSeqs() map[string]uint64 {
	out := make(map[string]uint64, len(rs.maxSeq))
	for room, m := range rs.maxSeq {
		out[room] = m.Load()
	}
	return out
}

func (rs *runState) errorCode(code string) {
	rs.mu.Lock()
	rs.codes[code]++
	rs.mu.Unlock()
}

// send sends one message to a random room of the client.
func (c *loadClient) send(r *rand.Rand, pad string) error {
	room := c.rooms[r.IntN(len(c.rooms))]
	c.mu.Lock()
	c.nextSeq++
	n := c.nextSeq
	c.pending[n] = roomSeq{}
	ws := c.ws
	c.mu.Unlock()
	b := fmt.Appendf(nil, `{"type":"send","room":%q,"client_seq":%d,"text":"%d %s"}`, room, n, time.Now().UnixNano(), pad)
	c.run.sent.Add(1)
	return write(ws, b)
}

// drive sends at the client's rate until sendCtx ends, then calls
// doneSending and keeps the client connected until drainCtx ends. Whenever
// its connection ends (a kill, or the server closing it) it reconnects and
// asks for what it missed. Once doneSending was called it sends nothing
// and takes no kill: a select that finds both the window's end and a timer
// ready picks either, and a send or kill taken after the end would race
// with the drain's check that every send was answered.
func (c *loadClient) drive(sendCtx, drainCtx context.Context, kill <-chan struct{}, doneSending func()) {
	r := rand.New(rand.NewPCG(c.cfg.Seed, uint64(c.idx)+2))
	interval := time.Duration(float64(c.cfg.Conns) / c.cfg.Rate * float64(time.Second))
	pad := string(bytes.Repeat([]byte{'x'}, max(c.cfg.TextBytes-20, 1)))
	// Every gap, the first included, is exponential: the sum of the clients'
	// sends is then a Poisson process of rate cfg.Rate from the start. (A
	// first gap drawn uniformly over one interval made the total rate climb
	// to twice cfg.Rate over the first interval before it settled.)
	t := time.NewTimer(time.Duration(r.ExpFloat64() * float64(interval)))
	defer t.Stop()
	sending, tick := sendCtx.Done(), t.C
	stopSending := func() {
		if sending != nil {
			sending, tick, kill = nil, nil, nil
			doneSending()
		}
	}
	defer stopSending()
	for {
		c.mu.Lock()
		done := c.done
		c.mu.Unlock()
		ok := true
		select {
		case <-sending:
			stopSending()
		case <-drainCtx.Done():
			return
		case <-tick:
			if sendCtx.Err() != nil {
				stopSending()
				continue
			}
			t.Reset(time.Duration(r.ExpFloat64() * float64(interval)))
			if c.send(r, pad) != nil {
				c.run.dropped.Add(1)
				ok = c.reconnect(drainCtx)
			}
		case <-kill:
			if sendCtx.Err() != nil {
				stopSending()
				continue
			}
			ok = c.reconnect(drainCtx)
		case <-done:
			c.run.dropped.Add(1)
			ok = c.reconnect(drainCtx)
		}
		if !ok {
			return
		}
	}
}

// reconnect closes the connection, waits for its reader, and connects
// again asking for what was missed, until ctx ends; it reports whether it
// is connected. Sends still unanswered become in flight at a drop: their
// msg frame, if the server stored them, is then recognised by the old
// connection id.
func (c *loadClient) reconnect(ctx context.Context) bool {
	c.mu.Lock()
	ws, done := c.ws, c.done
	c.mu.Unlock()
	ws.CloseNow()
	<-done
	c.mu.Lock()
	for seq, seenAt := range c.pending {
		c.run.inFlight.Add(1)
		if seenAt.room != "" {
			c.run.inFlightStored.Add(1)
			c.run.stored(seenAt.room, seenAt.seq)
		} else {
			c.inFlight[sendKey{c.id, seq}] = true
		}
	}
	clear(c.pending)
	c.mu.Unlock()
	backoff := time.NewTimer(0)
	defer backoff.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-backoff.C:
		}
		if c.connect(ctx, true) == nil {
			c.run.reconnects.Add(1)
			return true
		}
		backoff.Reset(20 * time.Millisecond)
	}
}

// run connects every client, sends for cfg.Duration, waits for the last
// deliveries and reports.
func run(ctx context.Context, cfg config) (*report, error) {
	if cfg.Rate <= 0 || cfg.Conns <= 0 || cfg.RoomsPerConn <= 0 {
		return nil, errors.New("load: rate, conns and rooms per conn must be > 0")
	}
	rs := &runState{cfg: &cfg, codes: map[string]uint64{}, maxSeq: map[string]*atomic.Uint64{}, confirmed: map[roomSeq]int{}}
	roomsOf, used := pickRooms(&cfg)
	for _, rooms := range roomsOf {
		for _, room := range rooms {
			if rs.maxSeq[room] == nil {
				rs.maxSeq[room] = new(atomic.Uint64)
			}
		}
	}
	clients := make([]*loadClient, cfg.Conns)
	members := 0
	for i := range clients {
		clients[i] = &loadClient{idx: i, rooms: roomsOf[i], cfg: &cfg, run: rs,
			last: map[string]uint64{}, replayTo: map[string]uint64{}, pending: map[uint64]roomSeq{}, ownLast: map[string]uint64{},
			inFlight: map[sendKey]bool{}, senderLast: map[roomFrom]uint64{}, missing: map[string]map[uint64]struct{}{}}
		members += len(roomsOf[i])
	}
	defer func() {
		for _, c := range clients {
			c.mu.Lock()
			ws, done := c.ws, c.done
			c.mu.Unlock()
			if ws != nil {
				ws.CloseNow()
				<-done
			}
		}
	}()
	// Connect 64 at a time.
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	var connErr atomic.Pointer[error]
	for _, c := range clients {
		if len(c.rooms) == 0 {
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := c.connect(ctx, false); err != nil {
				connErr.CompareAndSwap(nil, &err)
			}
		})
	}
	wg.Wait()
	if p := connErr.Load(); p != nil {
		return nil, fmt.Errorf("load: connecting: %w", *p)
	}
	srvBefore := fetchStats(cfg.StatsURL)
	_, _, cpuBefore := server.ProcStats()

	sendCtx, stopSending := context.WithTimeout(ctx, cfg.Duration)
	defer stopSending()
	drainCtx, stopDraining := context.WithCancel(ctx)
	defer stopDraining()
	kills := make([]chan struct{}, len(clients))
	rs.start.Store(time.Now().UnixNano())
	var drivers, senders sync.WaitGroup
	for i, c := range clients {
		if len(c.rooms) == 0 {
			continue
		}
		kills[i] = make(chan struct{}, 1)
		senders.Add(1)
		drivers.Go(func() { c.drive(sendCtx, drainCtx, kills[i], senders.Done) })
	}
	if cfg.Kill > 0 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(cfg.Seed, 0))
			t := time.NewTicker(time.Duration(float64(time.Second) / cfg.Kill))
			defer t.Stop()
			for {
				select {
				case <-sendCtx.Done():
					return
				case <-t.C:
					if k := kills[r.IntN(len(kills))]; k != nil {
						select {
						case k <- struct{}{}:
						default:
						}
					}
				}
			}
		})
	}
	<-sendCtx.Done()
	rs.end.Store(time.Now().UnixNano())
	window := time.Duration(rs.end.Load() - rs.start.Load())
	wg.Wait()
	// The drain ends once every send is answered, every client is in all
	// its rooms and every member reached its rooms' last sequence, or at
	// cfg.Drain: then drainCtx ends, and with it reconnects still trying.
	// Until then the drivers keep their clients connected.
	timeout := time.AfterFunc(cfg.Drain, stopDraining)
	defer timeout.Stop()
	senders.Wait() // every send is registered as pending before the drain looks
	poll := time.NewTicker(20 * time.Millisecond)
	defer poll.Stop()
drain:
	for !drained(clients, rs) {
		select {
		case <-poll.C:
		case <-drainCtx.Done():
			break drain
		}
	}
	stopDraining()
	drivers.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rep := &report{Window: window, Conns: cfg.Conns, RoomsUsed: used, Members: members}
	var lats []latency
	maxSeq := rs.maxSeqs()
	for _, c := range clients {
		c.mu.Lock()
		lats = append(lats, c.latencies...)
		rep.Unacked += uint64(len(c.pending))
		if len(c.rooms) > 0 && !c.connected() {
			rep.Disconnected++
		}
		for _, room := range c.rooms {
			if m := maxSeq[room]; c.joined[room] && c.last[room] < m {
				rep.Lost += m - c.last[room]
			}
		}
		c.mu.Unlock()
	}
	rep.latencies(lats, rs.start.Load())
	rep.Sent, rep.Acked, rep.Errors = rs.sent.Load(), rs.acked.Load(), rs.errs.Load()
	rep.ErrorCodes = rs.codes
	rep.confirmed = rs.confirmed
	rep.Delivered, rep.DeliveredInWindow, rep.Replayed = rs.delivered.Load(), rs.inWindow.Load(), rs.replayed.Load()
	rep.Lost += rs.lost.Load()
	rep.OutOfOrder, rep.Dups = rs.ooo.Load(), rs.dups.Load()
	rep.InFlightAtDrop, rep.InFlightStored, rep.Dropped = rs.inFlight.Load(), rs.inFlightStored.Load(), rs.dropped.Load()
	rep.SenderReordered, rep.Foreign = rs.senderReordered.Load(), rs.foreign.Load()
	rep.Reconnects, rep.Truncated = rs.reconnects.Load(), rs.truncated.Load()
	rep.SentRate = float64(rep.Sent) / window.Seconds()
	rep.DeliveredRate = float64(rep.DeliveredInWindow) / window.Seconds()
	_, peak, cpu := server.ProcStats()
	rep.ClientPeakRSS, rep.ClientCPU = float64(peak)/(1<<20), cpu-cpuBefore
	if after := fetchStats(cfg.StatsURL); after != nil {
		rep.Server = after
		if srvBefore != nil {
			rep.ServerCPU = after.CPUSeconds - srvBefore.CPUSeconds
			if b := after.Batches - srvBefore.Batches; b > 0 {
				rep.MeanBatch = float64(after.BatchedMsgs-srvBefore.BatchedMsgs) / float64(b)
			}
		}
	}
	return rep, nil
}

// latencies fills the report's quantiles from lats, and the worst
// end-to-end latency of each second of the window that starts at start.
func (rep *report) latencies(lats []latency, start int64) {
	if len(lats) == 0 {
		return
	}
	e2e := make([]time.Duration, len(lats))
	srv := make([]time.Duration, len(lats))
	for i, l := range lats {
		e2e[i], srv[i] = l.e2e, l.server
		sec := int((l.recv - start) / int64(time.Second))
		if sec >= 0 {
			for len(rep.WorstPerSecond) <= sec {
				rep.WorstPerSecond = append(rep.WorstPerSecond, 0)
			}
			rep.WorstPerSecond[sec] = max(rep.WorstPerSecond[sec], l.e2e)
		}
	}
	slices.Sort(e2e)
	slices.Sort(srv)
	q := func(s []time.Duration, p float64) time.Duration { // nearest rank
		return s[min(max(int(math.Ceil(p*float64(len(s))))-1, 0), len(s)-1)]
	}
	rep.P50, rep.P99, rep.P999, rep.Max = q(e2e, 0.50), q(e2e, 0.99), q(e2e, 0.999), e2e[len(e2e)-1]
	rep.ServerP50, rep.ServerP99 = q(srv, 0.50), q(srv, 0.99)
}

// connected reports whether the client's connection is up and in all its
// rooms; c.mu is held.
func (c *loadClient) connected() bool {
	if c.done == nil || len(c.joined) < len(c.rooms) {
		return false
	}
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

// drained reports whether every send was answered and every member has
// seen its rooms' highest known sequence.
func drained(clients []*loadClient, rs *runState) bool {
	maxSeq := rs.maxSeqs()
	for _, c := range clients {
		c.mu.Lock()
		ok := len(c.pending) == 0 && c.connected()
		for _, room := range c.rooms {
			if c.joined[room] && c.last[room] < maxSeq[room] {
				ok = false
			}
		}
		c.mu.Unlock()
		if !ok {
			return false
		}
	}
	return true
}

// fetchStats reads the server's /stats.json; nil if it cannot.
func fetchStats(url string) *server.Stats {
	if url == "" {
		return nil
	}
	resp, err := http.Get(url)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var st server.Stats
	if json.NewDecoder(resp.Body).Decode(&st) != nil {
		return nil
	}
	return &st
}
