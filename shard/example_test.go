package shard_test

import (
	"errors"
	"fmt"

	"github.com/shoal-go/shoal/shard"
)

type RoomID string

func ExampleHash() {
	// Named string types hash like the strings they hold, without allocating.
	fmt.Println(shard.Hash(RoomID("room-42")) == shard.Hash("room-42"))
	// Non-negative integers hash alike whatever their width (a negative one
	// hashes its bit pattern at its own width: int32(-1) differs from int64(-1)).
	fmt.Println(shard.Hash(int32(7)) == shard.Hash(uint64(7)))
	// Hashes are stable across processes and may be sent to other nodes.
	fmt.Printf("%#x\n", shard.Hash("room-42"))
	// Output:
	// true
	// true
	// 0xceaf3ce645b4c937
}

func ExampleJump() {
	// Growing from 4 to 5 shards either keeps a room on its shard or moves
	// it to the new shard 4; no room moves between two old shards.
	for i := range 8 {
		room := RoomID(fmt.Sprintf("room-%d", i))
		h := shard.Hash(room)
		fmt.Printf("%s: %d -> %d\n", room, shard.Jump(h, 4), shard.Jump(h, 5))
	}
	// Output:
	// room-0: 0 -> 4
	// room-1: 3 -> 4
	// room-2: 0 -> 0
	// room-3: 1 -> 1
	// room-4: 0 -> 0
	// room-5: 2 -> 4
	// room-6: 3 -> 4
	// room-7: 1 -> 1
}

func ExampleRing() {
	ring, err := shard.NewRing([]string{"node-a", "node-b", "node-c"})
	if err != nil {
		fmt.Println(err)
		return
	}
	for i := range 4 {
		room := RoomID(fmt.Sprintf("room-%d", i))
		fmt.Println(room, "->", ring.Lookup(shard.Hash(room)))
	}

	// Remove returns a new ring: node-b's rooms move, the others stay put.
	smaller, err := ring.Remove("node-b")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(smaller.Members())
	for i := range 4 {
		room := RoomID(fmt.Sprintf("room-%d", i))
		fmt.Println(room, "->", smaller.Lookup(shard.Hash(room)))
	}

	_, err = shard.NewRing([]string{"node-a", "node-a"})
	fmt.Println(errors.Is(err, shard.ErrDuplicateMember))
	// Output:
	// room-0 -> node-a
	// room-1 -> node-b
	// room-2 -> node-c
	// room-3 -> node-b
	// [node-a node-c]
	// room-0 -> node-a
	// room-1 -> node-a
	// room-2 -> node-c
	// room-3 -> node-a
	// true
}

func ExampleWithTableSize() {
	// A larger table moves fewer keys needlessly when members change; it is
	// rounded up to a prime, and every node must use the same size.
	ring, err := shard.NewRing([]string{"node-a", "node-b"}, shard.WithTableSize(1_000_000))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(ring.TableSize())

	_, err = shard.NewRing([]string{"node-a"}, shard.WithTableSize(0))
	fmt.Println(errors.Is(err, shard.ErrBadTableSize))
	// Output:
	// 1000003
	// true
}
