package jetstream_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoal-go/shoal/jetstream"
	"github.com/shoal-go/shoal/pool"
)

// TestBatcher drives a pool.Batcher: each room's queued messages reach the
// BatchHandler in one call, in order; a call that fails once is retried
// with the same messages; each message is acknowledged after its call
// succeeded, and a call that fails for good sends each of its messages to
// the dead letters.
func TestBatcher(t *testing.T) {
	s := startServer(t, "s1", nil, 0)
	_, js := connect(t, s.ClientURL())
	ctx := context.Background()
	const parts, rooms, per = 4, 10, 30
	createStream(t, js, jetstream.StreamSpec{Name: "CHAT", Partitions: parts})
	dlq := createDLQ(t, js)
	ck := newChecker(t)
	gate := make(chan struct{})
	var (
		mu      sync.Mutex
		calls   int
		largest int
		failed  atomic.Bool
	)
	h := func(ctx context.Context, room string, msgs []*jetstream.Msg) error {
		select { // hold the first calls back until every message is published
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
		mu.Lock()
		calls++
		largest = max(largest, len(msgs))
		mu.Unlock()
		if room == "r1" && !failed.Load() {
			failed.Store(true)
			return errors.New("the store is busy") // once: the call is retried
		}
		if room == "r2" {
			for _, m := range msgs {
				if string(m.Data) == "10" {
					// The call's messages become dead letters: the order
					// check goes on after them, as the room does.
					last, _ := strconv.Atoi(string(msgs[len(msgs)-1].Data))
					ck.mu.Lock()
					ck.last[room] = last
					ck.mu.Unlock()
					return pool.Permanent(errors.New("bad message in the batch"))
				}
			}
		}
		for _, m := range msgs {
			if m.Room != room {
				t.Errorf("message of room %s in a call for %s", m.Room, room)
			}
			if err := ck.handle(ctx, m); err != nil {
				return err
			}
		}
		return nil
	}
	b, err := pool.NewBatcher(jetstream.BatchFunc(h), pool.WithMaxBatch(8))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = b.Close(ctx) }()
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c, err := jetstream.StartBatcher(cctx, js, b, append([]jetstream.Option{
		jetstream.WithStream("CHAT"), jetstream.WithMember("n1"),
	}, testTiming...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); <-c.Done() }()
	publish(t, js, rooms, 1, per)
	close(gate)

	// r2's call that holds message 10 fails for good: its messages are
	// dead letters, and the room goes on after them.
	eventually(t, 30*time.Second, "every message acknowledged or dead-lettered", func() bool {
		st := c.Stats()
		return st.Acked+st.DeadLetters == rooms*per
	})
	var lettered []int
	info, err := dlq.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for seq := uint64(1); seq <= info.State.Msgs; seq++ {
		m, err := dlq.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		if room := m.Header.Get(jetstream.HeaderRoom); room != "r2" || m.Header.Get(jetstream.HeaderReason) != string(jetstream.ReasonPermanent) {
			t.Errorf("dead letter of room %s, reason %s; want r2, permanent", room, m.Header.Get(jetstream.HeaderReason))
		}
		i, _ := strconv.Atoi(string(m.Data))
		lettered = append(lettered, i)
	}
	if len(lettered) == 0 {
		t.Fatal("no dead letter for r2's failed call")
	}
	for k, i := range lettered { // one call's messages: consecutive, 10 among them
		if k > 0 && i != lettered[k-1]+1 {
			t.Errorf("dead letters %v are not one call's messages in order", lettered)
			break
		}
	}
	if lettered[len(lettered)-1] == per {
		t.Errorf("r2's failed call held its last message: dead letters %v", lettered)
	}
	ck.verify(t, rooms, per) // r2 went on after its dead letters
	st := c.Stats()
	mu.Lock()
	t.Logf("%d calls for %d messages, largest %d; retries %d; dead letters %d", calls, rooms*per, largest, st.Retries, st.DeadLetters)
	if largest < 2 || calls >= rooms*per {
		t.Errorf("%d calls, largest %d: the queued messages of a room were not batched", calls, largest)
	}
	mu.Unlock()
	if st.Retries != 1 || st.DeadLetters != uint64(len(lettered)) || st.Handled != st.Acked || ck.dups != 0 {
		t.Errorf("retries %d, dead letters %d (lettered %d), handled %d, acked %d, duplicates %d",
			st.Retries, st.DeadLetters, len(lettered), st.Handled, st.Acked, ck.dups)
	}
	nothingPending(t, js, parts)
	if _, err := jetstream.StartBatcher(ctx, js, nil, jetstream.WithStream("CHAT"), jetstream.WithMember("n2")); !errors.Is(err, jetstream.ErrBadOption) {
		t.Errorf("StartBatcher(nil): %v, want ErrBadOption", err)
	}
}
