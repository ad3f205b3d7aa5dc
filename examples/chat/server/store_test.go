package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/shoal-go/shoal/pool"
	"golang.org/x/time/rate"
)

// recordingBackend records every submitted op; a join or leave takes
// effect at once (it is settled as taken).
type recordingBackend struct {
	subs []recorded
}

type recorded struct {
	room string
	o    op
}

func (b *recordingBackend) submit(_ context.Context, room string, o op) error {
	b.subs = append(b.subs, recorded{room, o})
	if o.kind != opSend {
		o.c.settle(room, o.id, true, false)
	}
	return nil
}

func (b *recordingBackend) close(context.Context) error  { return nil }
func (b *recordingBackend) snapshot() (pool.Stats, bool) { return pool.Stats{}, false }

// parserConn returns a connection of a server that has no socket, no
// database and no scheduler: only what conn.handle, the frame parser,
// reads. Its rate limit allows every frame.
func parserConn(cfg Config) (*conn, *recordingBackend) {
	cfg.setDefaults()
	be := &recordingBackend{}
	st := newCounters()
	s := &Server{cfg: cfg, stats: st, be: be, hub: &hub{stats: st, rooms: make(map[string]*roomLocal)}}
	return &conn{
		id: "c1", s: s, lim: rate.NewLimiter(rate.Inf, 0),
		out: make(chan outChunk, 64), done: make(chan struct{}), finish: make(chan struct{}),
		rooms: make(map[string]struct{}), lastOp: make(map[string]uint64),
	}, be
}

// frameModel is what the README's protocol section and Frame's
// documentation say of one client frame, given the rooms the connection is
// in: the error code it gets, or the op it submits.
type frameModel struct {
	cfg   Config
	rooms map[string]bool
}

// want returns the error code data must get ("" for none), the op it must
// submit (nil for none) and whether it is a state request.
func (m *frameModel) want(data []byte) (code string, sub *recorded, state bool) {
	// A frame is a JSON object whose fields have the types Frame gives
	// them.
	if t := bytes.TrimLeft(data, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return CodeBadJSON, nil, false
	}
	var f Frame
	if json.Unmarshal(data, &f) != nil {
		return CodeBadJSON, nil, false
	}
	switch f.Type {
	case "state":
		return "", nil, true
	case "join", "leave", "send":
	default:
		return CodeUnknownType, nil, false
	}
	if f.Room == "" || len(f.Room) > m.cfg.MaxRoomBytes {
		return CodeBadRoom, nil, false
	}
	in := m.rooms[f.Room]
	o := op{}
	switch f.Type {
	case "join":
		switch {
		case in:
			return CodeAlreadyIn, nil, false
		case len(m.rooms) >= m.cfg.MaxRooms:
			return CodeTooManyRooms, nil, false
		}
		o.kind = opJoin
		if f.Since != nil {
			o.hasSince, o.since = true, *f.Since
		}
		m.rooms[f.Room] = true
	case "leave":
		if !in {
			return CodeNotJoined, nil, false
		}
		o.kind = opLeave
		delete(m.rooms, f.Room)
	case "send":
		switch {
		case !in:
			return CodeNotJoined, nil, false
		case f.Text == "":
			return CodeEmptyText, nil, false
		case len(f.Text) > m.cfg.MaxTextBytes:
			return CodeTextTooLong, nil, false
		}
		o.kind, o.clientSeq, o.text = opSend, f.ClientSeq, f.Text
	}
	return "", &recorded{f.Room, o}, false
}

// fuzzCfg has small limits, so that random input reaches them.
var fuzzCfg = Config{MaxRooms: 2, MaxRoomBytes: 8, MaxTextBytes: 10, MaxFrameBytes: 200}

