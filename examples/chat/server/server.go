package server

import (
	"bufio"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/shoal-go/shoal/backpressure"
	"github.com/shoal-go/shoal/pool"
	"github.com/shoal-go/shoal/pool/promexport"
	"golang.org/x/time/rate"
)

// Config configures a Server. Every zero field takes the default named in
// its comment.
type Config struct {
	// DBPath is the SQLite file (required).
	DBPath string
	// Backend is BackendShoal (default) or BackendPond.
	Backend string
	// MaxFrameBytes bounds one client frame; a longer one is read to its
	// end, dropped, and answered with frame_too_long (default 8 KiB).
	// Past HardFrameBytes the connection is closed (status 1009).
	MaxFrameBytes int
	// HardFrameBytes is the WebSocket read limit (default 1 MiB).
	HardFrameBytes int
	// MaxTextBytes bounds a message's text (default 4 KiB).
	MaxTextBytes int
	// MaxRoomBytes bounds a room name (default 128).
	MaxRoomBytes int
	// MaxRooms bounds the rooms one connection is in (default 64).
	MaxRooms int
	// Rate and Burst limit the frames one connection may send
	// (default 200 per second, burst 400).
	Rate  rate.Limit
	Burst int
	// WriteQueue is the bound of a connection's write queue, in chunks of
	// frames; a client whose queue is full is disconnected as a slow
	// consumer (default 256).
	WriteQueue int
	// WriteTimeout bounds one WebSocket write (default 10 s).
	WriteTimeout time.Duration
	// MaxReplay bounds the messages replayed for one join (default 10,000).
	MaxReplay int
	// MaxReplayBytes bounds the bytes of the msg frames replayed for one
	// join, which the server queues as one chunk (default 1 MiB). A join
	// gets the newest missed messages that fit both bounds; its joined
	// frame's Truncated counts the older ones.
	MaxReplayBytes int
	// MaxConnReplayBytes bounds the bytes of catch-up pages queued to one
	// connection and not yet taken by its writer, over all its joins
	// (default 4 MiB): a client that joins MaxRooms rooms with since at
	// once queues no more than this, not MaxRooms × MaxReplayBytes. A
	// join that finds less room than MaxReplayBytes gets the newest missed
	// messages that fit in what is left (none when nothing is), and its
	// joined frame's Truncated counts the others, as past MaxReplay.
	MaxConnReplayBytes int
	// MaxBatch is the most messages of a room stored in one transaction
	// (default 256).
	MaxBatch int
	// OriginPatterns are the origins allowed besides the server's own host
	// (see websocket.AcceptOptions).
	OriginPatterns []string
	// MemoryBudget, if > 0, gives the scheduler a breaker with this budget
	// in bytes: under memory pressure sends are refused with a retryable
	// "overloaded" error frame.
	MemoryBudget int64
	// Breaker, if set, is used instead of MemoryBudget's; the caller closes
	// it after Close.
	Breaker *backpressure.Breaker
	// PondWorkers is the pond pool's size for BackendPond (default 256).
	PondWorkers int
	// StatsInterval is how often the live page is updated (default 500 ms).
	StatsInterval time.Duration
	// Logger receives the server's log lines (default slog.Default()).
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.MaxFrameBytes, 8<<10)
	def(&c.HardFrameBytes, 1<<20)
	def(&c.MaxTextBytes, 4<<10)
	def(&c.MaxRoomBytes, 128)
	def(&c.MaxRooms, 64)
	def(&c.Burst, 400)
	def(&c.WriteQueue, 256)
	def(&c.MaxReplay, 10000)
	def(&c.MaxReplayBytes, defaultMaxReplayBytes)
	def(&c.MaxConnReplayBytes, defaultMaxConnReplayBytes)
	def(&c.MaxBatch, 256)
	def(&c.PondWorkers, 256)
	if c.Backend == "" {
		c.Backend = BackendShoal
	}
	if !(c.Rate > 0) { // NaN too
		c.Rate = 200
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.StatsInterval <= 0 {
		c.StatsInterval = 500 * time.Millisecond
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	c.HardFrameBytes = max(c.HardFrameBytes, c.MaxFrameBytes)
}

// Server is a chat server: an http.Handler with the WebSocket endpoint at
// /ws, the live page at /, its event stream at /events, the figures as JSON
// at /stats.json and Prometheus metrics at /metrics.
//
// A Server must be created with New and closed with Close.
type Server struct {
	cfg     Config
	db      *DB
	hub     *hub
	be      backend
	stats   *counters
	mux     *http.ServeMux
	started time.Time
	breaker *backpressure.Breaker // owned, from MemoryBudget
	nextID  atomic.Uint64

	mu     sync.Mutex
	conns  map[*conn]struct{}
	closed bool
	quit   chan struct{} // closed by Close: ends the event streams
	wg     sync.WaitGroup
	// socketsClosed is set when Close, its deadline and grace passed,
	// closed the sockets: a connection registered after it is closed at
	// once.
	socketsClosed bool
	// closeDone is closed when the first Close has shut the server
	// down, closeErr (written before) its result.
	closeDone chan struct{}
	closeErr  error
}

// New opens the database and starts the scheduler. It loads no room: a
// room's last sequence number is read by its first call after a time
// without members.
func New(cfg Config) (*Server, error) {
	cfg.setDefaults()
	if cfg.Backend != BackendShoal && cfg.Backend != BackendPond {
		return nil, fmt.Errorf("chat: unknown backend %q", cfg.Backend)
	}
	db, err := OpenDB(cfg.DBPath)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, db: db, stats: newCounters(), started: time.Now(),
		conns: make(map[*conn]struct{}), quit: make(chan struct{}), closeDone: make(chan struct{})}
	s.hub = newHub(db, cfg.MaxReplay, s.stats)
	s.hub.maxReplayBytes = cfg.MaxReplayBytes
	s.hub.maxConnReplayBytes = cfg.MaxConnReplayBytes
	if cfg.Breaker == nil && cfg.MemoryBudget > 0 {
		if s.breaker, err = backpressure.NewBreaker(backpressure.WithBudget(cfg.MemoryBudget)); err != nil {
			db.Close()
			return nil, err
		}
		s.cfg.Breaker = s.breaker
	}
	if cfg.Backend == BackendPond {
		s.be = newPondBackend(s.hub, &s.cfg)
	} else if s.be, err = newShoalBackend(s.hub, &s.cfg); err != nil {
		s.closeBreaker()
		db.Close()
		return nil, err
	}
	reg, err := s.registry()
	if err != nil {
		s.be.close(context.Background())
		s.closeBreaker()
		db.Close()
		return nil, err
	}
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("GET /ws", s.serveWS)
	s.mux.HandleFunc("GET /{$}", s.servePage)
	s.mux.HandleFunc("GET /events", s.serveEvents)
	s.mux.HandleFunc("GET /stats.json", s.serveStats)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return s, nil
}

