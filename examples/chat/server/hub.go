package server

import (
	"context"
	"strconv"
	"sync"

	"github.com/shoal-go/shoal/snapshot"
)

// Invariants:
//   - A roomLocal is read and written only by handle calls for its room.
//     The backend never runs two calls of one room at once and orders them
//     (shoal: the group's calls; pond: the room's mutex), so it needs no lock
//     of its own.
//   - rooms (guarded by mu) holds the rooms that have members. A call
//     that leaves its room without members frees it; the room's next call,
//     which starts after that one returned, loads it anew with the last
//     sequence stored, which is the room's seq: every number a call gives
//     out is stored before the call returns. A join that arrives while a
//     room is freed is an op of the room's next call, so it never finds
//     the room half made or half freed.
//   - seq is the last sequence number written to the database: handle
//     assigns seq+1.. to a batch, commits it, and only then stores the new
//     seq and fans the batch out, so no client sees a sequence number that
//     is not stored. A failed commit reloads seq from the database, where
//     another writer of the file may have stored more.
//   - Frames of one room reach each member's write queue in sequence order,
//     because only handle calls of that room enqueue them.
//   - A message is stored only for a sender that is a member at its place
//     in the room's order: handle's first pass reads every join's catch-up
//     before the call's transaction, so that a send queued behind a join
//     that fails is known to be refused before anything is stored.
//   - A handle call publishes the room's state before it queues any frame,
//     so a client that received a frame of the batch and then asks for the
//     state sees this batch's last sequence and member count, never older.

// opKind says what an op does to its room.
type opKind uint8

const (
	opSend opKind = iota
	opJoin
	opLeave
)

// op is one request for a room's handler: a message to store and fan out,
// or a membership change, which must be ordered with the room's messages.
type op struct {
	kind      opKind
	id        uint64 // a join's or leave's number on its connection (conn.record)
	hasSince  bool
	c         *conn
	clientSeq uint64
	since     uint64
	text      string
	at        int64
	// refused is set by handle's first pass: a send whose sender is no
	// member of the room at its place (its join did not take effect), or
	// a join that does not take effect.
	refused bool
}

// catchUpPage is a join's catch-up, read by handle's first pass.
type catchUpPage struct {
	frames    [][]byte // msg frames, newest first
	size      int      // their bytes, with a separator each, reserved on the joiner
	truncated uint64   // the older missed messages left out
	err       error    // the read failed: the join does not take effect
}

// roomLocal is a room's handler-owned state.
type roomLocal struct {
	seq     uint64
	members map[*conn]struct{}
	out     outbox // the current call's frames, reused between calls
}

// outbox gathers one handle call's frames per connection, in order, and
// queues them at the end of the call as one chunk per connection. A batch
// of n messages thus takes one slot of a member's write queue, not n: were
// it n, one large batch (a client that sends a burst) could fill the
// sender's queue by itself and have it cut off as a slow consumer.
type outbox struct {
	idx   map[*conn]int
	boxes []box
}

// box is one connection's chunk of the current call.
type box struct {
	c     *conn
	chunk []byte // frames joined by '\n'
	owned bool   // chunk is this box's own; else it is a frame shared with other boxes
	msgs  uint64 // live msg frames in chunk
	// replayed counts the msg frames in chunk read back for a join, and
	// replayBytes their bytes, reserved on the connection (replayQueued).
	replayed    uint64
	replayBytes int
	// errs holds the codes of the error frames in chunk, counted in
	// Stats.Errors when the connection's writer takes the chunk.
	errs []string
}

// add appends frame to c's chunk. frame may be shared by several
// connections: it is copied before anything is appended to it.
func (ob *outbox) add(c *conn, frame []byte, msg bool) {
	var n uint64
	if msg {
		n = 1
	}
	i, ok := ob.idx[c]
	if !ok {
		if ob.idx == nil {
			ob.idx = make(map[*conn]int)
		}
		ob.idx[c] = len(ob.boxes)
		ob.boxes = append(ob.boxes, box{c: c, chunk: frame, msgs: n})
		return
	}
	b := &ob.boxes[i]
	if !b.owned {
		b.chunk = append(make([]byte, 0, 2*(len(b.chunk)+len(frame))), b.chunk...)
		b.owned = true
	}
	b.chunk = append(append(b.chunk, '\n'), frame...)
	b.msgs += n
}

// addError is add of an error frame of code.
func (ob *outbox) addError(c *conn, code string, frame []byte) {
	ob.add(c, frame, false)
	b := &ob.boxes[ob.idx[c]]
	b.errs = append(b.errs, code)
}

