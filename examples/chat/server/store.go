package server

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Message is one persisted chat message.
type Message struct {
	// Room is the room the message was sent to.
	Room string `json:"room"`
	// Seq is the message's sequence number in its room, from 1.
	Seq uint64 `json:"seq"`
	// From is the server-assigned id of the sending connection.
	From string `json:"from"`
	// ClientSeq is the sender's own number for the message.
	ClientSeq uint64 `json:"client_seq"`
	// Text is the message body.
	Text string `json:"text"`
	// At is when the server accepted the message, in Unix nanoseconds.
	At int64 `json:"at"`
}

// DB is the SQLite database that holds every accepted message. It keeps one
// writer connection (SQLite serializes writers in any case, and one
// connection avoids SQLITE_BUSY retries) and a small pool of readers, which
// WAL mode lets read while the writer writes.
//
// The writer never checkpoints (wal_autocheckpoint=0): a checkpoint copies
// the log into the database file and syncs it, which takes the disk's fsync
// time, and done by the writer inline it stalls every room's next batch for
// that long. A goroutine of the DB runs passive checkpoints on its own
// connection every CheckpointEvery instead; they do not block the writer.
type DB struct {
	w  *sql.DB
	r  *sql.DB
	cp *sql.DB

	stopOnce sync.Once
	stop     chan struct{}
	done     chan struct{}
}

// CheckpointEvery is how often a DB checkpoints its write-ahead log.
const CheckpointEvery = time.Second

const schema = `
CREATE TABLE IF NOT EXISTS messages (
	room       TEXT    NOT NULL,
	seq        INTEGER NOT NULL,
	sender     TEXT    NOT NULL,
	client_seq INTEGER NOT NULL,
	text       TEXT    NOT NULL,
	at         INTEGER NOT NULL,
	PRIMARY KEY (room, seq)
) WITHOUT ROWID;`

// OpenDB opens (creating if needed) the database at path in WAL mode with
// synchronous=NORMAL: a commit survives a process crash; the last commits
// before a power loss may not.
func OpenDB(path string) (*DB, error) {
	if path == "" {
		return nil, errors.New("chat: empty database path")
	}
	if strings.IndexByte(path, 0) >= 0 {
		// SQLite would open the file named by the bytes before it.
		return nil, fmt.Errorf("chat: database path %q holds a NUL byte", path)
	}
	// The path goes into a URI: '%', '?' and '#' would be read as an
	// escape, the query or a fragment, and open another file; a path that
	// starts with "//" as an authority, and the relative ":memory:" as an
	// in-memory database. An absolute, cleaned path is none of those.
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	dsn := "file:" + uriPath.Replace(path) + "?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=busy_timeout(10000)"
	w, err := sql.Open("sqlite", dsn+"&_pragma=wal_autocheckpoint(0)")
	if err != nil {
		return nil, err
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	if _, err := w.Exec(schema); err != nil {
		w.Close()
		return nil, fmt.Errorf("chat: open database %s: %w", path, err)
	}
	r, err := sql.Open("sqlite", dsn+"&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		return nil, err
	}
	r.SetMaxOpenConns(4)
	r.SetMaxIdleConns(4)
	cp, err := sql.Open("sqlite", dsn)
	if err != nil {
		r.Close()
		w.Close()
		return nil, err
	}
	cp.SetMaxOpenConns(1)
	d := &DB{w: w, r: r, cp: cp, stop: make(chan struct{}), done: make(chan struct{})}
	go d.checkpoints()
	return d, nil
}

// checkpoints runs a passive checkpoint every CheckpointEvery until Close.
func (d *DB) checkpoints() {
	defer close(d.done)
	t := time.NewTicker(CheckpointEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			d.cp.Exec("PRAGMA wal_checkpoint(PASSIVE)")
		case <-d.stop:
			return
		}
	}
}

// uriPath escapes what a file name in a SQLite URI must not hold raw.
var uriPath = strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23")

// Close stops the checkpoints, checkpoints the whole log and closes the
// connection pools.
func (d *DB) Close() error { return d.close(context.Background()) }

