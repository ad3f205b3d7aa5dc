package shard

import (
	"unsafe"

	"github.com/cespare/xxhash/v2"
)

// Key is the set of types that can name a group: strings and integers,
// including named types such as `type RoomID string`.
type Key interface {
	~string | ~int | ~int32 | ~int64 | ~uint | ~uint32 | ~uint64
}

// Hash returns a well-mixed 64-bit hash of k. It never allocates, for named
// types too.
//
// Strings (any type whose underlying type is string) are hashed with
// xxhash64 (seed 0), so Hash(RoomID("a")) == Hash("a") ==
// xxhash.Sum64String("a"). Integers are hashed by their bit pattern at their
// own width, zero-extended to 64 bits, through the splitmix64 output function
// (a bijection with full avalanche): Hash(int32(7)) == Hash(uint64(7)), while
// Hash(int32(-1)) hashes 0xffffffff and Hash(int64(-1)) hashes
// 0xffffffffffffffff.
//
// The result is stable across processes, platforms and releases of this
// module, so it may be stored or sent to other nodes, with one exception:
// int and uint have their platform's width, so a negative int hashes
// differently on 32-bit and 64-bit platforms. Use int64 keys where that
// matters.
func Hash[K Key](k K) uint64 {
	if isString[K]() {
		// K's underlying type is string: same layout as string.
		return xxhash.Sum64String(*(*string)(unsafe.Pointer(&k)))
	}
	if unsafe.Sizeof(k) == 4 {
		return Mix64(uint64(*(*uint32)(unsafe.Pointer(&k))))
	}
	return Mix64(*(*uint64)(unsafe.Pointer(&k)))
}

// isString reports whether K's underlying type is string, at no run-time
// cost on 64-bit platforms.
//
// There, a string header is 16 bytes and every integer in Key is at most 8,
// so the size alone decides; it is a constant of K's shape and the compiler
// folds the whole function. On 32-bit platforms a string header has the size
// of int64, and the decision falls back to arithmetic that only strings fail:
// the rune 1 converted to K, added to itself, equals the rune 2 converted to
// K for integers but not for strings ("\x01\x01" versus "\x02"). That path
// costs a few nanoseconds and does not allocate.
func isString[K Key]() bool {
	var zero K
	if unsafe.Sizeof(zero) != unsafe.Sizeof("") {
		return false
	}
	if unsafe.Sizeof(uintptr(0)) == 8 {
		return true
	}
	return K(rune(1))+K(rune(1)) != K(rune(2))
}

// Mix64 is the splitmix64 output function: it adds the golden-ratio
// increment and applies Stafford's "mix13" finalizer. It is a bijection on
// uint64 in which every input bit affects every output bit with probability
// close to 1/2. Hash uses it for integer keys; it is exported for callers
// that already hold an integer and want the same mapping.
func Mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}