// addReplay is add of a join's chunk holding n msg frames read back from
// the database, whose size bytes the connection has reserved.
func (ob *outbox) addReplay(c *conn, chunk []byte, n uint64, size int) {
	ob.add(c, chunk, false)
	b := &ob.boxes[ob.idx[c]]
	b.replayed += n
	b.replayBytes += size
}

// flush queues every connection's chunk, whose frames its writer counts
// when it takes the chunk (none of a chunk that its connection refused: it
// ended, and they are never sent); it leaves the outbox empty, holding no
// connection or frame.
func (ob *outbox) flush() {
	for i := range ob.boxes {
		b := &ob.boxes[i]
		b.c.enqueueChunk(outChunk{b: b.chunk, replay: b.replayBytes, errs: b.errs, msgs: b.msgs, replayed: b.replayed})
	}
	clear(ob.boxes)
	ob.boxes = ob.boxes[:0]
	clear(ob.idx)
}

// hub holds the rooms and runs their handler.
type hub struct {
	db             *DB
	maxReplay      int
	maxReplayBytes int // Config.MaxReplayBytes
	// maxConnReplayBytes is Config.MaxConnReplayBytes.
	maxConnReplayBytes int
	stats              *counters

	// state is the rooms' published state: last sequence and member count,
	// written once per handled batch.
	state snapshot.Store[string, RoomState]

	mu    sync.Mutex
	rooms map[string]*roomLocal
}

// newHub returns a hub on db that holds no room yet: a room is loaded
// (its last sequence read from db) by its first call, and forgotten when
// a call leaves it without members.
func newHub(db *DB, maxReplay int, st *counters) *hub {
	return &hub{db: db, maxReplay: maxReplay, maxReplayBytes: defaultMaxReplayBytes,
		maxConnReplayBytes: defaultMaxConnReplayBytes, stats: st,
		rooms: make(map[string]*roomLocal)}
}

// room returns room's state, loading it on first use: its last sequence
// is the last one stored. Only the room's own calls call it, and they
// never overlap, so no other call makes or frees the room meanwhile.
func (h *hub) room(ctx context.Context, name string) (*roomLocal, error) {
	h.mu.Lock()
	r := h.rooms[name]
	h.mu.Unlock()
	if r != nil {
		return r, nil
	}
	seq, err := h.db.lastSeq(ctx, name)
	if err != nil {
		return nil, err
	}
	r = &roomLocal{seq: seq, members: make(map[*conn]struct{})}
	h.mu.Lock()
	h.rooms[name] = r
	h.mu.Unlock()
	return r, nil
}

// free forgets room, which has no member: its next call loads it anew.
func (h *hub) free(room string) {
	h.mu.Lock()
	delete(h.rooms, room)
	h.mu.Unlock()
	h.state.Delete(room)
}