// ServeHTTP serves the server's endpoints.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Close shuts the server down without losing an accepted message: it stops
// taking connections and messages, lets the scheduler handle every message
// it accepted (stored, fanned out, acknowledged), flushes each connection's
// write queue and closes it with status 1001, and closes the database.
// If ctx ends first, Close returns ctx's error (once, whichever steps gave
// up on it) after closing what it can.
//
// Close may be called more than once, from any goroutine: a later call
// waits for the shutdown the first one runs and returns its result, or
// its own ctx's error if ctx ends first (the shutdown goes on).
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		select {
		case <-s.closeDone:
			return s.closeErr
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.closed = true
	close(s.quit)
	s.mu.Unlock()

	errBE := s.be.close(ctx)
	s.mu.Lock()
	for c := range s.conns {
		c.finishOnce.Do(func() { close(c.finish) })
	}
	s.mu.Unlock()
	waited := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(waited)
	}()
	var errWait error
	select {
	case <-waited:
	case <-ctx.Done():
		errWait = ctx.Err()
		// The writers may still be flushing what was queued for their
		// clients, the answers to the messages the deadline shut down
		// among it: a short grace, then the sockets still open are
		// closed at once, which ends a write blocked on a client that
		// does not read, or a close handshake it will not answer, rather
		// than at WriteTimeout.
		grace := time.NewTimer(closeGrace)
		select {
		case <-waited:
		case <-grace.C:
			s.mu.Lock()
			s.socketsClosed = true
			for c := range s.conns {
				c.kill(false)
				c.closeSocket()
			}
			s.mu.Unlock()
			<-waited
		}
		grace.Stop()
	}
	if errors.Is(errBE, errWait) {
		errWait = nil // the scheduler's error says it already
	}
	s.closeErr = errors.Join(errBE, errWait, s.closeBreaker(), s.db.close(ctx))
	close(s.closeDone)
	return s.closeErr
}

