package server

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
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

// TestReviewChatJoinAnsweredBeforeSubmitReturns: a join whose catch-up
// cannot be read is answered with a retryable error, and the connection
// records that it is not in the room, even when the room handles the join
// before submit returns to the reader: joining again succeeds.
func TestReviewChatJoinAnsweredBeforeSubmitReturns(t *testing.T) {
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