// handle runs one room's ops in order: it reads the joins' catch-up,
// numbers the members' messages, stores them in one transaction, then lays out their fan-out and their senders' acks,
// applying joins and leaves at their place among them, publishes the room's
// state, and only then queues the frames. It returns an error
// only when the transaction failed; then nothing was stored or sent and the
// same ops may be handled again.
func (h *hub) handle(ctx context.Context, room string, ops []op) error {
	r, err := h.room(ctx, room)
	if err != nil {
		h.stats.dbErrors.Add(1)
		return err
	}
	// The first pass, before anything is stored, numbers the messages and
	// reads the catch-up of each join: a join whose catch-up cannot be
	// read does not take effect, and the sends its connection queued
	// behind it are refused, not stored and acknowledged for a sender that
	// is in no room.
	var msgs []Message
	var pages []catchUpPage // one per join, in order
	var in map[*conn]bool   // this call's joins and leaves so far: whether each left its connection in the room
	seq := r.seq
	for i := range ops {
		o := &ops[i]
		switch o.kind {
		case opSend:
			member, ok := in[o.c]
			if !ok {
				_, member = r.members[o.c]
				member = member || o.c.isMember(room) // an ended member, dropped below
			}
			if o.refused = !member; o.refused {
				continue
			}
			seq++
			msgs = append(msgs, Message{Room: room, Seq: seq, From: o.c.id, ClientSeq: o.clientSeq, Text: o.text, At: o.at})
		case opJoin, opLeave:
			if in == nil {
				in = make(map[*conn]bool)
			}
			if o.kind == opLeave {
				in[o.c] = false
				continue
			}
			var p catchUpPage
			o.refused = o.c.isDone()
			if !o.refused && o.hasSince && o.since < seq {
				p = h.catchUp(ctx, room, r.seq, msgs, o.c, o.since, seq)
				o.refused = p.err != nil
			}
			pages = append(pages, p)
			in[o.c] = !o.refused
		}
	}
	if err := h.db.insert(ctx, msgs); err != nil {
		// The pages are not queued: a retry reads them again.
		for i, j := 0, 0; i < len(ops); i++ {
			if ops[i].kind == opJoin {
				ops[i].c.replayQueued.Add(-int64(pages[j].size))
				j++
			}
		}
		h.stats.dbErrors.Add(1)
		// Another writer of the file (a second server on it, such as a
		// restart overlapping the old process's drain) may have stored
		// the numbers this call took: the retry numbers after the room's
		// last stored one, instead of failing on the key for ever.
		if last, err := h.db.lastSeq(ctx, room); err == nil && last > r.seq {
			r.seq = last
		}
		if len(r.members) == 0 {
			// Nobody in it, before this call as after (its joins did
			// not take effect): forget it, as a call that succeeds
			// does; were it held, a room whose call fails for good
			// would stay in rooms for ever. A retry loads it anew.
			h.free(room)
		}
		return err
	}
	h.stats.batch(len(msgs))
	r.seq = seq
	// A member whose connection ended is none any more, whether its leave
	// is still queued or was refused (see conn.leaveAll): every call drops
	// them, one without a message too, so that a joined frame and the
	// room's state count live members only.
	for c := range r.members {
		if c.isDone() {
			delete(r.members, c)
		}
	}

	cur := seq - uint64(len(msgs)) // the room's last sequence at the current op
	next := 0
	out := &r.out
	for i := range ops {
		o := &ops[i]
		switch o.kind {
		case opSend:
			if o.refused {
				out.addError(o.c, CodeNotJoined, errorFrame(CodeNotJoined, "not in the room: the join before this send did not take effect", room, o.clientSeq, false))
				continue
			}
			m := &msgs[next]
			next++
			cur = m.Seq
			frame := msgFrame(m)
			for c := range r.members {
				if c.isDone() {
					// Its leave was refused (see conn.leaveAll), or
					// is still queued: it is no member any more.
					delete(r.members, c)
					continue
				}
				out.add(c, frame, true)
			}
			out.add(o.c, encode(&Frame{Type: "ack", Room: room, Seq: m.Seq, ClientSeq: o.clientSeq}), false)
		case opJoin:
			h.join(r, room, o, cur, &pages[0])
			pages = pages[1:]
		case opLeave:
			// Answered whether or not it was a member: a join sent
			// before it in the same call or the one before may have
			// failed (its missed messages unreadable), which the client
			// did not know when it sent the leave. (A connection that
			// ended, whose leaves these mostly are, takes no frame.)
			o.c.settle(room, o.id, true, true)
			delete(r.members, o.c)
			out.add(o.c, encode(&Frame{Type: "left", Room: room}), false)
		}
	}
	if len(r.members) == 0 {
		// Nobody in it: the room costs nothing until it is used again.
		// Its messages are stored; its next call, which cannot run
		// before this one returns, reads its last sequence back.
		h.free(room)
	} else {
		h.state.Set(room, RoomState{Room: room, Seq: r.seq, Members: len(r.members)})
	}
	out.flush()
	return nil
}

// catchUp reads the catch-up page of a join at sequence cur that asks for
// the messages after since: the newest of them, at most maxReplay, whose
// frames take at most maxReplayBytes; Truncated counts the older ones left
// out. Those up to stored come from the database, the later ones from
// batch, the call's messages before the join (not yet stored). The page
// is one chunk of the joiner's write queue, so its bytes are bounded: were
// they not, 10,000 messages of 4 KiB of control characters (escaped, six
// bytes each) would make 240 MB for one join. So are the pages queued to
// one connection together (maxConnReplayBytes): the page reserves its
// frames' bytes on the joiner c, which its writer gives back when it
// takes the page, so that a client joining 64 rooms at once does not
// queue 64 pages in full.
func (h *hub) catchUp(ctx context.Context, room string, stored uint64, batch []Message, c *conn, since, cur uint64) catchUpPage {
	var p catchUpPage
	// Each frame's bytes are reserved as it is added, so that the
	// connection's bound counts its pages, never bytes a join that is
	// still reading might take: reserving MaxReplayBytes up front, four
	// joins reading at once held the default bound whole, and a fifth got
	// no catch-up however little the pages held.
	add := func(m *Message) bool {
		if len(p.frames) >= h.maxReplay {
			return false
		}
		f := msgFrame(m)
		if p.size+1+len(f) > h.maxReplayBytes || !c.reserveReplay(1+len(f), h.maxConnReplayBytes) {
			return false
		}
		p.frames = append(p.frames, f)
		p.size += 1 + len(f)
		return true
	}
	full := false
	for i := len(batch) - 1; i >= 0 && batch[i].Seq > since && !full; i-- {
		full = !add(&batch[i])
	}
	if !full && since < stored {
		if err := h.db.rangeNewest(ctx, room, since, stored, h.maxReplay, add); err != nil {
			c.replayQueued.Add(-int64(p.size))
			return catchUpPage{err: err}
		}
	}
	p.truncated = cur - since - uint64(len(p.frames))
	return p
}