// checkFrames runs the '\n'-separated frames of input through conn.handle
// and compares each answer with the model's.
func checkFrames(t *testing.T, input []byte) {
	c, be := parserConn(fuzzCfg)
	m := &frameModel{cfg: c.s.cfg, rooms: map[string]bool{}}
	for i, data := range bytes.Split(input, []byte{'\n'}) {
		if i == 16 {
			break
		}
		if len(data) > c.s.cfg.MaxFrameBytes {
			continue // readLoop answers frame_too_long; handle never sees it
		}
		code, sub, state := m.want(data)
		nsubs := len(be.subs)
		c.handle(context.Background(), data)
		var got []Frame
		for len(c.out) > 0 {
			var f Frame
			if err := json.Unmarshal((<-c.out).b, &f); err != nil {
				t.Fatalf("frame %q: the server's answer is no JSON: %v", data, err)
			}
			got = append(got, f)
		}
		switch {
		case code != "":
			if len(got) != 1 || got[0].Type != "error" || got[0].Code != code {
				t.Fatalf("frame %q: answers %+v, want one %s error", data, got, code)
			}
			if len(be.subs) != nsubs {
				t.Fatalf("frame %q: refused with %s, yet submitted %+v", data, code, be.subs[nsubs:])
			}
		case state:
			if len(got) != 1 || (got[0].Type != "state" && got[0].Code != CodeStateTooOld) || len(be.subs) != nsubs {
				t.Fatalf("frame %q: answers %+v, submitted %d; want one state frame, nothing submitted", data, got, len(be.subs)-nsubs)
			}
		default:
			if len(got) != 0 || len(be.subs) != nsubs+1 {
				t.Fatalf("frame %q: answers %+v, %d ops submitted; want one op and no answer yet", data, got, len(be.subs)-nsubs)
			}
			g := be.subs[nsubs]
			if g.room != sub.room || g.o.kind != sub.o.kind || g.o.hasSince != sub.o.hasSince || g.o.since != sub.o.since ||
				g.o.clientSeq != sub.o.clientSeq || g.o.text != sub.o.text || g.o.c != c {
				t.Fatalf("frame %q: submitted to %q %+v, want to %q %+v", data, g.room, g.o, sub.room, sub.o)
			}
		}
	}
	// The connection's record of its rooms is the model's.
	for room := range m.rooms {
		if !c.inRoom(room) {
			t.Fatalf("after %q: the connection is not in %q", input, room)
		}
	}
	if len(c.rooms) != len(m.rooms) {
		t.Fatalf("after %q: the connection is in %v, want %v", input, c.rooms, m.rooms)
	}
}

// frameSeeds are the README's frames and one of each invalid kind it
// names, alone and in sequences that reach the rooms' states.
var frameSeeds = []string{
	`{"type":"join","room":"lobby"}`,
	`{"type":"join","room":"lobby","since":12}`,
	`{"type":"join","room":"lobby"}` + "\n" + `{"type":"send","room":"lobby","client_seq":5,"text":"hi"}`,
	`{"type":"join","room":"lobby"}` + "\n" + `{"type":"leave","room":"lobby"}` + "\n" + `{"type":"leave","room":"lobby"}`,
	`{"type":"state","version":42}`,
	`{"type":"state"}`,
	// invalid JSON, or JSON that is no object
	`hello`, `[1,2]`, `"join"`, `42`, `true`, `null`, ` null `, `{}x`, `{"type":"join"`, "",
	// unknown type, or none
	`{"type":"shout","room":"in"}`, `{"room":"in"}`, `{"type":"JOIN","room":"in"}`, `{"type":null,"room":"in"}`,
	// bad room names
	`{"type":"join"}`, `{"type":"join","room":""}`, `{"type":"join","room":"123456789"}`,
	`{"type":"join","room":"ééééé"}`, `{"type":"join","room":"\xff\xff\xff"}`, `{"type":"join","room":7}`,
	// missing or bad fields
	`{"type":"join","room":"a"}` + "\n" + `{"type":"send","room":"a","client_seq":1}`,
	`{"type":"join","room":"a"}` + "\n" + `{"type":"send","room":"a","text":""}`,
	`{"type":"join","room":"a"}` + "\n" + `{"type":"send","room":"a","client_seq":1,"text":"12345678901"}`,
	`{"type":"join","room":"a"}` + "\n" + `{"type":"send","room":"a","client_seq":-1,"text":"x"}`,
	`{"type":"join","room":"a","since":-1}`, `{"type":"join","room":"a","since":"1"}`, `{"type":"state","version":1.5}`,
	`{"type":"send","room":"out","client_seq":1,"text":"x"}`, `{"type":"leave","room":"out"}`,
	// limits of the connection's rooms
	`{"type":"join","room":"a"}` + "\n" + `{"type":"join","room":"a"}`,
	`{"type":"join","room":"a"}` + "\n" + `{"type":"join","room":"b"}` + "\n" + `{"type":"join","room":"c"}`,
	// fields of server frames, and duplicate keys
	`{"type":"join","room":"a","seq":"x"}`, `{"type":"join","room":"a","room":"b"}`,
}

