package server

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/coder/websocket"
	"golang.org/x/time/rate"
)

// hubOn opens a database at a new path holding n messages of room r, each
// of text, and returns a hub on it (maxReplay 10,000) and its counters.
func hubOn(t *testing.T, r string, n int, text string) (*hub, *DB, *counters) {
	t.Helper()
	db, err := OpenDB(filepath.Join(t.TempDir(), "chat.db"))
	if err != nil {
		t.Fatal(err)
	}
	fillRoom(t, db, r, n, text)
	st := newCounters()
	h := newHub(db, 10000, st)
	return h, db, st
}

// fillRoom stores n messages of room r in db, numbered from 1, each of
// text.
func fillRoom(t *testing.T, db *DB, r string, n int, text string) {
	t.Helper()
	msgs := make([]Message, n)
	for i := range msgs {
		msgs[i] = Message{Room: r, Seq: uint64(i + 1), From: "c0", ClientSeq: uint64(i + 1), Text: text, At: 1}
	}
	if err := db.insert(context.Background(), msgs); err != nil {
		t.Fatal(err)
	}
}

// wsServerSide returns the server's end of a WebSocket whose client end
// never reads; both are closed at cleanup.
func wsServerSide(t *testing.T) *websocket.Conn {
	t.Helper()
	got := make(chan *websocket.Conn, 1)
	release := make(chan struct{})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		got <- ws
		<-release
		ws.CloseNow()
	}))
	cws, _, err := websocket.Dial(context.Background(), "ws"+strings.TrimPrefix(ts.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		close(release)
		cws.CloseNow()
		ts.Close()
	})
	return <-got
}

// hubConn returns a connection of a server with counters st, whose write
// queue holds queue chunks, on socket ws (nil: none).
func hubConn(st *counters, ws *websocket.Conn, queue int) *conn {
	cfg := Config{}
	cfg.setDefaults()
	s := &Server{cfg: cfg, stats: st}
	return &conn{
		id: "c1", s: s, ws: ws, lim: rate.NewLimiter(rate.Inf, 0),
		out: make(chan outChunk, queue), done: make(chan struct{}), finish: make(chan struct{}),
		rooms: make(map[string]struct{}), lastOp: make(map[string]uint64),
	}
}

// joinOp records a join of room r with since on c and returns its op.
func joinOp(c *conn, r string, since uint64) op {
	return op{kind: opJoin, c: c, id: c.record(r, true), hasSince: true, since: since}
}

// stayIn makes a connection of its own a member of room, which holds the
// room in the hub: a test may then make the database fail.
func stayIn(t *testing.T, h *hub, st *counters, room string) {
	t.Helper()
	m := hubConn(st, nil, 64)
	if err := h.handle(context.Background(), room, []op{{kind: opJoin, c: m, id: m.record(room, true)}}); err != nil {
		t.Fatal(err)
	}
}

// splitFrames decodes a chunk of '\n'-separated frames.
func splitFrames(t *testing.T, chunk []byte) []Frame {
	t.Helper()
	var fs []Frame
	for line := range bytes.SplitSeq(chunk, []byte{'\n'}) {
		var f Frame
		if err := json.Unmarshal(line, &f); err != nil {
			t.Fatalf("bad frame %q: %v", line, err)
		}
		fs = append(fs, f)
	}
	return fs
}

// A bad room name is answered with the limit in bytes, not the name of the
// Config field that holds it, which a client never sees.
func TestBadRoomErrorNamesTheLimit(t *testing.T) {
	c, _ := parserConn(Config{MaxRoomBytes: 8})
	c.handle(context.Background(), []byte(`{"type":"join","room":"123456789"}`))
	f := splitFrames(t, (<-c.out).b)[0]
	if f.Code != CodeBadRoom || strings.Contains(f.Message, "MaxRoomBytes") || !strings.Contains(f.Message, "8 bytes") {
		t.Fatalf("got %+v, want bad_room saying the limit, 8 bytes", f)
	}
}

