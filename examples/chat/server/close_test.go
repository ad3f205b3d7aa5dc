package server

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestCloseConcurrentWaits: a Close called while another is shutting the
// server down waits for that shutdown (here, a call blocked in the
// database): it returns its own context's error if that ends first, and
// the first Close's result once the server is down, never nil at once.
func TestCloseConcurrentWaits(t *testing.T) {
	srv, _, _, release := stalledRoom(t, "")
	defer release()

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	first := make(chan error, 1)
	go func() { first <- srv.Close(ctx) }()
	waitFor(t, "the first Close to begin", func() bool {
		srv.mu.Lock()
		defer srv.mu.Unlock()
		return srv.closed
	})

	short, scancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer scancel()
	if err := srv.Close(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second Close during the first's shutdown: %v, want its context's error (the server is not closed yet)", err)
	}
	release()
	err1 := <-first
	if err1 != nil {
		t.Fatalf("first Close: %v", err1)
	}
	if err := srv.Close(ctx); err != err1 {
		t.Fatalf("Close after the shutdown: %v, want the first's result %v", err, err1)
	}
}

// gatedHijacker holds websocket.Accept in Hijack, after serveWS has
// passed its closed check, until gate is closed.
type gatedHijacker struct {
	http.ResponseWriter
	entered chan<- struct{}
	gate    <-chan struct{}
}

func (g *gatedHijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	close(g.entered)
	<-g.gate
	return g.ResponseWriter.(http.Hijacker).Hijack()
}

// closeAfterGrace reports whether a Close has closed the sockets past its
// deadline and grace and waits for the connections: its goroutine is in a
// channel receive (before, it is in a select).
func closeAfterGrace() bool {
	buf := make([]byte, 1<<22)
	buf = buf[:runtime.Stack(buf, true)]
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if strings.Contains(g, "[chan receive") && strings.Contains(g, "server.(*Server).Close(") {
			return true
		}
	}
	return false
}

// TestCloseBoundedLateConnection: a connection accepted while Close's
// grace ends (past serveWS's closed check, not yet registered) is closed
// at once when it registers, as those Close found were: Close does not
// wait for its close handshake with a client that never reads (5 s).
func TestCloseBoundedLateConnection(t *testing.T) {
	srv, err := New(Config{DBPath: filepath.Join(t.TempDir(), "chat.db")})
	if err != nil {
		t.Fatal(err)
	}
	entered, gate := make(chan struct{}), make(chan struct{})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		srv.ServeHTTP(&gatedHijacker{ResponseWriter: w, entered: entered, gate: gate}, r)
	}))
	t.Cleanup(ts.Close)
	dialed := make(chan *websocket.Conn, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		mute, _, err := websocket.Dial(ctx, wsURL(ts), nil) // never reads
		if err != nil {
			t.Error(err)
		}
		dialed <- mute
	}()
	<-entered
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	closed := make(chan error, 1)
	go func() { closed <- srv.Close(ctx) }()
	waitFor(t, "Close to close the sockets past its grace", closeAfterGrace)
	start := time.Now()
	close(gate)
	if mute := <-dialed; mute != nil {
		defer mute.CloseNow()
	}
	err = <-closed
	took := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close: %v, want the deadline's error", err)
	}
	if took > time.Second {
		t.Fatalf("Close returned %v after the late connection was accepted, want it closed at once (under 1 s)", took)
	}
}

// unwrapWriter is a middleware's ResponseWriter: no Hijack of its own,
// but Unwrap, as http.ResponseController and coder/websocket follow.
type unwrapWriter struct{ w http.ResponseWriter }

func (u unwrapWriter) Header() http.Header         { return u.w.Header() }
func (u unwrapWriter) Write(b []byte) (int, error) { return u.w.Write(b) }
func (u unwrapWriter) WriteHeader(code int)        { u.w.WriteHeader(code) }
func (u unwrapWriter) Unwrap() http.ResponseWriter { return u.w }

// TestCloseBoundedBehindMiddleware: TestCloseBoundedPastDeadline with the
// server behind a middleware whose ResponseWriter hijacks only through
// Unwrap: Close still closes the mute client's socket at once.
func TestCloseBoundedBehindMiddleware(t *testing.T) {
	srv, err := New(Config{DBPath: filepath.Join(t.TempDir(), "chat.db")})
	if err != nil {
		t.Fatal(err)
	}
	closeBoundedWithMuteClient(t, srv, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		srv.ServeHTTP(unwrapWriter{w}, r)
	}))
}

// lazyHeaderWriter writes the status only on WriteHeaderNow or a Write,
// as gin's ResponseWriter does; coder/websocket calls WriteHeaderNow
// before it hijacks.
type lazyHeaderWriter struct {
	http.ResponseWriter
	code int
}

func (l *lazyHeaderWriter) WriteHeader(code int) { l.code = code }
func (l *lazyHeaderWriter) WriteHeaderNow() {
	if l.code != 0 {
		l.ResponseWriter.WriteHeader(l.code)
		l.code = 0
	}
}
func (l *lazyHeaderWriter) Write(b []byte) (int, error) {
	l.WriteHeaderNow()
	return l.ResponseWriter.Write(b)
}
func (l *lazyHeaderWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return l.ResponseWriter.(http.Hijacker).Hijack()
}

// TestAcceptLazyHeaderWriter: serveWS's wrapper passes WriteHeaderNow on,
// so a client behind a writer that holds the status until then gets the
// 101 and connects.
func TestAcceptLazyHeaderWriter(t *testing.T) {
	srv, err := New(Config{DBPath: filepath.Join(t.TempDir(), "chat.db")})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		srv.ServeHTTP(&lazyHeaderWriter{ResponseWriter: w}, r)
	}))
	t.Cleanup(ts.Close)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, wsURL(ts), nil)
	if err != nil {
		t.Fatalf("Dial behind a lazy-header writer: %v", err)
	}
	ws.CloseNow()
}
