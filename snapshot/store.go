// Invariants:
//   - s.clock only grows. A write takes its version from s.clock while it
//     holds its shard's mu, and publishes the new item before releasing mu.
//     Hence when a reader loads s.clock = g and then acquires a shard's mu,
//     every write of that shard with version <= g is already published.
//   - sh.dirty (guarded by sh.mu) maps every key the shard knows, tombstones
//     included, to its *entry. sh.read points to an immutable readOnly whose
//     table holds a subset of sh.dirty with the same *entry pointers;
//     amended tells whether sh.dirty holds keys the table lacks. A key
//     leaves sh.dirty only in purge, which rebuilds sh.read in the same
//     critical section.
//   - An entry's item pointer is never nil once the entry is reachable, and
//     an item is never written after it is published.
//   - sh.purged is the highest version of any tombstone the shard dropped; it
//     only grows, and an absent key reports it as its version.

package snapshot

import (
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"
)

// ErrTooOld is returned by Store.Since when the store no longer remembers
// every deletion after the requested version. The caller should resync with
// Since(0), which returns every live entry, and follow on from there.
var ErrTooOld = errors.New("snapshot: version too old, resync with Since(0)")

// numShards is the number of independently locked parts of a Store. Writers
// of keys in different shards never wait for each other.
const (
	shardBits = 6
	numShards = 1 << shardBits
)

// purgeMin is the number of tombstones a shard keeps before it considers
// dropping them (tests lower it).
var purgeMin = 256

// seed hashes keys to shards; one per process, like a map's.
var seed = maphash.MakeSeed()

// Change is the state of one key after a version: its latest value and
// version, or Deleted with the version of the deletion.
type Change[K comparable, V any] struct {
	// Key is the key that changed.
	Key K
	// Value is its latest value (the zero value when Deleted).
	Value V
	// Version is the version of that value, or of the deletion.
	Version uint64
	// Deleted says the key was deleted at Version.
	Deleted bool
}

// Store is a map from K to V whose reads are lock-free and whose every write
// gets a version from one store-wide, strictly increasing clock. It is
// sharded: writers of keys in different shards contend only on the clock, a
// single atomic add. Since lets a reader follow the store incrementally.
//
// The zero Store is ready to use. A Store must not be copied after first use.
// Values are copied in and out; if V holds pointers, slices or maps, the
// caller must not mutate what they refer to after storing them.
type Store[K comparable, V any] struct {
	_      noCopy
	clock  atomic.Uint64
	shards [numShards]shard[K, V]
}

type item[V any] struct {
	v       V
	ver     uint64
	deleted bool
}

type entry[V any] struct {
	p atomic.Pointer[item[V]]
	h uint64 // the key's hash; fixed
}

// readOnly is a shard's read index: an open-addressing table built once and
// never written, looked up with the hash that already chose the shard, so a
// Get hashes its key once.
type readOnly[K comparable, V any] struct {
	slots   []slot[K, V] // len is a power of two, at most half full
	amended bool         // the shard's dirty map holds keys the table lacks
}

type slot[K comparable, V any] struct {
	h uint64 // key hash | 1; 0 marks an empty slot
	k K
	e *entry[V]
}

// find returns k's entry, or nil if the table lacks it.
func (r *readOnly[K, V]) find(h uint64, k K) *entry[V] {
	n := uint64(len(r.slots))
	if n == 0 {
		return nil
	}
	h |= 1
	for i := (h >> shardBits) & (n - 1); ; i = (i + 1) & (n - 1) {
		s := &r.slots[i]
		if s.h == h && s.k == k {
			return s.e
		}
		if s.h == 0 {
			return nil
		}
	}
}

// newReadOnly builds the read index of m.
func newReadOnly[K comparable, V any](m map[K]*entry[V]) *readOnly[K, V] {
	n := 8
	for n < 2*len(m) {
		n <<= 1
	}
	slots := make([]slot[K, V], n)
	mask := uint64(n - 1)
	for k, e := range m {
		h := e.h | 1
		i := (h >> shardBits) & mask
		for slots[i].h != 0 {
			i = (i + 1) & mask
		}
		slots[i] = slot[K, V]{h: h, k: k, e: e}
	}
	return &readOnly[K, V]{slots: slots}
}

type shard[K comparable, V any] struct {
	read   atomic.Pointer[readOnly[K, V]]
	purged atomic.Uint64

	mu      sync.Mutex
	dirty   map[K]*entry[V] // guarded by mu
	misses  int             // read-map misses since the last promotion; guarded by mu
	live    int             // keys with a live value; guarded by mu
	dead    int             // tombstones; guarded by mu
	lastVer uint64          // highest version written in this shard; guarded by mu

	_ [64]byte // keeps neighbouring shards' hot fields on different cache lines
}

