package server

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// testTimeout bounds every wait of a test for an event.
const testTimeout = 20 * time.Second

// startServer runs a Server behind an httptest.Server; both are closed at
// cleanup (the Server first, so its connections end cleanly).
func startServer(t testing.TB, cfg Config) (*Server, *httptest.Server) {
	t.Helper()
	return startServerBuf(t, cfg, 0)
}

// startServerBuf is startServer whose accepted sockets have a send buffer
// of sndbuf bytes (0: the system's default).
func startServerBuf(t testing.TB, cfg Config, sndbuf int) (*Server, *httptest.Server) {
	t.Helper()
	if cfg.DBPath == "" {
		cfg.DBPath = filepath.Join(t.TempDir(), "chat.db")
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(srv)
	if sndbuf > 0 {
		ts.Listener = smallBufListener{ts.Listener, sndbuf}
	}
	ts.Start()
	t.Cleanup(func() {
		// A test that closed the server itself checked its result: a
		// later Close returns that same result again.
		srv.mu.Lock()
		closed := srv.closed
		srv.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		if err := srv.Close(ctx); err != nil && !closed {
			t.Errorf("Close: %v", err)
		}
		ts.Close()
	})
	return srv, ts
}

// smallBufListener sets the send buffer of every accepted TCP connection.
type smallBufListener struct {
	net.Listener
	sndbuf int
}

func (l smallBufListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(l.sndbuf)
	}
	return c, err
}

func wsURL(ts *httptest.Server) string { return "ws" + strings.TrimPrefix(ts.URL, "http") + "/ws" }

// client is a test WebSocket client: a goroutine reads every frame into
// frames until the connection ends, then closes frames.
type client struct {
	t      testing.TB
	ws     *websocket.Conn
	id     string
	frames chan Frame
	closed chan struct{} // closed when the reader ends
	err    error         // the read error that ended it, set before closed
}

func dial(t testing.TB, ts *httptest.Server) *client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, wsURL(ts), nil)
	if err != nil {
		t.Fatal(err)
	}
	ws.SetReadLimit(-1)
	c := &client{t: t, ws: ws, frames: make(chan Frame, 1<<16), closed: make(chan struct{})}
	go c.read()
	t.Cleanup(func() {
		c.ws.CloseNow()
		<-c.closed
	})
	c.id = c.expect("hello").From
	return c
}

func (c *client) read() {
	defer close(c.closed)
	defer close(c.frames)
	for {
		_, data, err := c.ws.Read(context.Background())
		if err != nil {
			c.err = err
			return
		}
		for line := range bytes.SplitSeq(data, []byte{'\n'}) {
			var f Frame
			if err := json.Unmarshal(line, &f); err != nil {
				c.err = err
				return
			}
			c.frames <- f
		}
	}
}

// send writes f as one frame.
func (c *client) send(f Frame) {
	c.t.Helper()
	b, _ := json.Marshal(f)
	c.sendRaw(b)
}

func (c *client) sendRaw(b []byte) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// next returns the next frame, failing the test after testTimeout or when
// the connection ended.
func (c *client) next() Frame {
	c.t.Helper()
	select {
	case f, ok := <-c.frames:
		if !ok {
			c.t.Fatalf("%s: connection ended: %v", c.id, c.err)
		}
		return f
	case <-time.After(testTimeout):
		c.t.Fatalf("%s: no frame within %v", c.id, testTimeout)
	}
	return Frame{}
}

// expect returns the next frame and fails unless it has type typ.
func (c *client) expect(typ string) Frame {
	c.t.Helper()
	f := c.next()
	if f.Type != typ {
		c.t.Fatalf("%s: got %+v, want a %s frame", c.id, f, typ)
	}
	return f
}

func (c *client) join(room string) Frame {
	c.t.Helper()
	c.send(Frame{Type: "join", Room: room})
	return c.expect("joined")
}

// waitFor polls cond until it holds, failing after testTimeout. The
// condition reads counters that change on real events; each poll yields
// with a short timer, never a fixed sleep standing in for the event.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}