// join adds o's connection to the room at sequence cur, as handle's first
// pass decided, and adds to the room's outbox the joined frame and the
// catch-up page p; or, if the join does not take effect, the connection
// is told (an error frame when its catch-up could not be read).
func (h *hub) join(r *roomLocal, room string, o *op, cur uint64, p *catchUpPage) {
	if o.refused {
		o.c.settle(room, o.id, false, false)
		if p.err != nil {
			// Not joined: the client may join again, as the frame says.
			h.stats.dbErrors.Add(1)
			r.out.addError(o.c, CodeInternal, errorFrame(CodeInternal, "reading missed messages: "+p.err.Error(), room, 0, true))
		}
		return
	}
	r.members[o.c] = struct{}{}
	o.c.settle(room, o.id, true, false)
	chunk := encode(&Frame{Type: "joined", Room: room, Seq: cur, Members: len(r.members), Truncated: p.truncated})
	if len(p.frames) > 0 {
		chunk = append(make([]byte, 0, len(chunk)+p.size), chunk...)
	}
	for i := len(p.frames) - 1; i >= 0; i-- {
		chunk = append(chunk, '\n')
		chunk = append(chunk, p.frames[i]...)
	}
	r.out.addReplay(o.c, chunk, uint64(len(p.frames)), p.size)
}

// failed answers the ops of a call that failed for good, none of which
// took effect: the senders that their messages were not stored, the
// joiners and leavers that they are where they were (not in the room, in
// it). Their connections record that first, so that a client that retries
// at once, as the answer allows, finds the record as it should be. Each
// connection's answers are queued as one chunk, as handle's are: one per
// op could fill a sender's queue with the answers to its own burst and cut
// it off as a slow consumer. failed runs in the room's order (pond: under
// the room's mutex; shoal: on the worker that holds the room, see
// hub.deadLetter), but with an outbox of its own: a call that panicked may
// have left frames in the room's.
func (h *hub) failed(room string, ops []op, err error) {
	var out outbox
	// A connection's first join or leave in the call says where it was
	// before it: out of the room before a join, in it before a leave.
	var before map[*conn]bool
	for i := range ops {
		switch o := &ops[i]; o.kind {
		case opSend:
			h.stats.notPersisted.Add(1)
			out.addError(o.c, CodeNotPersisted, errorFrame(CodeNotPersisted, err.Error(), room, o.clientSeq, true))
		case opJoin, opLeave:
			if before == nil {
				before = make(map[*conn]bool)
			}
			in, seen := before[o.c]
			if !seen {
				in = o.kind == opLeave
				before[o.c] = in
			}
			o.c.settle(room, o.id, false, in)
			what := "join"
			if o.kind == opLeave {
				what = "leave"
			}
			out.addError(o.c, CodeInternal, errorFrame(CodeInternal, what+" not applied: "+err.Error(), room, 0, true))
		}
	}
	out.flush()
}

// msgFrame encodes m as a msg frame. It is written by hand because it is
// the frame every member receives: about 3× faster than encoding/json.
func msgFrame(m *Message) []byte {
	b := make([]byte, 0, 96+len(m.Room)+len(m.From)+len(m.Text))
	b = append(b, `{"type":"msg","room":`...)
	b = appendJSONString(b, m.Room)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, m.Seq, 10)
	b = append(b, `,"from":`...)
	b = appendJSONString(b, m.From)
	b = append(b, `,"client_seq":`...)
	b = strconv.AppendUint(b, m.ClientSeq, 10)
	b = append(b, `,"text":`...)
	b = appendJSONString(b, m.Text)
	b = append(b, `,"at":`...)
	b = strconv.AppendInt(b, m.At, 10)
	return append(b, '}')
}

// appendJSONString appends s as a JSON string. s is valid UTF-8 (it came
// from a decoded JSON frame or the server's own ids).
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// handleAttempts is how often handleRetry tries a batch.
const handleAttempts = 3

// handleRetry is handle tried up to handleAttempts times; after the last
// failure it tells the senders and returns nil.
func (h *hub) handleRetry(ctx context.Context, room string, ops []op) error {
	var err error
	for range handleAttempts {
		if err = h.handle(ctx, room, ops); err == nil {
			return nil
		}
	}
	h.failed(room, ops, err)
	return nil
}
