package server

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestProtocolEdges: numbers at the edges of their range, unicode
// and NUL in room names and text, duplicate keys: each frame is answered as
// the protocol says, stored, and replayed unchanged after a restart.
func TestProtocolEdges(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chat.db")
	rooms := []string{"a\x00b", "日本語", "é", "e\u0301", strings.Repeat("ü", 64)}
	texts := []string{"nul\x00in text", "<&>\u2028\"\\", "\x7f\x01"}
	{
		srv, err := New(Config{DBPath: path})
		if err != nil {
			t.Fatal(err)
		}
		ts := httptest.NewServer(srv)
		c := dial(t, ts)
		for _, r := range rooms {
			c.join(r)
			for i, txt := range texts {
				cs := uint64(math.MaxUint64 - uint64(i))
				c.send(Frame{Type: "send", Room: r, ClientSeq: cs, Text: txt})
				if f := c.expect("msg"); f.Room != r || f.Text != txt || f.ClientSeq != cs {
					t.Fatalf("live msg %+v, want room %q text %q client_seq %d", f, r, txt, cs)
				}
				if f := c.expect("ack"); f.ClientSeq != cs || f.Room != r {
					t.Fatalf("ack %+v", f)
				}
			}
		}
		// Huge since: live join, no replay, no crash.
		big := uint64(math.MaxUint64)
		c.send(Frame{Type: "join", Room: "fresh", Since: &big})
		c.expect("joined")
		// Huge state version: an answer, no crash.
		c.sendRaw([]byte(`{"type":"state","version":18446744073709551615}`))
		c.expect("state")
		// Out of range / negative numbers: bad_json.
		for _, raw := range []string{
			`{"type":"join","room":"x","since":-1}`,
			`{"type":"join","room":"x","since":18446744073709551616}`,
			`{"type":"send","room":"fresh","client_seq":-5,"text":"x"}`,
			`{"type":"state","version":1e3}`,
		} {
			c.sendRaw([]byte(raw))
			if f := c.expect("error"); f.Code != CodeBadJSON {
				t.Errorf("%s: got %+v, want %s", raw, f, CodeBadJSON)
			}
		}
		// Duplicate keys: the last one wins, consistently.
		c.sendRaw([]byte(`{"type":"send","room":"nope","room":"fresh","client_seq":1,"text":"dup"}`))
		c.expect("msg")
		c.expect("ack")
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		if err := srv.Close(ctx); err != nil {
			t.Fatal(err)
		}
		cancel()
		ts.Close()
	}
	srv, ts := startServer(t, Config{DBPath: path})
	for _, r := range rooms { // the server loads a room on its first use
		if seq, err := srv.db.lastSeq(context.Background(), r); err != nil || seq != uint64(len(texts)) {
			t.Errorf("room %q: last seq after restart %d (%v), want %d", r, seq, err, len(texts))
		}
	}
	c := dial(t, ts)
	zero := uint64(0)
	for _, r := range rooms {
		c.send(Frame{Type: "join", Room: r, Since: &zero})
		if f := c.expect("joined"); f.Seq != uint64(len(texts)) {
			t.Fatalf("joined %+v", f)
		}
		for i, txt := range texts {
			f := c.expect("msg")
			if f.Room != r || f.Text != txt || f.Seq != uint64(i+1) || f.ClientSeq != math.MaxUint64-uint64(i) {
				t.Fatalf("replayed %+v, want room %q seq %d text %q", f, r, i+1, txt)
			}
		}
	}
}

// TestHardLimitBoundary: a frame of exactly HardFrameBytes (over
// MaxFrameBytes) is answered with frame_too_long and the connection goes
// on; a frame of exactly MaxFrameBytes is handled.
func TestHardLimitBoundary(t *testing.T) {
	_, ts := startServer(t, Config{MaxFrameBytes: 100, HardFrameBytes: 1000})
	c := dial(t, ts)
	c.sendRaw([]byte(strings.Repeat("x", 1000)))
	if f := c.expect("error"); f.Code != CodeFrameTooLong {
		t.Fatalf("got %+v", f)
	}
	pre := `{"type":"join","room":"`
	c.sendRaw([]byte(pre + strings.Repeat("r", 100-len(pre)-2) + `"}`))
	c.expect("joined")
}

// TestDBPathSpecialChars: the database is the file named by
// Config.DBPath, whatever characters the (legal) file name holds.
func TestDBPathSpecialChars(t *testing.T) {
	for i, name := range []string{"chat#1.db", "chat?x=1.db", "50%41.db"} {
		t.Run(fmt.Sprint("name", i), func(t *testing.T) { // no special character in t.TempDir's name
			dir := t.TempDir()
			path := filepath.Join(dir, name)
			srv, err := New(Config{DBPath: path})
			if err != nil {
				t.Fatal(err)
			}
			ts := httptest.NewServer(srv)
			c := dial(t, ts)
			c.join("r")
			c.send(Frame{Type: "send", Room: "r", ClientSeq: 1, Text: "x"})
			c.expect("msg")
			c.expect("ack")
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			if err := srv.Close(ctx); err != nil {
				t.Fatal(err)
			}
			ts.Close()
			ents, _ := os.ReadDir(dir)
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			if _, err := os.Stat(path); err != nil {
				t.Fatalf("DBPath %q: %v; the directory holds %q", path, err, names)
			}
		})
	}
}

// TestNewErrorLeaksNothing: New that fails (a MaxBatch the
// scheduler refuses) with a MemoryBudget leaves no goroutine behind.
func TestNewErrorLeaksNothing(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	_, err := New(Config{DBPath: filepath.Join(t.TempDir(), "chat.db"), MemoryBudget: 1 << 40, MaxBatch: 1 << 17})
	if err == nil {
		t.Fatal("New accepted MaxBatch 1<<17")
	}
	t.Logf("New: %v", err)
}

