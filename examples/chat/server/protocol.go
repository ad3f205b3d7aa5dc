package server

import (
	"encoding/json"
)

// Frame is one JSON frame of the protocol, in either direction. A client
// sends one frame per WebSocket message; the server may pack several frames,
// separated by '\n', into one WebSocket message.
//
// Client to server:
//
//	{"type":"join","room":"r1"}                   join, live from now on
//	{"type":"join","room":"r1","since":17}        join and first receive seqs 18.. from the database
//	{"type":"leave","room":"r1"}
//	{"type":"send","room":"r1","client_seq":5,"text":"hi"}
//	{"type":"state","version":42}                 room state changes since version 42
//
// Server to client:
//
//	{"type":"hello","from":"c7"}                  the connection's id, first frame
//	{"type":"joined","room":"r1","seq":17,"members":3}
//	{"type":"msg","room":"r1","seq":18,"from":"c2","client_seq":9,"text":"…","at":…}
//	{"type":"ack","room":"r1","seq":18,"client_seq":5}
//	{"type":"left","room":"r1"}
//	{"type":"state","version":57,"rooms":[{"room":"r1","seq":18,"members":3}]}
//	{"type":"error","code":"rate_limited","retry":true,"client_seq":5,"room":"r1","message":"…"}
//
// A joined frame comes before any msg frame of its room; the messages a
// "since" asks for follow it, then live ones, all in sequence order with no
// gap unless Truncated says more were missed than the server replays: it
// replays the newest missed messages, up to Config.MaxReplay of them and
// Config.MaxReplayBytes of their frames, within what is left of
// Config.MaxConnReplayBytes for the connection, and Truncated counts the
// older ones, which the client will not receive.
type Frame struct {
	// Type names the frame: join, leave, send, state, hello, joined, msg,
	// ack, left or error.
	Type string `json:"type"`
	// Room is the room the frame is about.
	Room string `json:"room,omitempty"`
	// Seq is a room sequence number: of a msg or ack, or the room's last
	// one in joined.
	Seq uint64 `json:"seq,omitempty"`
	// Since, in join, asks for the messages after this sequence number.
	Since *uint64 `json:"since,omitempty"`
	// From is the sending connection's id (msg, hello).
	From string `json:"from,omitempty"`
	// ClientSeq is the sender's number for a message (send, msg, ack, error).
	ClientSeq uint64 `json:"client_seq,omitempty"`
	// Text is a message body (send, msg).
	Text string `json:"text,omitempty"`
	// At is the server's acceptance time of a msg, Unix nanoseconds.
	At int64 `json:"at,omitempty"`
	// Members is a room's member count (joined).
	Members int `json:"members,omitempty"`
	// Truncated, in joined, counts the missed messages that were not
	// replayed because there were more than the server's replay limits
	// (Config.MaxReplay messages, Config.MaxReplayBytes bytes, what is
	// left of Config.MaxConnReplayBytes): the oldest ones, right after
	// since.
	Truncated uint64 `json:"truncated,omitempty"`
	// Version is a room-state version (state).
	Version uint64 `json:"version,omitempty"`
	// Rooms holds room states (state).
	Rooms []RoomState `json:"rooms,omitempty"`
	// Code is the error's machine-readable code (error).
	Code string `json:"code,omitempty"`
	// Message is the error's text for people (error).
	Message string `json:"message,omitempty"`
	// Retry says that the same frame may succeed if sent again later
	// (error).
	Retry bool `json:"retry,omitempty"`
}

// RoomState is a room's published state, kept in a snapshot.Store.
type RoomState struct {
	// Room is the room's name.
	Room string `json:"room"`
	// Seq is the room's last sequence number.
	Seq uint64 `json:"seq"`
	// Members is the number of connections in the room.
	Members int `json:"members"`
}

// Error codes of error frames.
const (
	CodeBadJSON      = "bad_json"       // the frame is not a JSON object
	CodeBinary       = "binary"         // binary WebSocket messages are not accepted
	CodeFrameTooLong = "frame_too_long" // the frame exceeds Config.MaxFrameBytes
	CodeUnknownType  = "unknown_type"   // the type is not join, leave, send or state
	CodeBadRoom      = "bad_room"       // the room name is empty, too long or not UTF-8
	CodeTextTooLong  = "text_too_long"  // the text exceeds Config.MaxTextBytes
	CodeEmptyText    = "empty_text"     // a send without text
	CodeNotJoined    = "not_joined"     // send or leave for a room the connection is not in
	CodeAlreadyIn    = "already_joined" // join of a room the connection is in
	CodeTooManyRooms = "too_many_rooms" // more than Config.MaxRooms rooms
	CodeRateLimited  = "rate_limited"   // past the connection's rate limit (retry)
	CodeOverloaded   = "overloaded"     // the server refused for memory pressure or a full queue (retry)
	CodeShutdown     = "shutting_down"  // the server is closing; sent once per connection, later frames get no answer
	CodeNotPersisted = "not_persisted"  // an accepted message could not be stored
	CodeStateTooOld  = "state_too_old"  // the asked version is forgotten; ask again with version 0
	CodeInternal     = "internal"       // anything else
)

// errorFrame encodes an error frame.
func errorFrame(code, msg, room string, clientSeq uint64, retry bool) []byte {
	return encode(&Frame{Type: "error", Code: code, Message: msg, Room: room, ClientSeq: clientSeq, Retry: retry})
}

// encode marshals f. Marshalling a Frame cannot fail.
func encode(f *Frame) []byte {
	b, err := json.Marshal(f)
	if err != nil {
		panic(err)
	}
	return b
}