// A join whose missed messages cannot be read from the database counts as
// a database error, as a failed transaction does.
func TestFailedCatchUpReadCountsDBError(t *testing.T) {
	h, db, st := hubOn(t, "r", 3, "x")
	stayIn(t, h, st, "r")
	db.Close()
	c := hubConn(st, nil, 8)
	if err := h.handle(context.Background(), "r", []op{joinOp(c, "r", 0)}); err != nil {
		t.Fatal(err)
	}
	if f := splitFrames(t, (<-c.out).b)[0]; f.Code != CodeInternal {
		t.Fatalf("got %+v, want an internal error", f)
	}
	if n := st.dbErrors.Load(); n != 1 {
		t.Fatalf("DBErrors = %d after a failed catch-up read, want 1", n)
	}
	if c.inRoom("r") {
		t.Fatal("in the room after a failed join")
	}
}

// A catch-up page the joiner's full write queue refuses was not replayed:
// Replayed does not count it.
func TestReplayedNotCountedWhenRefused(t *testing.T) {
	h, db, st := hubOn(t, "r", 5, "x")
	defer db.Close()
	c := hubConn(st, wsServerSide(t), 1)
	c.out <- outChunk{b: []byte(`{"type":"hello"}`)} // the queue is full
	if err := h.handle(context.Background(), "r", []op{joinOp(c, "r", 0)}); err != nil {
		t.Fatal(err)
	}
	if !c.isDone() {
		t.Fatal("connection with a full queue not closed")
	}
	if n := st.replayed.Load(); n != 0 {
		t.Fatalf("Replayed = %d, but the page was refused", n)
	}
	if n := st.slowConsumers.Load(); n != 1 {
		t.Fatalf("SlowConsumers = %d, want 1", n)
	}
}

// One join's catch-up page is bounded in bytes: 200 messages of 4 KiB of
// control characters (about 24 KiB each once escaped, 4.9 MB in all) are
// not queued as one chunk. The newest messages that fit are replayed,
// after them none missing, and the joined frame's Truncated counts the
// older ones, as it does past MaxReplay.
func TestCatchUpPageBoundedInBytes(t *testing.T) {
	const n = 200
	h, db, st := hubOn(t, "r", n, strings.Repeat("\x01", 4<<10))
	defer db.Close()
	c := hubConn(st, nil, 8)
	if err := h.handle(context.Background(), "r", []op{joinOp(c, "r", 0)}); err != nil {
		t.Fatal(err)
	}
	if got := st.replayed.Load(); got != 0 {
		t.Fatalf("Replayed = %d before the writer took the page, want 0", got)
	}
	chunk := c.taken(<-c.out)
	if len(chunk) > 1<<20+64<<10 {
		t.Fatalf("one join's page is %d bytes, want at most about %d (MaxReplayBytes's default)", len(chunk), 1<<20)
	}
	fs := splitFrames(t, chunk)
	jf, msgs := fs[0], fs[1:]
	if jf.Type != "joined" || jf.Seq != n || len(msgs) == 0 {
		t.Fatalf("joined %+v and %d messages", jf, len(msgs))
	}
	if jf.Truncated+uint64(len(msgs)) != n {
		t.Fatalf("truncated %d + replayed %d != %d missed", jf.Truncated, len(msgs), n)
	}
	for i, m := range msgs {
		if want := jf.Truncated + uint64(i) + 1; m.Seq != want {
			t.Fatalf("replayed message %d has seq %d, want %d", i, m.Seq, want)
		}
	}
	if got := st.replayed.Load(); got != uint64(len(msgs)) {
		t.Fatalf("Replayed = %d, want %d", got, len(msgs))
	}
}

