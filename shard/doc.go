// Package shard routes group keys to shards and to named members.
//
// Hash turns a key (a string or an integer, named types included) into a
// well-mixed 64-bit hash without allocating. Jump maps that hash to one of n
// shards with jump consistent hashing: the same key always lands on the same
// shard, and growing from n to n+1 shards moves only the optimal 1/(n+1) of
// keys, all of them to the new shard.
package shard
