package main

// Tests of the load client's order and loss accounting against a scripted
// fake server (one client, one room): what it must count, and what not.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/shoal-go/shoal/examples/chat/server"
)

// fakeConn is one connection of the fake server.
type fakeConn struct {
	n  int // 1 for the first connection
	id string
	ws *websocket.Conn
}

func (c *fakeConn) send(frames ...string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = c.ws.Write(ctx, websocket.MessageText, []byte(strings.Join(frames, "\n")))
}

// fakeServer is a fake chat server: a room's sequence, and a script for joins
// and sends; both run under mu, one frame at a time.
type fakeServer struct {
	mu     sync.Mutex
	seq    uint64
	conns  int
	onJoin func(s *fakeServer, c *fakeConn, f *server.Frame)
	onSend func(s *fakeServer, c *fakeConn, f *server.Frame) (closeConn bool)
}

func (s *fakeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ws, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer ws.CloseNow()
	s.mu.Lock()
	s.conns++
	c := &fakeConn{n: s.conns, id: fmt.Sprintf("c%d", s.conns), ws: ws}
	s.mu.Unlock()
	c.send(fmt.Sprintf(`{"type":"hello","from":%q}`, c.id))
	for {
		_, data, err := ws.Read(context.Background())
		if err != nil {
			return
		}
		var f server.Frame
		if err := json.Unmarshal(data, &f); err != nil {
			continue
		}
		s.mu.Lock()
		closeConn := false
		switch f.Type {
		case "join":
			s.onJoin(s, c, &f)
		case "send":
			closeConn = s.onSend(s, c, &f)
		}
		s.mu.Unlock()
		if closeConn {
			return
		}
	}
}

func joined(room string, seq uint64) string {
	return fmt.Sprintf(`{"type":"joined","room":%q,"seq":%d,"members":1}`, room, seq)
}

func msgOf(room string, seq uint64, from string, cs uint64) string {
	return fmt.Sprintf(`{"type":"msg","room":%q,"seq":%d,"from":%q,"client_seq":%d,"text":"%d x","at":%d}`,
		room, seq, from, cs, time.Now().UnixNano(), time.Now().UnixNano())
}

func ackOf(room string, seq, cs uint64) string {
	return fmt.Sprintf(`{"type":"ack","room":%q,"seq":%d,"client_seq":%d}`, room, seq, cs)
}