// close is Close within ctx: once ctx has ended, the last checkpoint is a
// passive one, which waits for no lock that another connection holds (a
// full one waits up to the busy timeout, 10 s).
func (d *DB) close(ctx context.Context) error {
	d.stopOnce.Do(func() { close(d.stop) }) // a second Close finds the pools closed
	<-d.done
	var errCP error
	if ctx.Err() != nil {
		_, errCP = d.cp.Exec("PRAGMA wal_checkpoint(PASSIVE)")
	} else {
		_, errCP = d.cp.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)")
	}
	return errors.Join(errCP, d.r.Close(), d.cp.Close(), d.w.Close())
}

// insert writes msgs, all of one room, in one transaction.
func (d *DB) insert(ctx context.Context, msgs []Message) error {
	if len(msgs) == 0 {
		return nil
	}
	tx, err := d.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	// One multi-row INSERT per chunk: SQLite allows 32766 parameters, six
	// per row.
	const rowsPerStmt = 500
	for start := 0; start < len(msgs); start += rowsPerStmt {
		end := min(start+rowsPerStmt, len(msgs))
		var q strings.Builder
		q.WriteString("INSERT INTO messages (room, seq, sender, client_seq, text, at) VALUES ")
		args := make([]any, 0, 6*(end-start))
		for i, m := range msgs[start:end] {
			if i > 0 {
				q.WriteByte(',')
			}
			q.WriteString("(?,?,?,?,?,?)")
			args = append(args, m.Room, int64(m.Seq), m.From, int64(m.ClientSeq), m.Text, m.At)
		}
		if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
			tx.Rollback()
			return err
		}
	}
	return tx.Commit()
}

// Range returns the messages of room with after < seq <= upTo, in sequence
// order, at most limit of them.
func (d *DB) Range(ctx context.Context, room string, after, upTo uint64, limit int) ([]Message, error) {
	rows, err := d.r.QueryContext(ctx,
		`SELECT seq, sender, client_seq, text, at FROM messages
		 WHERE room = ? AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?`,
		room, int64(after), int64(upTo), limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Message
	for rows.Next() {
		m := Message{Room: room}
		var seq, cseq int64
		if err := rows.Scan(&seq, &m.From, &cseq, &m.Text, &m.At); err != nil {
			return nil, err
		}
		m.Seq, m.ClientSeq = uint64(seq), uint64(cseq)
		out = append(out, m)
	}
	return out, rows.Err()
}

// rangeNewest calls fn with the messages of room with after < seq <= upTo,
// newest first, at most limit of them, until fn returns false.
func (d *DB) rangeNewest(ctx context.Context, room string, after, upTo uint64, limit int, fn func(*Message) bool) error {
	rows, err := d.r.QueryContext(ctx,
		`SELECT seq, sender, client_seq, text, at FROM messages
		 WHERE room = ? AND seq > ? AND seq <= ? ORDER BY seq DESC LIMIT ?`,
		room, int64(after), int64(upTo), limit)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		m := Message{Room: room}
		var seq, cseq int64
		if err := rows.Scan(&seq, &m.From, &cseq, &m.Text, &m.At); err != nil {
			return err
		}
		m.Seq, m.ClientSeq = uint64(seq), uint64(cseq)
		if !fn(&m) {
			return nil
		}
	}
	return rows.Err()
}

// LastSeqs returns the highest sequence number of every room that has
// messages.
func (d *DB) LastSeqs(ctx context.Context) (map[string]uint64, error) {
	rows, err := d.r.QueryContext(ctx, `SELECT room, MAX(seq) FROM messages GROUP BY room`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make(map[string]uint64)
	for rows.Next() {
		var room string
		var seq int64
		if err := rows.Scan(&room, &seq); err != nil {
			return nil, err
		}
		out[room] = uint64(seq)
	}
	return out, rows.Err()
}

// lastSeq returns the highest sequence number of room, 0 if it has no
// message.
func (d *DB) lastSeq(ctx context.Context, room string) (uint64, error) {
	var seq sql.NullInt64
	err := d.r.QueryRowContext(ctx, `SELECT MAX(seq) FROM messages WHERE room = ?`, room).Scan(&seq)
	return uint64(seq.Int64), err
}

// Count returns the number of stored messages.
func (d *DB) Count(ctx context.Context) (int64, error) {
	var n int64
	err := d.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM messages`).Scan(&n)
	return n, err
}

// now is the server's clock for message timestamps.
var now = time.Now
