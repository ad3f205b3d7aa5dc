package main

import (
	"context"
	"math"
	"net"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoal-go/shoal/examples/chat/server"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestLoad runs a small load against an in-process server of each backend,
// dropping and reconnecting clients (killed by the client, and cut by the
// server's side of the socket), and expects every message delivered
// once and in order, and every send answered or cut by a drop. Then it
// checks the database: every message the client learnt was stored (acked,
// or received by its sender after a drop) is in it, learnt once; beyond
// those it holds at most the sends cut by a drop and never seen.
func TestLoad(t *testing.T) {
	for _, be := range []string{server.BackendShoal, server.BackendPond} {
		t.Run(be, func(t *testing.T) {
			dbPath := filepath.Join(t.TempDir(), "chat.db")
			srv, err := server.New(server.Config{DBPath: dbPath, Backend: be})
			if err != nil {
				t.Fatal(err)
			}
			ts := httptest.NewUnstartedServer(srv)
			ln := &dropListener{Listener: ts.Listener}
			ts.Listener = ln
			ts.Start()
			defer ts.Close()
			closed := false
			defer func() {
				if !closed {
					srv.Close(context.Background())
				}
			}()
			// Once 100 messages were accepted, the server's side of 3
			// connections is closed: their clients must notice, reconnect
			// and catch up like killed ones.
			dropCtx, stopDropping := context.WithCancel(context.Background())
			dropped := make(chan int, 1)
			go func() {
				tick := time.NewTicker(5 * time.Millisecond)
				defer tick.Stop()
				for srv.Stats().Accepted < 100 {
					select {
					case <-tick.C:
					case <-dropCtx.Done():
						dropped <- 0
						return
					}
				}
				dropped <- ln.drop(3)
			}()
			url := strings.TrimPrefix(ts.URL, "http://")
			rep, err := run(context.Background(), config{
				URL: "ws://" + url + "/ws", StatsURL: ts.URL + "/stats.json",
				Conns: 40, Rooms: 30, RoomsPerConn: 3, MaxMembers: 20, Zipf: 1.1,
				Rate: 200, Duration: 1500 * time.Millisecond, Drain: 30 * time.Second,
				Kill: 10, TextBytes: 32, Seed: 1,
			})
			stopDropping()
			cut := <-dropped
			if err != nil {
				t.Fatal(err)
			}
			var sb strings.Builder
			printReport(&sb, &config{Rate: 200, Kill: 10}, rep)
			t.Log("\n" + sb.String())
			if rep.failed() || rep.Delivered == 0 || rep.Reconnects == 0 {
				t.Fatalf("lost %d, out of order %d, dups %d, unacked %d, disconnected %d, sender-order inversions %d, delivered %d, reconnects %d",
					rep.Lost, rep.OutOfOrder, rep.Dups, rep.Unacked, rep.Disconnected, rep.SenderReordered, rep.Delivered, rep.Reconnects)
			}
			// A cut connection may have been closed by a kill of its client
			// at the same moment; not all three.
			if cut != 3 || rep.Dropped == 0 || rep.Dropped > rep.Reconnects {
				t.Fatalf("the server's side of %d connections was cut (want 3), the client counted %d drops and %d reconnects",
					cut, rep.Dropped, rep.Reconnects)
			}
			if rep.Server == nil || rep.Server.Backend != be {
				t.Fatalf("server stats %+v", rep.Server)
			}
			if rep.Sent != rep.Acked+rep.Errors+rep.InFlightAtDrop {
				t.Fatalf("sent %d != acked %d + errors %d + in flight at a drop %d", rep.Sent, rep.Acked, rep.Errors, rep.InFlightAtDrop)
			}

			// Every stored message was acknowledged or cut by a drop; every
			// acknowledged one, and every one its sender saw after a drop,
			// was stored.
			closed = true
			if err := srv.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			db, err := server.OpenDB(dbPath)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			inDB := map[roomSeq]bool{}
			for k := range 30 {
				room := "room-" + strconv.Itoa(k)
				msgs, err := db.Range(context.Background(), room, 0, math.MaxInt64, math.MaxInt32)
				if err != nil {
					t.Fatal(err)
				}
				for _, m := range msgs {
					inDB[roomSeq{room, m.Seq}] = true
				}
			}
			for k, n := range rep.confirmed {
				if n != 1 || !inDB[k] {
					t.Errorf("%s seq %d: confirmed stored %d times, in the database: %v", k.room, k.seq, n, inDB[k])
				}
			}
			if unconfirmed := uint64(len(inDB) - len(rep.confirmed)); unconfirmed > rep.InFlightAtDrop-rep.InFlightStored {
				t.Errorf("database holds %d messages, %d of them neither acked nor seen by their sender; at most %d sends were in flight at a drop and not seen",
					len(inDB), unconfirmed, rep.InFlightAtDrop-rep.InFlightStored)
			}
			if uint64(len(rep.confirmed)) != rep.Acked+rep.InFlightStored {
				t.Errorf("%d messages confirmed stored, want acked %d + seen after a drop %d", len(rep.confirmed), rep.Acked, rep.InFlightStored)
			}
		})
	}
}

// dropListener keeps the server's side of every accepted connection so
// that a test can cut some of them.
type dropListener struct {
	net.Listener
	mu    sync.Mutex
	conns []*closeConn
}

// closeConn is a net.Conn that knows whether it was closed.
type closeConn struct {
	net.Conn
	closed atomic.Bool
}

func (c *closeConn) Close() error {
	c.closed.Store(true)
	return c.Conn.Close()
}

func (l *dropListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	cc := &closeConn{Conn: c}
	l.mu.Lock()
	l.conns = append(l.conns, cc)
	l.mu.Unlock()
	return cc, nil
}

// drop closes the first n connections that are still open and returns how
// many it closed.
func (l *dropListener) drop(n int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	cut := 0
	for _, c := range l.conns {
		if cut == n {
			break
		}
		if !c.closed.Load() {
			c.Close()
			cut++
		}
	}
	return cut
}
