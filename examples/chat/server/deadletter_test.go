package server

import (
	"context"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestNotPersisted: a message whose transaction fails every attempt (a
// trigger in the database refuses it) is not stored, not numbered and not
// delivered; its sender gets a retryable not_persisted error frame with its
// client_seq (with shoal, after the batch became a dead letter), and the
// room goes on numbering from where it was.
func TestNotPersisted(t *testing.T) {
	for _, be := range backends() {
		t.Run(be, func(t *testing.T) { testNotPersisted(t, be) })
	}
}

func testNotPersisted(t *testing.T, backend string) {
	path := filepath.Join(t.TempDir(), "chat.db")
	poisonDB(t, path)

	srv, ts := startServer(t, Config{DBPath: path, Backend: backend})
	sender, member := dial(t, ts), dial(t, ts)
	sender.join("r")
	member.join("r")

	sender.send(Frame{Type: "send", Room: "r", ClientSeq: 1, Text: "poison"})
	f := sender.expect("error")
	if f.Code != CodeNotPersisted || f.ClientSeq != 1 || f.Room != "r" || !f.Retry {
		t.Fatalf("got %+v, want a retryable %s error for client_seq 1 in r", f, CodeNotPersisted)
	}

	// The room goes on: the next message is number 1, and it is the first
	// msg frame either member sees.
	sender.send(Frame{Type: "send", Room: "r", ClientSeq: 2, Text: "fine"})
	if m := sender.expect("msg"); m.Seq != 1 || m.ClientSeq != 2 {
		t.Fatalf("sender got %+v, want seq 1 for client_seq 2", m)
	}
	if a := sender.expect("ack"); a.Seq != 1 || a.ClientSeq != 2 {
		t.Fatalf("got %+v, want the ack of seq 1", a)
	}
	if m := member.expect("msg"); m.Seq != 1 || m.Text != "fine" {
		t.Fatalf("member got %+v, want seq 1 \"fine\"", m)
	}

	st := srv.Stats()
	if st.NotPersisted != 1 || st.DBErrors != handleAttempts {
		t.Fatalf("not persisted %d, db errors %d (want 1, %d)", st.NotPersisted, st.DBErrors, handleAttempts)
	}
	if backend == BackendShoal && st.DeadLetters != 1 {
		t.Fatalf("dead letters %d, want 1", st.DeadLetters)
	}
	n, err := srv.db.Count(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("database holds %d messages, want 1", n)
	}
}

// TestDeadLetterAnsweredInOrder: the answers to a call that failed for
// good (a dead letter, with shoal) reach a client before the answers of
// the room's next call: a sender gets not_persisted for its failed
// message before the ack of the message it sent next. The test holds the
// record of a joiner in the failed call, so that answering the letter
// waits; the room's next call must wait for it.
func TestDeadLetterAnsweredInOrder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chat.db")
	poisonDB(t, path)
	srv, ts := startServer(t, Config{DBPath: path, MaxBatch: 2})
	sender, joiner := dial(t, ts), dial(t, ts)
	sender.join("r")
	var jc *conn
	srv.mu.Lock()
	for c := range srv.conns {
		if c.id == joiner.id {
			jc = c
		}
	}
	srv.mu.Unlock()

	release := lockDB(t, path)
	sender.send(Frame{Type: "send", Room: "r", ClientSeq: 1, Text: "first"})
	waitFor(t, "the room's call to block in its insert", func() bool { return stackHas("server.(*DB).insert") })
	sender.send(Frame{Type: "send", Room: "r", ClientSeq: 2, Text: "poison"})
	joiner.send(Frame{Type: "join", Room: "r"}) // in the failed call, with the poison
	queued := func(n int) func() bool {
		return func() bool { st, _ := srv.be.snapshot(); return st.Queued >= n }
	}
	waitFor(t, "the poison and the join to queue behind the blocked call", queued(3))
	sender.send(Frame{Type: "send", Room: "r", ClientSeq: 3, Text: "after"}) // the next call
	waitFor(t, "the next send to queue", queued(4))
	jc.roomsMu.Lock() // answering the letter waits here, in the joiner's settle
	locked := true
	unlock := func() {
		if locked {
			locked = false
			jc.roomsMu.Unlock()
		}
	}
	t.Cleanup(unlock) // before the server's Close, which waits for the letter
	release()
	waitFor(t, "the letter's answer to wait, and the room's next call to run or to wait for it", func() bool {
		g := goroutineWith("(*hub).failed(")
		return g != "" && (strings.Contains(g, "shoal/pool.") || srv.Stats().Batches >= 2)
	})
	unlock()

	var got []Frame
	for len(got) < 2 {
		if f := sender.next(); f.Type == "error" || f.Type == "ack" && f.ClientSeq == 3 {
			got = append(got, f)
		}
	}
	if got[0].Code != CodeNotPersisted || got[0].ClientSeq != 2 || got[1].Type != "ack" {
		t.Fatalf("sender got %+v then %+v; want not_persisted for client_seq 2, then the ack of client_seq 3", got[0], got[1])
	}
}

// goroutineWith returns the stack of a goroutine whose stack contains s,
// or "".
func goroutineWith(s string) string {
	buf := make([]byte, 1<<22)
	buf = buf[:runtime.Stack(buf, true)]
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if strings.Contains(g, s) {
			return g
		}
	}
	return ""
}