// FuzzFrameParser: whatever a client sends, conn.handle never panics, and
// it answers each frame as the protocol says: the error code of what is
// invalid, or exactly the op the frame asks for.
func FuzzFrameParser(f *testing.F) {
	for _, s := range frameSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(checkFrames)
}

// TestNonObjectFrameIsBadJSON: a frame that is JSON but no object (null) is
// answered bad_json, "the frame is not a JSON object", as an array or a
// number is; not unknown_type.
func TestNonObjectFrameIsBadJSON(t *testing.T) {
	for _, s := range []string{`null`, ` null`, `[]`, `1`} {
		checkFrames(t, []byte(s))
	}
}

// TestFailedCallErrorFramesCounted: the error frames a failed call sends
// (not_persisted to a sender, internal to a joiner) are counted by code in
// Stats.Errors and chat_error_frames_total, as every other error frame is.
func TestFailedCallErrorFramesCounted(t *testing.T) {
	for _, be := range backends() {
		t.Run(be, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "chat.db")
			poisonDB(t, path)
			srv, ts := startServer(t, Config{DBPath: path, Backend: be})
			sender := dial(t, ts)
			sender.join("r")
			sender.send(Frame{Type: "send", Room: "r", ClientSeq: 1, Text: "poison"})
			if f := sender.expect("error"); f.Code != CodeNotPersisted {
				t.Fatalf("got %+v, want %s", f, CodeNotPersisted)
			}
			st := srv.Stats()
			if st.NotPersisted != 1 || st.Errors[CodeNotPersisted] != 1 {
				t.Errorf("NotPersisted %d, Errors %v: want one %s error frame counted", st.NotPersisted, st.Errors, CodeNotPersisted)
			}
			resp, err := http.Get(ts.URL + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if want := `chat_error_frames_total{code="not_persisted"} 1`; !strings.Contains(string(body), want) {
				t.Errorf("/metrics lacks %s", want)
			}
		})
	}
}

// TestJoinReplayErrorCounted: a join whose missed messages cannot be read
// gets an internal error frame, counted in Stats.Errors.
func TestJoinReplayErrorCounted(t *testing.T) {
	srv, ts := startServer(t, Config{})
	c := dial(t, ts)
	c.join("r")
	c.send(Frame{Type: "send", Room: "r", ClientSeq: 1, Text: "x"})
	c.expect("msg")
	c.expect("ack")
	c.send(Frame{Type: "leave", Room: "r"})
	c.expect("left")
	// The readers can no longer read: the replay fails, the writer goes on.
	srv.db.r.Close()
	zero := uint64(0)
	c.send(Frame{Type: "join", Room: "r", Since: &zero})
	if f := c.expect("error"); f.Code != CodeInternal {
		t.Fatalf("got %+v, want %s", f, CodeInternal)
	}
	if n := srv.Stats().Errors[CodeInternal]; n != 1 {
		t.Errorf("Errors[%s] = %d, want 1", CodeInternal, n)
	}
}

