package jetstream

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestStopRacingFailure: a fatal failure stops the consumer just before
// Stop is called, and the consumer's goroutines have not all exited when
// Stop looks (a watcher's Stop is held here). Stop must report the
// failure as it does once the consumer has stopped: an error matching
// ErrStopped that wraps it, not the failure alone.
func TestStopRacingFailure(t *testing.T) {
	s := inprocServer(t)
	js := inprocConnect(t, s.ClientURL())
	if _, err := CreateStream(context.Background(), js, StreamSpec{Name: "CHAT", Partitions: 4}); err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	c := inprocStart(t, holdWatchers(t, s, release), "n1")
	var once sync.Once
	letGo := func() { once.Do(func() { close(release) }) }
	t.Cleanup(letGo) // before inprocStart's cleanup waits for Done

	failure := fmt.Errorf("%w: %q was taken over", ErrDuplicateMember, "n1")
	c.fail(failure)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	result := make(chan error, 1)
	go func() { result <- c.Stop(ctx) }()
	select {
	case <-c.leave: // Stop found the consumer running
	case <-time.After(10 * time.Second):
		t.Fatal("Stop did not ask the consumer to leave")
	}
	letGo()
	err := <-result
	if !errors.Is(err, ErrStopped) || !errors.Is(err, ErrDuplicateMember) {
		t.Errorf("Stop racing a failure = %v; want an error matching ErrStopped and the failure", err)
	}
	if got := c.Err(); !errors.Is(got, ErrDuplicateMember) {
		t.Errorf("Err = %v, want the failure", got)
	}
}