// Rooms that find one connection's write queue full at once close it
// once and count one slow consumer, not one per room. The two calls are
// held where they race: each has found the queue full, and the first
// close of the connection has not yet closed done (the test holds
// closeOnce, as a kill under way does).
func TestSlowConsumerCountedOnce(t *testing.T) {
	st := newCounters()
	c := hubConn(st, wsServerSide(t), 1)
	c.out <- outChunk{b: []byte(`{}`)}
	release := make(chan struct{})
	held := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		c.closeOnce.Do(func() {
			close(held)
			<-release
			close(c.done)
		})
	})
	<-held
	for range 2 {
		wg.Go(func() { c.enqueue([]byte(`{}`)) })
	}
	waitFor(t, "both calls to wait in kill", func() bool {
		buf := make([]byte, 1<<20)
		return strings.Count(string(buf[:runtime.Stack(buf, true)]), "(*conn).kill(") == 2
	})
	close(release)
	wg.Wait()
	if n := st.slowConsumers.Load(); n > 1 {
		t.Fatalf("SlowConsumers = %d for one connection", n)
	}
}

// The answers to a batch that failed for good take one slot of each
// sender's write queue, as a handled batch's acks do: a burst of sends
// whose transaction failed does not fill the sender's queue with
// not_persisted frames and cut it off as a slow consumer, losing them.
func TestFailedBatchAnswersInOneChunk(t *testing.T) {
	st := newCounters()
	h := &hub{stats: st, rooms: make(map[string]*roomLocal)}
	c := hubConn(st, wsServerSide(t), 4)
	ops := make([]op, 8)
	for i := range ops {
		ops[i] = op{kind: opSend, c: c, clientSeq: uint64(i + 1), text: "x"}
	}
	ops = append(ops, op{kind: opJoin, c: c, id: c.record("s", true)})
	h.failed("r", ops, errors.New("disk full"))
	if c.isDone() {
		t.Fatal("sender cut off as a slow consumer by the answers to one failed batch")
	}
	var fs []Frame
	for len(c.out) > 0 {
		fs = append(fs, splitFrames(t, (<-c.out).b)...)
	}
	if len(fs) != len(ops) {
		t.Fatalf("%d answers to %d ops", len(fs), len(ops))
	}
	for i, f := range fs[:8] {
		if f.Code != CodeNotPersisted || f.ClientSeq != uint64(i+1) {
			t.Fatalf("answer %d: %+v, want not_persisted of client_seq %d", i, f, i+1)
		}
	}
	if f := fs[8]; f.Code != CodeInternal || !f.Retry {
		t.Fatalf("answer to the join: %+v", f)
	}
}

// A leave in the call of a join that failed (its missed messages could
// not be read) is answered too: the client sent it, before it knew, and
// gets left after the join's error rather than no answer at all.
func TestLeaveAfterFailedJoinAnswered(t *testing.T) {
	h, db, st := hubOn(t, "r", 3, "x")
	stayIn(t, h, st, "r")
	db.Close()
	c := hubConn(st, nil, 8)
	ops := []op{joinOp(c, "r", 0), {kind: opLeave, c: c, id: c.record("r", false)}}
	if err := h.handle(context.Background(), "r", ops); err != nil {
		t.Fatal(err)
	}
	var fs []Frame
	for len(c.out) > 0 {
		fs = append(fs, splitFrames(t, (<-c.out).b)...)
	}
	if len(fs) != 2 || fs[0].Code != CodeInternal || fs[1].Type != "left" {
		t.Fatalf("answers %+v, want the join's internal error, then left", fs)
	}
	if c.inRoom("r") {
		t.Fatal("in the room")
	}
}