// TestDBPathNamesAFile: DBPath names a file whatever it holds: a path
// that starts with two slashes (the same file as one) and a file named
// ":memory:" in the working directory are files, not a URI authority or an
// in-memory database (each of the DB's three pools its own).
func TestDBPathNamesAFile(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	for _, tc := range []struct{ path, file string }{
		{"/" + filepath.Join(dir, "slashes.db"), filepath.Join(dir, "slashes.db")},
		{":memory:", filepath.Join(dir, ":memory:")},
	} {
		db, err := OpenDB(tc.path)
		if err != nil {
			t.Errorf("OpenDB(%q): %v", tc.path, err)
			continue
		}
		_, err = db.LastSeqs(context.Background())
		db.Close()
		if err != nil {
			t.Errorf("OpenDB(%q): LastSeqs: %v", tc.path, err)
		}
		if _, err := os.Stat(tc.file); err != nil {
			t.Errorf("OpenDB(%q): %v", tc.path, err)
		}
	}
}

// TestDBCloseTwice: a second Close of a DB returns (an error or nil) and
// does not panic, as the sql.DB it wraps.
func TestDBCloseTwice(t *testing.T) {
	db, err := OpenDB(filepath.Join(t.TempDir(), "chat.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if p := recover(); p != nil {
			t.Fatalf("second Close panicked: %v", p)
		}
	}()
	t.Logf("second Close: %v", db.Close())
}

// TestSeqsAcrossRestartMidLoad: a server closed (past a short deadline)
// while its clients send without pause leaves every room numbered 1..N
// with no gap, holding every acknowledged message under its acknowledged
// number and no message answered not_persisted; a new server on the same
// file replays exactly the messages after a since, in order, and numbers
// the next message N+1.
func TestSeqsAcrossRestartMidLoad(t *testing.T) {
	for _, be := range backends() {
		t.Run(be, func(t *testing.T) { testSeqsAcrossRestart(t, be) })
	}
}