// defaultMaxReplayBytes is Config.MaxReplayBytes's default.
const defaultMaxReplayBytes = 1 << 20

// defaultMaxConnReplayBytes is Config.MaxConnReplayBytes's default.
const defaultMaxConnReplayBytes = 4 << 20

// closeGrace is how long Close, its deadline passed, lets the writers flush
// what is queued before it closes the sockets still open.
const closeGrace = time.Second

// closeBreaker closes the breaker the server made for MemoryBudget, if any.
func (s *Server) closeBreaker() error {
	if s.breaker == nil {
		return nil
	}
	return s.breaker.Close()
}

// serveWS upgrades the request and runs the connection until it ends.
func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		http.Error(w, "server shutting down", http.StatusServiceUnavailable)
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()

	var hj *hijackRecorder
	if h := findHijacker(w); h != nil {
		hj = &hijackRecorder{ResponseWriter: w, h: h}
		w = hj
	}
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: s.cfg.OriginPatterns})
	if err != nil {
		return // Accept wrote the response (403 for a foreign origin)
	}
	ws.SetReadLimit(int64(s.cfg.HardFrameBytes))
	c := &conn{
		id:     "c" + strconv.FormatUint(s.nextID.Add(1), 10),
		s:      s,
		ws:     ws,
		raw:    hj.conn(),
		lim:    rate.NewLimiter(s.cfg.Rate, s.cfg.Burst),
		out:    make(chan outChunk, s.cfg.WriteQueue),
		done:   make(chan struct{}),
		finish: make(chan struct{}),
		rooms:  make(map[string]struct{}),
		lastOp: make(map[string]uint64),
	}
	s.mu.Lock()
	if s.closed {
		c.finishOnce.Do(func() { close(c.finish) })
	}
	if s.socketsClosed {
		// Close closed the sockets while this one was being accepted:
		// it is closed at once too, or Close would wait for its close
		// handshake with a client that may not answer it.
		c.kill(false)
		c.closeSocket()
	}
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	s.stats.conns.Add(1)

	wrote := make(chan struct{})
	go c.writeLoop(wrote)
	c.enqueue(encode(&Frame{Type: "hello", From: c.id}))
	c.readLoop(r.Context())
	c.kill(false)
	c.leaveAll()
	<-wrote

	s.stats.conns.Add(-1)
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// hijackRecorder is a ResponseWriter whose Hijack keeps the connection it
// hands to websocket.Accept, so that Close can close a socket at once:
// websocket.Conn.CloseNow, while the writer waits in Close for a client
// that does not answer the close handshake, waits with it (5 s). It
// hides nothing of the writer it wraps: Unwrap gives it to
// http.ResponseController, and WriteHeaderNow (which coder/websocket
// calls before it hijacks, for writers such as gin's that hold the
// status until then) is passed on.
type hijackRecorder struct {
	http.ResponseWriter
	h   http.Hijacker
	raw net.Conn
}

func (w *hijackRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := w.h.Hijack()
	if err == nil {
		w.raw = c
	}
	return c, brw, err
}

