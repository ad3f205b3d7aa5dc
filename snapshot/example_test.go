package snapshot_test

import (
	"errors"
	"fmt"

	"github.com/shoal-go/shoal/snapshot"
)

// A Cell holds hot-updatable configuration: readers load it without locks,
// a writer updates it optimistically.
func ExampleCell() {
	type limits struct{ MaxQueue, MaxWorkers int }
	var cfg snapshot.Cell[limits]
	cfg.Store(limits{MaxQueue: 1024, MaxWorkers: 8})

	cur, ver := cfg.Load()
	if _, ok := cfg.CompareAndSwap(ver, limits{MaxQueue: cur.MaxQueue, MaxWorkers: 16}); ok {
		fmt.Println("raised workers")
	}
	// A second writer still holding the old version fails instead of
	// overwriting the first one's change.
	if _, ok := cfg.CompareAndSwap(ver, limits{MaxQueue: 64, MaxWorkers: 8}); !ok {
		fmt.Println("stale write refused")
	}
	now, ver := cfg.Load()
	fmt.Printf("%+v at version %d\n", now, ver)
	// Output:
	// raised workers
	// stale write refused
	// {MaxQueue:1024 MaxWorkers:16} at version 2
}

// A Store keeps per-room state; a follower reads only what changed.
func ExampleStore() {
	var rooms snapshot.Store[string, int] // room → last message sequence
	rooms.Set("lobby", 1)
	rooms.Set("random", 1)
	_, mark, _ := rooms.Since(0) // a follower's initial sync

	rooms.Update("lobby", func(seq int, ok bool) int { return seq + 1 })
	rooms.Delete("random")

	changes, next, err := rooms.Since(mark)
	if err != nil {
		panic(err)
	}
	for _, c := range changes {
		fmt.Printf("%s seq=%d deleted=%v version=%d\n", c.Key, c.Value, c.Deleted, c.Version)
	}
	fmt.Println("next:", next)
	// Output:
	// lobby seq=2 deleted=false version=3
	// random seq=0 deleted=true version=4
	// next: 4
}

// A follower applies each change whose version is newer than what it holds,
// and resyncs from scratch when the store has forgotten deletions it missed.
func ExampleStore_Since() {
	var presence snapshot.Store[string, string] // user → status
	local := map[string]string{}
	var next uint64
	follow := func() {
		changes, n, err := presence.Since(next)
		if errors.Is(err, snapshot.ErrTooOld) {
			clear(local)
			changes, n, _ = presence.Since(0)
		}
		for _, c := range changes {
			if c.Deleted {
				delete(local, c.Key)
			} else {
				local[c.Key] = c.Value
			}
		}
		next = n
	}
	presence.Set("ana", "online")
	presence.Set("bo", "away")
	follow()
	presence.Set("bo", "online")
	presence.Delete("ana")
	follow()
	fmt.Println(local, "at version", next)
	// Output: map[bo:online] at version 4
}