// shard returns k's shard and k's hash.
func (s *Store[K, V]) shard(k K) (*shard[K, V], uint64) {
	h := maphash.Comparable(seed, k)
	return &s.shards[h%numShards], h
}

// Version returns the store's current version: the highest version handed
// out to a write (0 before the first one). That write may still be in
// progress, so a Get made afterwards need not show it yet, and a follower
// that resumed Since from Version could miss it: follow on from the version
// Since returns, which counts only writes Since has seen.
func (s *Store[K, V]) Version() uint64 {
	return s.clock.Load() // observes the latest version handed out
}

// Get returns the value of k, its version and whether k is present. For an
// absent key the value is V's zero value and the version is one that
// CompareAndSwap accepts for inserting k. Get never blocks writers; it takes
// a lock only for a key inserted since the shard's read index was last
// rebuilt, and then only until the shard rebuilds it.
func (s *Store[K, V]) Get(k K) (V, uint64, bool) {
	sh, h := s.shard(k)
	e := sh.load(h, k)
	if e != nil {
		it := e.p.Load() // acquires the item published by the key's last write
		if !it.deleted {
			return it.v, it.ver, true
		}
		var zero V
		return zero, it.ver, false
	}
	var zero V
	return zero, sh.purged.Load(), false // orders after the purge that dropped k, if any
}

// Len returns the number of live keys. It locks each shard in turn, so under
// concurrent writes the result is a count that was true of each shard at
// some moment, not of the whole store at once.
func (s *Store[K, V]) Len() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += sh.live
		sh.mu.Unlock()
	}
	return n
}

// Set stores v under k and returns the new version.
func (s *Store[K, V]) Set(k K, v V) uint64 {
	sh, h := s.shard(k)
	sh.mu.Lock()
	ver := s.writeLocked(sh, h, k, sh.dirty[k], v, false)
	sh.mu.Unlock()
	return ver
}

// Delete removes k. It returns the version of the deletion and true, or, if
// k was absent, k's current version and false (and writes nothing).
func (s *Store[K, V]) Delete(k K) (uint64, bool) {
	sh, h := s.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := sh.dirty[k]
	// Under mu the item is stable: only holders of mu store it.
	if e == nil || e.p.Load().deleted {
		return sh.versionLocked(e), false
	}
	var zero V
	ver := s.writeLocked(sh, h, k, e, zero, true)
	sh.maybePurgeLocked()
	return ver, true
}

// CompareAndSwap stores v under k only if k's current version is version.
// The version of an absent key is the one Get reports for it: 0 for a key
// never written, until its shard drops tombstones; from then on the highest
// version the shard dropped, for every key absent from it, written or not.
// It returns the new version and true, or the current version and false. A
// version that is not current always fails.
func (s *Store[K, V]) CompareAndSwap(k K, version uint64, v V) (uint64, bool) {
	sh, h := s.shard(k)
	// Fail fast, without the lock, when version is already stale: the key's
	// version only grows (an absent key's version is the purge mark, which
	// only grows too), so a mismatch now is a mismatch under the lock.
	if _, cur, _ := s.Get(k); cur != version {
		return cur, false
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := sh.dirty[k]
	if cur := sh.versionLocked(e); cur != version {
		return cur, false
	}
	return s.writeLocked(sh, h, k, e, v, false), true
}

// Update applies fn to k's current value (and whether k is present) and
// stores the result, retrying until no other write to k intervenes. It
// returns the value stored and its version. fn may run more than once, runs
// without any lock held, and must not have side effects.
func (s *Store[K, V]) Update(k K, fn func(old V, ok bool) V) (V, uint64) {
	for {
		old, ver, ok := s.Get(k)
		nv := fn(old, ok)
		if nver, done := s.CompareAndSwap(k, ver, nv); done {
			return nv, nver
		}
	}
}

// Since returns the state of every key written after version, sorted by
// version, and the version to pass to the next call. A change whose version
// is at most next is always in the result; later changes may be too (a key
// appears once, with its latest state), so a follower that applies a change
// only when its version is newer than what it holds converges on the store.
//
// Since(0) returns every live key and no tombstones, for a follower that
// starts empty. For version > 0 a deleted key appears with Deleted set. A
// store keeps only a bounded number of tombstones per shard (about as many
// as it has live keys, at least 256); if it has dropped one newer than
// version, Since returns ErrTooOld and the follower must resync with
// Since(0).
//
// Cost: one lock per shard, O(shards) when nothing changed, plus O(keys) of
// each shard written after version. It never blocks readers; writers of a
// shard wait while Since scans that shard.
func (s *Store[K, V]) Since(version uint64) ([]Change[K, V], uint64, error) {
	next := s.clock.Load() // every write with a version <= next has taken its shard lock already
	var out []Change[K, V]
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		if sh.lastVer <= version {
			sh.mu.Unlock()
			continue
		}
		if purged := sh.purged.Load(); version > 0 && purged > version { // stable under mu
			sh.mu.Unlock()
			return nil, next, fmt.Errorf("%w (asked for changes after %d, a deletion at %d is forgotten)", ErrTooOld, version, purged)
		}
		for k, e := range sh.dirty {
			it := e.p.Load() // acquires the key's latest item
			if it.ver <= version || (version == 0 && it.deleted) {
				continue
			}
			out = append(out, Change[K, V]{Key: k, Value: it.v, Version: it.ver, Deleted: it.deleted})
		}
		sh.mu.Unlock()
	}
	slices.SortFunc(out, func(a, b Change[K, V]) int {
		switch {
		case a.Version < b.Version:
			return -1
		case a.Version > b.Version:
			return 1
		}
		return 0
	})
	return out, next, nil
}

