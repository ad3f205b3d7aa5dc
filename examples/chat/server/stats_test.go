package server

import (
	"context"
	"errors"
	"testing"
)

// TestDeliveredCountedWhenTaken: a join's replayed frames and a message's
// frames count in Replayed and Delivered when each connection's writer
// takes them, not when the room queues them, and never for a connection
// that ended before its writer took them.
func TestDeliveredCountedWhenTaken(t *testing.T) {
	h, db, st := hubOn(t, "r", 1, "x")
	defer db.Close()
	ctx := context.Background()
	a, b, gone := hubConn(st, nil, 8), hubConn(st, nil, 8), hubConn(st, nil, 8)
	for _, c := range []*conn{a, b, gone} {
		if err := h.handle(ctx, "r", []op{joinOp(c, "r", 0)}); err != nil {
			t.Fatal(err)
		}
	}
	gone.kill(false) // its page stays queued, never taken
	if err := h.handle(ctx, "r", []op{{kind: opSend, c: a, clientSeq: 1, text: "hi"}}); err != nil {
		t.Fatal(err)
	}
	if d, r := st.delivered.Load(), st.replayed.Load(); d != 0 || r != 0 {
		t.Fatalf("Delivered %d, Replayed %d before any writer took a frame, want 0 and 0", d, r)
	}
	for _, c := range []*conn{a, b} {
		for len(c.out) > 0 {
			c.taken(<-c.out)
		}
	}
	if d, r := st.delivered.Load(), st.replayed.Load(); d != 2 || r != 2 {
		t.Fatalf("Delivered %d, Replayed %d once the two live writers took their frames, want 2 and 2", d, r)
	}
}

// Stats.Errors counts error frames sent to clients, when the writer takes
// them: the answers to a connection that had ended, which are dropped
// unsent, are not counted, nor are those still queued.
// NotPersisted counts every accepted message not stored, its sender gone
// or not.
func TestErrorsCountOnlyQueuedFrames(t *testing.T) {
	h, db, st := hubOn(t, "r", 1, "x")
	defer db.Close()
	stayIn(t, h, st, "r")

	// A send of a connection that ended and was never a member: refused,
	// its not_joined answer dropped.
	gone := hubConn(st, nil, 8)
	gone.kill(false)
	if err := h.handle(context.Background(), "r", []op{{kind: opSend, c: gone, clientSeq: 1, text: "hi"}}); err != nil {
		t.Fatal(err)
	}
	// A failed call's answers to an ended sender and joiner.
	h.failed("r", []op{
		{kind: opSend, c: gone, clientSeq: 2, text: "hi"},
		{kind: opJoin, c: gone, id: gone.record("s", true)},
	}, errors.New("disk full"))
	// A refusal answered by the reader of a connection that ended.
	gone.fail(CodeRateLimited, "too many frames", "r", 3, true)

	for _, code := range []string{CodeNotJoined, CodeNotPersisted, CodeInternal, CodeRateLimited} {
		if n := st.errors[code].Load(); n != 0 {
			t.Errorf("Errors[%s] = %d for answers to an ended connection, never sent; want 0", code, n)
		}
	}
	if n := st.notPersisted.Load(); n != 1 {
		t.Errorf("NotPersisted = %d, want 1: the message was accepted and not stored", n)
	}

	// The same answers to a live connection are counted.
	live := hubConn(st, nil, 8)
	if err := h.handle(context.Background(), "r", []op{{kind: opSend, c: live, clientSeq: 1, text: "hi"}}); err != nil {
		t.Fatal(err)
	}
	h.failed("r", []op{{kind: opSend, c: live, clientSeq: 2, text: "hi"}}, errors.New("disk full"))
	live.fail(CodeRateLimited, "too many frames", "r", 3, true)
	for _, code := range []string{CodeNotJoined, CodeNotPersisted, CodeRateLimited} {
		if n := st.errors[code].Load(); n != 0 {
			t.Errorf("Errors[%s] = %d for an answer the writer has not taken, want 0", code, n)
		}
	}
	for len(live.out) > 0 {
		live.taken(<-live.out)
	}
	for _, code := range []string{CodeNotJoined, CodeNotPersisted, CodeRateLimited} {
		if n := st.errors[code].Load(); n != 1 {
			t.Errorf("Errors[%s] = %d for one answer taken by a live connection's writer, want 1", code, n)
		}
	}
	if n := st.notPersisted.Load(); n != 2 {
		t.Errorf("NotPersisted = %d, want 2", n)
	}
}
