package server

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/shoal-go/shoal/backpressure"
)

// stackHas reports whether some goroutine's stack contains s.
func stackHas(s string) bool {
	buf := make([]byte, 1<<22)
	n := runtime.Stack(buf, true)
	return strings.Contains(string(buf[:n]), s)
}

// poisonDB creates a database at path whose trigger refuses the text
// "poison".
func poisonDB(t *testing.T, path string) {
	t.Helper()
	db, err := OpenDB(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.w.Exec(`CREATE TRIGGER poison BEFORE INSERT ON messages WHEN NEW.text = 'poison'
		BEGIN SELECT RAISE(ABORT, 'poisoned message'); END`); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// stalledRoom starts a server (closed by the test, not at cleanup) on a
// database of its own with backend, and a client in room r whose first
// message's call is blocked in its insert by another connection's write
// lock, which release lets go.
func stalledRoom(t *testing.T, backend string) (srv *Server, c *client, path string, release func()) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "chat.db")
	srv, err := New(Config{DBPath: path, Backend: backend})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	c = dial(t, ts)
	c.join("r")
	release = lockDB(t, path)
	c.send(Frame{Type: "send", Room: "r", ClientSeq: 1, Text: "x"})
	waitFor(t, "the room's call to block in its insert", func() bool { return stackHas("server.(*DB).insert") })
	return srv, c, path, release
}

// lockDB takes SQLite's write lock on path from a connection of its own
// (as another writer or a stalled disk would hold it) and returns the
// function that releases it.
func lockDB(t *testing.T, path string) (release func()) {
	t.Helper()
	ext, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	xc, err := ext.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := xc.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	done := false
	release = func() {
		if done {
			return
		}
		done = true
		xc.ExecContext(ctx, "ROLLBACK")
		xc.Close()
		ext.Close()
	}
	t.Cleanup(release)
	return release
}

// firstOf returns the first frame of c with one of the types in want,
// skipping others (failing on a timeout).
func firstOf(t *testing.T, c *client, want ...string) Frame {
	t.Helper()
	for {
		f := c.next()
		for _, w := range want {
			if f.Type == w {
				return f
			}
		}
	}
}

// TestFailedCallAnswersJoinAndLeave: a join and a leave that share a
// room's call with a message whose transaction fails on every attempt are
// answered too (a retryable error each: neither took effect), and the
// connections record where they are: the joiner may join again, the
// leaver is still a member.
func TestFailedCallAnswersJoinAndLeave(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chat.db")
	poisonDB(t, path)
	srv, ts := startServer(t, Config{DBPath: path})
	sender, leaver, joiner := dial(t, ts), dial(t, ts), dial(t, ts)
	sender.join("r")
	leaver.join("r")

	release := lockDB(t, path)
	sender.send(Frame{Type: "send", Room: "r", ClientSeq: 1, Text: "first"})
	waitFor(t, "the room's call to block in its insert", func() bool { return stackHas("server.(*DB).insert") })
	sender.send(Frame{Type: "send", Room: "r", ClientSeq: 2, Text: "poison"})
	leaver.send(Frame{Type: "leave", Room: "r"})
	joiner.send(Frame{Type: "join", Room: "r"})
	waitFor(t, "the three ops to queue behind the blocked call", func() bool {
		st, _ := srv.be.snapshot()
		return st.Queued >= 4
	})
	release()

	if f := firstOf(t, sender, "error"); f.Code != CodeNotPersisted || f.ClientSeq != 2 {
		t.Fatalf("sender got %+v, want not_persisted for client_seq 2", f)
	}
	// The dead letter has been handled: anything it answers was queued
	// before the sender's error. A state frame, answered by the reader,
	// now comes after any answer to the join or the leave.
	joiner.send(Frame{Type: "state"})
	if f := joiner.next(); f.Type != "joined" && f.Type != "error" {
		t.Errorf("join in a failed call: first frame after it is %+v; want joined or an error frame", f)
		joiner.send(Frame{Type: "join", Room: "r"})
		if f := joiner.next(); f.Type == "error" {
			t.Errorf("join again: %+v (the connection believes it is in the room; it is not a member)", f)
		}
	}
	leaver.send(Frame{Type: "state"})
	for {
		f := leaver.next()
		if f.Type == "msg" {
			continue // seq 1, before the leave
		}
		if f.Type != "left" && f.Type != "error" {
			st, _, _ := srv.hub.state.Get("r")
			t.Errorf("leave in a failed call: got %+v, want left or an error frame; room r counts %d members", f, st.Members)
		}
		break
	}
}

