package pool

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestDeadLetterHandler: with a handler, every letter goes to it (and none
// to the channel, which Close still closes); a handler that panics is
// counted and logged, and the next letters still reach it.
func TestDeadLetterHandler(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var got []int
		h := func(dl DeadLetter[int]) {
			if dl.Group == 2 {
				panic("handler fails")
			}
			mu.Lock()
			got = append(got, dl.Group)
			mu.Unlock()
		}
		logs := captureLog(t)
		p := mustNew[int](t, WithWorkers(1, 1), WithDeadLetterHandler(h))
		for g := range 5 {
			if err := p.Submit(context.Background(), g, func(context.Context) error { return Permanent(errors.New("bad")) }); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if _, ok := <-p.DeadLetters(); ok {
			t.Fatal("a letter went to the channel despite the handler")
		}
		mu.Lock()
		defer mu.Unlock()
		if len(got) != 4 {
			t.Fatalf("handler got %v, want the 4 letters of groups other than 2", got)
		}
		s := p.Snapshot()
		if s.DeadLettersUntaken != 1 || s.DeadLetters.Failed != 5 {
			t.Fatalf("untaken %d, failed letters %d; want 1, 5", s.DeadLettersUntaken, s.DeadLetters.Failed)
		}
		if !strings.Contains(logs.String(), "dead letter not taken") || !strings.Contains(logs.String(), "handler panicked") {
			t.Fatalf("log %q, want the panicked handler's letter", logs.String())
		}
	})
}

// TestDeadLettersUntaken: nobody reads DeadLetters(): each letter that finds
// the channel full waits DeadLetterWait, then is counted and logged, and
// the pool goes on; Close does not hang.
func TestDeadLettersUntaken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		logs := captureLog(t)
		p := mustNew[int](t, WithWorkers(1, 1), WithDeadLetterBuffer(1))
		var ran sync.WaitGroup
		ran.Add(1)
		for g := range 5 {
			if err := p.Submit(context.Background(), g, func(context.Context) error { return Permanent(errors.New("bad")) }); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.Submit(context.Background(), 99, func(context.Context) error { ran.Done(); return nil }); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		ran.Wait()
		if waited := time.Since(start); waited < 4*DeadLetterWait {
			t.Fatalf("the next task ran after %v, want the workers to have waited %v per untaken letter", waited, DeadLetterWait)
		}
		s := p.Snapshot()
		if s.DeadLettersUntaken != 4 || s.DeadLetterStalls != 4 {
			t.Fatalf("untaken %d, stalls %d; want 4 each (one letter fits the buffer)", s.DeadLettersUntaken, s.DeadLetterStalls)
		}
		lines := strings.Count(logs.String(), "dead letter not taken")
		if lines < 1 || lines > 4 {
			t.Fatalf("%d log lines for 4 untaken letters, want 1 to 4 (at most one a second)", lines)
		}
		if err := p.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if dl, ok := <-p.DeadLetters(); !ok || dl.Group != 0 {
			t.Fatalf("buffered letter %+v (%v), want group 0's", dl, ok)
		}
	})
}

// TestDeadLetterHandlerBadInput: nil, or a handler for another group type.
func TestDeadLetterHandlerBadInput(t *testing.T) {
	if _, err := New[int](WithDeadLetterHandler[int](nil)); !errors.Is(err, ErrInvalidOption) {
		t.Fatalf("nil handler: %v", err)
	}
	if _, err := New[int](WithDeadLetterHandler(func(DeadLetter[string]) {})); !errors.Is(err, ErrInvalidOption) {
		t.Fatalf("handler for string groups on an int pool: %v", err)
	}
}

// captureLog sends the default slog logger's output to a buffer for the
// test's length.
func captureLog(t *testing.T) *syncBuffer {
	t.Helper()
	buf := new(syncBuffer)
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(buf, nil)))
	t.Cleanup(func() { slog.SetDefault(old) })
	return buf
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestUnbufferedDeadLettersAfterDeadline: with WithDeadLetterBuffer(0),
// once Close's deadline has passed the worker no longer waits for a
// reader: a letter goes on the channel only if a reader is receiving at
// that instant; the others, made while the reader handles the previous
// one, are in CloseError.Undelivered, none lost.
func TestUnbufferedDeadLettersAfterDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := mustNew[int](t, WithWorkers(1, 1), WithDeadLetterBuffer(0))
		received := make(chan []DeadLetter[int], 1)
		go func() {
			var got []DeadLetter[int]
			for dl := range p.DeadLetters() {
				got = append(got, dl)
				time.Sleep(10 * time.Millisecond) // handles it
			}
			received <- got
		}()
		bad := func(context.Context) error { return Permanent(errors.New("bad")) }
		// Fails after Close's deadline, while the reader waits.
		_ = p.Submit(context.Background(), 1, func(context.Context) error {
			time.Sleep(2 * time.Second)
			return Permanent(errors.New("late"))
		})
		_ = p.Submit(context.Background(), 1, bad)
		_ = p.Submit(context.Background(), 1, bad)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		var ce *CloseError[int]
		if err := p.Close(ctx); !errors.As(err, &ce) {
			t.Fatalf("Close: %v, want a CloseError", err)
		}
		got := <-received
		if len(got) != 1 || got[0].Reason != ReasonFailed {
			t.Fatalf("received %+v, want the one Failed letter made while the reader waited", got)
		}
		if len(ce.Undelivered) != 2 || ce.Shutdown != 2 {
			t.Fatalf("undelivered %d, shutdown %d; want the 2 Shutdown letters made while the reader was busy", len(ce.Undelivered), ce.Shutdown)
		}
		for _, dl := range ce.Undelivered {
			if dl.Reason != ReasonShutdown {
				t.Errorf("undelivered %v letter, want Shutdown", dl.Reason)
			}
		}
		if s := p.Snapshot(); s.DeadLetters.Total() != 3 || s.DeadLettersUntaken != 0 {
			t.Errorf("letters %+v, untaken %d; want 3, 0", s.DeadLetters, s.DeadLettersUntaken)
		}
	})
}