// A send queued behind a join whose catch-up could not be read is neither
// stored nor acknowledged, whether it shares the join's call or comes in a
// later one: its sender is in no room. It is answered not_joined, after
// the join's error; the room numbers on from where it was.
func TestSendAfterFailedJoinNotStored(t *testing.T) {
	for _, sameCall := range []bool{true, false} {
		h, db, st := hubOn(t, "r", 3, "x")
		defer db.Close()
		stayIn(t, h, st, "r")
		db.r.Close() // catch-up reads fail; the writer works
		c := hubConn(st, nil, 8)
		join := joinOp(c, "r", 0)
		send := op{kind: opSend, c: c, clientSeq: 7, text: "hi"}
		calls := [][]op{{join}, {send}}
		if sameCall {
			calls = [][]op{{join, send}}
		}
		for _, ops := range calls {
			if err := h.handle(context.Background(), "r", ops); err != nil {
				t.Fatal(err)
			}
		}
		var fs []Frame
		for len(c.out) > 0 {
			fs = append(fs, splitFrames(t, (<-c.out).b)...)
		}
		if len(fs) != 2 || fs[0].Code != CodeInternal || fs[1].Code != CodeNotJoined || fs[1].ClientSeq != 7 {
			t.Fatalf("same call %v: answers %+v, want the join's internal error, then not_joined for client_seq 7", sameCall, fs)
		}
		var n int
		if err := db.w.QueryRow(`SELECT COUNT(*) FROM messages`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 3 {
			t.Fatalf("same call %v: %d messages stored, want 3", sameCall, n)
		}
	}
}

// A member whose connection ended is dropped from the room, but the sends
// it queued before it ended are still stored: they were accepted.
func TestSendOfEndedMemberStored(t *testing.T) {
	h, db, st := hubOn(t, "r", 0, "x")
	defer db.Close()
	c := hubConn(st, nil, 8)
	if err := h.handle(context.Background(), "r", []op{{kind: opJoin, c: c, id: c.record("r", true)}}); err != nil {
		t.Fatal(err)
	}
	c.kill(false)
	if err := h.handle(context.Background(), "r", []op{{kind: opSend, c: c, clientSeq: 1, text: "last"}}); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.w.QueryRow(`SELECT COUNT(*) FROM messages`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("%d messages stored after an ended member's send, want 1", n)
	}
}

// The catch-up queued to one connection is bounded as a whole, not only
// per join: a connection that joins three rooms with since 0 and has read
// nothing yet holds at most MaxConnReplayBytes of replayed frames. The
// join past the bound gets the newest messages that fit, its joined
// frame's Truncated counting the others; once the writer has taken the
// pages, a join gets its whole catch-up again.
func TestCatchUpBoundedPerConnection(t *testing.T) {
	const (
		n     = 40
		bound = 100 << 10
	)
	text := strings.Repeat("y", 1000)
	db, err := OpenDB(filepath.Join(t.TempDir(), "chat.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rooms := []string{"r1", "r2", "r3", "r4"}
	for _, r := range rooms {
		fillRoom(t, db, r, n, text)
	}
	st := newCounters()
	h := newHub(db, 10000, st)
	h.maxConnReplayBytes = bound
	c := hubConn(st, nil, 8)
	// join joins room and returns the page's joined frame and msg frames,
	// and the chunk queued, which the writer has not taken yet.
	join := func(room string) (Frame, []Frame, outChunk) {
		t.Helper()
		if err := h.handle(context.Background(), room, []op{joinOp(c, room, 0)}); err != nil {
			t.Fatal(err)
		}
		chunk := <-c.out
		fs := splitFrames(t, chunk.b)
		return fs[0], fs[1:], chunk
	}
	var queued int
	var pages []outChunk
	for _, r := range rooms[:3] {
		jf, msgs, chunk := join(r)
		queued += len(chunk.b)
		pages = append(pages, chunk)
		if jf.Truncated+uint64(len(msgs)) != n || len(msgs) > 0 && msgs[0].Seq != jf.Truncated+1 {
			t.Fatalf("%s: joined %+v with %d messages", r, jf, len(msgs))
		}
		if r == "r3" && jf.Truncated == 0 {
			t.Fatalf("%s: the whole catch-up replayed, %d bytes queued in all; want at most about %d", r, queued, bound)
		}
	}
	if queued > bound+1<<10 {
		t.Fatalf("%d bytes of catch-up queued to one connection, want at most about %d", queued, bound)
	}
	for _, chunk := range pages {
		c.taken(chunk)
	}
	if q := c.replayQueued.Load(); q != 0 {
		t.Fatalf("%d bytes of catch-up counted as queued after the writer took every chunk", q)
	}
	if jf, msgs, _ := join("r4"); jf.Truncated != 0 || len(msgs) != n {
		t.Fatalf("r4, after the writer took the pages: joined %+v with %d messages, want all %d", jf, len(msgs), n)
	}
}

// A call that fails for good leaves its room as it was: a room that had no
// member before it (its only join failed with it) is not held in the hub
// afterwards, as a room whose last member left is not.
func TestRoomOfFailedCallFreed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chat.db")
	poisonDB(t, path)
	db, err := OpenDB(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st := newCounters()
	h := newHub(db, 10000, st)
	c := hubConn(st, nil, 8)
	ops := []op{
		{kind: opJoin, c: c, id: c.record("r", true)},
		{kind: opSend, c: c, clientSeq: 1, text: "poison"},
	}
	if err := h.handleRetry(context.Background(), "r", ops); err != nil {
		t.Fatal(err)
	}
	if fs := splitFrames(t, (<-c.out).b); len(fs) != 2 || fs[0].Code != CodeInternal || fs[1].Code != CodeNotPersisted {
		t.Fatalf("answers %+v, want the join's internal error, then not_persisted", fs)
	}
	h.mu.Lock()
	held := len(h.rooms)
	h.mu.Unlock()
	if held != 0 || h.state.Len() != 0 {
		t.Fatalf("after a failed call of a room without members the hub holds %d rooms (state %d); want 0", held, h.state.Len())
	}
}

// The catch-up bound of one connection (MaxConnReplayBytes) counts the
// bytes of its pages, not what its joins might take while they read: a
// connection that joins more rooms at once than the bound holds
// MaxReplayBytes-sized pages gets each room's few missed messages, though
// its joins read at the same time.
func TestConcurrentCatchUpsShareConnBound(t *testing.T) {
	const rooms = 5 // one more than MaxConnReplayBytes / MaxReplayBytes (defaults)
	db, err := OpenDB(filepath.Join(t.TempDir(), "chat.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	names := make([]string, rooms)
	for i := range names {
		names[i] = fmt.Sprint("r", i)
		if err := db.insert(context.Background(), []Message{{Room: names[i], Seq: 1, From: "c0", ClientSeq: 1, Text: "x", At: 1}}); err != nil {
			t.Fatal(err)
		}
	}
	st := newCounters()
	h := newHub(db, 10000, st)
	for _, r := range names {
		stayIn(t, h, st, r) // loaded: a join's only read is its catch-up
	}
	c := hubConn(st, nil, 2*rooms)
	// The joins read while the test holds every reader connection, so
	// that they are all reading at once.
	var held []*sql.Conn
	for range 4 {
		rc, err := db.r.Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, rc)
	}
	reading := func(n int) func() bool {
		return func() bool {
			buf := make([]byte, 1<<22)
			return strings.Count(string(buf[:runtime.Stack(buf, true)]), "(*DB).rangeNewest(") >= n
		}
	}
	var wg sync.WaitGroup
	for i, r := range names {
		o := joinOp(c, r, 0)
		wg.Go(func() {
			if err := h.handle(context.Background(), r, []op{o}); err != nil {
				t.Error(err)
			}
		})
		waitFor(t, "the joins to read", reading(i+1))
	}
	for _, rc := range held {
		rc.Close()
	}
	wg.Wait()
	for range rooms {
		fs := splitFrames(t, (<-c.out).b)
		if fs[0].Truncated != 0 || len(fs) != 2 {
			t.Fatalf("%s: joined %+v with %d messages; want its one missed message (a few bytes of catch-up queued in all)", fs[0].Room, fs[0], len(fs)-1)
		}
	}
}