// Unwrap returns the wrapped writer, for http.ResponseController.
func (w *hijackRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// WriteHeaderNow calls the wrapped writer's WriteHeaderNow, if it has one.
func (w *hijackRecorder) WriteHeaderNow() {
	if n, ok := w.ResponseWriter.(interface{ WriteHeaderNow() }); ok {
		n.WriteHeaderNow()
	}
}

// findHijacker returns w's Hijacker, following Unwrap as coder/websocket
// and http.ResponseController do (a middleware's writer may hijack only
// through the writer it wraps), or nil.
func findHijacker(w http.ResponseWriter) http.Hijacker {
	for {
		switch t := w.(type) {
		case http.Hijacker:
			return t
		case interface{ Unwrap() http.ResponseWriter }:
			w = t.Unwrap()
		default:
			return nil
		}
	}
}

// conn returns the hijacked connection, or nil.
func (w *hijackRecorder) conn() net.Conn {
	if w == nil {
		return nil
	}
	return w.raw
}

// Stats returns the server's figures.
func (s *Server) Stats() Stats {
	st := Stats{
		Backend:       s.cfg.Backend,
		Uptime:        time.Since(s.started).Seconds(),
		Conns:         s.stats.conns.Load(),
		Rooms:         s.hub.state.Len(),
		Accepted:      s.stats.accepted.Load(),
		Delivered:     s.stats.delivered.Load(),
		Replayed:      s.stats.replayed.Load(),
		SlowConsumers: s.stats.slowConsumers.Load(),
		Errors:        make(map[string]uint64),
		DBErrors:      s.stats.dbErrors.Load(),
		NotPersisted:  s.stats.notPersisted.Load(),
		DeadLetters:   s.stats.deadLetters.Load(),
		Batches:       s.stats.batches.Load(),
		BatchedMsgs:   s.stats.batchedMsgs.Load(),
		MaxBatch:      s.stats.maxBatch.Load(),
		BatchSizes:    make([]uint64, batchBuckets),
	}
	for code, n := range s.stats.errors {
		if v := n.Load(); v > 0 {
			st.Errors[code] = v
		}
	}
	for i := range st.BatchSizes {
		st.BatchSizes[i] = s.stats.batchSizes[i].Load()
	}
	st.Pool, _ = s.be.snapshot()
	st.WaitP99 = st.Pool.Timings.Wait.P99()
	if s.cfg.Breaker != nil {
		st.BreakerState = s.cfg.Breaker.State().String()
	}
	st.RSS, st.PeakRSS, st.CPUSeconds = ProcStats()
	return st
}

func (s *Server) serveStats(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(s.Stats())
}

//go:embed page.html
var page []byte

func (s *Server) servePage(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(page)
}

// serveEvents streams Stats as server-sent events every StatsInterval
// until the client goes or the server closes.
func (s *Server) serveEvents(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	t := time.NewTicker(s.cfg.StatsInterval)
	defer t.Stop()
	for {
		b, _ := json.Marshal(s.Stats())
		if _, err := fmt.Fprintf(w, "data: %s\n\n", b); err != nil {
			return
		}
		fl.Flush()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		case <-s.quit:
			return
		}
	}
}

// statsSource adapts the backend to promexport.Source.
type statsSource struct{ be backend }

func (s statsSource) Snapshot() pool.Stats { st, _ := s.be.snapshot(); return st }

// registry builds the Prometheus registry: the scheduler's figures through
// promexport and the server's own counters, prefixed chat_.
func (s *Server) registry() (*prometheus.Registry, error) {
	reg := prometheus.NewRegistry()
	col, err := promexport.New(statsSource{s.be}, promexport.WithConstLabels(prometheus.Labels{"backend": s.cfg.Backend}))
	if err != nil {
		return nil, err
	}
	cs := []prometheus.Collector{col,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "chat_connections", Help: "Open WebSocket connections."},
			func() float64 { return float64(s.stats.conns.Load()) }),
	}
	counter := func(name, help string, v *atomic.Uint64) {
		cs = append(cs, prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
			func() float64 { return float64(v.Load()) }))
	}
	counter("chat_messages_accepted_total", "Messages accepted for a room.", &s.stats.accepted)
	counter("chat_messages_delivered_total", "Message frames sent to room members (counted when the connection's writer takes them).", &s.stats.delivered)
	counter("chat_messages_replayed_total", "Message frames replayed from the database on join (counted when the joiner's writer takes them).", &s.stats.replayed)
	counter("chat_slow_consumers_total", "Connections closed for a full write queue.", &s.stats.slowConsumers)
	counter("chat_batches_total", "Transactions that stored messages.", &s.stats.batches)
	counter("chat_batched_messages_total", "Messages stored by those transactions.", &s.stats.batchedMsgs)
	counter("chat_db_errors_total", "Failed transactions and catch-up reads.", &s.stats.dbErrors)
	for code, v := range s.stats.errors {
		cs = append(cs, prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "chat_error_frames_total", Help: "Error frames sent to connected clients, by code.",
			ConstLabels: prometheus.Labels{"code": code}}, func() float64 { return float64(v.Load()) }))
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return reg, nil
}
