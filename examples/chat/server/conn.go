package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
	"github.com/shoal-go/shoal/backpressure"
	"github.com/shoal-go/shoal/pool"
	"github.com/shoal-go/shoal/snapshot"
	"golang.org/x/time/rate"
)

// Invariants:
//   - out is written by any goroutine through enqueue, never blocking, and
//     read only by the connection's writer goroutine. It is never closed:
//     done says the connection is over.
//   - done is closed once, by kill, when the connection ends for any reason:
//     a read or write error, a slow consumer, or the server's shutdown. After
//     it, enqueue accepts nothing.
//   - replayQueued is added to by a room's handler (reserveReplay) and
//     taken from by the writer (taken) or the handler (a page not queued):
//     it never exceeds Config.MaxConnReplayBytes.
//   - member is written only by rooms' handlers, each for its own room in
//     the room's order (settle), and read by them.
//   - rooms, lastOp and member are guarded by roomsMu. The reader (the HTTP
//     handler's goroutine) records a join or a leave (record) before it
//     submits it: it adds or removes the room and numbers the op, noting
//     the number in lastOp. Every op so numbered is settled once: by the
//     hub when it handled it or answered it as failed, by the reader when
//     the submission was refused. An op that did not take effect puts the
//     room back as it was, unless a later join or leave of the room was
//     submitted since (lastOp holds a later number): the record is then
//     that op's. lastOp holds the rooms with an op not yet settled.
//     shutdownSaid is touched only by the reader, writeTimer only by the
//     writer.

// conn is one client connection.
type conn struct {
	id  string
	s   *Server
	ws  *websocket.Conn
	raw net.Conn // ws's socket (nil if unknown), for closeSocket
	lim *rate.Limiter

	out chan outChunk // bounded write queue, Config.WriteQueue chunks

	// replayQueued is the bytes of catch-up pages queued and not yet taken
	// by the writer: a join reserves its page's bytes (reserveReplay), the
	// writer gives them back when it takes the page (taken), or the room
	// does when the page is not queued after all.
	replayQueued atomic.Int64

	closeOnce sync.Once
	done      chan struct{}
	slow      bool // set before done is closed

	finishOnce sync.Once
	finish     chan struct{} // closed by Server.Close: flush, then close

	// writeTimer closes the socket when one write has taken WriteTimeout.
	// The writer arms it before each write and stops it after: one timer
	// per connection, where a context with a deadline per write (which
	// coder/websocket then watches with context.AfterFunc) cost about 10%
	// of the server's CPU at one write per delivery.
	writeTimer *time.Timer

	roomsMu sync.Mutex
	rooms   map[string]struct{}
	lastOp  map[string]uint64 // per room, the last join or leave not yet settled
	opID    uint64            // the last number given to a join or leave
	// member holds the rooms the connection is a member of in each
	// room's order: the room's handler adds the room when a join takes
	// effect and removes it when a leave does (settle). A room's handler
	// reads it for a send whose sender it dropped (an ended connection)
	// or never added (a join that failed): rooms records what the client
	// asked for, which a send queued behind a failed join still finds.
	member map[string]struct{}
	// shutdownSaid is set when the reader answered a frame with
	// shutting_down; it answers no frame after that one.
	shutdownSaid bool
}

// outChunk is one entry of a connection's write queue: one or more
// frames, of which replay bytes are a catch-up page (see replayQueued),
// errs the codes of its error frames, msgs its live msg frames and
// replayed its msg frames read back for a join. They are counted (in
// Stats.Errors, Delivered and Replayed) when the writer takes the chunk:
// before the client can read them, and never for a chunk of a connection
// that ended first.
type outChunk struct {
	b              []byte
	replay         int
	errs           []string
	msgs, replayed uint64
}

// enqueue queues chunk (one or more frames) for the writer. A full queue
// means the client does not read fast enough: the connection is closed at
// once and enqueue returns false, so the room that called it never waits.
func (c *conn) enqueue(chunk []byte) bool { return c.enqueueChunk(outChunk{b: chunk}) }

// enqueueChunk is enqueue of a whole entry, whose replay bytes are a
// catch-up page reserved with reserveReplay: if the chunk is not queued,
// it gives them back.
func (c *conn) enqueueChunk(ch outChunk) bool {
	select {
	case <-c.done:
	default:
		select {
		case c.out <- ch:
			return true
		default:
			c.kill(true)
		}
	}
	if ch.replay > 0 {
		c.replayQueued.Add(-int64(ch.replay))
	}
	return false
}

