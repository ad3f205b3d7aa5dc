package server

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// inlineBackend handles each op inside submit, before submit returns: a
// backend may run an op that early (a pond task, a Batcher call can start
// before Submit returns to its caller).
// Its mutex serializes the calls of every room.
type inlineBackend struct {
	backend
	h  *hub
	mu *sync.Mutex
}

func (b inlineBackend) submit(ctx context.Context, room string, o op) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.h.handleRetry(context.Background(), room, []op{o})
}

// startInline is startServer whose rooms are handled by an inlineBackend.
func startInline(t *testing.T, cfg Config) (*Server, *httptest.Server) {
	t.Helper()
	cfg.DBPath = filepath.Join(t.TempDir(), "chat.db")
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv.be = inlineBackend{srv.be, srv.hub, new(sync.Mutex)}
	ts := httptest.NewServer(srv)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
		ts.Close()
	})
	return srv, ts
}

// TestJoinAnsweredBeforeSubmitReturns: a join whose catch-up
// cannot be read is answered with a retryable error, and the connection
// records that it is not in the room, even when the room handles the join
// before submit returns to the reader: joining again succeeds.
func TestJoinAnsweredBeforeSubmitReturns(t *testing.T) {
	srv, ts := startInline(t, Config{})
	b := dial(t, ts)
	b.join("r")
	b.send(Frame{Type: "send", Room: "r", ClientSeq: 1, Text: "one"})
	firstOf(t, b, "ack")
	srv.db.r.Close() // catch-up reads fail

	a := dial(t, ts)
	since := uint64(0)
	a.send(Frame{Type: "join", Room: "r", Since: &since})
	if f := a.next(); f.Type != "error" || !f.Retry {
		t.Fatalf("join with a failing catch-up: got %+v, want a retryable error", f)
	}
	a.send(Frame{Type: "join", Room: "r"})
	if f := a.next(); f.Type != "joined" {
		t.Fatalf("retried join after a retryable error: got %+v, want joined", f)
	}
}

// TestPondSenderOrder: with the pond backend, a sender's
// messages queued behind a blocked call are numbered and acknowledged in
// the order it sent them, and a leave then a join queued there leave the
// connection a member.
func TestPondSenderOrder(t *testing.T) {
	const sends = 40
	srv, c, _, release := stalledRoom(t, BackendPond)
	t.Cleanup(func() { srv.Close(context.Background()) })
	for n := uint64(2); n <= sends; n++ {
		c.send(Frame{Type: "send", Room: "r", ClientSeq: n, Text: "x"})
	}
	c.send(Frame{Type: "leave", Room: "r"})
	c.send(Frame{Type: "join", Room: "r"})
	waitFor(t, "the ops to queue", func() bool { st, _ := srv.be.snapshot(); return st.Queued == sends+2 })
	release()
	var acks []uint64
	var got []string
	for len(got) < 2 {
		f := c.next()
		switch f.Type {
		case "ack":
			if f.Seq != f.ClientSeq {
				t.Errorf("client_seq %d numbered %d", f.ClientSeq, f.Seq)
			}
			acks = append(acks, f.ClientSeq)
		case "left", "joined":
			got = append(got, f.Type)
		case "error":
			t.Fatalf("got %+v", f)
		}
	}
	if len(acks) != sends || got[0] != "left" || got[1] != "joined" {
		t.Fatalf("acks %v, then %v; want %d acks, then left and joined", acks, got, sends)
	}
	if st, _, _ := srv.hub.state.Get("r"); st.Members != 1 {
		t.Fatalf("room r has %d members after leave then join; want 1", st.Members)
	}
}

// TestPondCloseDeadline: with the pond backend, when Close's
// context ends while the database stalls, every accepted send is answered
// before the connection closes, and no task runs after Close returned.
func TestPondCloseDeadline(t *testing.T) {
	const sends = 6
	srv, c, _, release := stalledRoom(t, BackendPond)
	for n := uint64(2); n <= sends; n++ {
		c.send(Frame{Type: "send", Room: "r", ClientSeq: n, Text: "x"})
	}
	waitFor(t, "the sends to queue", func() bool { st, _ := srv.be.snapshot(); return st.Queued == sends })
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	cerr := srv.Close(ctx)
	pb := srv.be.(*pondBackend)
	running := pb.p.RunningWorkers()
	release()
	answered := map[uint64]string{}
	for f := range c.frames {
		switch f.Type {
		case "ack":
			answered[f.ClientSeq] = "ack"
		case "error":
			answered[f.ClientSeq] = f.Code
		}
	}
	t.Logf("Close: %v; answers %v", cerr, answered)
	if running != 0 {
		t.Errorf("%d pond workers still running after Close returned", running)
	}
	if len(answered) != sends {
		t.Fatalf("%d of %d accepted sends answered before the connection closed (%v)", len(answered), sends, answered)
	}
}

// TestLaterJoinSurvivesFailedCall: a join that shares a failed
// call with a message is answered with an error; the same connection's
// leave and join queued behind it, in a later call that succeeds, make it
// a member. The failed call's answer must not undo the later join's
// record: the connection, told joined, may send to the room.
func TestLaterJoinSurvivesFailedCall(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chat.db")
	poisonDB(t, path)
	srv, ts := startServer(t, Config{DBPath: path, MaxBatch: 2})
	sender, joiner := dial(t, ts), dial(t, ts)
	sender.join("r")

	release := lockDB(t, path)
	sender.send(Frame{Type: "send", Room: "r", ClientSeq: 1, Text: "first"})
	waitFor(t, "the room's call to block in its insert", func() bool { return stackHas("server.(*DB).insert") })
	sender.send(Frame{Type: "send", Room: "r", ClientSeq: 2, Text: "poison"})
	waitFor(t, "the poison to queue", func() bool { st, _ := srv.be.snapshot(); return st.Queued >= 2 })
	joiner.send(Frame{Type: "join", Room: "r"})  // fails with the poison, in the same call
	joiner.send(Frame{Type: "leave", Room: "r"}) // the next call: not a member, answered left
	joiner.send(Frame{Type: "join", Room: "r"})  // the next call: joined
	waitFor(t, "the ops to queue behind the blocked call", func() bool {
		st, _ := srv.be.snapshot()
		return st.Queued >= 5
	})
	release()
	if f := firstOf(t, sender, "error"); f.Code != CodeNotPersisted || f.ClientSeq != 2 {
		t.Fatalf("sender got %+v, want not_persisted for client_seq 2", f)
	}
	// The failed join's error, then the later leave's left and join's
	// joined: the dead letter is answered before the room's next call.
	for _, want := range []string{"error", "left", "joined"} {
		if f := joiner.next(); f.Type != want {
			t.Fatalf("joiner got %+v, want %s (the failed join's error, then left, then joined)", f, want)
		}
	}
	joiner.send(Frame{Type: "send", Room: "r", ClientSeq: 1, Text: "after"})
	if f := firstOf(t, joiner, "ack", "error"); f.Type != "ack" {
		t.Fatalf("joiner, told joined, sends to the room: got %+v, want an ack", f)
	}
}
