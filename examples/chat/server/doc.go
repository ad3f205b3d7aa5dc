// Package server is a WebSocket chat server built on shoal: every room is a
// group of a pool.Batcher, so a room's messages are numbered, stored and
// fanned out in order while rooms run in parallel, and a room's queued
// messages are stored in one SQLite transaction.
//
// # The path of one message
//
//	client ── send frame ──▶ connection reader: checks (size, JSON, rate, room, text)
//	                         Batcher.Submit(room, op)  ── refused: error frame (retry?)
//	room's handler call (one at a time per room, ops in submission order):
//	  1. read each join's catch-up from the database (a join whose read fails
//	     does not take effect, nor do the sends its connection queued behind it),
//	     number the members' messages seq+1.. and store them in one transaction
//	  2. in order: lay out each msg frame for every member, then the sender's ack;
//	     apply joins (with their catch-up) and leaves at their place
//	  3. publish the room's state (last seq, members) in a snapshot.Store
//	  4. queue the laid-out frames, one chunk per member: a client that saw a
//	     frame and asks for the state never gets an older one
//	connection writer: packs queued frames, '\n'-separated, into WebSocket messages
//
// A member's write queue is bounded (Config.WriteQueue): when it is full,
// that connection is closed at once as a slow consumer and the room goes
// on. Close stops admission, lets the Batcher hand every accepted message to
// the handler, flushes every write queue and closes the database, so every
// acknowledged message is stored and every stored message was delivered to
// the members that were connected.
//
// With Config.Backend set to BackendPond the same handler runs one op at a
// time on a pond v2 pool, serialized per room by a mutex: the hand-written
// alternative, kept for comparison.
//
// Frame documents the protocol; Server its endpoints.
package server
