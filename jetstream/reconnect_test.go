package jetstream_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/shoal-go/shoal/jetstream"
)

// TestReconnect: the server drops the node's connection and the client
// reconnects at once: the node goes on, every message handled once, in
// order, and it never stops.
func TestReconnect(t *testing.T) {
	s := startServer(t, "s1", nil, 0)
	_, js := connect(t, s.ClientURL())
	const parts, rooms, per = 2, 10, 40
	createStream(t, js, jetstream.StreamSpec{Name: "CHAT", Partitions: parts})
	ck := newChecker(t)
	n := startNode(t, s.ClientURL(), "n1", ck.handle)
	publish(t, js, rooms, 1, per/2)
	eventually(t, 10*time.Second, "a first part handled", func() bool { return ck.count() >= rooms*per/4 })
	reconnected := make(chan struct{}, 1)
	n.nc.SetReconnectHandler(func(*nats.Conn) {
		select {
		case reconnected <- struct{}{}:
		default:
		}
	})
	cid, err := n.nc.GetClientID()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DisconnectClientByID(cid); err != nil {
		t.Fatal(err)
	}
	select {
	case <-reconnected:
	case <-time.After(10 * time.Second):
		t.Fatal("no reconnection")
	}
	publish(t, js, rooms, per/2+1, per/2)
	eventually(t, 30*time.Second, "every message handled", func() bool { return ck.count() == rooms*per })
	ck.verify(t, rooms, per)
	select {
	case <-n.c.Done():
		t.Fatalf("consumer stopped: %v", n.c.Err())
	default:
	}
}

// TestServerRestart: the only server stops for about a lease TTL while a
// handler holds a message, and comes back on the same port and store. The
// node's partitions are fenced meanwhile; renewals nats.go buffered during
// the outage are stored after it, in the node's name, at revisions its
// lease watcher (stalled until nats.go resets it, after missed heartbeats)
// has not seen. The node must take its partitions back within a few TTLs
// (not wait for its watcher), then handle everything, in order.
func TestServerRestart(t *testing.T) {
	port := freePorts(t, 1)[0]
	dir := t.TempDir()
	start := func() *server.Server {
		s, err := server.NewServer(&server.Options{
			ServerName: "s1", Host: "127.0.0.1", Port: port,
			JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true,
		})
		if err != nil {
			t.Fatal(err)
		}
		s.Start()
		if !s.ReadyForConnections(10 * time.Second) {
			t.Fatal("server not ready")
		}
		t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
		return s
	}
	s := start()
	_, js := connect(t, s.ClientURL())
	const parts, rooms, per = 2, 10, 20
	createStream(t, js, jetstream.StreamSpec{Name: "CHAT", Partitions: parts})
	ck := newChecker(t)
	gate := make(chan struct{})
	blocked := make(chan struct{}, 1)
	h := func(ctx context.Context, m *jetstream.Msg) error {
		if m.Room == "r0" && string(m.Data) == "5" {
			select {
			case <-gate:
			default:
				select {
				case blocked <- struct{}{}:
				default:
				}
				select {
				case <-gate:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
		}
		return ck.handle(ctx, m)
	}
	n := startNode(t, s.ClientURL(), "n1", h)
	publish(t, js, rooms, 1, per/2)
	<-blocked
	s.Shutdown()
	s.WaitForShutdown()
	eventually(t, 10*time.Second, "partitions fenced during the outage", func() bool {
		return len(n.c.Stats().Partitions) == 0
	})
	start()
	close(gate)
	publish(t, js, rooms, per/2+1, per/2)
	eventually(t, 5*time.Second, "the node holding its partitions again within five lease TTLs of the restart", func() bool {
		return len(n.c.Stats().Partitions) == parts
	})
	eventually(t, 30*time.Second, "every message handled", func() bool { return ck.count() == rooms*per })
	ck.verify(t, rooms, per)
	select {
	case <-n.c.Done():
		t.Fatalf("consumer stopped: %v", n.c.Err())
	default:
	}
}