// TestRateLimitsBadFrames: the rate limit bounds every frame a
// connection sends, invalid ones included.
func TestRateLimitsBadFrames(t *testing.T) {
	_, ts := startServer(t, Config{Rate: 0.001, Burst: 2, MaxFrameBytes: 100})
	c := dial(t, ts)
	const n = 10
	for range n {
		c.sendRaw([]byte(`not json`))
	}
	codes := map[string]int{}
	for range n {
		codes[c.expect("error").Code]++
	}
	if codes[CodeRateLimited] == 0 {
		t.Fatalf("%d invalid frames at burst 2, rate 0.001/s: answers %v, none rate_limited", n, codes)
	}
}

// TestCloseDeadlineBlockedWriter: Close's context ends while a
// member's socket is full (a client that does not read). Close returns
// soon after its deadline, not a WriteTimeout later.
func TestCloseDeadlineBlockedWriter(t *testing.T) {
	const writeTimeout = 15 * time.Second
	srv, sender, _ := roomWithNonReader(t, Config{WriteQueue: 1 << 16, WriteTimeout: writeTimeout, Rate: 1e6, MaxTextBytes: 8000, MaxFrameBytes: 16 << 10})
	text := strings.Repeat("x", 8000)
	for n := uint64(1); n <= 100; n++ { // 800 KB: far past both socket buffers
		sender.send(Frame{Type: "send", Room: "r", ClientSeq: n, Text: text})
		for sender.next().Type != "ack" {
		}
	}
	waitFor(t, "a write to block on the full socket", func() bool { return stackHas("server.(*conn).write(") })
	if st := srv.Stats(); st.Conns != 3 || st.SlowConsumers != 0 {
		t.Fatalf("conns %d, slow consumers %d: want the non-reader still connected", st.Conns, st.SlowConsumers)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := srv.Close(ctx)
	took := time.Since(start)
	t.Logf("Close: %v after %v", err, took)
	if took > 3*time.Second {
		t.Fatalf("Close with a 300ms deadline took %v (WriteTimeout %v)", took, writeTimeout)
	}
}

// TestCloseDeadlineLockedDB: Close's context ends while another
// connection holds the database's write lock. Close returns soon after its
// deadline.
func TestCloseDeadlineLockedDB(t *testing.T) {
	for _, be := range backends() {
		t.Run(be, func(t *testing.T) {
			srv, _, _, release := stalledRoom(t, be)
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			closed := make(chan error, 1)
			start := time.Now()
			go func() { closed <- srv.Close(ctx) }()
			select {
			case err := <-closed:
				t.Logf("Close: %v after %v", err, time.Since(start))
			case <-time.After(4 * time.Second):
				buf := make([]byte, 1<<22)
				buf = buf[:runtime.Stack(buf, true)]
				for _, g := range strings.Split(string(buf), "\n\n") {
					if strings.Contains(g, "(*Server).Close") {
						var where []string
						for _, l := range strings.Split(g, "\n") {
							if strings.Contains(l, "chat/server.") || strings.Contains(l, "sql.(*DB).") || strings.Contains(l, "Checkpoint(") {
								where = append(where, strings.TrimSpace(l))
							}
						}
						t.Logf("Close is blocked in:\n%s", strings.Join(where, "\n"))
					}
				}
				release()
				err := <-closed
				t.Errorf("Close with a 200ms deadline had not returned after 4s while the DB was locked; returned %v after %v once the lock was released", err, time.Since(start))
			}
			release()
		})
	}
}

// TestStatsAndEvents: /stats.json counts the connection and the
// message; /events streams and ends when the server closes; the
// connection count goes back to 0.
func TestStatsAndEvents(t *testing.T) {
	srv, ts := startServer(t, Config{StatsInterval: 10 * time.Millisecond})
	c := dial(t, ts)
	c.join("r")
	c.send(Frame{Type: "send", Room: "r", ClientSeq: 1, Text: "x"})
	c.expect("msg")
	c.expect("ack")
	resp, err := http.Get(ts.URL + "/stats.json")
	if err != nil {
		t.Fatal(err)
	}
	var st Stats
	err = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if err != nil || st.Conns != 1 || st.Accepted != 1 || st.Rooms != 1 || st.Batches != 1 {
		t.Fatalf("stats %+v, err %v", st, err)
	}
	ev, err := http.Get(ts.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Body.Close()
	br := bufio.NewReader(ev.Body)
	if line, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(line, "data: {") {
		t.Fatalf("event %q, %v", line, err)
	}
	c.ws.CloseNow()
	<-c.closed
	waitFor(t, "the connection count to drop", func() bool { return srv.Stats().Conns == 0 })
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := srv.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, br); err != nil {
		t.Fatalf("event stream after Close: %v", err)
	}
}

// TestWriterDropsHugeBuffer: after a message of megabytes (a long catch-up
// page), a writer goes on with a small buffer instead of holding the large
// one until its connection ends; a buffer of ordinary size is kept.
func TestWriterDropsHugeBuffer(t *testing.T) {
	small := make([]byte, 100, maxWriteBytes)
	if b := reuse(small); len(b) != 0 || cap(b) != maxWriteBytes {
		t.Errorf("an ordinary buffer: len %d cap %d, want it kept and emptied", len(b), cap(b))
	}
	huge := make([]byte, 40<<20)
	if b := reuse(huge); len(b) != 0 || cap(b) > keepWriteBytes {
		t.Errorf("a 40 MiB buffer: len %d cap %d, want at most %d kept", len(b), cap(b), keepWriteBytes)
	}
}