// reserveReplay reserves n bytes of the connection's catch-up bound
// (limit) for a frame of a join's page, and reports whether they were
// left: false when the pages queued before and the frames reserved for
// them hold more than limit-n.
func (c *conn) reserveReplay(n, limit int) bool {
	for {
		cur := c.replayQueued.Load()
		if cur+int64(n) > int64(limit) {
			return false
		}
		if c.replayQueued.CompareAndSwap(cur, cur+int64(n)) {
			return true
		}
	}
}

// taken returns the frames of a chunk the writer took from the queue,
// giving back the catch-up bytes it held and counting its frames.
func (c *conn) taken(ch outChunk) []byte {
	if ch.replay > 0 {
		c.replayQueued.Add(-int64(ch.replay))
	}
	for _, code := range ch.errs {
		c.s.stats.errorf(code)
	}
	if ch.msgs > 0 {
		c.s.stats.delivered.Add(ch.msgs)
	}
	if ch.replayed > 0 {
		c.s.stats.replayed.Add(ch.replayed)
	}
	return ch.b
}

// kill ends the connection. For a slow consumer it closes the socket at
// once, without a close handshake the client would not read: that ends a
// write blocked on the full socket and the reader, so the connection leaves
// its rooms now rather than after WriteTimeout. Otherwise the writer closes
// the socket with a close frame. A slow consumer is counted here, once:
// several rooms may find its queue full at once, each before done closes.
func (c *conn) kill(slow bool) {
	c.closeOnce.Do(func() {
		if slow {
			c.s.stats.slowConsumers.Add(1)
		}
		c.slow = slow
		close(c.done) // publishes slow to the writer
		if slow {
			c.ws.CloseNow()
		}
	})
}

// closeSocket closes the connection's socket at once, without waiting: it
// ends a write blocked on a client that does not read, and a close
// handshake the writer waits in for a client that does not answer it
// (where ws.CloseNow would wait for that handshake to give up, 5 s).
func (c *conn) closeSocket() {
	if c.raw != nil {
		c.raw.Close()
		return
	}
	c.ws.CloseNow()
}

func (c *conn) isDone() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// maxWriteBytes is where a writer stops packing: it adds queued chunks to
// a WebSocket message until the message has reached this size. It is no
// bound: the last chunk added, or a single chunk (a catch-up page of
// thousands of messages), may take the message past it.
const maxWriteBytes = 64 << 10

// writeLoop packs queued chunks into WebSocket messages until the
// connection ends. On Server.Close it writes what is queued, then closes
// with StatusGoingAway.
func (c *conn) writeLoop(wrote chan<- struct{}) {
	defer close(wrote)
	c.writeTimer = time.AfterFunc(time.Hour, func() { c.ws.CloseNow() })
	c.writeTimer.Stop()
	defer c.writeTimer.Stop()
	buf := make([]byte, 0, 4096)
	for {
		select {
		case chunk := <-c.out:
			buf = c.pack(append(buf[:0], c.taken(chunk)...))
			if err := c.write(buf); err != nil {
				c.kill(false)
				c.ws.CloseNow()
				return
			}
			buf = reuse(buf)
		case <-c.done:
			if !c.slow {
				c.ws.Close(websocket.StatusNormalClosure, "")
			}
			return
		case <-c.finish:
			for len(c.out) > 0 {
				buf = c.pack(append(buf[:0], c.taken(<-c.out)...))
				if c.write(buf) != nil {
					c.kill(false)
					c.ws.CloseNow()
					return
				}
			}
			c.ws.Close(websocket.StatusGoingAway, "server shutting down")
			c.kill(false)
			return
		}
	}
}

// keepWriteBytes is the largest buffer a writer keeps between messages: a
// catch-up page of thousands of messages makes one message of megabytes,
// which an idle connection should not hold until it ends.
const keepWriteBytes = 4 * maxWriteBytes

// reuse returns buf emptied for the next message, or a small new buffer if
// buf grew past keepWriteBytes.
func reuse(buf []byte) []byte {
	if cap(buf) > keepWriteBytes {
		return make([]byte, 0, 4096)
	}
	return buf[:0]
}

// pack appends, '\n'-separated, the chunks already queued behind the first,
// until buf holds maxWriteBytes or more.
func (c *conn) pack(buf []byte) []byte {
	for len(buf) < maxWriteBytes {
		select {
		case chunk := <-c.out:
			buf = append(buf, '\n')
			buf = append(buf, c.taken(chunk)...)
		default:
			return buf
		}
	}
	return buf
}

func (c *conn) write(b []byte) error {
	c.writeTimer.Reset(c.s.cfg.WriteTimeout)
	err := c.ws.Write(context.Background(), websocket.MessageText, b)
	c.writeTimer.Stop()
	return err
}

