package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/shoal-go/shoal/backpressure"
)

// TestBadInput: every bad frame is answered with its error frame, and the
// connection goes on working.
func TestBadInput(t *testing.T) {
	_, ts := startServer(t, Config{MaxRooms: 2, MaxTextBytes: 10, MaxFrameBytes: 200, MaxRoomBytes: 8})
	c := dial(t, ts)
	c.join("in")
	cases := []struct {
		name, frame, code string
	}{
		{"not json", `hello`, CodeBadJSON},
		{"json array", `[1,2]`, CodeBadJSON},
		{"unknown type", `{"type":"shout","room":"in"}`, CodeUnknownType},
		{"no type", `{"room":"in"}`, CodeUnknownType},
		{"no room", `{"type":"join"}`, CodeBadRoom},
		{"long room", `{"type":"join","room":"123456789"}`, CodeBadRoom},
		{"send outside", `{"type":"send","room":"out","client_seq":1,"text":"x"}`, CodeNotJoined},
		{"leave outside", `{"type":"leave","room":"out"}`, CodeNotJoined},
		{"join twice", `{"type":"join","room":"in"}`, CodeAlreadyIn},
		{"empty text", `{"type":"send","room":"in","client_seq":1}`, CodeEmptyText},
		{"long text", `{"type":"send","room":"in","client_seq":1,"text":"12345678901"}`, CodeTextTooLong},
		{"long frame", `{"type":"send","room":"in","text":"` + strings.Repeat("x", 300) + `"}`, CodeFrameTooLong},
		{"bad seq type", `{"type":"send","room":"in","client_seq":"one","text":"x"}`, CodeBadJSON},
	}
	for _, tc := range cases {
		c.sendRaw([]byte(tc.frame))
		if f := c.expect("error"); f.Code != tc.code || f.Message == "" {
			t.Errorf("%s: got %+v, want code %s", tc.name, f, tc.code)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageBinary, []byte{1, 2}); err != nil {
		t.Fatal(err)
	}
	if f := c.expect("error"); f.Code != CodeBinary {
		t.Errorf("binary: got %+v", f)
	}
	c.join("second")
	c.send(Frame{Type: "join", Room: "third"})
	if f := c.expect("error"); f.Code != CodeTooManyRooms {
		t.Errorf("third room: got %+v", f)
	}
	// The connection still works.
	c.send(Frame{Type: "send", Room: "in", ClientSeq: 7, Text: "ok"})
	if f := c.expect("msg"); f.ClientSeq != 7 {
		t.Errorf("after bad input: %+v", f)
	}
	c.expect("ack")
	c.send(Frame{Type: "leave", Room: "in"})
	c.expect("left")
}

// TestHardFrameLimit: a frame past the hard limit closes the connection
// with status 1009.
func TestHardFrameLimit(t *testing.T) {
	_, ts := startServer(t, Config{MaxFrameBytes: 100, HardFrameBytes: 1000})
	c := dial(t, ts)
	c.sendRaw([]byte(strings.Repeat("x", 2000)))
	<-c.closed
	if got := websocket.CloseStatus(c.err); got != websocket.StatusMessageTooBig {
		t.Fatalf("close status %v (%v), want %v", got, c.err, websocket.StatusMessageTooBig)
	}
}

// TestRateLimit: past the burst, frames get a retryable rate_limited error.
func TestRateLimit(t *testing.T) {
	_, ts := startServer(t, Config{Rate: 0.001, Burst: 3})
	c := dial(t, ts)
	c.join("r")
	c.send(Frame{Type: "send", Room: "r", ClientSeq: 1, Text: "a"})
	c.send(Frame{Type: "send", Room: "r", ClientSeq: 2, Text: "b"})
	c.send(Frame{Type: "send", Room: "r", ClientSeq: 3, Text: "c"})
	got := map[string]int{}
	for range 5 { // msg, ack, msg, ack, error in some order
		f := c.next()
		got[f.Type]++
		if f.Type == "error" && (f.Code != CodeRateLimited || !f.Retry || f.ClientSeq != 3 || f.Room != "r") {
			t.Errorf("got %+v, want retryable %s", f, CodeRateLimited)
		}
	}
	if got["error"] != 1 || got["ack"] != 2 {
		t.Errorf("frames %v, want 2 acks and 1 error", got)
	}
}

// TestOrigin: a browser page of another origin cannot connect; an allowed
// one can.
func TestOrigin(t *testing.T) {
	_, ts := startServer(t, Config{OriginPatterns: []string{"chat.example"}})
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	h := http.Header{"Origin": {"http://evil.example"}}
	_, resp, err := websocket.Dial(ctx, wsURL(ts), &websocket.DialOptions{HTTPHeader: h})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("foreign origin: err %v, resp %v; want 403", err, resp)
	}
	h.Set("Origin", "https://chat.example")
	ws, _, err := websocket.Dial(ctx, wsURL(ts), &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		t.Fatalf("allowed origin: %v", err)
	}
	ws.Close(websocket.StatusNormalClosure, "")
}

// pressure is a breaker Source whose memory use the test sets.
type pressure struct{ used atomic.Int64 }

func (p *pressure) Read(r *backpressure.Reading) { r.Used = p.used.Load() }

