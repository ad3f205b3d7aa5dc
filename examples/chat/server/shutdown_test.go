package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestShutdownPersists: clients send as fast as they can while the server
// closes. Every message the server accepted is stored (the database,
// reopened, holds exactly that many) and acknowledged to its sender before
// its connection closes.
func TestShutdownPersists(t *testing.T) {
	for _, be := range backends() {
		t.Run(be, func(t *testing.T) { testShutdownPersists(t, be) })
	}
}

func testShutdownPersists(t *testing.T, backend string) {
	const (
		clients = 10
		perConn = 40 // messages each client sends, without waiting
	)
	path := filepath.Join(t.TempDir(), "chat.db")
	srv, ts := startServer(t, Config{DBPath: path, Backend: backend, Rate: 1e6, Burst: 1 << 20})
	var acks atomic.Int64
	started := make(chan struct{})
	var startOnce sync.Once
	var wg sync.WaitGroup
	cs := make([]*client, clients)
	for i := range cs {
		cs[i] = dial(t, ts)
		cs[i].join(fmt.Sprint("r", i%5))
	}
	for i, c := range cs {
		room := fmt.Sprint("r", i%5)
		wg.Go(func() { // reader: counts acks until the server closes
			for f := range c.frames {
				if f.Type == "ack" {
					if acks.Add(1) == 50 {
						startOnce.Do(func() { close(started) })
					}
				}
			}
		})
		wg.Go(func() { // writer: sends until done or the connection is gone
			for n := uint64(1); n <= perConn; n++ {
				b := fmt.Appendf(nil, `{"type":"send","room":%q,"client_seq":%d,"text":"m%d"}`, room, n, n)
				if c.ws.Write(context.Background(), 1, b) != nil {
					return
				}
			}
		})
	}
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := srv.Close(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()

	accepted := srv.Stats().Accepted
	db, err := OpenDB(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	stored, err := db.Count(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("accepted %d, stored %d, acknowledged %d", accepted, stored, acks.Load())
	if uint64(stored) != accepted || acks.Load() != stored {
		t.Fatalf("accepted %d, stored %d, acknowledged %d: want all equal", accepted, stored, acks.Load())
	}
}

// TestCloseDeadlineErrorOnce: when Close's context ends while a call is
// blocked in the database and a client does not answer the close
// handshake, both the scheduler and the wait for the connections give up
// on that context; Close returns its error once, not once for each.
func TestCloseDeadlineErrorOnce(t *testing.T) {
	for _, be := range backends() {
		t.Run(be, func(t *testing.T) {
			t.Parallel() // each waits out Close's grace for the writers
			path := filepath.Join(t.TempDir(), "chat.db")
			srv, err := New(Config{DBPath: path, Backend: be})
			if err != nil {
				t.Fatal(err)
			}
			ts := httptest.NewServer(srv)
			t.Cleanup(ts.Close)
			c := dial(t, ts)
			c.join("r")
			joinNonReader(t, srv, ts, "r", 2)
			release := lockDB(t, path)
			c.send(Frame{Type: "send", Room: "r", ClientSeq: 1, Text: "x"})
			waitFor(t, "the room's call to block in its insert", func() bool { return stackHas("server.(*DB).insert") })
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			closed := make(chan error, 1)
			go func() { closed <- srv.Close(ctx) }()
			<-ctx.Done()
			release()
			err = <-closed
			if n := countErr(err, ctx.Err()); n != 1 {
				t.Fatalf("Close: %v\nholds the context's error %d times, want once", err, n)
			}
		})
	}
}

// countErr counts the branches of err's tree that end in target.
func countErr(err, target error) int {
	switch e := err.(type) {
	case nil:
		return 0
	case interface{ Unwrap() []error }:
		n := 0
		for _, e := range e.Unwrap() {
			n += countErr(e, target)
		}
		return n
	default:
		if err == target {
			return 1
		}
		return countErr(errors.Unwrap(err), target)
	}
}

// TestCloseBoundedPastDeadline: a client that never reads does not answer
// the WebSocket close handshake, which coder/websocket waits 5 s for. Close
// past its deadline gives the writers closeGrace, then closes the sockets
// still open: it returns soon after, not when the handshake gives up.
func TestCloseBoundedPastDeadline(t *testing.T) {
	for _, be := range backends() {
		t.Run(be, func(t *testing.T) {
			// Not startServer: its cleanup's Close would return this
			// Close's deadline error again.
			srv, err := New(Config{DBPath: filepath.Join(t.TempDir(), "chat.db"), Backend: be})
			if err != nil {
				t.Fatal(err)
			}
			closeBoundedWithMuteClient(t, srv, srv)
		})
	}
}

// closeBoundedWithMuteClient serves srv through h, connects a client that
// never reads, and checks that a Close with a 100 ms deadline returns the
// deadline's error within the deadline, closeGrace and a second's margin.
func closeBoundedWithMuteClient(t *testing.T, srv *Server, h http.Handler) {
	t.Helper()
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	mute, _, err := websocket.Dial(ctx, wsURL(ts), nil) // never reads
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mute.CloseNow() })
	waitFor(t, "the connection to open", func() bool { return srv.Stats().Conns == 1 })
	const deadline = 100 * time.Millisecond
	cctx, ccancel := context.WithTimeout(context.Background(), deadline)
	defer ccancel()
	start := time.Now()
	err = srv.Close(cctx)
	took := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close: %v, want the deadline's error", err)
	}
	if limit := deadline + closeGrace + time.Second; took > limit {
		t.Fatalf("Close took %v past a %v deadline, want at most %v (deadline, grace and a margin)", took, deadline, limit)
	}
}
