package server

import (
	"context"
	"path/filepath"
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