// readLoop reads and handles the client's frames until the connection ends.
func (c *conn) readLoop(ctx context.Context) {
	for {
		typ, r, err := c.ws.Reader(ctx)
		if err != nil {
			return
		}
		if typ != websocket.MessageText {
			io.Copy(io.Discard, r)
			if c.limited() {
				continue
			}
			c.fail(CodeBinary, "frames are JSON text messages", "", 0, false)
			continue
		}
		data, err := io.ReadAll(io.LimitReader(r, int64(c.s.cfg.MaxFrameBytes)+1))
		if err != nil {
			return
		}
		if len(data) > c.s.cfg.MaxFrameBytes {
			if _, err := io.Copy(io.Discard, r); err != nil {
				return
			}
			if c.limited() {
				continue
			}
			c.fail(CodeFrameTooLong, "frame longer than the limit", "", 0, false)
			continue
		}
		c.handle(ctx, data)
	}
}

// limited takes a frame's token from the connection's rate limit for a
// frame that is no request (binary, too long, not JSON): such frames count
// against the limit as requests do. It reports whether the limit refused
// it, answering rate_limited.
func (c *conn) limited() bool {
	if c.lim.Allow() {
		return false
	}
	c.fail(CodeRateLimited, "too many frames, slow down", "", 0, true)
	return true
}

// fail sends an error frame, counted by code when the writer takes it.
func (c *conn) fail(code, msg, room string, clientSeq uint64, retry bool) {
	c.enqueueChunk(outChunk{b: errorFrame(code, msg, room, clientSeq, retry), errs: []string{code}})
}

// handle checks one frame and submits its op to the room.
func (c *conn) handle(ctx context.Context, data []byte) {
	var f Frame
	err := json.Unmarshal(data, &f)
	if t := bytes.TrimLeft(data, " \t\r\n"); err == nil && (len(t) == 0 || t[0] != '{') {
		err = errors.New("null") // the only other value Unmarshal takes into a struct
	}
	if err != nil {
		if c.limited() {
			return
		}
		c.fail(CodeBadJSON, "frame is not a JSON object: "+err.Error(), "", 0, false)
		return
	}
	if !c.lim.Allow() {
		c.fail(CodeRateLimited, "too many frames, slow down", f.Room, f.ClientSeq, true)
		return
	}
	switch f.Type {
	case "join", "leave", "send":
	case "state":
		c.state(f.Version)
		return
	default:
		c.fail(CodeUnknownType, "unknown frame type "+quoteShort(f.Type), f.Room, f.ClientSeq, false)
		return
	}
	if f.Room == "" || len(f.Room) > c.s.cfg.MaxRoomBytes || !utf8.ValidString(f.Room) {
		c.fail(CodeBadRoom, "room must be valid UTF-8 of 1 to "+strconv.Itoa(c.s.cfg.MaxRoomBytes)+" bytes", "", f.ClientSeq, false)
		return
	}
	c.roomsMu.Lock()
	_, in := c.rooms[f.Room]
	nrooms := len(c.rooms)
	c.roomsMu.Unlock()
	o := op{c: c}
	switch f.Type {
	case "join":
		if in {
			c.fail(CodeAlreadyIn, "already in the room", f.Room, 0, false)
			return
		}
		if nrooms >= c.s.cfg.MaxRooms {
			c.fail(CodeTooManyRooms, "too many rooms on one connection", f.Room, 0, false)
			return
		}
		o.kind = opJoin
		if f.Since != nil {
			o.hasSince, o.since = true, *f.Since
		}
	case "leave":
		if !in {
			c.fail(CodeNotJoined, "not in the room", f.Room, 0, false)
			return
		}
		o.kind = opLeave
	case "send":
		switch {
		case !in:
			c.fail(CodeNotJoined, "join the room before sending", f.Room, f.ClientSeq, false)
			return
		case f.Text == "":
			c.fail(CodeEmptyText, "empty text", f.Room, f.ClientSeq, false)
			return
		case len(f.Text) > c.s.cfg.MaxTextBytes:
			c.fail(CodeTextTooLong, "text longer than the limit", f.Room, f.ClientSeq, false)
			return
		}
		o.kind, o.clientSeq, o.text, o.at = opSend, f.ClientSeq, f.Text, now().UnixNano()
	}
	// The connection records a join or a leave before submitting it: the
	// room may handle the op, and settle it, before submit returns.
	if o.kind != opSend {
		o.id = c.record(f.Room, o.kind == opJoin)
	}
	// A full room makes the reader wait for room (until the connection
	// ends): the client's frames are read no faster than its rooms take
	// them, and TCP holds the rest.
	if err := c.s.be.submit(ctx, f.Room, o); err != nil {
		if o.kind != opSend { // refused: it will not be handled
			c.settle(f.Room, o.id, false, o.kind == opLeave)
		}
		code, retry := submitErrorCode(err)
		if code == CodeShutdown {
			// One shutting_down frame per connection: a client that
			// goes on sending while the server drains would otherwise
			// fill its write queue with refusals, be cut off as a slow
			// consumer, and lose the acks still queued for it.
			if c.shutdownSaid {
				return
			}
			c.shutdownSaid = true
		}
		c.fail(code, err.Error(), f.Room, f.ClientSeq, retry)
		return
	}
	if o.kind == opSend {
		c.s.stats.accepted.Add(1)
	}
}