// TestRefusedLeaveLeaksNoMember: a connection ends while the breaker
// refuses work, so the leave of its room is refused; the room's next call
// drops it all the same, and the room counts one member.
func TestRefusedLeaveLeaksNoMember(t *testing.T) {
	srv, _, stay := refusedLeave(t)

	for n := uint64(1); ; n++ { // the breaker may refuse a few more: retry as told
		stay.send(Frame{Type: "send", Room: "r", ClientSeq: n, Text: "after"})
		f := firstOf(t, stay, "ack", "error")
		if f.Type == "ack" {
			break
		}
		if f.Code != CodeOverloaded || n > 1000 {
			t.Fatalf("send: %+v", f)
		}
		<-time.After(10 * time.Millisecond)
	}
	if st, _, _ := srv.hub.state.Get("r"); st.Members != 1 {
		t.Fatalf("room r has %d members after the other connection ended; want 1", st.Members)
	}
}

// TestJoinReplayErrorMayRetry: when the missed messages of a join cannot
// be read, the join is answered with a retryable error and did not take
// effect: joining again, as the frame says, succeeds.
func TestJoinReplayErrorMayRetry(t *testing.T) {
	srv, ts := startServer(t, Config{})
	b := dial(t, ts)
	b.join("r")
	b.send(Frame{Type: "send", Room: "r", ClientSeq: 1, Text: "one"})
	firstOf(t, b, "ack")
	// Make catch-up reads fail (as a read error of the database would).
	srv.db.r.Close()

	a := dial(t, ts)
	since := uint64(0)
	a.send(Frame{Type: "join", Room: "r", Since: &since})
	f := a.next()
	if f.Type != "error" || !f.Retry {
		t.Fatalf("join with a failing catch-up: got %+v, want a retryable error", f)
	}
	// Retry, as the frame says, without since.
	a.send(Frame{Type: "join", Room: "r"})
	if f := a.next(); f.Type != "joined" {
		t.Fatalf("retried join after a retryable error: got %+v, want joined", f)
	}
}

// TestEmptyRoomsFreed: a room that never held a message costs nothing once
// its last member left: a connection that joins and leaves 300 fresh
// names leaves no room behind, in the hub or in the published state.
func TestEmptyRoomsFreed(t *testing.T) {
	const n = 300
	srv, ts := startServer(t, Config{Rate: 1e6, Burst: 1 << 20})
	c := dial(t, ts)
	for i := range n {
		room := fmt.Sprint("tmp-", i)
		c.join(room)
		c.send(Frame{Type: "leave", Room: room})
		c.expect("left")
	}
	srv.hub.mu.Lock()
	held := len(srv.hub.rooms)
	srv.hub.mu.Unlock()
	if rooms := srv.Stats().Rooms; rooms != 0 || held != 0 {
		t.Fatalf("after joining and leaving %d empty rooms the server holds %d rooms (state %d); want 0", n, held, rooms)
	}
}