func testSeqsAcrossRestart(t *testing.T, backend string) {
	path := filepath.Join(t.TempDir(), "chat.db")
	rooms := []string{"a", "b", "c"}
	srv, err := New(Config{DBPath: path, Backend: backend, Rate: 1e6, Burst: 1 << 20, WriteQueue: 1 << 16})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	var clients []*client
	for range 4 {
		c := dial(t, ts)
		for _, r := range rooms {
			c.join(r)
		}
		clients = append(clients, c)
	}
	// Each client sends to its rooms in turn until its socket ends.
	sent := make(chan struct{}, len(clients))
	for i, c := range clients {
		go func() {
			defer func() { sent <- struct{}{} }()
			for n := uint64(1); ; n++ {
				b, _ := json.Marshal(Frame{Type: "send", Room: rooms[(int(n)+i)%len(rooms)], ClientSeq: n, Text: "m"})
				if c.ws.Write(context.Background(), websocket.MessageText, b) != nil {
					return
				}
			}
		}()
	}
	waitFor(t, "300 accepted messages", func() bool { return srv.Stats().Accepted >= 300 })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	err = srv.Close(ctx)
	cancel()
	t.Logf("Close mid-load: %v; accepted %d", err, srv.Stats().Accepted)
	type key struct {
		from string
		cseq uint64
	}
	acked := map[string]map[uint64]key{} // room → seq → sender's message
	refused := map[key]bool{}
	for _, c := range clients {
		<-c.closed
		for f := range c.frames {
			switch {
			case f.Type == "ack":
				if acked[f.Room] == nil {
					acked[f.Room] = map[uint64]key{}
				}
				acked[f.Room][f.Seq] = key{c.id, f.ClientSeq}
			case f.Type == "error" && f.Code == CodeNotPersisted:
				refused[key{c.id, f.ClientSeq}] = true
			}
		}
	}
	for range clients {
		<-sent
	}
	nacked := 0
	for _, m := range acked {
		nacked += len(m)
	}
	if acc := srv.Stats().Accepted; uint64(nacked+len(refused)) != acc {
		t.Errorf("accepted %d messages, answered %d acks and %d not_persisted", acc, nacked, len(refused))
	}

	db, err := OpenDB(path)
	if err != nil {
		t.Fatal(err)
	}
	last := map[string]uint64{}
	for _, r := range rooms {
		msgs, err := db.Range(context.Background(), r, 0, 1<<62, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		for i, m := range msgs {
			if m.Seq != uint64(i+1) {
				t.Fatalf("room %s: message %d has seq %d: a gap", r, i+1, m.Seq)
			}
			if refused[key{m.From, m.ClientSeq}] {
				t.Errorf("room %s seq %d: stored, but its sender was told not_persisted", r, m.Seq)
			}
		}
		for seq, k := range acked[r] {
			if seq == 0 || seq > uint64(len(msgs)) || msgs[seq-1].From != k.from || msgs[seq-1].ClientSeq != k.cseq {
				t.Errorf("room %s: ack of seq %d (%v) does not name the stored message", r, seq, k)
			}
		}
		last[r] = uint64(len(msgs))
	}
	db.Close()
	t.Logf("stored %v, not_persisted %d", last, len(refused))

	_, ts2 := startServer(t, Config{DBPath: path, Backend: backend})
	c := dial(t, ts2)
	for _, r := range rooms {
		since := last[r] / 2
		c.send(Frame{Type: "join", Room: r, Since: &since})
		if f := c.expect("joined"); f.Seq != last[r] || f.Truncated != 0 {
			t.Fatalf("joined %+v after restart, want seq %d", f, last[r])
		}
		for seq := since + 1; seq <= last[r]; seq++ {
			if f := c.expect("msg"); f.Seq != seq || f.Room != r {
				t.Fatalf("replay after since %d: got %+v, want seq %d", since, f, seq)
			}
		}
		c.send(Frame{Type: "send", Room: r, ClientSeq: 1, Text: "after"})
		if f := c.expect("msg"); f.Seq != last[r]+1 {
			t.Fatalf("first message after restart numbered %d, want %d", f.Seq, last[r]+1)
		}
		c.expect("ack")
	}
}

// TestNaNRateTakesDefault: a Config.Rate that is NaN takes the default, as
// a zero or negative one does; rate.Limiter would take NaN as no limit.
func TestNaNRateTakesDefault(t *testing.T) {
	cfg := Config{Rate: rate.Limit(math.NaN())}
	cfg.setDefaults()
	if cfg.Rate != 200 {
		t.Fatalf("Rate NaN became %v, want the default 200", cfg.Rate)
	}
}

// TestRefusedLeaveDroppedByNextJoin: a connection ends while the breaker
// refuses work, so the leave of its room is refused; the room's next call
// drops it (README) even when that call holds a join and no message: the
// joined frame and the room's state count the live members only.
func TestRefusedLeaveDroppedByNextJoin(t *testing.T) {
	srv, ts, _ := refusedLeave(t)

	late := dial(t, ts)
	for n := 0; ; n++ { // the breaker may refuse a few more: retry as told
		late.send(Frame{Type: "join", Room: "r"})
		f := firstOf(t, late, "joined", "error")
		if f.Type == "joined" {
			if f.Members != 2 {
				t.Errorf("joined %+v: %d members, want 2 (the connection that ended is none)", f, f.Members)
			}
			break
		}
		if f.Code != CodeOverloaded || n > 1000 {
			t.Fatalf("join: %+v", f)
		}
		<-time.After(10 * time.Millisecond)
	}
	if st, _, _ := srv.hub.state.Get("r"); st.Members != 2 {
		t.Fatalf("room r's state counts %d members, want 2", st.Members)
	}
}

// TestFailedMultiStatementBatchStoresNothing: a batch larger than one
// INSERT statement (500 rows) whose second statement fails leaves none of
// the first statement's rows: the room holds what it held, every message
// of the batch is answered not_persisted, and the room numbers on.
func TestFailedMultiStatementBatchStoresNothing(t *testing.T) {
	const n = 600
	path := filepath.Join(t.TempDir(), "chat.db")
	poisonDB(t, path)
	srv, ts := startServer(t, Config{DBPath: path, MaxBatch: 1000, Rate: 1e6, Burst: 1 << 20, WriteQueue: 1 << 12})
	c := dial(t, ts)
	c.join("r")
	release := lockDB(t, path)
	c.send(Frame{Type: "send", Room: "r", ClientSeq: 1, Text: "first"})
	waitFor(t, "the first call to block in its insert", func() bool { return stackHas("server.(*DB).insert") })
	for i := uint64(2); i <= n+1; i++ {
		text := "x"
		if i == 560 {
			text = "poison"
		}
		c.send(Frame{Type: "send", Room: "r", ClientSeq: i, Text: text})
	}
	waitFor(t, "every send accepted", func() bool { return srv.Stats().Accepted == n+1 })
	release()
	var acks, refused int
	for acks+refused < n+1 {
		switch f := c.next(); {
		case f.Type == "ack":
			acks++
		case f.Type == "error" && f.Code == CodeNotPersisted:
			refused++
		}
	}
	stored, err := srv.db.Count(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("acks %d, not_persisted %d, stored %d", acks, refused, stored)
	if stored != int64(acks) {
		t.Fatalf("%d acks, %d messages stored", acks, stored)
	}
	if refused != n {
		// Only a call holding all n is certain to have inserted 500 rows
		// before the poisoned one.
		t.Skipf("the %d queued messages were split over calls (%d refused)", n, refused)
	}
	c.send(Frame{Type: "send", Room: "r", ClientSeq: n + 2, Text: "after"})
	if f := firstOf(t, c, "ack"); f.Seq != uint64(acks+1) {
		t.Fatalf("next message numbered %d, want %d", f.Seq, acks+1)
	}
}

// TestRoomNumbersAfterAnotherWriter: a second server on the same file (a
// restart that overlaps the old process's drain) finds numbers of a room
// taken by the other after it loaded them: its message is numbered after
// the stored ones and stored, not refused for ever on the primary key.
func TestRoomNumbersAfterAnotherWriter(t *testing.T) {
	for _, be := range backends() {
		t.Run(be, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "chat.db")
			_, tsOld := startServer(t, Config{DBPath: path, Backend: be})
			_, tsNew := startServer(t, Config{DBPath: path, Backend: be})
			old, c := dial(t, tsOld), dial(t, tsNew)
			old.join("r")
			old.send(Frame{Type: "send", Room: "r", ClientSeq: 1, Text: "old"})
			if f := firstOf(t, old, "ack"); f.Seq != 1 {
				t.Fatalf("old server's ack %+v, want seq 1", f)
			}
			c.join("r")
			for n := uint64(1); n <= 2; n++ {
				c.send(Frame{Type: "send", Room: "r", ClientSeq: n, Text: "new"})
				if f := firstOf(t, c, "ack", "error"); f.Type != "ack" || f.Seq != n+1 {
					t.Fatalf("new server's message %d: %+v, want its ack with seq %d", n, f, n+1)
				}
			}
		})
	}
}

// TestOpenDBErrorNamesTheFile: a database that cannot be opened (its
// directory does not exist) is an error that names the file, not only
// "create schema: unable to open database file".
func TestOpenDBErrorNamesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "no-such-dir", "chat.db")
	db, err := OpenDB(path)
	if err == nil {
		db.Close()
		t.Fatal("OpenDB in a missing directory succeeded")
	}
	if !strings.Contains(err.Error(), path) {
		t.Fatalf("OpenDB(%q): %v; want the error to name the file", path, err)
	}
}

// TestDBPathWithNULRefused: a path with a NUL byte names no file (the
// os package refuses one); OpenDB refuses it too, where SQLite opened the
// file named by the bytes before the NUL.
func TestDBPathWithNULRefused(t *testing.T) {
	dir := t.TempDir()
	db, err := OpenDB(filepath.Join(dir, "a.db\x00b"))
	if err == nil {
		db.Close()
		t.Errorf("OpenDB accepted a path holding a NUL byte")
	}
	if _, err := os.Stat(filepath.Join(dir, "a.db")); err == nil {
		t.Errorf("OpenDB opened the file named by the path's bytes before its NUL")
	}
}