// record records a join (in) or a leave (!in) of room about to be
// submitted, and returns the op's number.
func (c *conn) record(room string, in bool) uint64 {
	c.roomsMu.Lock()
	defer c.roomsMu.Unlock()
	c.opID++
	c.lastOp[room] = c.opID
	c.setRoomLocked(room, in)
	return c.opID
}

// settle records that the join or leave of room numbered id was handled:
// if it did not take effect (!took), the connection is back where it was
// before it (in the room or not: before), unless a later join or leave of
// room was submitted since. A join (before: out of the room) or a leave
// (before: in it) that took effect is called by the room's handler, in
// the room's order: it makes the connection a member, or none.
func (c *conn) settle(room string, id uint64, took, before bool) {
	c.roomsMu.Lock()
	defer c.roomsMu.Unlock()
	if took && before {
		delete(c.member, room)
	} else if took {
		if c.member == nil {
			c.member = make(map[string]struct{})
		}
		c.member[room] = struct{}{}
	}
	if last, ok := c.lastOp[room]; !ok || last != id {
		return // a later op's record stands
	}
	delete(c.lastOp, room)
	if !took {
		c.setRoomLocked(room, before)
	}
}

// setRoomLocked records whether the connection is in room; roomsMu is held.
func (c *conn) setRoomLocked(room string, in bool) {
	if in {
		c.rooms[room] = struct{}{}
	} else {
		delete(c.rooms, room)
	}
}

// isMember reports whether a join of room took effect and no leave since
// (see member).
func (c *conn) isMember(room string) bool {
	c.roomsMu.Lock()
	defer c.roomsMu.Unlock()
	_, ok := c.member[room]
	return ok
}

// inRoom reports whether the connection is in room.
func (c *conn) inRoom(room string) bool {
	c.roomsMu.Lock()
	defer c.roomsMu.Unlock()
	_, ok := c.rooms[room]
	return ok
}

// submitErrorCode maps a refused submission to an error code and whether a
// retry may succeed.
func submitErrorCode(err error) (string, bool) {
	switch {
	case errors.Is(err, backpressure.ErrMemoryPressure), errors.Is(err, backpressure.ErrThrottled),
		errors.Is(err, pool.ErrQueueFull):
		return CodeOverloaded, true
	case errors.Is(err, pool.ErrClosed), errors.Is(err, errClosed), errors.Is(err, backpressure.ErrClosed):
		return CodeShutdown, false
	default:
		return CodeInternal, true
	}
}

// state answers a state frame with the changes to the connection's rooms
// since version.
func (c *conn) state(version uint64) {
	changes, next, err := c.s.hub.state.Since(version)
	if errors.Is(err, snapshot.ErrTooOld) {
		c.fail(CodeStateTooOld, err.Error(), "", 0, true)
		return
	}
	f := Frame{Type: "state", Version: next, Rooms: []RoomState{}}
	for _, ch := range changes {
		if !ch.Deleted && c.inRoom(ch.Key) {
			f.Rooms = append(f.Rooms, ch.Value)
		}
	}
	c.enqueue(encode(&f))
}

// leaveAll submits a leave for every room of a connection that ended,
// waiting up to 5 s in all for room in full ones. A leave refused all the
// same (memory pressure, a room still full) is not lost: the room's next
// call drops every member whose connection has ended (hub.handle).
func (c *conn) leaveAll() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c.roomsMu.Lock()
	rooms := make([]string, 0, len(c.rooms))
	for room := range c.rooms {
		rooms = append(rooms, room)
	}
	c.roomsMu.Unlock()
	for _, room := range rooms {
		err := c.s.be.submit(ctx, room, op{kind: opLeave, c: c, id: c.record(room, false)})
		if code, _ := submitErrorCode(err); err != nil && code == CodeShutdown {
			return // closing: the rooms go with the server
		}
	}
}

func quoteShort(s string) string {
	if len(s) > 32 {
		s = s[:32] + "…"
	}
	b, _ := json.Marshal(s)
	return string(b)
}
