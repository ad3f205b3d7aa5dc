package shard_test

import (
	"fmt"

	"github.com/shoal-go/shoal/shard"
)

// UserID is a named integer key; any type whose underlying type is a string
// or an integer satisfies Key.
type UserID uint64

// shardOf places any Key on one of n shards: rooms named by strings and users
// named by integers share one helper.
func shardOf[K shard.Key](k K, n int) int {
	return shard.Jump(shard.Hash(k), n)
}

func ExampleKey() {
	// A named type hashes like its underlying value, so a RoomID and the
	// plain string land on the same shard.
	fmt.Println(shardOf(RoomID("lobby"), 8) == shardOf("lobby", 8))
	fmt.Println(shardOf(UserID(42), 8) == shardOf(uint64(42), 8))
	// Output:
	// true
	// true
}

func ExampleRingOption() {
	// Options are collected once and shared, so that every node of the chat
	// cluster builds its ring with the same table size.
	opts := []shard.RingOption{shard.WithTableSize(4099)}
	a, err := shard.NewRing([]string{"node-a", "node-b"}, opts...)
	if err != nil {
		fmt.Println(err)
		return
	}
	b, err := shard.NewRing([]string{"node-b", "node-a"}, opts...)
	if err != nil {
		fmt.Println(err)
		return
	}
	h := shard.Hash(RoomID("lobby"))
	fmt.Println(a.TableSize(), a.Lookup(h) == b.Lookup(h))
	// Output: 4099 true
}
