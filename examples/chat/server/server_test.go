package server

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
)

func backends() []string { return []string{BackendShoal, BackendPond} }

// TestOrder: 100 clients in 50 rooms; everyone receives every message of
// their rooms once, in sequence order with no gap, and every sender's
// messages are acknowledged.
func TestOrder(t *testing.T) {
	for _, be := range backends() {
		t.Run(be, func(t *testing.T) { testOrder(t, be) })
	}
}

func testOrder(t *testing.T, backend string) {
	const (
		clients  = 100
		rooms    = 50
		perConn  = 3 // rooms per client
		perRoom  = 4 // messages each client sends to each of its rooms
		roomName = "room-%d"
	)
	_, ts := startServer(t, Config{Backend: backend})
	cs := make([]*client, clients)
	roomsOf := make([][]string, clients)
	members := make(map[string]int)
	for i := range cs {
		cs[i] = dial(t, ts)
		for k := range perConn {
			r := fmt.Sprintf(roomName, (i*7+k*13)%rooms)
			roomsOf[i] = append(roomsOf[i], r)
			members[r]++
			if j := cs[i].join(r); j.Seq != 0 {
				t.Fatalf("joined %s at seq %d, want 0", r, j.Seq)
			}
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i, c := range cs {
		wg.Go(func() {
			for n := range perRoom {
				for _, r := range roomsOf[i] {
					c.send(Frame{Type: "send", Room: r, ClientSeq: uint64(n + 1), Text: fmt.Sprintf("%s says %d", c.id, n)})
				}
			}
			// Read until every room is complete: the last sequence of a
			// room is its members' message count.
			last := make(map[string]uint64)
			lastOwn := make(map[string]uint64)
			acks, done := 0, 0
			for done < perConn || acks < perConn*perRoom {
				f := c.next()
				switch f.Type {
				case "ack":
					acks++
				case "msg":
					if f.Seq != last[f.Room]+1 {
						errs <- fmt.Errorf("%s: room %s: seq %d after %d", c.id, f.Room, f.Seq, last[f.Room])
						return
					}
					last[f.Room] = f.Seq
					if f.From == c.id {
						if backend == BackendShoal && f.ClientSeq != lastOwn[f.Room]+1 {
							errs <- fmt.Errorf("%s: own client_seq %d after %d", c.id, f.ClientSeq, lastOwn[f.Room])
							return
						}
						lastOwn[f.Room] = f.ClientSeq
					}
					if f.Seq == uint64(members[f.Room]*perRoom) {
						done++
					}
				default:
					errs <- fmt.Errorf("%s: unexpected %+v", c.id, f)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestReconnect: a client that comes back with the last sequence it saw
// receives what it missed, then live messages, with no gap; a state frame
// gives its rooms' state since a version.
func TestReconnect(t *testing.T) {
	for _, be := range backends() {
		t.Run(be, func(t *testing.T) { testReconnect(t, be) })
	}
}

func testReconnect(t *testing.T, backend string) {
	srv, ts := startServer(t, Config{Backend: backend})
	a, b := dial(t, ts), dial(t, ts)
	a.join("r")
	b.join("r")
	sendAndAck := func(c *client, n uint64) Frame {
		c.send(Frame{Type: "send", Room: "r", ClientSeq: n, Text: fmt.Sprint("m", n)})
		for {
			if f := c.next(); f.Type == "ack" {
				return f
			}
		}
	}
	for n := uint64(1); n <= 5; n++ {
		sendAndAck(b, n)
	}
	for want := uint64(1); want <= 5; want++ {
		if f := a.expect("msg"); f.Seq != want {
			t.Fatalf("seq %d, want %d", f.Seq, want)
		}
	}
	version := srv.hub.state.Version()
	a.ws.CloseNow()
	<-a.closed
	// The server sees the socket end on its own time and submits the
	// connection's leave then; the room's state below counts members.
	waitFor(t, "the first connection's leave", func() bool {
		st, _, _ := srv.hub.state.Get("r")
		return st.Members == 1
	})
	for n := uint64(6); n <= 10; n++ {
		sendAndAck(b, n)
	}

	a = dial(t, ts)
	since := uint64(5)
	a.send(Frame{Type: "join", Room: "r", Since: &since})
	j := a.expect("joined")
	if j.Seq != 10 || j.Truncated != 0 {
		t.Fatalf("joined %+v, want seq 10", j)
	}
	for want := uint64(6); want <= 10; want++ {
		if f := a.expect("msg"); f.Seq != want || f.Text != fmt.Sprint("m", want) {
			t.Fatalf("replayed %+v, want seq %d", f, want)
		}
	}
	sendAndAck(b, 11)
	if f := a.expect("msg"); f.Seq != 11 {
		t.Fatalf("live seq %d, want 11", f.Seq)
	}
	a.send(Frame{Type: "state", Version: version})
	st := a.expect("state")
	if len(st.Rooms) != 1 || st.Rooms[0].Room != "r" || st.Rooms[0].Seq != 11 || st.Rooms[0].Members != 2 {
		t.Fatalf("state %+v, want r at seq 11 with 2 members", st)
	}
	if st.Version < version {
		t.Fatalf("state version %d went back from %d", st.Version, version)
	}
}

// TestReplayLimit: a join that missed more than MaxReplay messages gets the
// newest MaxReplay and the count it missed.
func TestReplayLimit(t *testing.T) {
	_, ts := startServer(t, Config{MaxReplay: 3})
	b := dial(t, ts)
	b.join("r")
	for n := uint64(1); n <= 8; n++ {
		b.send(Frame{Type: "send", Room: "r", ClientSeq: n, Text: "x"})
	}
	for acks := 0; acks < 8; {
		if b.next().Type == "ack" {
			acks++
		}
	}
	a := dial(t, ts)
	since := uint64(1)
	a.send(Frame{Type: "join", Room: "r", Since: &since})
	if j := a.expect("joined"); j.Seq != 8 || j.Truncated != 4 {
		t.Fatalf("joined %+v, want seq 8, truncated 4", j)
	}
	for want := uint64(6); want <= 8; want++ {
		if f := a.expect("msg"); f.Seq != want {
			t.Fatalf("seq %d, want %d", f.Seq, want)
		}
	}
}

// TestMetrics: /metrics has the pool's and the server's series; the page
// and /stats.json are served.
func TestMetrics(t *testing.T) {
	_, ts := startServer(t, Config{})
	c := dial(t, ts)
	c.join("r")
	c.send(Frame{Type: "send", Room: "r", ClientSeq: 1, Text: "hi"})
	c.expect("msg")
	c.expect("ack")
	// The message can reach its room, and its ack come back, before the
	// connection's reader, which submitted it, counts it as accepted.
	// The reader handles one frame at a time: the reply to a second frame
	// says it is done with the first.
	c.join("r2")
	get := func(path string) string {
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %s", path, resp.Status)
		}
		return string(b)
	}
	m := get("/metrics")
	for _, want := range []string{"shoal_tasks_submitted_total", "chat_messages_accepted_total 1", "chat_connections 1"} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if p := get("/"); !strings.Contains(p, "EventSource") {
		t.Errorf("page lacks its event stream")
	}
	if s := get("/stats.json"); !strings.Contains(s, `"Accepted":1`) {
		t.Errorf("/stats.json: %s", s)
	}
}
