package server

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
)

// TestShutdownPersists: clients send as fast as they can while the server
// closes. Every message the server accepted is stored (the database,
// reopened, holds exactly that many) and acknowledged to its sender before
// its connection closes.
func TestShutdownPersists(t *testing.T) {
	for _, be := range backends() {
		t.Run(be, func(t *testing.T) { testShutdownPersists(t, be) })
	}
}

func testShutdownPersists(t *testing.T, backend string) {
	const (
		clients = 10
		perConn = 40 // messages each client sends, without waiting
	)
	path := filepath.Join(t.TempDir(), "chat.db")
	srv, ts := startServer(t, Config{DBPath: path, Backend: backend, Rate: 1e6, Burst: 1 << 20})
	var acks atomic.Int64
	started := make(chan struct{})
	var startOnce sync.Once
	var wg sync.WaitGroup
	cs := make([]*client, clients)
	for i := range cs {
		cs[i] = dial(t, ts)
		cs[i].join(fmt.Sprint("r", i%5))
	}
	for i, c := range cs {
		room := fmt.Sprint("r", i%5)
		wg.Go(func() { // reader: counts acks until the server closes
			for f := range c.frames {
				if f.Type == "ack" {
					if acks.Add(1) == 50 {
						startOnce.Do(func() { close(started) })
					}
				}
			}
		})
		wg.Go(func() { // writer: sends until done or the connection is gone
			for n := uint64(1); n <= perConn; n++ {
				b := fmt.Appendf(nil, `{"type":"send","room":%q,"client_seq":%d,"text":"m%d"}`, room, n, n)
				if c.ws.Write(context.Background(), 1, b) != nil {
					return
				}
			}
		})
	}
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := srv.Close(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()

	accepted := srv.Stats().Accepted
	db, err := OpenDB(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	stored, err := db.Count(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("accepted %d, stored %d, acknowledged %d", accepted, stored, acks.Load())
	if uint64(stored) != accepted || acks.Load() != stored {
		t.Fatalf("accepted %d, stored %d, acknowledged %d: want all equal", accepted, stored, acks.Load())
	}
}
