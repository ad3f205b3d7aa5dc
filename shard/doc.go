// Package shard routes group keys to shards and to named members.
//
// Routing a task takes two steps. Hash turns its key (a string or an integer,
// named types such as `type RoomID string` included) into a well-mixed 64-bit
// hash without allocating: xxhash64 for strings, the splitmix64 finalizer for
// integers. Jump then maps the hash to one of n shards with jump consistent
// hashing (Lamping and Veach): the same key always lands on the same shard,
// and growing from n to n+1 shards moves only the optimal 1/(n+1) of keys,
// all of them to the new shard.
//
// Ring routes hashes to named members, such as the nodes of a cluster, where
// any member may leave, not only the last one. It uses Maglev hashing: an O(1)
// table lookup, near-perfect balance, and little movement beyond the keys of
// the member that joined or left. A Ring is immutable; Add and Remove return a
// new one.
//
// Costs, hashing a 16-byte string key included (medians of ten runs on a
// shared, busy 2-core machine; expect ±30 %): Jump 18–33 ns from 64 to 1024
// shards, Ring.Lookup 7–10 ns from 64 to 1024 members.
// Hash alone takes about 5 ns for that string and 2 ns for an integer.
// Building a Ring with the default table takes a few milliseconds.
//
// Every function and method is safe for concurrent use.
package shard