// load finds k's entry (h is k's hash), lock-free when it is in the read
// index.
func (sh *shard[K, V]) load(h uint64, k K) *entry[V] {
	r := sh.read.Load() // acquires the read index published by the last promotion
	if r == nil {
		return nil
	}
	if e := r.find(h, k); e != nil || !r.amended {
		return e
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	r = sh.read.Load() // may have been promoted while we waited
	if e := r.find(h, k); e != nil || !r.amended {
		return e
	}
	e := sh.dirty[k]
	sh.missLocked()
	return e
}

// missLocked counts a read-map miss and, once the misses have paid for a
// copy, publishes dirty as the new read index (amortized O(1) per miss, as in
// sync.Map).
func (sh *shard[K, V]) missLocked() {
	sh.misses++
	if sh.misses < len(sh.dirty) {
		return
	}
	sh.read.Store(newReadOnly(sh.dirty)) // publishes a complete, immutable index
	sh.misses = 0
}

// versionLocked is the version of the key whose entry is e (nil: absent).
func (sh *shard[K, V]) versionLocked(e *entry[V]) uint64 {
	if e == nil {
		return sh.purged.Load() // stable under mu
	}
	return e.p.Load().ver // stable under mu
}

// writeLocked publishes a new item for k (e is k's entry, or nil) and
// returns its version. sh.mu must be held.
func (s *Store[K, V]) writeLocked(sh *shard[K, V], h uint64, k K, e *entry[V], v V, deleted bool) uint64 {
	ver := s.clock.Add(1) // takes the next version; published below before mu is released
	it := &item[V]{v: v, ver: ver, deleted: deleted}
	sh.lastVer = ver
	if e == nil {
		e = &entry[V]{h: h}
		e.p.Store(it) // not yet reachable; the map insert below hands it over
		if sh.dirty == nil {
			sh.dirty = make(map[K]*entry[V])
		}
		sh.dirty[k] = e
		if r := sh.read.Load(); r == nil || !r.amended { // stable under mu: only holders of mu store it
			var slots []slot[K, V]
			if r != nil {
				slots = r.slots
			}
			sh.read.Store(&readOnly[K, V]{slots: slots, amended: true}) // tells readers to look in dirty
		}
		sh.live++
		return ver
	}
	old := e.p.Load() // stable under mu
	e.p.Store(it)     // publishes the new value to lock-free readers
	switch {
	case old.deleted && !deleted:
		sh.dead--
		sh.live++
	case !old.deleted && deleted:
		sh.live--
		sh.dead++
	}
	return ver
}

// maybePurgeLocked drops the shard's tombstones once they outnumber both
// purgeMin and the live keys, so tombstones cost at most about as much
// memory as live keys, and purging costs amortized O(1) per deletion.
func (sh *shard[K, V]) maybePurgeLocked() {
	if sh.dead < purgeMin || sh.dead <= sh.live {
		return
	}
	maxVer := sh.purged.Load() // stable under mu
	// Copy the live keys into a map of their size rather than delete the
	// tombstones in place: a Go map keeps its capacity when keys are
	// deleted, so the shard would hold the memory of its peak forever.
	live := make(map[K]*entry[V], sh.live)
	for k, e := range sh.dirty {
		if it := e.p.Load(); it.deleted { // stable under mu
			maxVer = max(maxVer, it.ver)
		} else {
			live[k] = e
		}
	}
	sh.dirty = live
	sh.dead = 0
	sh.purged.Store(maxVer)              // raises absent keys' version before they become absent
	sh.read.Store(newReadOnly(sh.dirty)) // publishes a read index without the dropped keys
	sh.misses = 0
}