// TestReplayEqualsLive: a replayed message equals the live one, whatever
// its text holds (NUL, control characters, HTML, U+2028, emoji).
func TestReplayEqualsLive(t *testing.T) {
	texts := []string{"a\x00b", "\x01\x1f\t\r\n", `<script>&"\`, "\u2028\u2029", "😀é", "\x7f", "\ufffd"}
	_, ts := startServer(t, Config{})
	b := dial(t, ts)
	b.join("r")
	var live []Frame
	for i, text := range texts {
		b.send(Frame{Type: "send", Room: "r", ClientSeq: uint64(i + 1), Text: text})
		live = append(live, firstOf(t, b, "msg"))
		firstOf(t, b, "ack")
	}
	a := dial(t, ts)
	since := uint64(0)
	a.send(Frame{Type: "join", Room: "r", Since: &since})
	a.expect("joined")
	for i, want := range live {
		got := a.expect("msg")
		if got.Text != texts[i] || got.Text != want.Text || got.Seq != want.Seq || got.From != want.From || got.At != want.At || got.ClientSeq != want.ClientSeq {
			t.Errorf("replayed %q (seq %d), live %q, sent %q", got.Text, got.Seq, want.Text, texts[i])
		}
	}
}

// TestCloseDeadlineAnswers: when Close's context ends while the database
// stalls, every accepted send is still answered (ack or not_persisted)
// before the connection closes.
func TestCloseDeadlineAnswers(t *testing.T) {
	const sends = 6
	srv, c, path, release := stalledRoom(t, BackendShoal)
	for n := uint64(2); n <= sends; n++ {
		c.send(Frame{Type: "send", Room: "r", ClientSeq: n, Text: "x"})
	}
	waitFor(t, "the sends to queue", func() bool { st, _ := srv.be.snapshot(); return st.Queued == sends })
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	closed := make(chan error, 1)
	go func() { closed <- srv.Close(ctx) }()
	<-ctx.Done()
	release()
	cerr := <-closed
	answered := map[uint64]string{}
	for f := range c.frames {
		switch f.Type {
		case "ack":
			answered[f.ClientSeq] = "ack"
		case "error":
			answered[f.ClientSeq] = f.Code
		}
	}
	db, err := OpenDB(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	stored, _ := db.Count(context.Background())
	t.Logf("Close: %v; stored %d; answers %v; close status %v", cerr, stored, answered, c.err)
	if len(answered) != sends {
		t.Fatalf("%d of %d accepted sends answered before the connection closed (%v); %d stored", len(answered), sends, answered, stored)
	}
}

// refusedLeave starts a server with a breaker, joins two connections to
// room r, and ends the second while the breaker refuses work, so that its
// leave is refused; it returns once the breaker admits again, with the
// server, its test server and the connection that stayed.
func refusedLeave(t *testing.T) (*Server, *httptest.Server, *client) {
	t.Helper()
	src := new(pressure)
	br, err := backpressure.NewBreaker(backpressure.WithBudget(1<<40), backpressure.WithSource(src))
	if err != nil {
		t.Fatal(err)
	}
	srv, ts := startServer(t, Config{Breaker: br})
	t.Cleanup(func() { br.Close() }) // runs after the server's Close
	stay, gone := dial(t, ts), dial(t, ts)
	stay.join("r")
	gone.join("r")

	src.used.Store(1 << 41)
	waitFor(t, "breaker to refuse", func() bool { return errors.Is(br.Admit(), backpressure.ErrMemoryPressure) })
	gone.ws.CloseNow()
	<-gone.closed
	waitFor(t, "the server to end the closed connection", func() bool { return srv.Stats().Conns == 1 })
	src.used.Store(0)
	waitFor(t, "breaker to admit again", func() bool { return br.Admit() == nil })
	return srv, ts, stay
}

// TestUsedRoomsFreed: a room costs nothing once its last member left,
// though it stored messages: a connection that joins 200 rooms, sends to
// each and leaves leaves no room behind, in the hub or in the published
// state; a server started on the database holds none either. Joining
// again, a room numbers on from its last stored message.
func TestUsedRoomsFreed(t *testing.T) {
	const n = 200
	path := filepath.Join(t.TempDir(), "chat.db")
	srv, ts := startServer(t, Config{DBPath: path, Rate: 1e6, Burst: 1 << 20})
	c := dial(t, ts)
	for i := range n {
		room := fmt.Sprint("used-", i)
		c.join(room)
		c.send(Frame{Type: "send", Room: room, ClientSeq: 1, Text: "x"})
		firstOf(t, c, "ack")
		c.send(Frame{Type: "leave", Room: room})
		c.expect("left")
	}
	held := func(srv *Server) int {
		srv.hub.mu.Lock()
		defer srv.hub.mu.Unlock()
		return len(srv.hub.rooms)
	}
	if rooms := srv.Stats().Rooms; rooms != 0 || held(srv) != 0 {
		t.Fatalf("after using and leaving %d rooms the server holds %d rooms (state %d); want 0", n, held(srv), rooms)
	}
	if j := c.join("used-7"); j.Seq != 1 {
		t.Fatalf("joined a freed room at seq %d, want 1", j.Seq)
	}
	c.send(Frame{Type: "send", Room: "used-7", ClientSeq: 2, Text: "y"})
	if a := firstOf(t, c, "ack", "error"); a.Type != "ack" || a.Seq != 2 {
		t.Fatalf("send to a freed room: %+v, want the ack of seq 2", a)
	}

	again, err := New(Config{DBPath: path})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close(context.Background())
	if rooms := again.Stats().Rooms; rooms != 0 || held(again) != 0 {
		t.Fatalf("a server started on a database of %d rooms holds %d rooms (state %d); want 0", n, held(again), rooms)
	}
}

// TestJoinRacesFreeing: one client uses a room and leaves it, so that the
// room is freed, while another joins it with since 0. Whatever the order,
// the joiner gets the first message once and its own is numbered after it.
func TestJoinRacesFreeing(t *testing.T) {
	for _, be := range backends() {
		t.Run(be, func(t *testing.T) { testJoinRacesFreeing(t, be) })
	}
}

func testJoinRacesFreeing(t *testing.T, backend string) {
	const n = 50
	srv, ts := startServer(t, Config{Backend: backend, Rate: 1e6, Burst: 1 << 20})
	a, b := dial(t, ts), dial(t, ts)
	done := make(chan struct{})
	go func() { // a: uses each room once, then leaves it
		defer close(done)
		for i := range n {
			room := fmt.Sprint("race-", i)
			a.send(Frame{Type: "join", Room: room})
			a.send(Frame{Type: "send", Room: room, ClientSeq: 1, Text: "first"})
			a.send(Frame{Type: "leave", Room: room})
			for f := range a.frames {
				if f.Type == "error" {
					t.Errorf("a in %s: %+v", room, f)
					return
				}
				if f.Type == "left" {
					break
				}
			}
		}
	}()
	since := uint64(0)
	for i := range n {
		room := fmt.Sprint("race-", i)
		b.send(Frame{Type: "join", Room: room, Since: &since})
		// The first message, live or replayed, before b sends.
		for f := b.next(); f.Type != "msg" || f.Seq != 1; f = b.next() {
			if f.Type == "error" || f.Type == "msg" {
				t.Fatalf("b in %s: %+v, want msg 1", room, f)
			}
		}
		b.send(Frame{Type: "send", Room: room, ClientSeq: uint64(i + 1), Text: "second"})
		if f := firstOf(t, b, "ack", "error"); f.Type != "ack" || f.Seq != 2 {
			t.Fatalf("b in %s: %+v, want the ack of seq 2", room, f)
		}
		b.send(Frame{Type: "leave", Room: room})
		firstOf(t, b, "left")
	}
	<-done
	// A room is freed before its call queues the left frame.
	srv.hub.mu.Lock()
	held := len(srv.hub.rooms)
	srv.hub.mu.Unlock()
	if held != 0 || srv.hub.state.Len() != 0 {
		t.Fatalf("after both clients left every room the server holds %d rooms (state %d); want 0", held, srv.hub.state.Len())
	}
}
