package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/shoal-go/shoal/examples/chat/server"
)

// TestNearestRank: the report's percentiles are nearest-rank:
// the p99 of 1..100 ms is 99 ms (the maximum is Max), the p50 of two
// latencies the lower one.
func TestNearestRank(t *testing.T) {
	var lats []latency
	for i := 1; i <= 100; i++ {
		d := time.Duration(i) * time.Millisecond
		lats = append(lats, latency{recv: int64(i), e2e: d, server: d})
	}
	var rep report
	rep.latencies(lats, 0)
	if rep.P99 != 99*time.Millisecond || rep.ServerP99 != 99*time.Millisecond || rep.P50 != 50*time.Millisecond || rep.Max != 100*time.Millisecond {
		t.Errorf("1..100 ms: p50 %v p99 %v server p99 %v max %v; want 50ms 99ms 99ms 100ms", rep.P50, rep.P99, rep.ServerP99, rep.Max)
	}
	var two report
	two.latencies([]latency{{e2e: 1, server: 1}, {e2e: 2, server: 2}}, 0)
	if two.P50 != 1 || two.ServerP50 != 1 {
		t.Errorf("{1, 2}: p50 %v, server p50 %v; want 1", two.P50, two.ServerP50)
	}
}

// TestRetriedRejoinAsksSince: after a drop, the rejoin (with
// since) is answered with a retryable error; the client joins again, and
// that join must still ask for what it missed: a message stored while it
// was away (the send whose answer the drop cut) is replayed, and nothing
// is reported lost.
func TestRetriedRejoinAsksSince(t *testing.T) {
	type stored struct {
		from string
		cs   uint64
	}
	var msgs []stored // msgs[i] is seq i+1
	refused, replayed := false, false
	s := &fakeServer{onJoin: func(s *fakeServer, c *fakeConn, f *server.Frame) {
		if c.n == 2 && !refused {
			refused = true
			c.send(fmt.Sprintf(`{"type":"error","code":"internal","retry":true,"room":%q,"message":"join not applied"}`, f.Room))
			return
		}
		frames := []string{joined(f.Room, s.seq)}
		if f.Since != nil {
			for seq := *f.Since + 1; seq <= s.seq; seq++ {
				m := msgs[seq-1]
				frames = append(frames, msgOf(f.Room, seq, m.from, m.cs))
				replayed = true
			}
		}
		c.send(frames...)
	}, onSend: func(s *fakeServer, c *fakeConn, f *server.Frame) bool {
		s.seq++
		msgs = append(msgs, stored{c.id, f.ClientSeq})
		if c.n == 1 && s.seq == 2 {
			return true // stored, and the connection drops before the answer
		}
		c.send(msgOf(f.Room, s.seq, c.id, f.ClientSeq), ackOf(f.Room, s.seq, f.ClientSeq))
		return false
	}}
	rep := runAgainst(t, s)
	if !refused || s.seq < 2 {
		t.Fatal("the scenario did not happen")
	}
	if rep.Lost != 0 || rep.Disconnected != 0 || !replayed {
		t.Errorf("a rejoin refused once, then retried: lost %d, disconnected %d, replayed %v; want 0, 0, true "+
			"(the retried join did not ask for the message stored while the client was away)", rep.Lost, rep.Disconnected, replayed)
	}
}

// TestSenderInversionFails: the server numbers a sender's
// second message before its first (every member still receives each
// sequence number once, in order): the run must fail, as the exit status
// says it does for anything out of order.
func TestSenderInversionFails(t *testing.T) {
	var held *server.Frame
	s := &fakeServer{onJoin: liveJoin, onSend: func(s *fakeServer, c *fakeConn, f *server.Frame) bool {
		if f.ClientSeq == 1 {
			held = f // numbered after client_seq 2
			return false
		}
		s.seq++
		frames := []string{msgOf(f.Room, s.seq, c.id, f.ClientSeq), ackOf(f.Room, s.seq, f.ClientSeq)}
		if held != nil {
			s.seq++
			frames = append(frames, msgOf(held.Room, s.seq, c.id, held.ClientSeq), ackOf(held.Room, s.seq, held.ClientSeq))
			held = nil
		}
		c.send(frames...)
		return false
	}}
	rep := runAgainst(t, s)
	if rep.SenderReordered == 0 {
		t.Fatal("the inversion was not counted: the scenario did not happen")
	}
	if !rep.failed() {
		t.Errorf("a sender's messages numbered out of its order (%d), yet the run does not fail", rep.SenderReordered)
	}
}

// TestForeignRoom: the server delivers a message of a room the
// client never joined. The client must report it (the run fails), not
// crash.
func TestForeignRoom(t *testing.T) {
	s := &fakeServer{onJoin: liveJoin, onSend: func(s *fakeServer, c *fakeConn, f *server.Frame) bool {
		s.seq++
		c.send(msgOf(f.Room, s.seq, c.id, f.ClientSeq), msgOf("elsewhere", 1, "c99", 1), ackOf(f.Room, s.seq, f.ClientSeq))
		return false
	}}
	rep := runAgainst(t, s)
	if rep.Sent == 0 {
		t.Fatal("nothing sent")
	}
	if !rep.failed() {
		t.Errorf("messages of a room the client never joined (%d sends), yet the run does not fail", rep.Sent)
	}
}