// runAgainst runs the load client (1 client, 1 room) against s.
func runAgainst(t *testing.T, s *fakeServer) *report {
	t.Helper()
	ts := httptest.NewServer(s)
	defer ts.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rep, err := run(ctx, config{
		URL:   "ws://" + strings.TrimPrefix(ts.URL, "http://") + "/ws",
		Conns: 1, Rooms: 1, RoomsPerConn: 1, MaxMembers: 1, Zipf: 1.1,
		Rate: 40, Duration: 400 * time.Millisecond, Drain: 3 * time.Second,
		TextBytes: 32, Seed: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	printReport(&sb, &config{Rate: 40}, rep)
	t.Log("\n" + sb.String())
	return rep
}

// liveJoin answers a join with the room's current sequence, replaying the
// stored messages after since (none stored here beyond what the script
// says).
func liveJoin(s *fakeServer, c *fakeConn, f *server.Frame) { c.send(joined(f.Room, s.seq)) }

// TestCheckerClean: a correct fake server gives a clean report.
func TestCheckerClean(t *testing.T) {
	s := &fakeServer{onJoin: liveJoin, onSend: func(s *fakeServer, c *fakeConn, f *server.Frame) bool {
		s.seq++
		c.send(msgOf(f.Room, s.seq, c.id, f.ClientSeq), ackOf(f.Room, s.seq, f.ClientSeq))
		return false
	}}
	rep := runAgainst(t, s)
	if rep.Sent == 0 || rep.Lost+rep.OutOfOrder+rep.Dups+rep.Unacked+rep.Disconnected != 0 || rep.Delivered != rep.Sent {
		t.Fatalf("clean server: sent %d delivered %d lost %d ooo %d dups %d unacked %d disconnected %d",
			rep.Sent, rep.Delivered, rep.Lost, rep.OutOfOrder, rep.Dups, rep.Unacked, rep.Disconnected)
	}
}

// TestCheckerStoredNotDelivered: the server stores the client's first
// message (seq 1) and drops the connection before answering; the client
// rejoins with since=0, and the joined frame says the room is at seq 1 but
// the replay leaves seq 1 out. The member never receives seq 1, which the
// joined frame told it exists: a loss, which the report must count.
func TestCheckerStoredNotDelivered(t *testing.T) {
	s := &fakeServer{onJoin: liveJoin, onSend: func(s *fakeServer, c *fakeConn, f *server.Frame) bool {
		if c.n == 1 {
			s.seq++ // stored as seq 1; the connection ends before any answer
			return true
		}
		c.send(fmt.Sprintf(`{"type":"error","code":"rate_limited","retry":true,"client_seq":%d,"room":%q}`, f.ClientSeq, f.Room))
		return false
	}}
	rep := runAgainst(t, s)
	if rep.Reconnects == 0 {
		t.Fatal("the client did not reconnect: the scenario did not happen")
	}
	if rep.Lost+rep.OutOfOrder+rep.Dups+rep.Unacked+rep.Disconnected == 0 {
		t.Errorf("seq 1 was stored (joined said seq %d) and never delivered to the room's only member, "+
			"yet the report counts nothing lost, out of order, duplicated, unacked or disconnected", s.seq)
	}
}

// TestCheckerDuplicateUnderNewSeq: the server stores every send twice
// (two sequence numbers, the same sender and client_seq: a retried
// transaction that had committed) and delivers both: duplicates, which the
// report must count though every sequence number arrives once.
func TestCheckerDuplicateUnderNewSeq(t *testing.T) {
	s := &fakeServer{onJoin: liveJoin, onSend: func(s *fakeServer, c *fakeConn, f *server.Frame) bool {
		s.seq += 2
		c.send(msgOf(f.Room, s.seq-1, c.id, f.ClientSeq), msgOf(f.Room, s.seq, c.id, f.ClientSeq), ackOf(f.Room, s.seq-1, f.ClientSeq))
		return false
	}}
	rep := runAgainst(t, s)
	if rep.Sent == 0 {
		t.Fatal("nothing sent")
	}
	if rep.Dups == 0 {
		t.Errorf("%d sends each delivered twice (%d deliveries), yet the report counts no duplicate",
			rep.Sent, rep.Delivered)
	}
}

// TestCheckerSwap: the server delivers messages 2 and 3 swapped, losing
// nothing: out of order once, lost none.
func TestCheckerSwap(t *testing.T) {
	var held string
	s := &fakeServer{onJoin: liveJoin, onSend: func(s *fakeServer, c *fakeConn, f *server.Frame) bool {
		s.seq++
		m := msgOf(f.Room, s.seq, c.id, f.ClientSeq)
		a := ackOf(f.Room, s.seq, f.ClientSeq)
		switch s.seq {
		case 2:
			held = m // delivered after 3
			c.send(a)
		case 3:
			c.send(m, held, a)
		default:
			c.send(m, a)
		}
		return false
	}}
	rep := runAgainst(t, s)
	if s.seq < 3 {
		t.Fatalf("%d sends: the swap of 2 and 3 did not happen", s.seq)
	}
	if rep.OutOfOrder == 0 {
		t.Fatal("the swap was not reported out of order")
	}
	if rep.Lost != 0 {
		t.Errorf("nothing was lost (every seq 1..%d delivered), yet lost %d (out of order %d)", s.seq, rep.Lost, rep.OutOfOrder)
	}
}

// TestRetryableJoinRetried: after a drop, the rejoin is answered with a
// retryable error (as the server answers a join whose catch-up read
// failed); the client joins again, as the frame allows, and nothing is
// reported lost or disconnected.
func TestRetryableJoinRetried(t *testing.T) {
	refused := false
	s := &fakeServer{onJoin: func(s *fakeServer, c *fakeConn, f *server.Frame) {
		if c.n == 2 && !refused {
			refused = true
			c.send(fmt.Sprintf(`{"type":"error","code":"internal","retry":true,"room":%q,"message":"join not applied"}`, f.Room))
			return
		}
		c.send(joined(f.Room, s.seq))
	}, onSend: func(s *fakeServer, c *fakeConn, f *server.Frame) bool {
		if c.n == 1 {
			return true // dropped before anything was stored
		}
		s.seq++
		c.send(msgOf(f.Room, s.seq, c.id, f.ClientSeq), ackOf(f.Room, s.seq, f.ClientSeq))
		return false
	}}
	rep := runAgainst(t, s)
	if !refused {
		t.Fatal("the scenario did not happen")
	}
	if rep.Disconnected != 0 || rep.Lost != 0 {
		t.Errorf("one retryable join refusal: disconnected %d, lost %d (nothing was lost; a second join succeeds)", rep.Disconnected, rep.Lost)
	}
}