// TestMemoryPressure: when the breaker refuses, a send gets a retryable
// overloaded error and is not stored.
func TestMemoryPressure(t *testing.T) {
	for _, be := range backends() {
		t.Run(be, func(t *testing.T) {
			src := new(pressure)
			br, err := backpressure.NewBreaker(backpressure.WithBudget(1<<40), backpressure.WithSource(src))
			if err != nil {
				t.Fatal(err)
			}
			defer br.Close()
			srv, ts := startServer(t, Config{Backend: be, Breaker: br})
			c := dial(t, ts)
			c.join("r")
			src.used.Store(1 << 41)
			waitFor(t, "breaker to refuse", func() bool { return errors.Is(br.Admit(), backpressure.ErrMemoryPressure) })
			c.send(Frame{Type: "send", Room: "r", ClientSeq: 9, Text: "x"})
			f := c.expect("error")
			if f.Code != CodeOverloaded || !f.Retry || f.ClientSeq != 9 || f.Room != "r" {
				t.Fatalf("got %+v, want retryable %s for client_seq 9", f, CodeOverloaded)
			}
			if st := srv.Stats(); st.Accepted != 0 || st.BreakerState == "" {
				t.Fatalf("accepted %d, breaker %q", st.Accepted, st.BreakerState)
			}
		})
	}
}

// TestSlowConsumer: a member that does not read is disconnected once its
// write queue is full; the room goes on and the others receive everything.
func TestSlowConsumer(t *testing.T) {
	for _, be := range backends() {
		t.Run(be, func(t *testing.T) { testSlowConsumer(t, be) })
	}
}

func testSlowConsumer(t *testing.T, backend string) {
	srv, sender, reader := roomWithNonReader(t, Config{Backend: backend, WriteQueue: 64, MaxTextBytes: 4096, Rate: 1e6})
	text := strings.Repeat("x", 4000)
	var sent uint64
	for srv.Stats().SlowConsumers == 0 {
		if sent >= 20000 {
			t.Fatalf("slow consumer still connected after %d messages", sent)
		}
		for range 20 {
			sent++
			sender.send(Frame{Type: "send", Room: "r", ClientSeq: sent, Text: text})
		}
		for acks := 0; acks < 20; {
			if sender.next().Type == "ack" {
				acks++
			}
		}
	}
	// The room continues: a later message reaches the healthy members, and
	// the reader saw every message in order.
	sent++
	sender.send(Frame{Type: "send", Room: "r", ClientSeq: sent, Text: "after"})
	for want := uint64(1); want <= sent; want++ {
		if f := reader.expect("msg"); f.Seq != want {
			t.Fatalf("reader got seq %d, want %d", f.Seq, want)
		}
	}
	waitFor(t, "slow client to leave", func() bool {
		st, _, _ := srv.hub.state.Get("r")
		return st.Members == 2
	})
	if st := srv.Stats(); st.SlowConsumers != 1 {
		t.Fatalf("slow consumers %d, want 1", st.SlowConsumers)
	}
}

// roomWithNonReader starts a server whose sockets have an 8 KiB send
// buffer, with room "r" joined by a sender, a reader, and a client with a
// small receive buffer that never reads.
func roomWithNonReader(t *testing.T, cfg Config) (srv *Server, sender, reader *client) {
	t.Helper()
	srv, ts := startServerBuf(t, cfg, 8192)
	sender, reader = dial(t, ts), dial(t, ts)
	sender.join("r")
	reader.join("r")
	joinNonReader(t, srv, ts, "r", 3)
	return srv, sender, reader
}

// joinNonReader connects a client with a small socket receive buffer that
// joins room and never reads, and waits until room has members members.
func joinNonReader(t *testing.T, srv *Server, ts *httptest.Server, room string, members int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetReadBuffer(4096)
		}
		return c, err
	}}
	t.Cleanup(tr.CloseIdleConnections)
	slow, _, err := websocket.Dial(ctx, wsURL(ts), &websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { slow.CloseNow() })
	if err := slow.Write(ctx, websocket.MessageText, fmt.Appendf(nil, `{"type":"join","room":%q}`, room)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the non-reading client to join", func() bool {
		st, _, _ := srv.hub.state.Get(room)
		return st.Members == members
	})
}

// TestWriteTimeout: a member that does not read, with a write queue too
// large to fill, is disconnected when one write has been blocked for
// WriteTimeout; it is not counted as a slow consumer, and the room goes on.
func TestWriteTimeout(t *testing.T) {
	srv, sender, reader := roomWithNonReader(t, Config{WriteQueue: 1 << 16, WriteTimeout: 100 * time.Millisecond, Rate: 1e6})
	text := strings.Repeat("x", 4000)
	var sent uint64
	for {
		st, _, _ := srv.hub.state.Get("r")
		if st.Members == 2 {
			break
		}
		if sent >= 20000 {
			t.Fatalf("non-reading client still in the room after %d messages", sent)
		}
		sent++
		sender.send(Frame{Type: "send", Room: "r", ClientSeq: sent, Text: text})
		for sender.next().Type != "ack" {
		}
	}
	for want := uint64(1); want <= sent; want++ {
		if f := reader.expect("msg"); f.Seq != want {
			t.Fatalf("reader got seq %d, want %d", f.Seq, want)
		}
	}
	waitFor(t, "the non-reading connection to end", func() bool { return srv.Stats().Conns == 2 })
	if n := srv.Stats().SlowConsumers; n != 0 {
		t.Fatalf("slow consumers %d, want 0: the write timeout, not the queue, should end it", n)
	}
}
